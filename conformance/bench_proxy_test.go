package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/capture/proxy"
	"github.com/oisp/oisp-sensor/sensor/capture/socket"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// The proxy benchmarks put the same loopback HTTPS workloads side by side,
// in one run: straight to the upstream ("direct"), through the sensor's
// capture proxy with the full decode pipeline behind it ("oisp"), and
// through mitmproxy's mitmdump ("mitmproxy", skipped when it is not
// installed). Each reports latency percentiles, requests per second and,
// for SSE, the delay from the upstream's write of a chunk to the client's
// read of it; "added-*" metrics subtract the direct run of the same
// workload. No result is asserted.
//
//	go test ./conformance -run '^$' -bench BenchmarkProxy -benchtime 2s
//
// Targets from the design: added p50 < 0.5 ms on a warm connection, SSE
// chunk delay < 1 ms, new-connection overhead < 2 ms, and ≥ 10× mitmproxy's
// requests per second.

const benchHost = "localhost"

// benchUpstream is the provider: a TLS server (HTTP/1.1 and h2) for
// benchHost.
type benchUpstream struct {
	ca   *ca.CA
	port string
	big  []byte
}

func startBenchUpstream(b *testing.B) *benchUpstream {
	b.Helper()
	u := &benchUpstream{big: bytes.Repeat([]byte("0123456789abcdef"), 1<<16)} // 1 MiB
	var addr string
	u.ca, addr = startTLSUpstream(b, "bench upstream CA", u)
	_, u.port, _ = net.SplitHostPort(addr)
	return u
}

const benchJSON = `{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}`

const sseChunks = 20

func (u *benchUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	switch r.URL.Query().Get("w") {
	case "sse":
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := range sseChunks {
			// The chunk carries the time it is written.
			fmt.Fprintf(w, "data: {\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok\"}}],\"t\":%d}\n\n", time.Now().UnixNano())
			fl.Flush()
			if i < sseChunks-1 {
				time.Sleep(500 * time.Microsecond)
			}
		}
		io.WriteString(w, "data: [DONE]\n\n")
	case "big":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(u.big)
	default:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, benchJSON)
	}
}

// benchVia is one way to reach the upstream.
type benchVia struct {
	name     string
	proxyURL string         // "" for direct
	roots    *x509.CertPool // what the client trusts
}

func (v benchVia) client(keepAlive bool) *http.Client {
	tr := h1Transport(v.proxyURL, v.roots)
	tr.DisableKeepAlives = !keepAlive
	tr.MaxIdleConnsPerHost = 64
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// startOISPProxy runs the capture proxy with a session pipeline behind it
// (or h, when set).
func startOISPProxy(b *testing.B, up *benchUpstream, h flow.Handler) benchVia {
	b.Helper()
	return startOISPProxyStats(b, up, h, nil)
}

// startOISPProxyStats is startOISPProxy counting the proxy's own drops in
// st.
func startOISPProxyStats(b *testing.B, up *benchUpstream, h flow.Handler, st *stats.Counters) benchVia {
	b.Helper()
	if h == nil {
		// The full pipeline decodes every flow; its events are dropped so
		// a long run does not hold them.
		s, err := session.New(session.Options{Out: nopRecorder{}})
		if err != nil {
			b.Fatal(err)
		}
		h = s.Pipeline
	}
	cfg := proxy.Config{
		Intercept:     func(host string, _ int) bool { return host == benchHost },
		UpstreamRoots: up.ca.CertPool(),
	}
	if st != nil {
		cfg.Stats = st
	}
	p := startTestProxy(b, cfg, h)
	return benchVia{name: "oisp", proxyURL: p.url, roots: p.sensorCA.CertPool()}
}

// nopRecorder drops events.
type nopRecorder struct{}

func (nopRecorder) Record(*oisp.Event) {}

// startMitmdump runs mitmdump with its own CA in a fresh confdir, trusting
// the upstream's CA, streaming bodies (so SSE is not buffered).
func startMitmdump(b *testing.B, up *benchUpstream) (benchVia, string) {
	b.Helper()
	bin, err := exec.LookPath("mitmdump")
	if err != nil {
		return benchVia{}, "mitmdump is not installed (apt-get install mitmproxy)"
	}
	conf := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	upCA := filepath.Join(conf, "upstream-ca.pem")
	os.WriteFile(upCA, up.ca.CertPEM(), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-q", "--listen-host", "127.0.0.1", "--listen-port", strconv.Itoa(port),
		"--set", "confdir="+conf, "--set", "ssl_verify_upstream_trusted_ca="+upCA,
		"--set", "stream_large_bodies=1", "--set", "flow_detail=0", "--set", "termlog_verbosity=error")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return benchVia{}, "mitmdump: " + err.Error()
	}
	b.Cleanup(func() { cancel(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("mitmdump did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pem, err := os.ReadFile(filepath.Join(conf, "mitmproxy-ca-cert.pem"))
	if err != nil {
		b.Fatalf("mitmdump CA: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return benchVia{name: "mitmproxy", proxyURL: fmt.Sprintf("http://127.0.0.1:%d", port), roots: roots}, ""
}

// latencies collects per-operation durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	return l.d[min(len(l.d)-1, int(float64(len(l.d))*p))]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// metrics are the latency percentiles of n requests made in el, and their
// rate.
func (l *latencies) metrics(n int, el time.Duration) map[string]float64 {
	return map[string]float64{
		"p50-µs": us(l.pct(.5)), "p90-µs": us(l.pct(.9)), "p99-µs": us(l.pct(.99)), "req/s": float64(n) / el.Seconds()}
}

// timeGets makes b.N GETs of base with c, one after another, from a reset
// timer, and returns their metrics.
func timeGets(b *testing.B, c *http.Client, base string) map[string]float64 {
	var lat latencies
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		if err := benchGet(c, base, ""); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	return lat.metrics(b.N, time.Since(start))
}

// directResults keeps the direct run's numbers per workload, for the
// added-* metrics of the proxied runs in the same benchmark run.
var directResults sync.Map // workload → map[string]float64

func report(b *testing.B, via, workload string, m map[string]float64) {
	if via == "direct" {
		directResults.Store(workload, m)
	} else if d, ok := directResults.Load(workload); ok {
		base := d.(map[string]float64)
		for _, k := range []string{"p50-µs", "p90-µs", "p99-µs", "chunk-p50-µs", "chunk-p99-µs"} {
			if v, ok := m[k]; ok {
				m["added-"+k] = v - base[k]
			}
		}
	}
	for k, v := range m {
		b.ReportMetric(v, k)
	}
}

func benchGet(c *http.Client, base, query string) error {
	resp, err := c.Get(base + query)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// BenchmarkProxy compares direct, the capture proxy and mitmproxy on
// loopback HTTPS workloads.
func BenchmarkProxy(b *testing.B) {
	up := startBenchUpstream(b)
	vias := []benchVia{{name: "direct", roots: up.ca.CertPool()}, startOISPProxy(b, up, nil)}
	mitm, why := startMitmdump(b, up)
	base := "https://" + benchHost + ":" + up.port + "/v1/chat/completions"
	for _, v := range append(vias, mitm) {
		b.Run("via="+v.nameOr("mitmproxy"), func(b *testing.B) {
			if v.name == "" {
				b.Skip(why)
			}
			b.Run("keepalive-json", func(b *testing.B) {
				c := v.client(true)
				defer c.CloseIdleConnections()
				if err := benchGet(c, base, ""); err != nil { // warm: connection and leaf made
					b.Fatal(err)
				}
				report(b, v.name, "keepalive-json", timeGets(b, c, base))
			})
			b.Run("keepalive-json-8conns", func(b *testing.B) {
				c := v.client(true)
				defer c.CloseIdleConnections()
				var lat latencies
				var failed atomic.Value
				b.SetParallelism(4) // 2 cores × 4 = 8 client goroutines
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						t0 := time.Now()
						if err := benchGet(c, base, ""); err != nil {
							failed.Store(err)
							return
						}
						lat.add(time.Since(t0))
					}
				})
				el := time.Since(start)
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				report(b, v.name, "keepalive-json-8conns", lat.metrics(b.N, el))
			})
			b.Run("newconn-json", func(b *testing.B) {
				c := v.client(false)
				if err := benchGet(c, base, ""); err != nil { // the proxy's leaf is cached from here on
					b.Fatal(err)
				}
				report(b, v.name, "newconn-json", timeGets(b, c, base))
			})
			b.Run("keepalive-sse", func(b *testing.B) {
				c := v.client(true)
				defer c.CloseIdleConnections()
				if err := benchGet(c, base, "?w=sse"); err != nil {
					b.Fatal(err)
				}
				var lat, chunk latencies
				b.ResetTimer()
				for range b.N {
					t0 := time.Now()
					if err := readSSE(c, base+"?w=sse", &chunk); err != nil {
						b.Fatal(err)
					}
					lat.add(time.Since(t0))
				}
				report(b, v.name, "keepalive-sse", map[string]float64{
					"p50-µs": us(lat.pct(.5)), "p90-µs": us(lat.pct(.9)), "p99-µs": us(lat.pct(.99)),
					"chunk-p50-µs": us(chunk.pct(.5)), "chunk-p99-µs": us(chunk.pct(.99))})
			})
		})
	}
}

func (v benchVia) nameOr(s string) string {
	if v.name == "" {
		return s
	}
	return v.name
}

// readSSE reads a stream line by line, timing each chunk from the
// upstream's write (its "t") to this read.
func readSSE(c *http.Client, u string, chunk *latencies) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	n := 0
	for {
		line, err := br.ReadString('\n')
		now := time.Now().UnixNano()
		if i := strings.LastIndex(line, `"t":`); i >= 0 {
			t, perr := strconv.ParseInt(strings.TrimRight(line[i+4:], "}\n"), 10, 64)
			if perr != nil {
				return perr
			}
			chunk.add(time.Duration(now - t))
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n != sseChunks {
		return fmt.Errorf("%d chunks, want %d", n, sseChunks)
	}
	return nil
}

// countingHandler counts DATA deliveries (one per socket DATA frame when
// behind socket.Server) and bytes.
type countingHandler struct {
	next   flow.Handler
	chunks atomic.Int64
	bytes  atomic.Int64
}

func (h *countingHandler) Open(i *flow.Info) { h.next.Open(i) }
func (h *countingHandler) Data(id string, c flow.Chunk) {
	h.chunks.Add(1)
	h.bytes.Add(int64(len(c.Data)))
	h.next.Data(id, c)
}
func (h *countingHandler) Close(id string, ci flow.CloseInfo) { h.next.Close(id, ci) }

// BenchmarkProxyIngest downloads 1 MiB bodies through the capture proxy
// with its flows going (a) nowhere, (b) into the in-process pipeline, and
// (c) over the extension socket to a socket.Server and the pipeline
// (`proxy --emit` → `record`). If (c) keeps up with (a), the socket is not
// the proxy's bottleneck; dropped-bytes says whether it kept up.
func BenchmarkProxyIngest(b *testing.B) {
	up := startBenchUpstream(b)
	base := "https://" + benchHost + ":" + up.port + "/v1/files?w=big"
	run := func(b *testing.B, v benchVia, warm func(), after func(start time.Time)) {
		c := v.client(true)
		defer c.CloseIdleConnections()
		if err := benchGet(c, base, ""); err != nil {
			b.Fatal(err)
		}
		warm()
		b.SetBytes(int64(len(up.big)))
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := benchGet(c, base, ""); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		after(start)
	}
	// proxyDrops reports what the proxy's own queue toward its handler
	// could not hold.
	proxyDrops := func(b *testing.B, st *stats.Counters) func(time.Time) {
		return func(time.Time) { b.ReportMetric(float64(st.Get("proxy.queue_overflow_bytes")), "proxy-dropped-bytes") }
	}
	b.Run("to=discard", func(b *testing.B) {
		st := &stats.Counters{}
		run(b, startOISPProxyStats(b, up, discardFlows{}, st), func() {}, proxyDrops(b, st))
	})
	b.Run("to=pipeline", func(b *testing.B) {
		st := &stats.Counters{}
		run(b, startOISPProxyStats(b, up, nil, st), func() {}, proxyDrops(b, st))
	})
	for _, decode := range []bool{false, true} {
		name := "to=socket"
		if decode {
			name = "to=socket+pipeline"
		}
		b.Run(name, func(b *testing.B) { benchSocketIngest(b, up, run, decode) })
	}
}

// benchSocketIngest is the to=socket variants of BenchmarkProxyIngest: the
// server hands frames to a counter and then to nothing (the transport
// alone) or to the pipeline (`record`).
func benchSocketIngest(b *testing.B, up *benchUpstream, run func(*testing.B, benchVia, func(), func(time.Time)), decode bool) {
	dir, err := os.MkdirTemp("", "oisp-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	var next flow.Handler = discardFlows{}
	if decode {
		s, err := session.New(session.Options{Out: nopRecorder{}})
		if err != nil {
			b.Fatal(err)
		}
		next = s.Pipeline
	}
	counter := &countingHandler{next: next}
	srv, err := socket.Listen(socket.ServerConfig{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	sctx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan struct{})
	go func() { srv.Run(sctx, counter); close(srvDone) }()
	client := socket.NewClient(socket.ClientConfig{Path: path, Logger: slog.New(slog.DiscardHandler)})
	cctx, stopClient := context.WithCancel(context.Background())
	clientDone := make(chan struct{})
	go func() { client.Run(cctx); close(clientDone) }()
	defer func() { stopClient(); <-clientDone; stopSrv(); <-srvDone }()
	for !client.Stats().Connected {
		time.Sleep(time.Millisecond)
	}
	pst := &stats.Counters{}
	v := startOISPProxyStats(b, up, client, pst)
	// caughtUp waits until the server has taken everything the client
	// sent.
	caughtUp := func() socket.ClientStats {
		client.Flush(context.Background())
		st := client.Stats()
		deadline := time.Now().Add(10 * time.Second)
		for counter.bytes.Load() < st.SentBytes && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return st
	}
	var warmBytes, warmChunks int64
	run(b, v, func() {
		caughtUp()
		warmBytes, warmChunks = counter.bytes.Load(), counter.chunks.Load()
	}, func(start time.Time) {
		st := caughtUp()
		total := time.Since(start)
		b.ReportMetric(float64(counter.chunks.Load()-warmChunks)/total.Seconds(), "frames/s")
		b.ReportMetric(float64(counter.bytes.Load()-warmBytes)/total.Seconds()/1e6, "socket-MB/s")
		b.ReportMetric(float64(st.DroppedBytes), "socket-dropped-bytes")
		b.ReportMetric(float64(pst.Get("proxy.queue_overflow_bytes")), "proxy-dropped-bytes")
	})
}
