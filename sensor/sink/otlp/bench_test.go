package otlp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// BenchmarkRecord records every fixture event into the exporter (sending
// to a real HTTP server that reads and discards) with spans and metrics
// off and on, encodes them alone as Record does, and writes them to a
// JSONL sink, in one run so the figures compare.
func BenchmarkRecord(b *testing.B) {
	evs := replayFixtures(b, 1<<20)
	perEvent := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	}
	for _, tc := range []struct {
		name           string
		spans, metrics bool
	}{
		{"otlp-record", false, false},
		// Also pairs each AI call's request and response into a span.
		{"otlp-record-spans", true, false},
		// Also pairs the calls and adds each to the GenAI histograms.
		{"otlp-record-metrics", false, true},
		{"otlp-record-spans-metrics", true, true},
	} {
		spans := tc.spans
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
			}))
			defer srv.Close()
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{Endpoint: srv.URL, MaxQueue: 1 << 16, MaxQueueBytes: 1 << 30, Stats: &counts, Spans: spans,
				Metrics: tc.metrics, MetricsInterval: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, ev := range evs {
					exp.Record(ev)
				}
			}
			perEvent(b)
			exp.Close(context.Background())
			b.ReportMetric(float64(counts.Get(otlp.CountDropped))/float64(b.N*len(evs)), "dropped/event")
			if spans {
				b.ReportMetric(float64(counts.Get(otlp.CountSpansSent))/float64(b.N), "spans/run")
			}
			if tc.metrics && counts.Get(otlp.CountMetricsSent) == 0 {
				b.Fatal("no metrics export")
			}
		})
	}
	b.Run("otlp-encode", func(b *testing.B) {
		var enc otlp.Encoder
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range evs {
				if _, err := enc.Encode(ev); err != nil {
					b.Fatal(err)
				}
			}
		}
		perEvent(b)
	})
	b.Run("jsonl", func(b *testing.B) {
		s := sink.NewJSONL(io.Discard, 0)
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range evs {
				s.Record(ev)
			}
		}
		perEvent(b)
	})
}
