package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/linuxcompat"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/pipeline"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
)

// Benchmarks of the whole sensor under eBPF capture: the shared Source,
// the session pipeline and a JSONL file of events, against client processes
// talking to a TLS server in a process of its own (which the capture never
// traces). They report numbers and assert nothing about time:
//
//	go test -run '^$' -bench EBPF -benchtime 2000x ./conformance
//
// BenchmarkEBPFRequests: requests/s of a keep-alive loop of 1 KiB chat
// requests without the sensor, with eBPF capture only (a counting
// handler), and with the whole sensor (capture, pipeline and the events
// written to a file, flushed as record flushes its output), per client;
// the parent logs the ratios and the added cost per request.
// BenchmarkEBPFRingBuffer: records/s and drops with OpenSSL pushing 16 KiB
// writes through memory BIOs as fast as it can, and at 50 MB/s.
// BenchmarkEBPFSensorCPU: the sensor's CPU at 100 chat requests/s.

// benchChat is the recorded chat completion the benchmark server answers.
const benchChatFixture = "openai/lcg-testllmchain"

// benchServer is a TLS server (HTTP/1.1 and h2) answering every request
// with a recorded chat completion. It stands in for the provider, which in
// real use runs on another machine, so it runs as a process of its own,
// never traced, from a copy of the Go client binary (a file the capture
// never probes). In the test process it would share the sensor's garbage
// collector and scheduler, a cost no real provider pays.
type benchServer struct {
	addr   string
	caFile string
	bin    string // the server's executable, never probed
	ctl    io.WriteCloser
	answer *bufio.Reader
}

func startBenchServer(b *testing.B, goPrep ebpfPrepared) *benchServer {
	b.Helper()
	rec, err := cassette.ReadFile(filepath.Join(fixturesRoot, benchChatFixture, "cassette.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bs := &benchServer{bin: filepath.Join(dir, "benchserver"), caFile: filepath.Join(dir, "cert.pem")}
	exe, err := os.ReadFile(goPrep.attach[0])
	if err != nil {
		b.Fatal(err)
	}
	response := filepath.Join(dir, "response.json")
	if err := os.WriteFile(bs.bin, exe, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(response, rec.Interactions[0].Response.Body, 0o644); err != nil {
		b.Fatal(err)
	}
	// The capture traces this process's descendants, those forked while it
	// runs and those running when it starts: the server is started while
	// no capture runs, by setsid -f, which forks it off and exits, so it
	// is no descendant of this process by the time any capture starts. It
	// exits when its stdin closes.
	ebpf.stopIfIdle()
	srv := exec.Command("setsid", "-f", bs.bin, "-serve", "-response-file", response, "-cert-out", bs.caFile, "-host", "api.openai.com")
	srv.Stderr = os.Stderr
	inR, inW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	srv.Stdin, srv.Stdout = inR, outW
	err = srv.Run() // setsid returns once the server is forked off
	inR.Close()
	outW.Close()
	bs.ctl = inW
	b.Cleanup(func() { inW.Close(); outR.Close() })
	if err != nil {
		b.Fatalf("setsid -f %s: %v", bs.bin, err)
	}
	bs.answer = bufio.NewReader(outR)
	line, err := bs.answer.ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	bs.addr = strings.TrimSpace(line)
	return bs
}

// served asks the server how many requests it has answered and how much
// CPU time it has used.
func (s *benchServer) served(b *testing.B) (int64, time.Duration) {
	b.Helper()
	if _, err := io.WriteString(s.ctl, "served\n"); err != nil {
		b.Fatalf("bench server: %v", err)
	}
	line, err := s.answer.ReadString('\n')
	if err != nil {
		b.Fatalf("bench server: %v", err)
	}
	var n, cpuMicros int64
	if _, err := fmt.Sscan(line, &n, &cpuMicros); err != nil {
		b.Fatalf("bench server: %q: %v", line, err)
	}
	return n, time.Duration(cpuMicros) * time.Microsecond
}

// childrenCPU is the CPU time of this process's waited-for children.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkUnprobed fails the benchmark if the capture placed probes in the
// server's executable (it would then measure the server's capture too).
func (s *benchServer) checkUnprobed(b *testing.B) {
	b.Helper()
	ino, err := inodeOf(s.bin)
	if err != nil {
		b.Fatal(err)
	}
	if a, ok := attachmentFor(ebpf.source(), ino); ok {
		b.Fatalf("the benchmark server's executable was probed (%s): it must stay untraced", a.Status)
	}
}

// chatBody returns a chat completions request body of exactly n bytes.
func chatBody(n int) []byte {
	head := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"`
	tail := `"}]}`
	return []byte(head + strings.Repeat("x", max(0, n-len(head)-len(tail))) + tail)
}

// eventCounter is a pipeline.Recorder that counts events by type and,
// when out is set, writes them on as record does.
type eventCounter struct {
	requests, responses, other atomic.Int64
	out                        pipeline.Recorder
}

// writingTo makes the counter also write every event as JSON lines to a
// file in dir, flushed as record flushes its output.
func (c *eventCounter) writingTo(b *testing.B, dir string) *sink.JSONL {
	b.Helper()
	f, err := os.Create(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	j := sink.NewJSONL(f, sink.TailLatency)
	c.out = j
	return j
}

func (c *eventCounter) Record(ev *oisp.Event) {
	if c.out != nil {
		c.out.Record(ev)
	}
	switch ev.EventType {
	case "ai.request":
		c.requests.Add(1)
	case "ai.response":
		c.responses.Add(1)
	default:
		c.other.Add(1)
	}
}

var _ pipeline.Recorder = (*eventCounter)(nil)

// sensorMode is how a benchmark run is observed.
type sensorMode int

const (
	sensorOff         sensorMode = iota // no probes attached anywhere
	sensorCaptureOnly                   // eBPF capture into a counting handler
	sensorFull                          // eBPF capture into the session pipeline
)

var sensorModes = []struct {
	mode sensorMode
	name string
}{{sensorOff, "without_sensor"}, {sensorCaptureOnly, "capture_only"}, {sensorFull, "with_sensor"}}

// underSensor runs argv as a held child; with the sensor, the shared eBPF
// capture delivers it into a session pipeline (events counted in ec).
// It returns the client's stdout, the wall time from release to exit and
// this process's CPU time from release until the pipeline has flushed (so
// not the sensor's start-up).
func underSensor(b *testing.B, mode sensorMode, ec *eventCounter, prep ebpfPrepared, argv []string) ([]byte, time.Duration, time.Duration) {
	b.Helper()
	var started StartedFunc
	var claim *ebpfClaim
	var s *session.Session
	if mode != sensorOff {
		// The sensor binary runs with these collector settings.
		defer session.TuneRuntime()()
		if err := ebpf.acquire(); err != nil {
			if ebpfRequired() {
				b.Fatal(err)
			}
			b.Skip(err)
		}
		defer ebpf.release()
		if err := ebpf.ensureAttached(prep.attach, prep.warmup); err != nil {
			b.Fatal(err)
		}
		var h flow.Handler = &countingFlows{}
		if mode == sensorFull {
			var err error
			if s, err = session.New(session.Options{Out: ec}); err != nil {
				b.Fatal(err)
			}
			h = s.Pipeline
		}
		claim = ebpf.claim(h, nil)
		defer claim.release()
		started = claim.add
	} else {
		ebpf.stopIfIdle() // no probes anywhere
		started = func(int) error { return nil }
	}
	var t0 time.Time
	var cpu0 time.Duration
	out, err := runHeld(context.Background(), argv, nil, "", nil, func(pid int) error {
		err := started(pid)
		t0, cpu0 = time.Now(), cpuTime(b)
		return err
	})
	elapsed := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	if claim != nil {
		if err := claim.wait(60 * time.Second); err != nil {
			b.Fatal(err)
		}
		if s != nil {
			s.Pipeline.Flush(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
		}
	}
	return out, elapsed, cpuTime(b) - cpu0
}

func benchGoClient(b *testing.B) ebpfPrepared {
	b.Helper()
	prep, err := prepareGo(false, false)()
	if err != nil {
		b.Fatal(err)
	}
	return prep
}

// BenchmarkEBPFRequests: one op is one 1 KiB chat request over a keep-alive
// connection (curl with --next transfers, or the Go client), without and
// with the sensor attached.
func BenchmarkEBPFRequests(b *testing.B) {
	if goMissing() != "" {
		b.Skip("go is not available (the benchmark server is the Go client binary's -serve mode)")
	}
	goPrep := benchGoClient(b)
	srv := startBenchServer(b, goPrep)
	dir := b.TempDir()
	body := filepath.Join(dir, "body.json")
	if err := os.WriteFile(body, chatBody(1024), 0o644); err != nil {
		b.Fatal(err)
	}
	const url = "https://api.openai.com/v1/chat/completions"
	_, port, _ := net.SplitHostPort(srv.addr)
	type client struct {
		name string
		prep ebpfPrepared
		argv func(n int) []string
	}
	var clients []client
	if CurlMissing() == "" {
		curlPrep, err := prepareCurl(false)()
		if err != nil {
			b.Fatal(err)
		}
		for _, h2 := range []bool{false, true} {
			name, proto := "curl-h1", "--http1.1"
			if h2 {
				name, proto = "curl-h2", "--http2"
			}
			clients = append(clients, client{name, curlPrep, func(n int) []string {
				var cfg bytes.Buffer
				for i := range n {
					if i > 0 {
						cfg.WriteString("next\n")
					}
					fmt.Fprintf(&cfg, "%s\nsilent\nshow-error\nfail\nurl = %q\ncacert = %q\nconnect-to = \"::127.0.0.1:%s\"\ndata-binary = \"@%s\"\nheader = \"Content-Type: application/json\"\noutput = \"/dev/null\"\n",
						proto, url, srv.caFile, port, body)
				}
				cfgPath := filepath.Join(dir, "curl-"+name+".config")
				if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
					b.Fatal(err)
				}
				return []string{"curl", "--config", cfgPath}
			}})
		}
	}
	{
		bin := goPrep.attach[0]
		for _, h2 := range []bool{false, true} {
			name := "go-h1"
			if h2 {
				name = "go-h2"
			}
			clients = append(clients, client{name, goPrep, func(n int) []string {
				argv := []string{bin, "-bench", strconv.Itoa(n), "-addr", srv.addr, "-url", url, "-ca", srv.caFile, "-body-file", body}
				if h2 {
					argv = append(argv, "-h2")
				}
				return argv
			}})
		}
	}
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			argv := c.argv(b.N)
			segs := map[sensorMode][]requestSegment{}
			ratios := map[sensorMode][]float64{}
			for round := range *ebpfRounds {
				var off float64
				for _, m := range sensorModes {
					seg := runRequestSegment(b, srv, m.mode, c.prep, argv)
					segs[m.mode] = append(segs[m.mode], seg)
					if m.mode == sensorOff {
						off = seg.rate
						continue
					}
					ratios[m.mode] = append(ratios[m.mode], seg.rate/off)
					b.Logf("%s round %d %s: %.2f× the requests/s without the sensor (%.0f vs %.0f)",
						c.name, round+1, m.name, seg.rate/off, seg.rate, off)
				}
			}
			reportRequestSegments(b, segs, ratios)
		})
	}
}

// ebpfRounds is how many times BenchmarkEBPFRequests runs each client
// without the sensor, with capture only and with the whole sensor, one
// after the other. The ratios it reports are medians over rounds of runs
// next to each other in time, so a machine that speeds up or slows down
// over a minute (other load, a noisy neighbour) moves both sides of each
// ratio alike.
var ebpfRounds = flag.Int("ebpf.rounds", 5, "BenchmarkEBPFRequests: rounds of (without sensor, capture only, whole sensor) per client")

// requestSegment is one run of b.N requests in one mode.
type requestSegment struct {
	rate                   float64 // requests per second
	client, server, sensor float64 // CPU µs per request
	aiRequests             float64 // ai.request events per request (whole sensor)
}

// runRequestSegment runs argv (b.N requests) once in mode and measures it.
func runRequestSegment(b *testing.B, srv *benchServer, mode sensorMode, prep ebpfPrepared, argv []string) requestSegment {
	b.Helper()
	ec := &eventCounter{}
	if mode == sensorFull {
		// The whole sensor writes its events, as record does.
		ec.writingTo(b, b.TempDir())
	}
	before, serverCPU := srv.served(b)
	clientCPU := childrenCPU()
	_, elapsed, sensorCPU := underSensor(b, mode, ec, prep, argv)
	clientCPU = childrenCPU() - clientCPU
	after, serverAfter := srv.served(b)
	if got := after - before; got != int64(b.N) {
		b.Fatalf("server answered %d requests, want %d", got, b.N)
	}
	if mode != sensorOff {
		srv.checkUnprobed(b)
	}
	perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	return requestSegment{
		rate:       float64(b.N) / elapsed.Seconds(),
		client:     perOp(clientCPU),
		server:     perOp(serverAfter - serverCPU),
		sensor:     perOp(sensorCPU),
		aiRequests: float64(ec.requests.Load()) / float64(b.N),
	}
}

// reportRequestSegments reports medians over the rounds: requests/s and
// CPU per request of the client, the server and the sensor in each mode
// (CPU is less disturbed by other load than requests/s), and the ratios
// to the unobserved loop.
func reportRequestSegments(b *testing.B, segs map[sensorMode][]requestSegment, ratios map[sensorMode][]float64) {
	b.Helper()
	of := func(m sensorMode, f func(requestSegment) float64) float64 {
		var v []float64
		for _, s := range segs[m] {
			v = append(v, f(s))
		}
		return median(v)
	}
	short := map[sensorMode]string{sensorOff: "off", sensorCaptureOnly: "capture", sensorFull: "whole"}
	for _, m := range sensorModes {
		n := short[m.mode]
		b.ReportMetric(of(m.mode, func(s requestSegment) float64 { return s.rate }), n+"-req/s")
		b.ReportMetric(of(m.mode, func(s requestSegment) float64 { return s.client }), n+"-client-µs/op")
		if m.mode != sensorOff {
			b.ReportMetric(of(m.mode, func(s requestSegment) float64 { return s.sensor }), n+"-sensor-µs/op")
			b.ReportMetric(median(ratios[m.mode]), n+"/off")
		}
	}
	var server []float64
	for _, m := range sensorModes {
		for _, s := range segs[m.mode] {
			server = append(server, s.server)
		}
	}
	b.ReportMetric(median(server), "server-µs/op")
	b.ReportMetric(of(sensorFull, func(s requestSegment) float64 { return s.aiRequests }), "ai.request/op")
	b.ReportMetric(1e9/of(sensorFull, func(s requestSegment) float64 { return s.rate }), "ns/op")
}

// benchCertFiles writes a self-signed CA-less server certificate and key
// for the memory-BIO benchmark.
func benchCertFiles(b *testing.B) (caFile, certFile, keyFile string) {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench.oisp.test"},
		DNSNames: []string{"bench.oisp.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600)
	return certFile, certFile, keyFile
}

// countingFlows counts what reaches the handler.
type countingFlows struct{ chunks, bytes, gaps atomic.Int64 }

func (c *countingFlows) Open(*flow.Info) {}
func (c *countingFlows) Data(_ string, ch flow.Chunk) {
	c.chunks.Add(1)
	c.bytes.Add(int64(len(ch.Data)))
	c.gaps.Add(ch.Gap)
}
func (c *countingFlows) Close(string, flow.CloseInfo) {}

// BenchmarkEBPFRingBuffer pushes 16 KiB SSL_write_ex/SSL_read_ex pairs
// through memory BIOs (no sockets) in one Python process: unthrottled
// (saturation) and at 25 MB/s of application data, which is 50 MB/s of
// captured plaintext (both ends are captured). One op is one run.
func BenchmarkEBPFRingBuffer(b *testing.B) {
	if pythonMissing() != "" {
		b.Skip("python3 is not installed")
	}
	prep, err := preparePython()
	if err != nil {
		b.Fatal(err)
	}
	py := prep.driver(nil).(ProgramClient).Argv[0]
	caFile, certFile, keyFile := benchCertFiles(b)
	script, _ := filepath.Abs("testdata/ebpf/membio.py")
	const chunk = 16 << 10
	for _, c := range []struct {
		name  string
		total int
		rate  int
	}{
		{"saturation", 256 << 20, 0},
		{"50MBps_captured", 100 << 20, 25 << 20},
	} {
		b.Run(c.name, func(b *testing.B) {
			if err := ebpf.acquire(); err != nil {
				if ebpfRequired() {
					b.Fatal(err)
				}
				b.Skip(err)
			}
			defer ebpf.release()
			src := ebpf.source()
			var records, bytesCaptured, ringFull, queueDrop, gaps int64
			var secs float64
			for b.Loop() {
				h := &countingFlows{}
				claim := ebpf.claim(h, nil)
				st0 := src.Stats()
				out, err := runHeld(context.Background(), []string{py, script, caFile, certFile, keyFile,
					strconv.Itoa(c.total), strconv.Itoa(chunk), strconv.Itoa(c.rate)}, nil, "", nil, claim.add)
				if err != nil {
					b.Fatal(err)
				}
				if err := claim.wait(60 * time.Second); err != nil {
					b.Fatal(err)
				}
				claim.release()
				st1 := src.Stats()
				f := strings.Fields(string(out))
				s, _ := strconv.ParseFloat(f[0], 64)
				secs += s
				records += st1.TLSChunks - st0.TLSChunks
				bytesCaptured += h.bytes.Load()
				ringFull += st1.RingFullTLSRecords - st0.RingFullTLSRecords
				queueDrop += st1.QueueDropRecords - st0.QueueDropRecords
				gaps += h.gaps.Load()
			}
			b.ReportMetric(float64(records)/secs, "records/s")
			b.ReportMetric(float64(bytesCaptured)/secs/1e6, "MB/s_captured")
			b.ReportMetric(float64(ringFull), "ring_full_records")
			b.ReportMetric(float64(queueDrop), "queue_drop_records")
			b.ReportMetric(float64(gaps)/float64(1<<20), "lost_MiB")
		})
	}
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		b.Skip("no /proc/self/stat")
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime and stime are fields 14 and 15 (clock ticks, 100 per second).
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// BenchmarkEBPFSensorCPU runs the Go client at 100 chat requests/s (the
// recorded request and response of benchChatFixture) for 5 s and reports
// this process's CPU time over the run as a share of one core. The server
// is a process of its own (see benchServer): this process holds only the
// sensor (an eBPF Source of its own, into a counting handler or the
// session pipeline) and the idle harness.
func BenchmarkEBPFSensorCPU(b *testing.B) {
	if goMissing() != "" {
		b.Skip("go is not available")
	}
	rec, err := cassette.ReadFile(filepath.Join(fixturesRoot, benchChatFixture, "cassette.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	in := rec.Interactions[0]
	prep := benchGoClient(b)
	bin := prep.attach[0]
	body := filepath.Join(b.TempDir(), "body.json")
	if err := os.WriteFile(body, in.Request.Body, 0o644); err != nil {
		b.Fatal(err)
	}
	srv := startBenchServer(b, prep)
	addr, cert := srv.addr, srv.caFile

	const n, rate = 500, 100
	argv := []string{bin, "-bench", strconv.Itoa(n), "-rate", strconv.Itoa(rate), "-addr", addr, "-url", in.Request.URL, "-ca", cert, "-body-file", body}
	share := map[sensorMode]float64{}
	for _, m := range sensorModes {
		b.Run(m.name, func(b *testing.B) {
			var cpu, wall time.Duration
			ec := &eventCounter{}
			if m.mode == sensorFull {
				ec.writingTo(b, b.TempDir())
			}
			for b.Loop() {
				used, elapsed := cpuUnderOwnSource(b, m.mode, ec, bin, argv)
				cpu += used
				wall += elapsed
			}
			share[m.mode] = cpu.Seconds() / wall.Seconds()
			b.ReportMetric(100*share[m.mode], "%core_sensor_process")
			if m.mode == sensorFull {
				b.ReportMetric(float64(ec.requests.Load()+ec.responses.Load())/float64(b.N), "ai_events/run")
			}
		})
	}
	for _, m := range sensorModes[1:] {
		if on, ok := share[m.mode]; ok {
			b.Logf("sensor CPU at %d chat requests/s, %s: %.2f%% of one core (%.2f%% for this process without a sensor)",
				rate, m.name, 100*on, 100*share[sensorOff])
		}
	}
}

// openFlows wraps a handler and counts its open flows.
type openFlows struct {
	flow.Handler
	open atomic.Int64
}

func (o *openFlows) Open(info *flow.Info) { o.open.Add(1); o.Handler.Open(info) }
func (o *openFlows) Close(id string, ci flow.CloseInfo) {
	o.Handler.Close(id, ci)
	o.open.Add(-1)
}

// cpuUnderOwnSource runs the client once under a Source of its own (none
// for sensorOff) and returns this process's CPU time and the wall time
// from the client's start until its flows were delivered; the Source's
// start and stop are outside both.
func cpuUnderOwnSource(b *testing.B, mode sensorMode, ec *eventCounter, bin string, argv []string) (time.Duration, time.Duration) {
	b.Helper()
	var h *openFlows
	var s *session.Session
	if mode != sensorOff {
		defer session.TuneRuntime()() // as the sensor binary runs
		src, err := linuxcompat.New(linuxcompat.Config{PIDs: []int{os.Getpid()}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			if ebpfRequired() {
				b.Fatal(err)
			}
			b.Skip(err)
		}
		h = &openFlows{Handler: &countingFlows{}}
		if mode == sensorFull {
			if s, err = session.New(session.Options{Out: ec}); err != nil {
				b.Fatal(err)
			}
			h.Handler = s.Pipeline
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, h) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		}()
		<-src.Ready()
		ino, err := inodeOf(bin)
		if err != nil {
			b.Fatal(err)
		}
		if err := runWarmup([]string{bin, "-warmup"}, func() bool { return allAttached(src, []uint64{ino}) }); err != nil {
			b.Fatal(err)
		}
	}
	cpu0, t0 := cpuTime(b), time.Now()
	if _, err := runHeld(context.Background(), argv, nil, "", nil, nil); err != nil {
		b.Fatal(err)
	}
	if h != nil {
		deadline := time.Now().Add(30 * time.Second)
		for h.open.Load() > 0 || (s != nil && ec.responses.Load() == 0) {
			if time.Now().After(deadline) {
				b.Fatal("the client's flows did not close")
			}
			time.Sleep(time.Millisecond)
		}
		if s != nil {
			s.Pipeline.Flush(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
		}
	}
	return cpuTime(b) - cpu0, time.Since(t0)
}

// BenchmarkEBPFSensorIdleCPU: this process's CPU with an eBPF Source running
// and nothing to capture (it traces only this process, which makes no TLS
// calls), over 10 s, for a reader that ticks every 10 ms without backing off
// (the earlier behaviour) and for the default pacing (25 ms, backing off to
// 200 ms on an empty ring). One op is one 10 s run of each.
func BenchmarkEBPFSensorIdleCPU(b *testing.B) {
	const span = 10 * time.Second
	pacings := []struct {
		name         string
		read, idle   time.Duration
		shareOfACore float64
	}{
		{name: "tick_10ms", read: 10 * time.Millisecond, idle: 10 * time.Millisecond},
		{name: "default", read: 0, idle: 0},
	}
	ebpf.stopIfIdle()
	for i := range pacings {
		p := &pacings[i]
		b.Run(p.name, func(b *testing.B) {
			var cpu, wall time.Duration
			for b.Loop() {
				src, err := linuxcompat.New(linuxcompat.Config{PIDs: []int{os.Getpid()}, ReadInterval: p.read, IdleReadInterval: p.idle,
					Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					if ebpfRequired() {
						b.Fatal(err)
					}
					b.Skip(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- src.Run(ctx, &countingFlows{}) }()
				<-src.Ready()
				time.Sleep(2 * time.Second) // start-up work settles
				c0, t0 := rusageCPU(b), time.Now()
				time.Sleep(span)
				cpu += rusageCPU(b) - c0
				wall += time.Since(t0)
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			}
			p.shareOfACore = cpu.Seconds() / wall.Seconds()
			b.ReportMetric(100*p.shareOfACore, "%core_idle_sensor")
		})
	}
	if pacings[0].shareOfACore > 0 && pacings[1].shareOfACore > 0 {
		b.Logf("idle sensor CPU: %.3f%% of a core ticking every 10 ms, %.3f%% with the default pacing (%.1f× less)",
			100*pacings[0].shareOfACore, 100*pacings[1].shareOfACore, pacings[0].shareOfACore/pacings[1].shareOfACore)
	}
}

// rusageCPU is this process's user+system CPU time, to the microsecond.
func rusageCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// median returns the middle value of v (the mean of the two middle ones
// when len(v) is even), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
