//go:build linux && amd64

package linuxcompat

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// programIDs lists the kernel ids of the programs a Source loaded.
func programIDs(t testing.TB, src *Source) []ebpf.ProgramID {
	t.Helper()
	o := &src.objs
	var ids []ebpf.ProgramID
	for _, p := range []*ebpf.Program{
		o.OnExec, o.OnExit, o.OnFork, o.OnSysEnter, o.OnSysExit,
		o.TlsEnter, o.TlsReturn, o.GoWrite, o.GoReadEnter, o.GoReadRet, o.GoReadCopy,
		o.multi.TlsEnterMulti, o.multi.TlsReturnMulti, o.multi.GoWriteMulti,
		o.multi.GoReadEnterMulti, o.multi.GoReadRetMulti, o.multi.GoReadCopyMulti,
	} {
		if p == nil {
			continue
		}
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, ok := info.ID()
		if !ok {
			t.Skip("kernel does not report program ids")
		}
		ids = append(ids, id)
	}
	return ids
}

// stillLoaded returns which of ids are still loaded in the kernel (ids are
// not reused while the kernel is up, so another sensor cannot confuse this).
func stillLoaded(ids []ebpf.ProgramID) []ebpf.ProgramID {
	var left []ebpf.ProgramID
	for _, id := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err == nil {
			p.Close()
			left = append(left, id)
		}
	}
	return left
}

func waitUnloaded(t *testing.T, ids []ebpf.ProgramID, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := stillLoaded(ids)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: programs %v still loaded", what, left)
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
	src, err := New(Config{PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, newRecorder()) }()
	<-src.Ready()
	ids := programIDs(t, src)
	if left := stillLoaded(ids); len(left) < 10 {
		t.Fatalf("only %d programs loaded while running", len(left))
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
	waitUnloaded(t, ids, "after cancel")
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
		var ids []string
		for _, id := range programIDs(t, src) {
			ids = append(ids, strconv.Itoa(int(id)))
		}
		os.Stdout.WriteString("ready " + strings.Join(ids, ",") + "\n")
	}()
	src.Run(context.Background(), newRecorder())
}

// TestCleanExitOnSIGKILL: a sensor killed with SIGKILL leaves nothing behind
// (links and maps die with its file descriptors).
func TestCleanExitOnSIGKILL(t *testing.T) {
	if err := availability(); err != nil {
		t.Skipf("eBPF capture unavailable: %v", err)
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
	idList, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	var ids []ebpf.ProgramID
	for _, f := range strings.Split(idList, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("helper ids %q", idList)
		}
		ids = append(ids, ebpf.ProgramID(n))
	}
	if left := stillLoaded(ids); len(left) < 10 {
		t.Fatalf("only %d programs loaded in the helper", len(left))
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitUnloaded(t, ids, "after SIGKILL")
}
