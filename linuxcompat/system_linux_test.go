//go:build linux && amd64

package linuxcompat

import (
	"bytes"
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

	"github.com/oisp/oisp-sensor/sensor/flow"
)

const systemScript = `#!/bin/bash
exec 3<>/dev/tcp/127.0.0.1/$1
printf 'ping' >&3
exec 3>&-
{ echo x >/dev/tcp/::1/1; } 2>/dev/null
head -c 1234 /dev/zero > out.bin
"$2" -c "f = open('py.txt', 'w'); f.write('x' * 100); f.close()"
"$2" -c "f = open('py.txt', 'a'); f.write('y' * 10); f.close()"
"$2" -c "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
/bin/true arg1 "arg two"
exit 7
`

// TestSystemEvents runs a script that connects to a local listener, writes
// two files (one through a shell redirect, one with an explicit close) and
// execs, and checks every event of its process tree exactly.
func TestSystemEvents(t *testing.T) { bothSyscallHooks(t, testSystemEvents) }

func testSystemEvents(t *testing.T, hooks func(*Source)) {
	bash := needTool(t, "bash")
	needTool(t, "head")
	py := needTool(t, "python3")
	// Resolve shims (pyenv) to the interpreter itself.
	out, err := exec.Command(py, "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		t.Fatal(err)
	}
	pyExe, _ := filepath.EvalSymlinks(string(bytes.TrimSpace(out)))
	_, rec := startSourceWith(t, Config{}, hooks)
	var ln net.Listener

	ln, err = net.Listen("tcp4", "127.0.0.1:0")
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

	dir := t.TempDir()
	dir, _ = filepath.EvalSymlinks(dir)
	script := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(script, []byte(systemScript), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, script, fmt.Sprint(port), pyExe)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // bash reports the SIGTERM'd child ("Terminated")
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("script: %v\n%s", err, stderr.String())
	}
	if s := <-got; s != "ping" {
		t.Fatalf("listener got %q", s)
	}
	pid := cmd.Process.Pid

	// The process tree of the script, from the events themselves.
	var evs []flow.SystemEvent
	waitFor(t, "the script's exit event", 20*time.Second, func() bool {
		evs = rec.systemEvents()
		for _, e := range evs {
			if e.Kind == flow.SysExit && e.Process.PID == pid {
				return true
			}
		}
		return false
	})
	tree := map[int]bool{pid: true}
	var mine []flow.SystemEvent
	for _, e := range evs {
		if e.Kind == flow.SysFork && tree[e.Process.PID] {
			tree[e.ChildPID] = true
		}
		if tree[e.Process.PID] {
			mine = append(mine, e)
		}
	}

	bashExe, _ := filepath.EvalSymlinks(bash)
	headExe, _ := exec.LookPath("head")
	headExe, _ = filepath.EvalSymlinks(headExe)
	trueExe, _ := filepath.EvalSymlinks("/bin/true")

	// Reduce each event to the fields that matter for its kind.
	type summary struct {
		Kind    flow.SystemKind
		Who     string // "script" or the child's role
		Exe     string
		Args    []string
		Cwd     string
		PPID    int
		Remote  string
		Success bool
		Error   string
		Path    string
		Flags   []string
		Created bool
		Trunc   bool
		Bytes   int64
		Exit    int
		Signal  int
	}
	roles := map[int]string{pid: "script"}
	for _, e := range mine {
		if e.Kind == flow.SysExec && e.Process.PID != pid {
			roles[e.Process.PID] = filepath.Base(e.Exe)
		}
	}
	var sums []summary
	for _, e := range mine {
		s := summary{Kind: e.Kind, Who: roles[e.Process.PID]}
		if e.Method != flow.CaptureEBPFTracepoint {
			t.Errorf("%s: method %q", e.Kind, e.Method)
		}
		switch e.Kind {
		case flow.SysFork:
			continue // counted through the exec of each child
		case flow.SysExec:
			s.Exe, s.Args, s.Cwd, s.PPID = e.Exe, e.Args, e.Cwd, e.Process.PPID
			if s.Who == "script" {
				s.PPID = e.Process.PPID - os.Getpid() // 0 when our child
			} else {
				s.PPID = e.Process.PPID - pid // 0 when the script's child
			}
		case flow.SysConnect:
			s.Remote, s.Success, s.Error = e.Remote.String(), e.Success, e.Error
		case flow.SysFileOpen:
			s.Path, s.Flags, s.Created, s.Trunc = e.Path, e.Flags, e.Created, e.Truncated
		case flow.SysFileWrite:
			s.Path, s.Bytes, s.Created, s.Trunc = e.Path, e.BytesWritten, e.Created, e.Truncated
		case flow.SysExit:
			s.Exit, s.Signal = e.ExitCode, e.Signal
		}
		sums = append(sums, s)
	}
	// python3 may open other files for writing (none on a normal install);
	// the shell and head must not.
	sums = slices.DeleteFunc(sums, func(s summary) bool {
		return s.Who == "python3" && s.Kind == flow.SysFileOpen && s.Path != filepath.Join(dir, "py.txt")
	})

	want := []summary{
		{Kind: flow.SysExec, Who: "script", Exe: bashExe, Args: []string{bash, script, fmt.Sprint(port), pyExe}, Cwd: dir},
		{Kind: flow.SysConnect, Who: "script", Remote: fmt.Sprintf("127.0.0.1:%d", port), Success: true},
		{Kind: flow.SysConnect, Who: "script", Remote: "[::1]:1", Success: false, Error: "connection refused"},
		{Kind: flow.SysFileOpen, Who: "head", Path: filepath.Join(dir, "out.bin"), Flags: []string{"write", "create", "truncate"}, Created: true, Trunc: true},
		{Kind: flow.SysExec, Who: "head", Exe: headExe, Args: []string{"head", "-c", "1234", "/dev/zero"}, Cwd: dir},
		{Kind: flow.SysFileWrite, Who: "head", Path: filepath.Join(dir, "out.bin"), Bytes: 1234, Created: true, Trunc: true},
		{Kind: flow.SysExit, Who: "head"},
		{Kind: flow.SysExec, Who: filepath.Base(pyExe), Exe: pyExe, Args: []string{pyExe, "-c", "f = open('py.txt', 'w'); f.write('x' * 100); f.close()"}, Cwd: dir},
		{Kind: flow.SysFileOpen, Who: filepath.Base(pyExe), Path: filepath.Join(dir, "py.txt"), Flags: []string{"write", "create", "truncate"}, Created: true, Trunc: true},
		{Kind: flow.SysFileWrite, Who: filepath.Base(pyExe), Path: filepath.Join(dir, "py.txt"), Bytes: 100, Created: true, Trunc: true},
		{Kind: flow.SysExit, Who: filepath.Base(pyExe)},
		// Appending to the file that exists now: O_CREAT without creating.
		{Kind: flow.SysExec, Who: filepath.Base(pyExe), Exe: pyExe, Args: []string{pyExe, "-c", "f = open('py.txt', 'a'); f.write('y' * 10); f.close()"}, Cwd: dir},
		{Kind: flow.SysFileOpen, Who: filepath.Base(pyExe), Path: filepath.Join(dir, "py.txt"), Flags: []string{"write", "append", "create"}},
		{Kind: flow.SysFileWrite, Who: filepath.Base(pyExe), Path: filepath.Join(dir, "py.txt"), Bytes: 10},
		{Kind: flow.SysExit, Who: filepath.Base(pyExe)},
		{Kind: flow.SysExec, Who: filepath.Base(pyExe), Exe: pyExe, Args: []string{pyExe, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"}, Cwd: dir},
		{Kind: flow.SysExit, Who: filepath.Base(pyExe), Signal: 15},
		{Kind: flow.SysExec, Who: "true", Exe: trueExe, Args: []string{"/bin/true", "arg1", "arg two"}, Cwd: dir},
		{Kind: flow.SysExit, Who: "true"},
		{Kind: flow.SysExit, Who: "script", Exit: 7},
	}
	if diff := cmp.Diff(want, sums); diff != "" {
		t.Errorf("system events of the script's tree (-want +got):\n%s", diff)
	}
}
