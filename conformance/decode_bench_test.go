package conformance

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/content"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http1"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/pipeline"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// corpus is every fixture's traffic as synthesized HTTP/1.1 flows.
type corpus struct {
	flows []replay.Flow
	bytes int64
}

func loadCorpus(tb testing.TB) *corpus {
	tb.Helper()
	fixtures, err := Fixtures(fixturesRoot)
	if err != nil {
		tb.Fatal(err)
	}
	c := &corpus{}
	for _, fx := range fixtures {
		rec, err := cassette.ReadFile(fx.Cassette())
		if err != nil {
			tb.Fatal(err)
		}
		flows, err := replay.New(rec, replay.Options{IDPrefix: fx.ID()}).Plan()
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range flows {
			for _, ch := range f.Chunks {
				c.bytes += int64(len(ch.Data))
			}
		}
		c.flows = append(c.flows, flows...)
	}
	return c
}

type countingRecorder struct{ n int }

func (r *countingRecorder) Record(*oisp.Event) { r.n++ }

func benchRegistry(tb testing.TB) *provider.Registry {
	reg, err := provider.LoadRegistry(provider.RegistryOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return reg
}

func newBenchPipeline(reg *provider.Registry, out pipeline.Recorder) *pipeline.Pipeline {
	return pipeline.New(pipeline.Config{
		Registry: reg,
		Builder:  oisp.NewBuilder(oisp.BuilderOptions{Host: &oisp.Host{OS: "linux"}}),
		Out:      out,
	})
}

func feed(p *pipeline.Pipeline, f *replay.Flow) {
	info := f.Info
	p.Open(&info)
	for _, ch := range f.Chunks {
		p.Data(info.ID, ch)
	}
	p.Close(info.ID, f.Close)
}

// BenchmarkDecodeCorpus measures the whole data path (HTTP/1.1 decoding,
// content decoding, stream reassembly, provider decoding, event building)
// over every fixture, side by side with a plain baseline that parses the
// same bytes with net/http and decodes every JSON body and SSE data line
// into maps with encoding/json — and builds no events.
func BenchmarkDecodeCorpus(b *testing.B) {
	c := loadCorpus(b)
	reg := benchRegistry(b)
	b.Run("sensor", func(b *testing.B) {
		b.SetBytes(c.bytes)
		b.ReportAllocs()
		events := 0
		for b.Loop() {
			out := &countingRecorder{}
			p := newBenchPipeline(reg, out)
			for i := range c.flows {
				feed(p, &c.flows[i])
			}
			events = out.n
		}
		b.ReportMetric(float64(events), "events/op")
		b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
			p := newBenchPipeline(reg, &countingRecorder{})
			for i := range c.flows {
				feed(p, &c.flows[i])
			}
		}))/float64(max(events, 1)), "allocs/event")
	})
	b.Run("nethttp+json", func(b *testing.B) {
		b.SetBytes(c.bytes)
		b.ReportAllocs()
		for b.Loop() {
			for i := range c.flows {
				baselineFlow(&c.flows[i])
			}
		}
	})
	// Both sides again, one pass of each per iteration, so that load from
	// other processes falls on both alike; reports how many times faster
	// the sensor's pass is.
	b.Run("interleaved", func(b *testing.B) {
		b.SetBytes(2 * c.bytes)
		var sensorTime, baseTime time.Duration
		for b.Loop() {
			start := time.Now()
			p := newBenchPipeline(reg, &countingRecorder{})
			for i := range c.flows {
				feed(p, &c.flows[i])
			}
			mid := time.Now()
			for i := range c.flows {
				baselineFlow(&c.flows[i])
			}
			sensorTime += mid.Sub(start)
			baseTime += time.Since(mid)
		}
		b.ReportMetric(float64(baseTime)/float64(max(sensorTime, 1)), "x-faster")
		b.ReportMetric(float64(c.bytes)*float64(b.N)/sensorTime.Seconds()/1e6, "sensor-MB/s")
	})
	// The floor under the sensor's pass: its own HTTP/1.1 and content
	// decoding with nothing after them, and then with one pass of the
	// fastest JSON validator at hand over every JSON document the bodies
	// hold, which any decoder that reads the bodies pays at least. They
	// bound what decoding AI traffic into events can reach on this machine.
	b.Run("floor/http+content", func(b *testing.B) {
		b.SetBytes(c.bytes)
		b.ReportAllocs()
		for b.Loop() {
			floorPass(c, httpmsg.SinkFunc(func(*httpmsg.Exchange) {}))
		}
	})
	b.Run("floor/http+content+json-valid", func(b *testing.B) {
		b.SetBytes(c.bytes)
		b.ReportAllocs()
		for b.Loop() {
			floorPass(c, httpmsg.SinkFunc(validateBodies))
		}
	})
}

// floorPass runs every flow through the sensor's HTTP/1.1 decoder with
// content decoding (decompressors shared across flows, as the pipeline
// shares them) and hands each exchange to sink.
func floorPass(c *corpus, sink httpmsg.Sink) {
	var counts stats.Counters
	var readers content.Readers
	var d http1.Decoder
	for i := range c.flows {
		f := &c.flows[i]
		info := f.Info
		d.Init(&info, sink, httpmsg.Limits{MaxBody: 16 << 20}, &counts, http1.Options{Readers: &readers})
		for _, ch := range f.Chunks {
			d.Feed(ch)
		}
		d.Close(f.Close)
	}
}

// validateBodies checks every JSON document of an exchange's bodies: the
// body itself, or each data line of an event stream.
func validateBodies(x *httpmsg.Exchange) {
	validJSON(x.Request.Body.Data, x.Request.Header)
	if x.Response != nil {
		validJSON(x.Response.Body.Data, x.Response.Header)
	}
}

func validJSON(body []byte, h httpmsg.Header) {
	if !strings.Contains(h.Get("Content-Type"), "event-stream") {
		_ = gojson.Valid(body)
		return
	}
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			_ = gojson.Valid(bytes.TrimSpace(d))
		}
	}
}

// baselineFlow parses a flow's two directions with net/http and decodes
// every JSON body (and every SSE data line) into a map.
func baselineFlow(f *replay.Flow) {
	var req, resp bytes.Buffer
	for _, ch := range f.Chunks {
		if ch.Dir == flow.ClientToServer {
			req.Write(ch.Data)
		} else {
			resp.Write(ch.Data)
		}
	}
	rr := bufio.NewReader(&req)
	sr := bufio.NewReader(&resp)
	for {
		r, err := http.ReadRequest(rr)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(r.Body)
		jsonMap(body)
		res, err := http.ReadResponse(sr, r)
		if err != nil {
			return
		}
		var rd io.Reader = res.Body
		if res.Header.Get("Content-Encoding") == "gzip" {
			if zr, err := gzip.NewReader(res.Body); err == nil {
				rd = zr
			}
		}
		body, _ = io.ReadAll(rd)
		res.Body.Close()
		if strings.Contains(res.Header.Get("Content-Type"), "event-stream") {
			for _, line := range bytes.Split(body, []byte("\n")) {
				if d, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:")); ok {
					jsonMap(bytes.TrimSpace(d))
				}
			}
		} else {
			jsonMap(body)
		}
	}
}

func jsonMap(b []byte) {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
}

// TestInProgressStreamsHeap opens 1,000 streaming flows, feeds each its
// request and the first half of its SSE response, and measures the heap
// they hold while in progress. The bound is 50 MB.
func TestInProgressStreamsHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	c := loadCorpus(t)
	var stream *replay.Flow
	for i := range c.flows {
		f := &c.flows[i]
		n := 0
		for _, ch := range f.Chunks {
			if ch.Dir == flow.ServerToClient {
				n++
			}
		}
		if n >= 10 && bytes.Contains(f.Chunks[len(f.Chunks)-1].Data, []byte("data:")) || n >= 10 && strings.Contains(f.Info.ID, "stream") {
			stream = f
			break
		}
	}
	if stream == nil {
		t.Fatal("no streaming fixture with at least 10 response chunks")
	}
	half := len(stream.Chunks) / 2
	p := newBenchPipeline(benchRegistry(t), &countingRecorder{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const flows = 1000
	for i := range flows {
		info := stream.Info
		info.ID = "heap-" + strconv.Itoa(i)
		p.Open(&info)
		for _, ch := range stream.Chunks[:half] {
			p.Data(info.ID, ch)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if p.OpenFlows() != flows {
		t.Fatalf("open flows = %d, want %d", p.OpenFlows(), flows)
	}
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d in-progress streaming flows (%s, %d of %d chunks fed) hold %.1f MB of heap (%.1f KB each)",
		flows, stream.Info.ID, half, len(stream.Chunks), float64(held)/1e6, float64(held)/flows/1e3)
	if held > 50<<20 {
		t.Errorf("in-progress flows hold %d bytes of heap; the bound is 50 MB", held)
	}
	runtime.KeepAlive(p)
}
