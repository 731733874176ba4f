//go:build linux && amd64

package linuxcompat

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curlOnce runs one HTTP/1.1 POST with curl and returns its pid.
func curlOnce(t *testing.T, curl string, srv *tlsServer, path string, body []byte) int {
	t.Helper()
	cmd := exec.Command(curl, "-sS", "--http1.1", "--cacert", srv.caFile, "--data-binary", string(body), srv.URL+path)
	if out, err := cmd.Output(); err != nil || !bytes.Equal(out, responseFor("POST", path, body)) {
		t.Fatalf("curl: %v %q", err, out)
	}
	return cmd.Process.Pid
}

// TestFilterByExecutable: with an executable filter, a copy of curl at the
// configured path is captured and the system curl is not.
func TestFilterByExecutable(t *testing.T) {
	curl := needTool(t, "curl")
	raw, err := os.ReadFile(curl)
	if err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(t.TempDir(), "curl-copy")
	if err := os.WriteFile(mine, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	_, rec := startSource(t, Config{Executables: []string{mine}})
	srv := newTLSServer(t, false)
	other := curlOnce(t, curl, srv, "/other", []byte("not me"))
	body := []byte("captured via executable filter")
	pid := curlOnce(t, mine, srv, "/mine", body)
	checkHTTP1Exchange(t, rec, pid, "POST", "/mine", body)
	time.Sleep(200 * time.Millisecond)
	if fs := rec.flowsOf(other); len(fs) != 0 {
		t.Errorf("unfiltered curl produced %d flows", len(fs))
	}
	for _, ev := range rec.systemEvents() {
		if ev.Process.PID == other {
			t.Errorf("unfiltered curl produced %s", ev.Kind)
		}
	}
}

// TestFilterByCgroup: only processes in the configured cgroup v2 group are
// captured.
func TestFilterByCgroup(t *testing.T) {
	curl := needTool(t, "curl")
	bash := needTool(t, "bash")
	root, err := cgroup2Mount()
	if err != nil {
		t.Skipf("no cgroup2 hierarchy: %v", err)
	}
	name := fmt.Sprintf("oisp-test-%d", os.Getpid())
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup: %v", err)
	}
	defer os.Remove(dir)

	// A shell that waits, is moved into the group, then runs curl.
	srv := newTLSServer(t, false)
	body := []byte("captured via cgroup filter")
	script := fmt.Sprintf("read x; exec %s -sS --http1.1 --cacert %s --data-binary %q %s/cg", curl, srv.caFile, body, srv.URL)
	cmd := exec.Command(bash, "-c", script)
	stdin, _ := cmd.StdinPipe()
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Skipf("cannot move a process into the cgroup: %v", err)
	}
	_, rec := startSource(t, Config{Cgroups: []string{name}})
	other := curlOnce(t, curl, srv, "/other", []byte("outside the group"))
	stdin.Write([]byte("go\n"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("bash/curl: %v", err)
	}
	checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/cg", body)
	fs := rec.flowsOf(cmd.Process.Pid)
	if want := "/" + name; fs[0].info.Process.Cgroup != want {
		t.Errorf("flow cgroup %q, want %q", fs[0].info.Process.Cgroup, want)
	}
	if fs := rec.flowsOf(other); len(fs) != 0 {
		t.Errorf("curl outside the group produced %d flows", len(fs))
	}
}

// TestFilterByPIDTracesRunningDescendants: a pid filter covers the
// descendants that were already running when capture started (an agent's
// worker started before the sensor), not only those forked later.
func TestFilterByPIDTracesRunningDescendants(t *testing.T) {
	curl := needTool(t, "curl")
	bash := needTool(t, "bash")
	srv := newTLSServer(t, false)
	body := []byte("captured as a descendant running before capture")
	// The subshell (a child of bash, a grandchild of this test) prints its
	// pid and waits; it runs before the Source starts, and then becomes curl.
	script := fmt.Sprintf("( echo $BASHPID; read x; exec %s -sS --http1.1 --cacert %s --data-binary %q %s/running ); true",
		curl, srv.caFile, body, srv.URL)
	cmd := exec.Command(bash, "-c", script)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	inner, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("subshell pid %q: %v", line, err)
	}
	src, rec := startSource(t, Config{PIDs: []int{cmd.Process.Pid}})
	if !src.wantProcess(inner) {
		t.Fatalf("the running grandchild %d of the filtered pid %d is not traced", inner, cmd.Process.Pid)
	}
	if src.wantProcess(os.Getpid()) {
		t.Errorf("the filtered pid's parent (this test, %d) is traced", os.Getpid())
	}
	stdin.Write([]byte("go\n"))
	stdin.Close()
	io.Copy(io.Discard, out)
	checkHTTP1Exchange(t, rec, inner, "POST", "/running", body)
}
