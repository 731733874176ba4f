//go:build linux && amd64

package linuxcompat

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// recorder is a flow.Handler + flow.SystemHandler that keeps everything.
type recorder struct {
	mu     sync.Mutex
	infos  map[string]*flow.Info
	chunks map[string][]flow.Chunk
	closed map[string]flow.CloseInfo
	order  []string
	sys    []flow.SystemEvent
	// hook, when set, runs at the start of every Data call, on the
	// decoder's thread, outside mu.
	hook atomic.Pointer[func(id string, c flow.Chunk)]
}

func newRecorder() *recorder {
	return &recorder{infos: map[string]*flow.Info{}, chunks: map[string][]flow.Chunk{}, closed: map[string]flow.CloseInfo{}}
}

func (r *recorder) Open(info *flow.Info) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *info
	r.infos[info.ID] = &cp
	r.order = append(r.order, info.ID)
}

func (r *recorder) Data(id string, c flow.Chunk) {
	if h := r.hook.Load(); h != nil {
		(*h)(id, c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chunks[id] = append(r.chunks[id], c)
}

func (r *recorder) Close(id string, ci flow.CloseInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed[id] = ci
}

func (r *recorder) System(ev flow.SystemEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sys = append(r.sys, ev)
}

// capturedFlow is one flow reassembled per direction.
type capturedFlow struct {
	info   flow.Info
	c2s    []byte
	s2c    []byte
	gaps   int64
	chunks int
	closed *flow.CloseInfo
}

// flowsOf returns the flows of pid in open order.
func (r *recorder) flowsOf(pid int) []capturedFlow {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []capturedFlow
	for _, id := range r.order {
		info := r.infos[id]
		if info.Process.PID != pid {
			continue
		}
		cf := capturedFlow{info: *info}
		for _, c := range r.chunks[id] {
			cf.gaps += c.Gap
			cf.chunks++
			if c.Dir == flow.ClientToServer {
				cf.c2s = append(cf.c2s, c.Data...)
			} else {
				cf.s2c = append(cf.s2c, c.Data...)
			}
		}
		if ci, ok := r.closed[id]; ok {
			cf.closed = &ci
		}
		out = append(out, cf)
	}
	return out
}

func (r *recorder) systemEvents() []flow.SystemEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]flow.SystemEvent(nil), r.sys...)
}

// startSource starts a Source that follows this test process's children and
// waits until its initial attach scan is done. It skips the test with one
// line when eBPF cannot run here.
func startSource(t testing.TB, cfg Config) (*Source, *recorder) {
	t.Helper()
	return startSourceWith(t, cfg, nil)
}

// startSourceWith is startSource with a hook that adjusts the Source
// before it runs.
func startSourceWith(t testing.TB, cfg Config, prepare func(*Source)) (*Source, *recorder) {
	t.Helper()
	if err := availability(); err != nil {
		t.Skipf("eBPF capture unavailable: %v", err)
	}
	if cfg.PIDs == nil && cfg.Executables == nil && cfg.Cgroups == nil {
		cfg.PIDs = []int{os.Getpid()}
	}
	src, err := New(cfg)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("eBPF capture unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if prepare != nil {
		prepare(src)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	select {
	case <-src.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("initial attach scan did not finish")
	}
	return src, rec
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAttached waits until the file at path (by inode) is reported attached.
func waitAttached(t testing.TB, src *Source, path string) Attachment {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	ino := inodeOf(fi)
	var got Attachment
	waitFor(t, "attachment of "+path, 30*time.Second, func() bool {
		for _, a := range src.Attachments() {
			if a.Inode == ino {
				got = a
				return true
			}
		}
		return false
	})
	if got.Status != Attached {
		t.Fatalf("%s: status %s: %s", path, got.Status, got.Reason)
	}
	return got
}

// tlsServer is a local HTTPS server whose handler echoes request bodies.
type tlsServer struct {
	*httptest.Server
	caFile string
}

// responseFor is what the server answers to a request body.
func responseFor(method, path string, body []byte) []byte {
	return fmt.Appendf(nil, "resp method=%s path=%s body-bytes=%d tail=%q", method, path, len(body), tail16(body))
}

func tail16(b []byte) []byte {
	if len(b) > 16 {
		return b[len(b)-16:]
	}
	return b
}

func newTLSServer(t testing.TB, h2 bool) *tlsServer {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(responseFor(r.Method, r.URL.Path, body))
	}))
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = tls.VersionTLS13
	return &tlsServer{Server: srv, caFile: caFile}
}

// checkHTTP1Exchange asserts that the flows of pid carry exactly one
// HTTP/1.1 request with wantBody and its response, nothing more.
func checkHTTP1Exchange(t *testing.T, rec *recorder, pid int, method, path string, wantBody []byte) capturedFlow {
	t.Helper()
	var flows []capturedFlow
	waitFor(t, fmt.Sprintf("a complete exchange from pid %d", pid), 20*time.Second, func() bool {
		flows = rec.flowsOf(pid)
		for _, f := range flows {
			if len(f.c2s) > 0 && bytes.Contains(f.s2c, responseFor(method, path, wantBody)) {
				return true
			}
		}
		return false
	})
	var withData []capturedFlow
	for _, f := range flows {
		if len(f.c2s)+len(f.s2c) > 0 {
			withData = append(withData, f)
		}
	}
	if len(withData) != 1 {
		t.Fatalf("pid %d: %d flows with data, want 1", pid, len(withData))
	}
	f := withData[0]
	if f.gaps != 0 {
		t.Errorf("flow reports %d lost bytes", f.gaps)
	}
	if !f.info.TLS || f.info.Method != flow.CaptureEBPFUprobe || f.info.Process.PID != pid {
		t.Errorf("flow info = %+v", f.info)
	}
	firstLine := method + " " + path + " HTTP/1.1\r\n"
	if !bytes.HasPrefix(f.c2s, []byte(firstLine)) {
		t.Fatalf("client->server does not start with %q: %q", firstLine, head(f.c2s))
	}
	reqReader := bufio.NewReader(bytes.NewReader(f.c2s))
	req, err := http.ReadRequest(reqReader)
	if err != nil {
		t.Fatalf("parse captured request: %v", err)
	}
	gotBody, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatalf("read captured request body: %v", err)
	}
	if rest, _ := io.ReadAll(reqReader); len(rest) != 0 {
		t.Fatalf("client->server has %d bytes after the request: %q", len(rest), head(rest))
	}
	if !bytes.Equal(gotBody, wantBody) {
		t.Fatalf("captured request body: %d bytes, want %d (equal=%v)", len(gotBody), len(wantBody), bytes.Equal(gotBody, wantBody))
	}
	if !strings.HasPrefix(string(f.s2c), "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("server->client does not start with a 200 status line: %q", head(f.s2c))
	}
	respReader := bufio.NewReader(bytes.NewReader(f.s2c))
	resp, err := http.ReadResponse(respReader, req)
	if err != nil {
		t.Fatalf("parse captured response: %v", err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	if rest, _ := io.ReadAll(respReader); len(rest) != 0 {
		t.Fatalf("server->client has %d bytes after the response: %q", len(rest), head(rest))
	}
	if want := responseFor(method, path, wantBody); !bytes.Equal(respBody, want) {
		t.Fatalf("captured response body %q, want %q", respBody, want)
	}
	return f
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func head(b []byte) []byte {
	if len(b) > 120 {
		return b[:120]
	}
	return b
}
