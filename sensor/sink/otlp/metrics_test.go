package otlp_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// metricsRun is spanRun with what each call's metrics need: latencies for
// the rate-limited call and the lone embedding, and an embedding call as
// the pipeline emits it (request, response naming it as parent, then the
// ai.embedding caused by the response, which must not count twice).
func metricsRun() []*oisp.Event {
	evs := spanRun()
	evs[5].Data.(*oisp.AIResponse).LatencyMS = ptr(int64(40)) // on a bucket bound: counts in the bucket it ends
	evs[6].Data.(*oisp.AIEmbedding).LatencyMS = ptr(int64(80))
	openai := evs[0].Data.(*oisp.AIRequest).Provider
	src := evs[0].Source
	model := func() *oisp.Model { return &oisp.Model{ID: "text-embedding-3-small"} }
	req := &oisp.Event{OISPVersion: oisp.Version, EventID: "01EREQ", EventType: oisp.TypeAIRequest, TS: "2026-11-30T12:00:05Z", Source: src,
		Data: &oisp.AIRequest{RequestType: oisp.RequestEmbedding, Provider: openai, Model: model()}}
	resp := &oisp.Event{OISPVersion: oisp.Version, EventID: "01ERESP", EventType: oisp.TypeAIResponse, TS: "2026-11-30T12:00:05.1Z", Source: src,
		RelatedEvents: []oisp.Related{{EventID: req.EventID, Relationship: oisp.RelParent}},
		Data: &oisp.AIResponse{Provider: openai, Model: model(), StatusCode: 200, Success: ptr(true),
			Usage: &oisp.Usage{PromptTokens: ptr(8), TotalTokens: ptr(8)}, LatencyMS: ptr(int64(100))}}
	emb := &oisp.Event{OISPVersion: oisp.Version, EventID: "01EEMB", EventType: oisp.TypeAIEmbedding, TS: "2026-11-30T12:00:05.1Z", Source: src,
		RelatedEvents: []oisp.Related{{EventID: resp.EventID, Relationship: oisp.RelCausedBy}},
		Data:          &oisp.AIEmbedding{Provider: openai, Model: model(), TotalTokens: ptr(8), LatencyMS: ptr(int64(100)), StatusCode: 200}}
	return append(evs, req, resp, emb)
}

// wantPoint is a histogram data point expected after `runs` replays of a
// call sequence in which its attribute set saw each of values once.
type wantPoint struct {
	metric string
	attrs  map[string]any
	values []float64
	// buckets are the bucket indexes of values, in order.
	buckets []int
}

// metricsRunPoints are the points of metricsRun, worked out by hand from
// its events and the conventions' bucket bounds (a bucket holds the values
// up to and including its upper bound).
func metricsRunPoints() []wantPoint {
	chat := map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
		"gen_ai.response.model": "gpt-4o-2024-08-06", "server.address": "api.openai.com", "server.port": int64(443),
	}
	// The response lacks the operation and the requested model: both come
	// from its request.
	failed := map[string]any{
		"gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "gcp.vertex_ai",
		"gen_ai.request.model": "gemini-2.0-flash", "gen_ai.response.model": "gemini-2.0-flash",
		"server.address": "us-central1-aiplatform.googleapis.com", "server.port": int64(8443), "error.type": "rate_limit_error",
	}
	mistral := map[string]any{
		"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "mistral_ai", "gen_ai.request.model": "mistral-embed",
		"server.address": "api.mistral.ai", "server.port": int64(443),
	}
	// The response whose request was never seen: what it carries alone.
	orphan := map[string]any{"gen_ai.response.model": "gpt-4o-mini"}
	embedCall := map[string]any{
		"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai", "gen_ai.request.model": "text-embedding-3-small",
		"gen_ai.response.model": "text-embedding-3-small", "server.address": "api.openai.com", "server.port": int64(443),
	}
	tokens := func(a map[string]any, typ string) map[string]any {
		return with(a, map[string]any{"gen_ai.token.type": typ})
	}
	return []wantPoint{
		{otlp.MetricOperationDuration, chat, []float64{1.377}, []int{8}},
		{otlp.MetricOperationDuration, failed, []float64{0.04}, []int{2}},
		{otlp.MetricOperationDuration, mistral, []float64{0.08}, []int{3}},
		{otlp.MetricOperationDuration, orphan, []float64{0.5}, []int{6}},
		{otlp.MetricOperationDuration, embedCall, []float64{0.1}, []int{4}},
		{otlp.MetricTokenUsage, tokens(chat, "input"), []float64{1200}, []int{6}},
		{otlp.MetricTokenUsage, tokens(chat, "output"), []float64{30}, []int{3}},
		{otlp.MetricTokenUsage, tokens(mistral, "input"), []float64{17}, []int{3}},
		{otlp.MetricTokenUsage, tokens(embedCall, "input"), []float64{8}, []int{2}},
		{otlp.MetricTimeToFirstChunk, chat, []float64{0.25}, []int{5}},
	}
}

var (
	secondsBounds = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	tokenBounds   = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
)

// metricUnits are the unit of each metric.
var metricUnits = map[string]string{
	otlp.MetricOperationDuration: "s", otlp.MetricTokenUsage: "{token}", otlp.MetricTimeToFirstChunk: "s",
}

func pointKey(metric string, attrs map[string]any) string {
	return metric + " " + fmt.Sprint(attrs) // fmt sorts map keys
}

// metricsDiff compares one metrics export with want, each seen runs
// times: every point, its attributes, count, sum, min, max, buckets and
// bounds, the units and cumulative temporality, the resource and scope,
// and that all points share one start time (returned, with the time).
// It returns "" when they match.
func metricsDiff(req *colmetricspb.ExportMetricsServiceRequest, want []wantPoint, runs int) (diff string, start, now uint64) {
	var out []string
	fail := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	got := map[string]*metricspb.HistogramDataPoint{}
	for _, rm := range req.ResourceMetrics {
		if name := attrMap(rm.Resource.GetAttributes())["service.name"]; name != "oisp-sensor" {
			fail("resource service.name %v", name)
		}
		for _, sm := range rm.ScopeMetrics {
			if sm.Scope.GetName() != "github.com/oisp/oisp-sensor/sensor/sink/otlp" {
				fail("scope %q", sm.Scope.GetName())
			}
			for _, m := range sm.Metrics {
				if unit, ok := metricUnits[m.Name]; !ok || m.Unit != unit || m.Description == "" {
					fail("metric %q unit %q description %q", m.Name, m.Unit, m.Description)
				}
				h := m.GetHistogram()
				if h == nil || h.AggregationTemporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
					fail("metric %q is not a cumulative histogram: %v", m.Name, m.Data)
					continue
				}
				for _, p := range h.DataPoints {
					k := pointKey(m.Name, attrMap(p.Attributes))
					if got[k] != nil {
						fail("two points %s", k)
					}
					got[k] = p
					if start == 0 {
						start, now = p.StartTimeUnixNano, p.TimeUnixNano
					}
					if p.StartTimeUnixNano != start || p.TimeUnixNano != now || now < start {
						fail("point %s runs %d..%d, others %d..%d", k, p.StartTimeUnixNano, p.TimeUnixNano, start, now)
					}
				}
			}
		}
	}
	for _, w := range want {
		k := pointKey(w.metric, w.attrs)
		p := got[k]
		delete(got, k)
		if p == nil {
			fail("no point %s", k)
			continue
		}
		bounds := secondsBounds
		if w.metric == otlp.MetricTokenUsage {
			bounds = tokenBounds
		}
		buckets := make([]uint64, len(bounds)+1)
		var sum float64
		for i, v := range w.values {
			buckets[w.buckets[i]] += uint64(runs)
			sum += v * float64(runs)
		}
		wantMin, wantMax := slices.Min(w.values), slices.Max(w.values)
		if p.Count != uint64(len(w.values)*runs) || !near(p.GetSum(), sum) || p.Min == nil || p.Max == nil || p.GetMin() != wantMin || p.GetMax() != wantMax {
			fail("point %s: count %d sum %v min %v max %v, want %d %v %v %v", k, p.Count, p.GetSum(), p.GetMin(), p.GetMax(), len(w.values)*runs, sum, wantMin, wantMax)
		}
		if !slices.Equal(p.BucketCounts, buckets) || !slices.Equal(p.ExplicitBounds, bounds) {
			fail("point %s: buckets %v bounds %v, want %v %v", k, p.BucketCounts, p.ExplicitBounds, buckets, bounds)
		}
	}
	for k := range got {
		fail("unexpected point %s", k)
	}
	return strings.Join(out, "\n"), start, now
}

// record records evs.
func record(exp *otlp.Exporter, evs []*oisp.Event) {
	for _, ev := range evs {
		exp.Record(ev)
	}
}

func closeExporter(t *testing.T, exp *otlp.Exporter) {
	t.Helper()
	if err := exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// onlyExport returns the one metrics export, as with an interval longer
// than the test: the one at Close.
func onlyExport(t *testing.T, exports []*colmetricspb.ExportMetricsServiceRequest) *colmetricspb.ExportMetricsServiceRequest {
	t.Helper()
	if len(exports) != 1 {
		t.Fatalf("%d metrics exports, want the one at Close", len(exports))
	}
	return exports[0]
}

// lastExport returns the last metrics export.
func lastExport(t *testing.T, exports []*colmetricspb.ExportMetricsServiceRequest) *colmetricspb.ExportMetricsServiceRequest {
	t.Helper()
	if len(exports) == 0 {
		t.Fatal("no metrics export")
	}
	return exports[len(exports)-1]
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// waitForMetrics polls the collector's metric exports until the last
// matches want seen runs times, and returns it.
func waitForMetrics(t *testing.T, exports func() []*colmetricspb.ExportMetricsServiceRequest, want []wantPoint, runs int) *colmetricspb.ExportMetricsServiceRequest {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	diff := "no metrics export"
	for {
		if got := exports(); len(got) > 0 {
			last := got[len(got)-1]
			if diff, _, _ = metricsDiff(last, want, runs); diff == "" {
				return last
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the metrics of %d runs; the last export differs:\n%s", runs, diff)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetrics sends metricsRun's metrics over each protocol, waits for an
// export holding exactly them, records the run again, and checks that the
// export at Close holds twice the values with the same start time: the
// histograms are cumulative.
func TestMetrics(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			col := newCollector(t)
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{Endpoint: col.serve(protocol), Protocol: protocol, Metrics: true,
				MetricsInterval: 50 * time.Millisecond, Stats: &counts})
			if err != nil {
				t.Fatal(err)
			}
			before := uint64(time.Now().UnixNano())
			want := metricsRunPoints()
			evs := metricsRun()
			record(exp, evs)
			first := waitForMetrics(t, col.metricExports, want, 1)
			record(exp, metricsRun())
			closeExporter(t, exp)
			exports := col.metricExports()
			last := lastExport(t, exports)
			diff, lastStart, lastTime := metricsDiff(last, want, 2)
			if diff != "" {
				t.Fatalf("the export at Close, after two runs:\n%s", diff)
			}
			_, firstStart, firstTime := metricsDiff(first, want, 1)
			if firstStart != lastStart || firstStart > before || lastTime <= firstTime {
				t.Errorf("first export %d..%d, last %d..%d: want one start, before the first Record (%d), and time moving on", firstStart, firstTime, lastStart, lastTime, before)
			}
			if sent := counts.Get(otlp.CountMetricsSent); sent != int64(len(exports)) || sent < 2 {
				t.Errorf("%s = %d, the collector accepted %d exports", otlp.CountMetricsSent, sent, len(exports))
			}
			for _, c := range []string{otlp.CountMetricsFailed, otlp.CountMetricsOverflow, otlp.CountMetricsUnpaired, otlp.CountErrors, otlp.CountSpansUnpaired} {
				if n := counts.Get(c); n != 0 {
					t.Errorf("%s = %d", c, n)
				}
			}
			// Metrics pair the calls without turning spans on: no span,
			// and records keep the events' own trace context.
			if n := len(col.spans()); n != 0 {
				t.Errorf("%d spans with spans off", n)
			}
			for _, r := range col.records() {
				id := attrMap(r.record.Attributes)["oisp.event_id"]
				if id != "01REQ" && (len(r.record.TraceId) != 0 || len(r.record.SpanId) != 0) {
					t.Errorf("record %v has trace ids %x/%x with spans off", id, r.record.TraceId, r.record.SpanId)
				}
			}
			if n := counts.Get(otlp.CountSent); n != int64(2*len(evs)) {
				t.Errorf("%s = %d, want %d", otlp.CountSent, n, 2*len(evs))
			}
		})
	}
}

// TestMetricsWithSpans: with spans on as well, the metrics are the same
// and every call still gets its span.
func TestMetricsWithSpans(t *testing.T) {
	col := newCollector(t)
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.GRPC), Protocol: otlp.GRPC, Metrics: true, Spans: true,
		MetricsInterval: time.Hour, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	record(exp, metricsRun())
	closeExporter(t, exp)
	export := onlyExport(t, col.metricExports())
	if diff, _, _ := metricsDiff(export, metricsRunPoints(), 1); diff != "" {
		t.Errorf("metrics with spans on:\n%s", diff)
	}
	// The three calls of spanRun and the embedding call.
	if n := len(col.spans()); n != 4 {
		t.Errorf("%d spans, want 4", n)
	}
}

// TestMetricsNone: off by default; on, nothing is sent while no AI call
// was recorded, not even at Close.
func TestMetricsNone(t *testing.T) {
	col := newCollector(t)
	exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.HTTPProtobuf)})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, exp, col, metricsRun())
	if n := col.metricCalls(); n != 0 {
		t.Errorf("%d metrics exports with metrics off", n)
	}

	col = newCollector(t)
	var counts stats.Counters
	exp, err = otlp.New(otlp.Config{Endpoint: col.serve(otlp.HTTPProtobuf), Metrics: true, MetricsInterval: 10 * time.Millisecond,
		BatchTimeout: 10 * time.Millisecond, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	evs := metricsRun()
	// The request, tool call and process events make no call.
	evs = []*oisp.Event{evs[0], evs[2], evs[3]}
	for _, ev := range evs {
		exp.Record(ev)
	}
	waitFor(t, "the records", func() bool { return len(col.records()) == len(evs) })
	closeExporter(t, exp)
	if n := col.metricCalls(); n != 0 {
		t.Errorf("%d metrics exports with no call recorded", n)
	}
	if n := counts.Get(otlp.CountMetricsUnpaired); n != 1 {
		t.Errorf("%s = %d, want 1 (the request left at Close)", otlp.CountMetricsUnpaired, n)
	}
}

// overflowCall is a response, its request unseen, answered by model.
func overflowCall(model string) *oisp.Event {
	return &oisp.Event{OISPVersion: oisp.Version, EventID: "resp-" + model, EventType: oisp.TypeAIResponse, TS: "2026-11-30T12:00:00Z",
		Data: &oisp.AIResponse{Model: &oisp.Model{ID: model}, StatusCode: 200, LatencyMS: ptr(int64(100)),
			Usage: &oisp.Usage{PromptTokens: ptr(10), CompletionTokens: ptr(1000)}}}
}

// TestMetricsOverflow: past MaxMetricSeries attribute sets, calls go to
// one overflow point per metric (attribute otel.metric.overflow=true,
// input and output tokens together) and are counted; a known set still
// takes its own calls.
func TestMetricsOverflow(t *testing.T) {
	col := newCollector(t)
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.HTTPProtobuf), Metrics: true, MaxMetricSeries: 3,
		MetricsInterval: time.Hour, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"m0", "m1", "m2", "m3", "m4", "m0"} {
		exp.Record(overflowCall(m))
	}
	closeExporter(t, exp)
	if n := counts.Get(otlp.CountMetricsOverflow); n != 2 {
		t.Errorf("%s = %d, want 2 (m3 and m4)", otlp.CountMetricsOverflow, n)
	}
	export := onlyExport(t, col.metricExports())
	overflow := map[string]any{"otel.metric.overflow": true}
	var want []wantPoint
	for _, m := range []string{"m0", "m1", "m2"} {
		a := map[string]any{"gen_ai.response.model": m}
		n := 1
		if m == "m0" {
			n = 2
		}
		for range n {
			want = append(want,
				wantPoint{otlp.MetricOperationDuration, a, []float64{0.1}, []int{4}},
				wantPoint{otlp.MetricTokenUsage, with(a, map[string]any{"gen_ai.token.type": "input"}), []float64{10}, []int{2}},
				wantPoint{otlp.MetricTokenUsage, with(a, map[string]any{"gen_ai.token.type": "output"}), []float64{1000}, []int{5}})
		}
	}
	want = append(want,
		wantPoint{otlp.MetricOperationDuration, overflow, []float64{0.1, 0.1}, []int{4, 4}},
		wantPoint{otlp.MetricTokenUsage, overflow, []float64{10, 1000, 10, 1000}, []int{2, 5, 2, 5}})
	if diff, _, _ := metricsDiff(export, mergeWant(want), 1); diff != "" {
		t.Errorf("metrics past the cap:\n%s", diff)
	}
}

// mergeWant joins the wanted points of one attribute set.
func mergeWant(ws []wantPoint) []wantPoint {
	var out []wantPoint
	at := map[string]int{}
	for _, w := range ws {
		k := pointKey(w.metric, w.attrs)
		if i, ok := at[k]; ok {
			out[i].values = append(slices.Clone(out[i].values), w.values...)
			out[i].buckets = append(slices.Clone(out[i].buckets), w.buckets...)
			continue
		}
		at[k] = len(out)
		out = append(out, w)
	}
	return out
}

// TestMetricsRecovered: the collector refuses one metrics export; the next
// carries all the values, those the refused one held included.
func TestMetricsRecovered(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			col := newCollector(t)
			col.metricsScript = []reply{{status: http.StatusBadRequest}}
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{Endpoint: col.serve(protocol), Protocol: protocol, Metrics: true,
				MetricsInterval: 50 * time.Millisecond, Stats: &counts})
			if err != nil {
				t.Fatal(err)
			}
			record(exp, metricsRun())
			waitFor(t, "the refused metrics export", func() bool { return counts.Get(otlp.CountMetricsFailed) == 1 })
			if n := len(col.metricExports()); n != 0 {
				t.Fatalf("%d exports kept after the refused one", n)
			}
			record(exp, metricsRun())
			closeExporter(t, exp)
			export := lastExport(t, col.metricExports())
			if diff, _, _ := metricsDiff(export, metricsRunPoints(), 2); diff != "" {
				t.Errorf("the export at Close:\n%s", diff)
			}
			if failed, errs := counts.Get(otlp.CountMetricsFailed), counts.Get(otlp.CountErrors); failed != 1 || errs != 1 {
				t.Errorf("%s = %d, %s = %d, want 1 and 1 (a refusal is not retried)", otlp.CountMetricsFailed, failed, otlp.CountErrors, errs)
			}
		})
	}
}

// TestMetricsApart: a metrics export that hangs does not hold up log
// records, and Close's deadline cuts it off, saying the last metrics are
// lost.
func TestMetricsApart(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			col := newCollector(t)
			col.metricsScript = []reply{{hang: true}}
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{Endpoint: col.serve(protocol), Protocol: protocol, Metrics: true, MetricsInterval: 20 * time.Millisecond,
				BatchTimeout: 20 * time.Millisecond, Timeout: time.Hour, Stats: &counts})
			if err != nil {
				t.Fatal(err)
			}
			evs := metricsRun()
			record(exp, evs[:2])
			waitFor(t, "the hanging metrics export", func() bool { return col.metricCalls() == 1 })
			record(exp, evs[2:])
			waitFor(t, "every record while the metrics export hangs", func() bool { return len(col.records()) == len(evs) })
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err = exp.Close(ctx)
			if err == nil || !strings.Contains(err.Error(), "last metrics export") {
				t.Errorf("Close: %v", err)
			}
			if n := col.metricCalls(); n != 1 {
				t.Errorf("%d metrics exports, want the hung one alone", n)
			}
		})
	}
}

// TestMetricsPartial: data points a collector rejects are counted; the
// export still counts as sent.
func TestMetricsPartial(t *testing.T) {
	col := newCollector(t)
	col.metricsScript = []reply{{rejected: 3}}
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.GRPC), Protocol: otlp.GRPC, Metrics: true, MetricsInterval: time.Hour, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	record(exp, metricsRun())
	closeExporter(t, exp)
	if rejected, sent := counts.Get(otlp.CountMetricsRejected), counts.Get(otlp.CountMetricsSent); rejected != 3 || sent != 1 {
		t.Errorf("%s = %d, %s = %d", otlp.CountMetricsRejected, rejected, otlp.CountMetricsSent, sent)
	}
}

// TestMetricsCloseDeadline: with the collector down, Close gives up the
// last metrics export at its deadline and says so.
func TestMetricsCloseDeadline(t *testing.T) {
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: deadEndpoint(t) + "/v1/logs?token=qry-s3cret", Metrics: true, MetricsInterval: time.Hour, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	exp.Record(metricsRun()[1])
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = exp.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "last metrics export") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Close: %v", err)
	}
	if n := counts.Get(otlp.CountMetricsFailed); n != 1 {
		t.Errorf("%s = %d", otlp.CountMetricsFailed, n)
	}
}

// TestMetricsEndpoint checks where metrics go over HTTP: MetricsEndpoint
// (a bare URL gets /v1/metrics), and that a logs URL not ending in
// /v1/logs with no metrics endpoint is refused up front.
func TestMetricsEndpoint(t *testing.T) {
	col := newCollector(t)
	srv, logsURL := col.serveHTTP(false)
	exp, err := otlp.New(otlp.Config{Endpoint: logsURL, MetricsEndpoint: srv.URL, Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, exp, col, metricsRun())
	if n := len(col.metricExports()); n != 1 {
		t.Errorf("%d metrics exports", n)
	}
	_, err = otlp.New(otlp.Config{Endpoint: "http://u:hunter2@127.0.0.1:1/ingest", Metrics: true})
	if err == nil || !strings.Contains(err.Error(), "metrics endpoint") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New with an underivable metrics URL: %v", err)
	}
}

// TestMetricsConcurrent records calls from several goroutines while the
// exporter exports every few milliseconds: every call is counted once
// (run with -race).
func TestMetricsConcurrent(t *testing.T) {
	col := newCollector(t)
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.GRPC), Protocol: otlp.GRPC, Metrics: true,
		MetricsInterval: 5 * time.Millisecond, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	const workers, calls = 4, 200
	recordCalls(exp, workers, calls, func(resp *oisp.Event) {
		d := resp.Data.(*oisp.AIResponse)
		d.LatencyMS = ptr(int64(1000))
		d.Usage = &oisp.Usage{PromptTokens: ptr(3), CompletionTokens: ptr(5)}
	})
	closeExporter(t, exp)
	a := map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
	var want []wantPoint
	for range workers * calls {
		want = append(want,
			wantPoint{otlp.MetricOperationDuration, a, []float64{1}, []int{7}},
			wantPoint{otlp.MetricTokenUsage, with(a, map[string]any{"gen_ai.token.type": "input"}), []float64{3}, []int{1}},
			wantPoint{otlp.MetricTokenUsage, with(a, map[string]any{"gen_ai.token.type": "output"}), []float64{5}, []int{2}})
	}
	export := lastExport(t, col.metricExports())
	if diff, _, _ := metricsDiff(export, mergeWant(want), 1); diff != "" {
		t.Errorf("the export at Close:\n%s", diff)
	}
	if n := counts.Get(otlp.CountMetricsUnpaired); n != 0 {
		t.Errorf("%s = %d", otlp.CountMetricsUnpaired, n)
	}
}

// TestMetricsFixtures replays every fixture through the sensor into the
// exporter: each call the pipeline emitted is counted once, paired with
// its request (every point has its operation and provider), and the
// token sums are those of the responses.
func TestMetricsFixtures(t *testing.T) {
	evs := replayFixtures(t, 1<<20)
	col := newCollector(t)
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.HTTPProtobuf), MaxQueue: len(evs), Metrics: true, MetricsInterval: time.Hour, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, exp, col, evs)
	var calls, timed, input, output int
	for _, ev := range evs {
		var latency *int64
		var u *oisp.Usage
		switch d := ev.Data.(type) {
		case *oisp.AIResponse:
			latency, u = d.LatencyMS, d.Usage
		case *oisp.AIEmbedding:
			if len(ev.RelatedEvents) == 0 {
				t.Fatalf("the pipeline emitted an ai.embedding without its response: %s", ev.EventID)
			}
			continue
		default:
			continue
		}
		calls++
		if latency != nil {
			timed++
		}
		if u != nil && u.PromptTokens != nil {
			input += *u.PromptTokens
		}
		if u != nil && u.CompletionTokens != nil {
			output += *u.CompletionTokens
		}
	}
	if calls == 0 || timed == 0 || input == 0 {
		t.Fatalf("the fixtures gave %d calls, %d timed, %d input tokens", calls, timed, input)
	}
	export := onlyExport(t, col.metricExports())
	var durations uint64
	var gotInput, gotOutput float64
	for _, rm := range export.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				for _, p := range m.GetHistogram().GetDataPoints() {
					a := attrMap(p.Attributes)
					if a["gen_ai.operation.name"] == nil || a["gen_ai.provider.name"] == nil {
						t.Errorf("%s point without operation or provider: %v", m.Name, a)
					}
					switch {
					case m.Name == otlp.MetricOperationDuration:
						durations += p.Count
					case m.Name == otlp.MetricTokenUsage && a["gen_ai.token.type"] == "input":
						gotInput += p.GetSum()
					case m.Name == otlp.MetricTokenUsage && a["gen_ai.token.type"] == "output":
						gotOutput += p.GetSum()
					}
				}
			}
		}
	}
	if durations != uint64(timed) || gotInput != float64(input) || gotOutput != float64(output) {
		t.Errorf("durations %d, input %v, output %v; the responses had %d latencies, %d and %d tokens", durations, gotInput, gotOutput, timed, input, output)
	}
	if n := counts.Get(otlp.CountMetricsUnpaired) + counts.Get(otlp.CountMetricsOverflow); n != 0 {
		t.Errorf("counters %v", counts.Snapshot())
	}
	t.Logf("%d events, %d calls, %d timed", len(evs), calls, timed)
}

// TestMetricsLegacySystem: LegacySystem adds gen_ai.system to the points
// too, and the points agree with the log record of the call's response
// on what both carry.
func TestMetricsLegacySystem(t *testing.T) {
	col := newCollector(t)
	exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.HTTPProtobuf), Metrics: true, LegacySystem: true, MetricsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, exp, col, metricsRun())
	export := onlyExport(t, col.metricExports())
	want := metricsRunPoints()
	for i := range want {
		if p, ok := want[i].attrs["gen_ai.provider.name"]; ok {
			want[i].attrs = with(want[i].attrs, map[string]any{"gen_ai.system": p})
		}
	}
	if diff, _, _ := metricsDiff(export, want, 1); diff != "" {
		t.Errorf("with LegacySystem:\n%s", diff)
	}
	// The points agree with the response records on what both carry.
	for _, r := range col.records() {
		a := attrMap(r.record.Attributes)
		if a["oisp.event_id"] != "01FAIL" {
			continue
		}
		for _, k := range []string{"gen_ai.provider.name", "gen_ai.system", "server.address", "server.port", "error.type", "gen_ai.response.model"} {
			if a[k] != want[1].attrs[k] {
				t.Errorf("%s: record %v, metrics %v", k, a[k], want[1].attrs[k])
			}
		}
	}
}
