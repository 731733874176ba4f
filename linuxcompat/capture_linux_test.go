//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// TestCaptureCurl: curl (system libssl, SSL_write/SSL_read) over HTTP/1.1.
func TestCaptureCurl(t *testing.T) { bothSyscallHooks(t, testCaptureCurl) }

func testCaptureCurl(t *testing.T, hooks func(*Source)) {
	curl := needTool(t, "curl")
	src, rec := startSourceWith(t, Config{}, hooks)
	srv := newTLSServer(t, false)
	body := []byte(`{"model":"test-model","messages":[{"role":"user","content":"hello"}]}`)
	cmd := exec.Command(curl, "-sS", "--http1.1", "--cacert", srv.caFile, "-H", "Content-Type: application/json",
		"--data-binary", string(body), srv.URL+"/v1/chat/completions")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	if !bytes.Equal(out, responseFor("POST", "/v1/chat/completions", body)) {
		t.Fatalf("curl got %q", out)
	}
	f := checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/v1/chat/completions", body)
	if f.info.ALPN != "http/1.1" {
		t.Errorf("ALPN %q, want http/1.1", f.info.ALPN)
	}
	if f.info.Remote.String() != srv.Listener.Addr().String() {
		t.Errorf("remote = %v, want %v", f.info.Remote, srv.Listener.Addr())
	}
	if !strings.HasSuffix(f.info.Process.Exe, "/curl") || f.info.Process.PPID != os.Getpid() {
		t.Errorf("process = %+v", f.info.Process)
	}
	expectClosed(t, rec, cmd.Process.Pid, "closed")
	if st := src.Stats(); st.TruncatedBytes != 0 || st.RingFullTLSRecords != 0 || st.QueueDropRecords != 0 {
		t.Errorf("unexpected losses: %+v", st)
	}
}

// TestCaptureCurlLargeBody: a 200 KiB request crosses many 16 KiB records.
func TestCaptureCurlLargeBody(t *testing.T) {
	curl := needTool(t, "curl")
	src, rec := startSource(t, Config{})
	srv := newTLSServer(t, false)
	body := make([]byte, 200<<10)
	for i := range body {
		body[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i%36]
	}
	copy(body[len(body)-12:], "END-OF-BODY!")
	bodyFile := filepath.Join(t.TempDir(), "body.bin")
	if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(curl, "-sS", "--http1.1", "--cacert", srv.caFile, "-H", "Expect:",
		"--data-binary", "@"+bodyFile, srv.URL+"/upload")
	if out, err := cmd.Output(); err != nil || !bytes.Equal(out, responseFor("POST", "/upload", body)) {
		t.Fatalf("curl: %v %q", err, out)
	}
	f := checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/upload", body)
	if f.chunks < 13 {
		t.Errorf("200 KiB arrived in %d chunks; expected at least 13 records of <= 16 KiB", f.chunks)
	}
	if st := src.Stats(); st.TruncatedBytes != 0 || st.RingFullTLSRecords != 0 {
		t.Errorf("unexpected losses: %+v", st)
	}
}

// TestCapturePython: urllib through the _ssl module uses SSL_write_ex/SSL_read_ex.
func TestCapturePython(t *testing.T) {
	py := needTool(t, "python3")
	_, rec := startSource(t, Config{})
	srv := newTLSServer(t, false)
	body := []byte("prompt=why is the sky blue")
	script := `import sys, ssl, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[2])
req = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), method="POST")
sys.stdout.write(urllib.request.urlopen(req, context=ctx).read().decode())`
	cmd := exec.Command(py, "-c", script, srv.URL+"/py", srv.caFile, string(body))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	if !bytes.Equal(out, responseFor("POST", "/py", body)) {
		t.Fatalf("python got %q", out)
	}
	checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/py", body)
	expectClosed(t, rec, cmd.Process.Pid, "closed")
}

// expectClosed waits for pid's flow with data to close and checks why:
// "closed" when the client closed the socket (close(2) on the fd seen in
// the SSL call), "process_exit" when it exited with the connection open.
func expectClosed(t *testing.T, rec *recorder, pid int, reason string) {
	t.Helper()
	var got *capturedFlow
	waitFor(t, "flow close", 10*time.Second, func() bool {
		for _, f := range rec.flowsOf(pid) {
			if len(f.c2s) > 0 && f.closed != nil {
				got = &f
				return true
			}
		}
		return false
	})
	if got.closed.Reason != reason {
		t.Errorf("flow closed with reason %q, want %q", got.closed.Reason, reason)
	}
}

const goClientSource = `package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func main() {
	url, caFile, body := os.Args[1], os.Args[2], os.Args[3]
	count := 1
	if len(os.Args) > 4 {
		count, _ = strconv.Atoi(os.Args[4])
	}
	// Wait until the test says the probes are in place.
	bufio.NewReader(os.Stdin).ReadString('\n')
	pem, err := os.ReadFile(caFile)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	// GOCLIENT_H2 set: offer h2 (benchmarks); otherwise HTTP/1.1.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: os.Getenv("GOCLIENT_H2") != ""}}
	var last []byte
	for i := 0; i < count; i++ {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		last, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	fmt.Print(string(last))
}
`

// buildGoClient compiles the crypto/tls test client, optionally stripped.
func buildGoClient(t testing.TB, stripped bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(goClientSource), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "goclient")
	args := []string{"build", "-o", bin}
	if stripped {
		args = append(args, "-ldflags=-s -w")
	}
	args = append(args, "main.go")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runGoClient starts the client; it blocks on stdin until release is called.
func runGoClient(t *testing.T, bin, url, ca string, body []byte) (cmd *exec.Cmd, release func() []byte) {
	t.Helper()
	cmd = exec.Command(bin, url, ca, string(body))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, func() []byte {
		io.WriteString(stdin, "go\n")
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("go client: %v", err)
		}
		return out.Bytes()
	}
}

// TestCaptureGoClient: Go crypto/tls, entry probe on Write and RET probes on
// Read, in a binary with symbols and a stripped one (.gopclntab only); one
// started after the sensor (attached at exec) and one already running.
func TestCaptureGoClient(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stripped     bool
		beforeSensor bool
	}{
		{"symbols, started after the sensor", false, false},
		{"stripped, running before the sensor", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := buildGoClient(t, tc.stripped)
			srv := newTLSServer(t, false)
			body := []byte(`{"model":"go-model","input":"ping from go"}`)
			var cmd *exec.Cmd
			var release func() []byte
			if tc.beforeSensor {
				cmd, release = runGoClient(t, bin, srv.URL+"/go", srv.caFile, body)
			}
			pids := []int{os.Getpid()}
			if tc.beforeSensor {
				// Forked before the sensor: not a traced descendant, so the
				// filter names it.
				pids = append(pids, cmd.Process.Pid)
			}
			src, rec := startSource(t, Config{PIDs: pids})
			if !tc.beforeSensor {
				cmd, release = runGoClient(t, bin, srv.URL+"/go", srv.caFile, body)
			}
			a := waitAttached(t, src, bin)
			if a.Library != "go" || len(a.Symbols) != 2 || a.Probes < 3 {
				t.Errorf("attachment = %+v", a)
			}
			out := release()
			if !bytes.Equal(out, responseFor("POST", "/go", body)) {
				t.Fatalf("client got %q", out)
			}
			checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/go", body)
			// The client exits with its keep-alive connection open.
			expectClosed(t, rec, cmd.Process.Pid, "process_exit")
		})
	}
}

// TestCaptureNode: Node's statically linked OpenSSL, probed in the node binary.
func TestCaptureNode(t *testing.T) { bothSyscallHooks(t, testCaptureNode) }

func testCaptureNode(t *testing.T, hooks func(*Source)) {
	node := needTool(t, "node")
	src, rec := startSourceWith(t, Config{}, hooks)
	srv := newTLSServer(t, false)
	body := []byte(`{"model":"node-model","stream":false}`)
	script := `process.stdin.once('data', async () => {
  const r = await fetch(process.argv[1], {method: 'POST', body: process.argv[2], headers: {'content-type': 'application/json'}});
  process.stdout.write(await r.text());
  process.exit(0);
});`
	cmd := exec.Command(node, "-e", script, srv.URL+"/node", string(body))
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+srv.caFile)
	stdin, _ := cmd.StdinPipe()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(node)
	waitAttached(t, src, real)
	io.WriteString(stdin, "go\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v", err)
	}
	if !bytes.Equal(out.Bytes(), responseFor("POST", "/node", body)) {
		t.Fatalf("node got %q", out.Bytes())
	}
	f := checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/node", body)
	// Node encrypts into memory BIOs and writes the socket itself: the
	// connection is bound to its socket by the write that follows the
	// first SSL_write, so the flow still opens with its addresses.
	if f.info.Remote.String() != srv.Listener.Addr().String() || !f.info.Local.IsValid() {
		t.Errorf("node flow remote = %v local = %v, want remote %v", f.info.Remote, f.info.Local, srv.Listener.Addr())
	}
	if st := src.Stats(); st.TLSBinds == 0 || st.UnboundFlows != 0 {
		t.Errorf("binds = %d, unbound flows = %d; want the flow bound", st.TLSBinds, st.UnboundFlows)
	}
}
