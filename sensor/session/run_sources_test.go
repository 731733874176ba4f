package session

import (
	"maps"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// TestSummaryExporters: counters given to the session reach its summary,
// each exporter's sink.<name>.* counters under its name.
func TestSummaryExporters(t *testing.T) {
	st := &stats.Counters{}
	s, err := New(Options{Out: &sink.Memory{}, Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Summary().Exporters; got != nil {
		t.Errorf("exporters %+v before any counted", got)
	}
	st.Count("sink.kafka.sent", 3)
	st.Count("sink.kafka.dropped", 1)
	st.Count("sink.otlp.errors", 2)
	got := s.Summary().Exporters
	want := map[string]ExporterSummary{"kafka": {Sent: 3, Dropped: 1}, "otlp": {Errors: 2}}
	if !maps.Equal(got, want) {
		t.Errorf("exporters %+v, want %+v", got, want)
	}
}
