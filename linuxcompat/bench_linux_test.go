//go:build linux && amd64

package linuxcompat

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// countingHandler discards everything but counts it.
type countingHandler struct {
	flows, chunks, bytes, gaps atomic.Int64
}

func (c *countingHandler) Open(*flow.Info) { c.flows.Add(1) }
func (c *countingHandler) Data(_ string, ch flow.Chunk) {
	c.chunks.Add(1)
	c.bytes.Add(int64(len(ch.Data)))
	c.gaps.Add(ch.Gap)
}
func (c *countingHandler) Close(string, flow.CloseInfo) {}

// runSensor starts a Source for the benchmark and returns a stop function.
func runSensor(b *testing.B, cfg Config, h flow.Handler) (*Source, func()) {
	b.Helper()
	return runSensorWith(b, cfg, h, nil)
}

// runSensorWith is runSensor with a hook that adjusts the Source before it
// runs.
func runSensorWith(b *testing.B, cfg Config, h flow.Handler, prepare func(*Source)) (*Source, func()) {
	b.Helper()
	if err := availability(); err != nil {
		b.Skipf("eBPF capture unavailable: %v", err)
	}
	if cfg.PIDs == nil {
		cfg.PIDs = []int{os.Getpid()}
	}
	src, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if prepare != nil {
		prepare(src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	<-src.Ready()
	return src, func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	}
}

// curlKeepAlive runs n GET requests over one keep-alive HTTP/1.1
// connection in a single curl process and returns the elapsed time.
func curlKeepAlive(b *testing.B, curl string, srv *tlsServer, n int) time.Duration {
	b.Helper()
	var cfg strings.Builder
	for range n {
		fmt.Fprintf(&cfg, "url = \"%s/bench\"\noutput = \"/dev/null\"\n", srv.URL)
	}
	cfgFile := filepath.Join(b.TempDir(), "curl.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	out, err := exec.Command(curl, "-sS", "--http1.1", "--cacert", srv.caFile, "--config", cfgFile).CombinedOutput()
	if err != nil {
		b.Fatalf("curl: %v %s", err, out)
	}
	return time.Since(start)
}

// BenchmarkCurlKeepAlive measures requests/s of curl over one local HTTPS
// keep-alive connection without and with the sensor attached (full capture
// into a discarding handler). Compare the two req/s metrics; the parent logs
// the ratio.
func BenchmarkCurlKeepAlive(b *testing.B) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		b.Skip("curl not installed")
	}
	srv := newTLSServer(b, false)
	const perOp = 200
	withAndWithoutSensor(b, perOp, func(b *testing.B) time.Duration { return curlKeepAlive(b, curl, srv, perOp) })
}

// withAndWithoutSensor runs b.N loops of perOp keep-alive requests, each
// timed by run, without and then with the sensor attached (full capture
// into a counting handler), reports req/s for each and logs the ratio.
func withAndWithoutSensor(b *testing.B, perOp int, run func(b *testing.B) time.Duration) {
	rates := map[string]float64{}
	measure := func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			total += run(b)
		}
		rate := float64(b.N*perOp) / total.Seconds()
		b.ReportMetric(rate, "req/s")
		rates[b.Name()] = rate
	}
	b.Run("without_sensor", measure)
	b.Run("with_sensor", func(b *testing.B) {
		h := &countingHandler{}
		_, stop := runSensor(b, Config{}, h)
		defer stop()
		measure(b)
		b.ReportMetric(float64(h.bytes.Load())/float64(b.N*perOp), "captured-B/req")
	})
	off, on := rates[b.Name()+"/without_sensor"], rates[b.Name()+"/with_sensor"]
	if off > 0 && on > 0 {
		b.Logf("with/without sensor throughput ratio: %.2f (%.0f vs %.0f req/s)", on/off, on, off)
	}
}

// BenchmarkGoClientKeepAlive: the same comparison for a Go crypto/tls client
// (entry probe on Write, RET probes on Read) over one keep-alive connection.
func BenchmarkGoClientKeepAlive(b *testing.B) {
	bin := buildGoClient(b, false)
	srv := newTLSServer(b, false)
	const perOp = 200
	body := []byte(`{"model":"bench","input":"x"}`)
	withAndWithoutSensor(b, perOp, func(b *testing.B) time.Duration {
		cmd := exec.Command(bin, srv.URL+"/bench", srv.caFile, string(body), strconv.Itoa(perOp))
		cmd.Stdin = strings.NewReader("go\n")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go client: %v %s", err, out)
		}
		return time.Since(start)
	})
}

// writeSelfSigned writes a throwaway certificate and key for memory-BIO
// TLS: a new sensor CA's own (the Python client does not verify it).
func writeSelfSigned(b *testing.B) (certFile, keyFile string) {
	b.Helper()
	c, err := ca.Create(b.TempDir(), ca.Options{CommonName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return c.CertPath(), filepath.Join(c.Dir(), ca.KeyFile)
}

// memoryBIOLoop is a Python program that pushes 16 KiB records through
// OpenSSL as fast as it can (SSL_write_ex + SSL_read_ex on memory BIOs, no
// sockets): the heaviest load the TLS probes can see from one process.
const memoryBIOLoop = `import ssl, sys, time
cert, key, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
ci, co, si, so = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
c = cctx.wrap_bio(ci, co, server_side=False); s = sctx.wrap_bio(si, so, server_side=True)
def pump():
    d = co.read()
    if d: si.write(d)
    d = so.read()
    if d: ci.write(d)
cdone = sdone = False
while not (cdone and sdone):
    if not cdone:
        try: c.do_handshake(); cdone = True
        except ssl.SSLWantReadError: pass
    if not sdone:
        try: s.do_handshake(); sdone = True
        except ssl.SSLWantReadError: pass
    pump()
payload = b"x" * size
sys.stdout.write("ready\n"); sys.stdout.flush(); sys.stdin.readline()
t = time.perf_counter()
for i in range(n):
    c.write(payload); pump()
    got = 0
    while got < size:
        got += len(s.read(size))
print(time.perf_counter() - t)
`

// BenchmarkRingBufferSaturation drives 16 KiB SSL_write/SSL_read pairs
// through the probes as fast as one Python process can, and reports the
// records/s and MB/s delivered to the handler plus every loss (ring full,
// user-space queue full), for the default 16 MiB ring and a small 256 KiB
// one that is expected to overflow.
func BenchmarkRingBufferSaturation(b *testing.B) {
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("python3 not installed")
	}
	certFile, keyFile := writeSelfSigned(b)
	for _, ring := range []int{16 << 20, 256 << 10} {
		b.Run(fmt.Sprintf("ring=%dKiB", ring>>10), func(b *testing.B) {
			h := &countingHandler{}
			src, stop := runSensor(b, Config{RingBufferBytes: ring}, h)
			defer stop()
			n := max(b.N, 1) * 200
			cmd := exec.Command(py, "-c", memoryBIOLoop, certFile, keyFile, strconv.Itoa(n), "16384")
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			rd := bufio.NewReader(stdout)
			if line, _ := rd.ReadString('\n'); line != "ready\n" {
				b.Fatalf("python: %q", line)
			}
			before := src.Stats()
			b.ResetTimer()
			fmt.Fprintln(stdin, "go")
			line, _ := rd.ReadString('\n')
			if err := cmd.Wait(); err != nil {
				b.Fatalf("python: %v", err)
			}
			b.StopTimer()
			secs, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
			if err != nil {
				b.Fatalf("python output %q", line)
			}
			// Let the decoder drain before reading counters.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				st := src.Stats()
				if st.RecordsRead-st.QueueDropRecords <= h.chunks.Load()+st.SystemRecords+10 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			after := src.Stats()
			records := after.TLSChunks - before.TLSChunks
			lost := (after.RingFullTLSRecords - before.RingFullTLSRecords) + (after.QueueDropRecords - before.QueueDropRecords)
			b.ReportMetric(float64(records)/secs, "records/s")
			b.ReportMetric(float64(after.TLSBytes-before.TLSBytes)/secs/1e6, "MB/s")
			b.ReportMetric(float64(lost), "lost-records")
			b.ReportMetric(100*float64(lost)/float64(max(records+lost, 1)), "lost-%")
			b.ReportMetric(float64(h.gaps.Load()), "gap-bytes")
		})
	}
}
