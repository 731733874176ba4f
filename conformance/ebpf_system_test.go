package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/spec"
)

// systemScript execs a child, connects to a local listener and writes a
// file, then exits with a status of its own.
const systemScript = `#!/bin/bash
exec 3<>/dev/tcp/127.0.0.1/$1
printf 'ping' >&3
exec 3>&-
printf 'hello oisp\n' > out.txt
/bin/true "one arg"
exit 3
`

// needEBPF skips (or, with OISP_REQUIRE_EBPF=1, fails) a test when the
// shared eBPF capture cannot run, and holds it for the test otherwise.
func needEBPF(t testing.TB) {
	t.Helper()
	if err := ebpf.acquire(); err != nil {
		if ebpfRequired() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(ebpf.release)
}

// TestEBPFSystemEvents runs a script under eBPF capture with a session
// pipeline as handler and checks the exact OISP events of its process
// tree: process.exec, network.connect, file.open, file.write, process.fork,
// process.exit, each valid against the OISP v0.1 schema.
func TestEBPFSystemEvents(t *testing.T) {
	needEBPF(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is not installed")
	}
	bash, _ = filepath.EvalSymlinks(bash)
	trueExe, _ := filepath.EvalSymlinks("/bin/true")

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- string(b)
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	dir, _ := filepath.EvalSymlinks(t.TempDir())
	script := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(script, []byte(systemScript), 0o755); err != nil {
		t.Fatal(err)
	}

	mem := &sink.Memory{}
	s, err := session.New(session.Options{Out: mem})
	if err != nil {
		t.Fatal(err)
	}
	claim := ebpf.claim(s.Pipeline, s.Pipeline)
	defer claim.release()
	var pid int
	_, err = runHeld(context.Background(), []string{bash, script, fmt.Sprint(port)}, nil, dir, nil, func(p int) error {
		pid = p
		return claim.add(p)
	})
	if xe := (*exec.ExitError)(nil); !errors.As(err, &xe) || xe.ExitCode() != 3 {
		t.Fatalf("script: %v, want exit status 3", err)
	}
	if s := <-got; s != "ping" {
		t.Fatalf("listener got %q", s)
	}
	if err := claim.wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}

	v, err := spec.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Type    string
		Who     string // "script", "child"
		PPID    string // "test", "script"
		Data    map[string]any
		Method  string
		Point   string
		ExeName string
	}
	roles := map[int]string{pid: "script"}
	var sums []summary
	for i, ev := range mem.Events() {
		b, err := jsonOf(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(b); err != nil {
			t.Errorf("event %d (%s) is not valid OISP v0.1: %v\n%s", i+1, ev.EventType, err, b)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		data, _ := m["data"].(map[string]any)
		if ev.EventType == "process.exec" {
			// The held shell that execs the script is the suite's, not
			// the script's: drop its exec.
			if args, _ := data["args"].([]any); slices.Contains(args, any("oisp-held-client")) {
				continue
			}
		}
		if ev.Process == nil {
			t.Fatalf("event %d (%s) has no process", i+1, ev.EventType)
		}
		if ev.EventType == "process.fork" && ev.Process.PID == pid {
			if c, ok := data["child_pid"].(float64); ok {
				roles[int(c)] = "child"
				data["child_pid"] = "child"
			}
		}
		who := roles[ev.Process.PID]
		if who == "" {
			who = fmt.Sprintf("pid %d", ev.Process.PID)
		}
		ppid := fmt.Sprintf("pid %d", ev.Process.PPID)
		switch ev.Process.PPID {
		case os.Getpid():
			ppid = "test"
		case pid:
			ppid = "script"
		}
		if ts, _ := data["runtime_ms"].(float64); ts >= 0 {
			delete(data, "runtime_ms")
		}
		if d, ok := data["dest"].(map[string]any); ok && d["port"] == float64(port) {
			d["port"] = "listener"
		}
		delete(data, "latency_ms")
		src, _ := m["source"].(map[string]any)
		sums = append(sums, summary{
			Type: ev.EventType, Who: who, PPID: ppid, Data: data,
			Method: fmt.Sprint(src["capture_method"]), Point: fmt.Sprint(src["capture_point"]),
			ExeName: filepath.Base(ev.Process.Exe),
		})
	}
	tp := "ebpf_tracepoint"
	want := []summary{
		{Type: "process.exec", Who: "script", PPID: "test", Method: tp, Point: "sched_process_exec", ExeName: filepath.Base(bash),
			Data: map[string]any{"exe": bash, "args": []any{bash, script, fmt.Sprint(port)}, "cwd": dir}},
		{Type: "network.connect", Who: "script", PPID: "test", Method: tp, Point: "connect", ExeName: filepath.Base(bash),
			Data: map[string]any{"dest": map[string]any{"ip": "127.0.0.1", "port": "listener", "is_private": true}, "protocol": "tcp", "success": true}},
		{Type: "file.open", Who: "script", PPID: "test", Method: tp, Point: "openat", ExeName: filepath.Base(bash),
			Data: map[string]any{"path": filepath.Join(dir, "out.txt"), "flags": []any{"write", "create", "truncate"}}},
		{Type: "file.write", Who: "script", PPID: "test", Method: tp, Point: "write", ExeName: filepath.Base(bash),
			Data: map[string]any{"path": filepath.Join(dir, "out.txt"), "bytes_written": float64(len("hello oisp\n")), "created": true, "truncated": true}},
		{Type: "process.fork", Who: "script", PPID: "test", Method: tp, Point: "sched_process_fork", ExeName: filepath.Base(bash),
			Data: map[string]any{"child_pid": "child"}},
		{Type: "process.exec", Who: "child", PPID: "script", Method: tp, Point: "sched_process_exec", ExeName: filepath.Base(trueExe),
			Data: map[string]any{"exe": trueExe, "args": []any{"/bin/true", "one arg"}, "cwd": dir}},
		{Type: "process.exit", Who: "child", PPID: "script", Method: tp, Point: "sched_process_exit", ExeName: filepath.Base(trueExe),
			Data: map[string]any{"exit_code": float64(0), "termination_type": "normal"}},
		{Type: "process.exit", Who: "script", PPID: "test", Method: tp, Point: "sched_process_exit", ExeName: filepath.Base(bash),
			Data: map[string]any{"exit_code": float64(3), "termination_type": "normal"}},
	}
	if diff := cmp.Diff(want, sums); diff != "" {
		t.Errorf("OISP events of the script's process tree (-want +got):\n%s", diff)
	}
}
