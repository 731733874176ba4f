//go:build linux && amd64

package linuxcompat

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// ourProgramNames are the kernel-visible names (truncated to 15 bytes) of
// the programs this package loads.
var ourProgramNames = map[string]bool{
	"tls_enter": true, "tls_return": true, "go_write": true, "go_read_enter": true, "go_read_ret": true,
	"tls_enter_multi": true, "tls_return_mult": true, "go_write_multi": true, "go_read_enter_m": true,
	"go_read_ret_mul": true, "on_exec": true, "on_exit": true, "on_fork": true, "on_sys_enter": true, "on_sys_exit": true,
}

// loadedPrograms counts programs in the kernel carrying our names.
func loadedPrograms(t *testing.T) int {
	t.Helper()
	n := 0
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return n
		}
		if err != nil {
			t.Fatalf("list programs: %v", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		if info, err := p.Info(); err == nil && ourProgramNames[info.Name] {
			n++
		}
		p.Close()
	}
}

func waitNoPrograms(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := loadedPrograms(t)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of our BPF programs still loaded", what, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCleanExitOnCancel: cancelling Run detaches everything; nothing is
// pinned, so no program stays loaded.
func TestCleanExitOnCancel(t *testing.T) {
	if err := availability(); err != nil {
		t.Skipf("eBPF capture unavailable: %v", err)
	}
	if n := loadedPrograms(t); n != 0 {
		t.Skipf("another sensor is running (%d programs loaded); cannot check cleanup", n)
	}
	src, err := New(Config{PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, newRecorder()) }()
	<-src.Ready()
	if n := loadedPrograms(t); n < 10 {
		t.Fatalf("%d programs loaded while running", n)
	}
	var attached int
	for _, a := range src.Attachments() {
		if a.Status == Attached {
			attached++
		}
	}
	if attached == 0 {
		t.Fatalf("nothing attached: %+v", src.Attachments())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitNoPrograms(t, "after cancel")
	if entries, _ := os.ReadDir("/sys/fs/bpf"); len(entries) != 0 {
		for _, e := range entries {
			if strings.Contains(e.Name(), "oisp") {
				t.Errorf("pinned object left: %s", e.Name())
			}
		}
	}
}

// TestHelperSensorProcess is not a test: TestCleanExitOnSIGKILL runs the test
// binary with OISP_EBPF_HELPER=1 to get a sensor process it can kill.
func TestHelperSensorProcess(t *testing.T) {
	if os.Getenv("OISP_EBPF_HELPER") != "1" {
		t.Skip("helper process for TestCleanExitOnSIGKILL")
	}
	src, err := New(Config{})
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(3)
	}
	go func() {
		<-src.Ready()
		os.Stdout.WriteString("ready\n")
	}()
	src.Run(context.Background(), newRecorder())
}

// TestCleanExitOnSIGKILL: a sensor killed with SIGKILL leaves nothing behind
// (links and maps die with its file descriptors).
func TestCleanExitOnSIGKILL(t *testing.T) {
	if err := availability(); err != nil {
		t.Skipf("eBPF capture unavailable: %v", err)
	}
	if n := loadedPrograms(t); n != 0 {
		t.Skipf("another sensor is running (%d programs loaded); cannot check cleanup", n)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSensorProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "OISP_EBPF_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	if n := loadedPrograms(t); n < 10 {
		t.Fatalf("%d programs loaded in the helper", n)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitNoPrograms(t, "after SIGKILL")
}
