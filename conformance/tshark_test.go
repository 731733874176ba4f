package conformance

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http3"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/pipeline"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// tsharkSample is how many fixtures the oracle replays (spread evenly over
// the sorted fixture list, so every provider is likely represented).
const tsharkSample = 40

func tsharkOrSkip(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		tb.Skip("tshark not installed (apt-get install tshark): the independent HTTP/2 oracle does not run")
	}
	return bin
}

// oracleCassettesEnv names recordings (comma-separated globs) for the
// oracle to replay instead of the fixture sample, to check a decoder
// against tshark on other traffic.
const oracleCassettesEnv = "OISP_ORACLE_CASSETTES"

// oracleKeepEnv names a directory where the oracle copies its capture and
// key log, to open them in Wireshark.
const oracleKeepEnv = "OISP_ORACLE_KEEP"

// oracleCassettes returns the recordings the oracle replays: those named by
// OISP_ORACLE_CASSETTES, else up to n fixtures spread evenly over all of
// them.
func oracleCassettes(tb testing.TB, n int) []string {
	tb.Helper()
	if env := os.Getenv(oracleCassettesEnv); env != "" {
		var out []string
		for _, pat := range strings.Split(env, ",") {
			m, err := filepath.Glob(pat)
			if err != nil {
				tb.Fatalf("%s: %v", oracleCassettesEnv, err)
			}
			out = append(out, m...)
		}
		if len(out) == 0 {
			tb.Fatalf("%s=%q names no files", oracleCassettesEnv, env)
		}
		return out
	}
	var out []string
	for _, fx := range sampleFixtures(tb, n) {
		out = append(out, fx.Cassette())
	}
	return out
}

// sampleFixtures returns up to n fixtures spread evenly over all of them.
func sampleFixtures(tb testing.TB, n int) []Fixture {
	tb.Helper()
	all, err := Fixtures(fixturesRoot)
	if err != nil {
		tb.Fatalf("list fixtures: %v", err)
	}
	if len(all) == 0 {
		tb.Fatal("no fixtures found under " + fixturesRoot)
	}
	if len(all) <= n {
		return all
	}
	out := make([]Fixture, 0, n)
	for i := range n {
		out = append(out, all[i*len(all)/n])
	}
	return out
}

// flowCall is one call a capture source made on its flow.Handler, kept so
// the same traffic can be decoded again (the benchmark).
type flowCall struct {
	open  *flow.Info
	id    string
	chunk flow.Chunk
	close *flow.CloseInfo
}

// recordingHandler forwards to a handler and keeps every call.
type recordingHandler struct {
	next flow.Handler

	mu    sync.Mutex
	calls []flowCall
	bytes int64
}

func (r *recordingHandler) Open(info *flow.Info) {
	cp := *info
	r.mu.Lock()
	r.calls = append(r.calls, flowCall{open: &cp, id: info.ID})
	r.mu.Unlock()
	r.next.Open(info)
}

func (r *recordingHandler) Data(id string, c flow.Chunk) {
	r.mu.Lock()
	r.calls = append(r.calls, flowCall{id: id, chunk: c})
	r.bytes += int64(len(c.Data))
	r.mu.Unlock()
	r.next.Data(id, c)
}

func (r *recordingHandler) Close(id string, ci flow.CloseInfo) {
	r.mu.Lock()
	r.calls = append(r.calls, flowCall{id: id, close: &ci})
	r.mu.Unlock()
	r.next.Close(id, ci)
}

// replayCalls delivers recorded calls to h in their order.
func replayCalls(h flow.Handler, calls []flowCall) {
	for _, c := range calls {
		switch {
		case c.open != nil:
			info := *c.open
			h.Open(&info)
		case c.close != nil:
			h.Close(c.id, *c.close)
		default:
			h.Data(c.id, c.chunk)
		}
	}
}

// newPipeline makes the sensor's pipeline as a session does, with every
// finished exchange also handed to onExchange (on the decoding goroutine).
func newPipeline(reg *provider.Registry, onExchange func(*httpmsg.Exchange)) *pipeline.Pipeline {
	cfg := pipeline.Config{
		Registry: reg,
		Builder:  oisp.NewBuilder(oisp.BuilderOptions{CollectorVersion: session.Version}),
		Out:      pipeline.RecorderFunc(func(*oisp.Event) {}),
	}
	if onExchange != nil {
		cfg.NewDecoder = func(info *flow.Info, first []byte, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder {
			tee := httpmsg.SinkFunc(func(x *httpmsg.Exchange) {
				onExchange(x)
				sink.Done(x)
			})
			if info.Transport == flow.QUIC {
				// The oracle checks the HTTP/3 decoder itself, whether
				// or not the pipeline routes QUIC flows to it yet.
				return http3.New(info, tee, lim, rec)
			}
			return pipeline.DefaultDecoder(info, first, tee, lim, rec)
		}
	}
	return pipeline.New(cfg)
}

// wireCapture is a sample of fixtures replayed over HTTP/2 or HTTP/3 by the
// Go client with the wire recorded: the pcapng and key log for tshark, the
// streams our decoders saw, and the plaintext flow calls for re-decoding.
type wireCapture struct {
	dir, pcapPath, keyLogPath string
	registry                  *provider.Registry
	ours                      []WireStream
	calls                     []flowCall
	plaintext                 int64
	recordings                int
}

func captureWire(tb testing.TB, tr loopback.Transport, cassettes []string) *wireCapture {
	tb.Helper()
	dir := tb.TempDir()
	c := &wireCapture{dir: dir, pcapPath: filepath.Join(dir, string(tr)+".pcapng"), keyLogPath: filepath.Join(dir, "keys.log")}
	pcapFile, err := os.Create(c.pcapPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer pcapFile.Close()
	var keys bytes.Buffer
	pw, err := loopback.NewPcapNG(pcapFile)
	if err != nil {
		tb.Fatal(err)
	}
	c.registry, err = provider.LoadRegistry(provider.RegistryOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var exchanges []*httpmsg.Exchange
	for _, path := range cassettes {
		rec, err := cassette.ReadFile(path)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		p := newPipeline(c.registry, func(x *httpmsg.Exchange) {
			mu.Lock()
			exchanges = append(exchanges, x)
			mu.Unlock()
		})
		rh := &recordingHandler{next: p}
		drv := loopback.CapturingGoClient{Capture: loopback.ClientOptions{KeyLog: &keys, Pcap: pw}}
		src := loopback.New(rec, loopback.Options{Transport: tr, Client: drv})
		if err := src.Run(context.Background(), rh); err != nil {
			tb.Fatalf("%s over %s: %v", path, tr, err)
		}
		p.Flush(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
		c.calls = append(c.calls, rh.calls...)
		c.plaintext += rh.bytes
		c.recordings++
	}
	if err := pw.Err(); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(c.keyLogPath, keys.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	if keep := os.Getenv(oracleKeepEnv); keep != "" {
		for _, f := range []string{c.pcapPath, c.keyLogPath} {
			if b, err := os.ReadFile(f); err == nil {
				_ = os.WriteFile(filepath.Join(keep, filepath.Base(f)), b, 0o600)
			}
		}
	}
	if tr == loopback.H3 {
		c.ours = WireStreamsOfHTTP3(exchanges)
	} else {
		c.ours = WireStreamsOf(exchanges)
	}
	return c
}

// TestTsharkAgreesOnHTTP2 replays a sample of fixtures over HTTP/2, records
// the encrypted traffic and the TLS key log, and checks that tshark and our
// decoders saw the same streams with the same methods, paths, statuses and
// body lengths.
func TestTsharkAgreesOnHTTP2(t *testing.T) {
	bin := tsharkOrSkip(t)
	c := captureWire(t, loopback.H2, oracleCassettes(t, tsharkSample))
	if len(c.ours) == 0 {
		t.Fatal("our decoders saw no HTTP/2 streams")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	theirs, err := TsharkHTTP2Streams(ctx, bin, c.pcapPath, c.keyLogPath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(theirs, c.ours); diff != "" {
		t.Fatalf("our HTTP/2 streams differ from tshark's (-tshark +ours):\n%s", diff)
	}
	t.Logf("%d recordings, %d HTTP/2 streams: tshark and our decoders agree on every stream, method, path, status and body length", c.recordings, len(c.ours))
}

// TestTsharkAgreesOnHTTP3 is TestTsharkAgreesOnHTTP2 over HTTP/3: tshark
// decrypts the client's QUIC packets and gives each stream's bytes; their
// HTTP/3 frames must match what our decoder made of the relay's stream
// chunks. Server ports are not compared: our flows name the server behind
// the relay, the packets name the relay.
func TestTsharkAgreesOnHTTP3(t *testing.T) {
	bin := tsharkOrSkip(t)
	c := captureWire(t, loopback.H3, oracleCassettes(t, tsharkSample))
	if len(c.ours) == 0 {
		t.Fatal("our decoders saw no HTTP/3 streams")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	theirs, err := TsharkHTTP3Streams(ctx, bin, c.pcapPath, c.keyLogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range [][]WireStream{theirs, c.ours} {
		for i := range ss {
			ss[i].ServerPort = 0
		}
		// Sorted again without server ports: a client port the kernel gave
		// to two QUIC connections in turn was ordered by them, and the two
		// sides name different servers.
		SortWireStreams(ss)
	}
	if diff := cmp.Diff(theirs, c.ours); diff != "" {
		t.Fatalf("our HTTP/3 streams differ from tshark's (-tshark +ours):\n%s", diff)
	}
	t.Logf("%d recordings, %d HTTP/3 streams: tshark and our decoders agree on every stream, method, path, status and body length", c.recordings, len(c.ours))
}

// BenchmarkHTTP2PipelineVsTshark decodes the same captured HTTP/2 traffic
// (a sample of fixtures replayed over real TLS) three ways: our whole
// pipeline from the TLS-boundary plaintext to OISP events ("pipeline"), the
// pipeline's flow handling and HTTP/2 decoder alone, exchanges dropped
// before the provider decoders ("http2-exchanges"), and tshark as a whole
// process reading the pcapng and key log (TCP reassembly, TLS decryption,
// HTTP/2 and body dissection). All report the plaintext bytes as their
// throughput base; the tshark run reports how many times longer it took
// than each of ours (x-pipeline-time, x-exchanges-time).
func BenchmarkHTTP2PipelineVsTshark(b *testing.B) {
	bin := tsharkOrSkip(b)
	c := captureWire(b, loopback.H2, oracleCassettes(b, tsharkSample))
	benchPipelineVsTshark(b, c, "http2-exchanges", bin, append(TsharkArgs(c.pcapPath, c.keyLogPath), "-T", "fields",
		"-e", "http2.streamid", "-e", "http2.type", "-e", "http2.length",
		"-e", "http2.headers.method", "-e", "http2.headers.path", "-e", "http2.headers.status"))
}

// BenchmarkHTTP3PipelineVsTshark is BenchmarkHTTP2PipelineVsTshark over
// HTTP/3: the same sample replayed over QUIC, our pipeline fed the relay's
// plaintext stream chunks ("pipeline", "http3-exchanges"), and tshark
// reading the client's UDP packets with the key log: QUIC header
// protection and packet decryption, frame parsing, and every STREAM
// frame's id, offset and bytes printed ("tshark"). tshark 4.0 has no QPACK,
// so its side stops at the QUIC stream bytes, less work than our HTTP/3
// decoding; the ratio flatters tshark, if anything. The oracle's own fold
// of those bytes into HTTP/3 streams (TsharkHTTP3Streams: tshark's JSON
// plus our frame and QPACK reading) is timed too ("tshark-oracle").
func BenchmarkHTTP3PipelineVsTshark(b *testing.B) {
	bin := tsharkOrSkip(b)
	c := captureWire(b, loopback.H3, oracleCassettes(b, tsharkSample))
	benchPipelineVsTshark(b, c, "http3-exchanges", bin, append(TsharkQUICArgs(c.pcapPath, c.keyLogPath), "-T", "fields",
		"-e", "quic.connection.number", "-e", "quic.stream.stream_id", "-e", "quic.stream.offset", "-e", "quic.stream_data"))
	b.Run("tshark-oracle", func(b *testing.B) {
		b.SetBytes(c.plaintext)
		for b.Loop() {
			streams, err := TsharkHTTP3Streams(context.Background(), bin, c.pcapPath, c.keyLogPath)
			if err != nil {
				b.Fatal(err)
			}
			if len(streams) == 0 {
				b.Fatal("tshark saw no HTTP/3 streams")
			}
		}
	})
}

// benchPipelineVsTshark times our pipeline ("pipeline"), its flow handling
// and HTTP decoders alone (exchangesName) and one tshark process with args
// over the captured traffic c, and reports tshark's time as a multiple of
// each of ours.
func benchPipelineVsTshark(b *testing.B, c *wireCapture, exchangesName, bin string, args []string) {
	nsPerOp := map[string]float64{}
	ours := func(name string, onlyExchanges bool) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(c.plaintext)
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				var p *pipeline.Pipeline
				if onlyExchanges {
					p = pipeline.New(pipeline.Config{
						Registry: c.registry,
						Builder:  oisp.NewBuilder(oisp.BuilderOptions{CollectorVersion: session.Version}),
						Out:      pipeline.RecorderFunc(func(*oisp.Event) {}),
						NewDecoder: func(info *flow.Info, first []byte, _ httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder {
							return pipeline.DefaultDecoder(info, first, httpmsg.SinkFunc(func(*httpmsg.Exchange) {}), lim, rec)
						},
					})
				} else {
					p = newPipeline(c.registry, nil)
				}
				replayCalls(p, c.calls)
				p.Flush(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
			}
			nsPerOp[name] = float64(time.Since(start).Nanoseconds()) / float64(b.N)
		})
	}
	ours("pipeline", false)
	ours(exchangesName, true)
	b.Run("tshark", func(b *testing.B) {
		b.SetBytes(c.plaintext)
		start := time.Now()
		for b.Loop() {
			cmd := exec.Command(bin, args...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, io.Discard
			if err := cmd.Run(); err != nil {
				b.Fatalf("tshark: %v", err)
			}
			// A tshark that decrypted nothing prints empty last fields
			// and would win for the wrong reason.
			if !lastFieldSeen(out.Bytes()) {
				b.Fatal("tshark printed no values for its last field: nothing decrypted")
			}
		}
		tshark := float64(time.Since(start).Nanoseconds()) / float64(b.N)
		nsPerOp["tshark"] = tshark
		if ns := nsPerOp["pipeline"]; ns > 0 {
			b.ReportMetric(tshark/ns, "x-pipeline-time")
		}
		if ns := nsPerOp[exchangesName]; ns > 0 {
			b.ReportMetric(tshark/ns, "x-exchanges-time")
		}
	})
	// tshark's fixed cost (process start, dissector registration) on a
	// capture with no packets, with the same arguments; its ratio leaves
	// that cost out and compares only the work per capture.
	b.Run("tshark-empty-capture", func(b *testing.B) {
		empty := filepath.Join(c.dir, "empty.pcapng")
		f, err := os.Create(empty)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := loopback.NewPcapNG(f); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		emptyArgs := slices.Clone(args)
		emptyArgs[slices.Index(emptyArgs, c.pcapPath)] = empty
		start := time.Now()
		for b.Loop() {
			cmd := exec.Command(bin, emptyArgs...)
			cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
			if err := cmd.Run(); err != nil {
				b.Fatalf("tshark: %v", err)
			}
		}
		fixed := float64(time.Since(start).Nanoseconds()) / float64(b.N)
		if ns := nsPerOp["pipeline"]; ns > 0 && nsPerOp["tshark"] > fixed {
			b.ReportMetric((nsPerOp["tshark"]-fixed)/ns, "x-pipeline-time-less-startup")
		}
	})
}

// lastFieldSeen reports whether any line of tshark's tab-separated fields
// output has a value in its last column.
func lastFieldSeen(out []byte) bool {
	for line := range bytes.SplitSeq(out, []byte("\n")) {
		fields := bytes.Split(line, []byte("\t"))
		if len(fields) > 1 && len(fields[len(fields)-1]) > 0 {
			return true
		}
	}
	return false
}

// TestParseTsharkJSON folds a saved tshark dissection (two streams of a
// replayed HTTP/2 connection: an SSE chat completion and a 404) into
// streams, without needing tshark.
func TestParseTsharkJSON(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "clients", "tshark-h2.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parseTsharkJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	sse := len("data: {\"a\":1}\n\n" + "data: {\"a\":2}\n\n" + "data: [DONE]\n\n")
	want := []WireStream{
		{ClientPort: 41074, ServerPort: 36467, StreamID: 1, Method: "POST", Path: "/v1/chat/completions", Status: 200,
			RequestBytes: int64(len(`{"model":"m","stream":true}`)), ResponseBytes: int64(sse)},
		{ClientPort: 41074, ServerPort: 36467, StreamID: 3, Method: "GET", Path: "/v1/models", Status: 404,
			ResponseBytes: int64(len(`{"error":"no"}`))},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("streams (-want +got):\n%s", diff)
	}
}

func TestFoldFramesPaddingAndDirection(t *testing.T) {
	frames := []tsharkFrame{
		// Server→client frames may come first in capture order (SETTINGS);
		// the client is still the side that sends :method.
		{src: 443, dst: 50000, streamID: 0, typ: 4, length: 6},
		{src: 50000, dst: 443, streamID: 5, typ: h2FrameHeaders, method: "POST", path: "/v1/messages"},
		{src: 50000, dst: 443, streamID: 5, typ: h2FrameData, length: 20, flags: h2FlagPadded, pad: 9},
		{src: 443, dst: 50000, streamID: 5, typ: h2FrameHeaders, status: "529"},
		{src: 443, dst: 50000, streamID: 5, typ: h2FrameData, length: 7},
		// A stream without request headers (pushed, or joined mid-way) is
		// not reported.
		{src: 443, dst: 50000, streamID: 2, typ: h2FrameData, length: 3},
	}
	got := foldFrames(frames)
	want := []WireStream{{ClientPort: 50000, ServerPort: 443, StreamID: 5, Method: "POST", Path: "/v1/messages",
		Status: 529, RequestBytes: 10, ResponseBytes: 7}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
