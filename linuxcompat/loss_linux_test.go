//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"fmt"
	"net/url"
	"os/exec"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/stats"
)

// TestTruncationIsCountedAndSignalled: with MaxCallBytes at 64 KiB, a
// 200 KiB SSL_write_ex loses bytes; every lost byte shows up as a Gap, as
// CloseInfo.Dropped, and in the counters, so captured + lost == sent.
func TestTruncationIsCountedAndSignalled(t *testing.T) {
	py := needTool(t, "python3")
	counters := &stats.Counters{}
	src, rec := startSource(t, Config{MaxCallBytes: 64 << 10, Stats: counters})
	srv := newTLSServer(t, false)
	u, _ := url.Parse(srv.URL)
	body := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	req := fmt.Sprintf("POST /big HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", u.Host, len(body), body)
	// One sendall of the whole request: a single SSL_write_ex call.
	script := `import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = ctx.wrap_socket(socket.create_connection((sys.argv[2], int(sys.argv[3]))), server_hostname=sys.argv[2])
s.sendall(sys.stdin.buffer.read())
resp = b""
while True:
    d = s.recv(65536)
    if not d: break
    resp += d
s.close()
sys.stdout.buffer.write(resp)`
	cmd := exec.Command(py, "-c", script, srv.caFile, u.Hostname(), u.Port())
	cmd.Stdin = bytes.NewReader([]byte(req))
	out, err := cmd.Output()
	if err != nil || !bytes.Contains(out, responseFor("POST", "/big", body)) {
		t.Fatalf("python: %v %q", err, head(out))
	}
	pid := cmd.Process.Pid
	var f capturedFlow
	waitFor(t, "the closed flow", 20*time.Second, func() bool {
		for _, fl := range rec.flowsOf(pid) {
			if fl.closed != nil && len(fl.c2s) > 0 {
				f = fl
				return true
			}
		}
		return false
	})
	lost := f.gaps + f.closed.Dropped
	if int64(len(f.c2s))+lost < int64(len(req)) || lost == 0 {
		t.Fatalf("captured %d + lost %d (gaps %d, dropped at close %d) != sent %d",
			len(f.c2s), lost, f.gaps, f.closed.Dropped, len(req))
	}
	// The response direction is complete; all loss is in the request.
	if !bytes.HasPrefix(f.c2s, []byte("POST /big HTTP/1.1\r\n")) || int64(len(f.c2s))+lost != int64(len(req)) {
		t.Errorf("client->server: %d captured + %d lost, want %d", len(f.c2s), lost, len(req))
	}
	st := src.Stats()
	if st.TruncatedCalls == 0 || st.TruncatedBytes < lost {
		t.Errorf("stats: truncated %d calls / %d bytes, flow lost %d", st.TruncatedCalls, st.TruncatedBytes, lost)
	}
	waitFor(t, "the stats export", 5*time.Second, func() bool {
		return counters.Get("ebpf.truncated_bytes") >= lost
	})
}
