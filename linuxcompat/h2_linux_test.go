//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Stream is one HTTP/2 stream decoded from captured bytes.
type h2Stream struct {
	headers map[string]string
	data    []byte
}

// decodeH2 parses a captured HTTP/2 byte stream (client side after the
// preface, or server side) into streams.
func decodeH2(t *testing.T, b []byte) map[uint32]*h2Stream {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	dec := hpack.NewDecoder(4096, nil)
	streams := map[uint32]*h2Stream{}
	get := func(id uint32) *h2Stream {
		if streams[id] == nil {
			streams[id] = &h2Stream{headers: map[string]string{}}
		}
		return streams[id]
	}
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return streams
		}
		if err != nil {
			t.Fatalf("captured HTTP/2 does not parse: %v", err)
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatalf("hpack: %v", err)
			}
			for _, hf := range fields {
				get(f.StreamID).headers[hf.Name] = hf.Value
			}
		case *http2.DataFrame:
			s := get(f.StreamID)
			s.data = append(s.data, f.Data()...)
		}
	}
}

// TestCaptureCurlHTTP2: curl's default h2 over the same probes; the captured
// bytes are a valid HTTP/2 connection whose frames carry the exact request
// and response bodies.
func TestCaptureCurlHTTP2(t *testing.T) {
	curl := needTool(t, "curl")
	_, rec := startSource(t, Config{})
	srv := newTLSServer(t, true)
	body := bytes.Repeat([]byte(`{"messages":[{"role":"user","content":"h2"}]}`), 500) // ~23 KB: several DATA frames
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	os.WriteFile(bodyFile, body, 0o644)
	cmd := exec.Command(curl, "-sS", "--http2", "--cacert", srv.caFile, "--data-binary", "@"+bodyFile, srv.URL+"/v1/messages")
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, responseFor("POST", "/v1/messages", body)) {
		t.Fatalf("curl: %v %q", err, out)
	}
	var f capturedFlow
	waitFor(t, "the h2 response", 20*time.Second, func() bool {
		for _, fl := range rec.flowsOf(cmd.Process.Pid) {
			if bytes.Contains(fl.s2c, responseFor("POST", "/v1/messages", body)) {
				f = fl
				return true
			}
		}
		return false
	})
	if f.info.ALPN != "h2" {
		t.Errorf("ALPN %q, want h2", f.info.ALPN)
	}
	if !bytes.HasPrefix(f.c2s, []byte(http2.ClientPreface)) {
		t.Fatalf("no HTTP/2 preface: %q", head(f.c2s))
	}
	req := decodeH2(t, f.c2s[len(http2.ClientPreface):])
	resp := decodeH2(t, f.s2c)
	s := req[1]
	if s == nil || s.headers[":method"] != "POST" || s.headers[":path"] != "/v1/messages" || !bytes.Equal(s.data, body) {
		t.Fatalf("stream 1 request: %+v (body %d bytes, want %d)", s, len(s.data), len(body))
	}
	r := resp[1]
	if r == nil || r.headers[":status"] != "200" || !bytes.Equal(r.data, responseFor("POST", "/v1/messages", body)) {
		t.Fatalf("stream 1 response: %+v", r)
	}
	if f.gaps != 0 {
		t.Errorf("%d bytes lost", f.gaps)
	}
}

// TestAttachReportUnsupported: a TLS-named library without OpenSSL or GnuTLS
// symbols, loaded with dlopen after the sensor started, is reported as
// unsupported (not failed), found through the mmap of the new inode.
func TestAttachReportUnsupported(t *testing.T) {
	py := needTool(t, "python3")
	var libz string
	for _, p := range []string{"/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib64/libz.so.1"} {
		if _, err := os.Stat(p); err == nil {
			libz = p
			break
		}
	}
	if libz == "" {
		t.Skip("libz.so.1 not found")
	}
	src, _ := startSource(t, Config{})
	raw, err := os.ReadFile(libz)
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(t.TempDir(), "libssl.so.77")
	os.WriteFile(fake, raw, 0o755)
	cmd := exec.Command(py, "-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1]); sys.stdin.readline()", fake)
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	fi, _ := os.Stat(fake)
	var got Attachment
	waitFor(t, "a report for "+fake, 20*time.Second, func() bool {
		for _, a := range src.Attachments() {
			if a.Inode == inodeOf(fi) {
				got = a
				return true
			}
		}
		return false
	})
	if got.Status != Unsupported || got.Reason == "" || got.Path != fake || got.FirstPID != cmd.Process.Pid {
		t.Fatalf("report = %+v", got)
	}
	for _, a := range src.Attachments() {
		if a.Status == Failed {
			t.Errorf("attach failure: %+v", a)
		}
	}
}
