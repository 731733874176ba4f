package web_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/sensor/sink/web"
)

// allFixtureEvents replays every fixture into memory.
func allFixtureEvents(b *testing.B) []*oisp.Event {
	paths, err := filepath.Glob(filepath.Join("..", "..", "..", "fixtures", "*", "*", "cassette.yaml"))
	if err != nil || len(paths) == 0 {
		b.Fatalf("no fixtures: %v", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.ToSlash(p), "/cassette.yaml")[len("../../../fixtures/"):]
	}
	mem := &sink.Memory{}
	replayFixtures(b, mem, names...)
	return mem.Events()
}

// BenchmarkRecord records every fixture event into the web sink with no
// stream open and with 10 real HTTP clients reading the stream, beside
// the JSONL sink writing the same events.
func BenchmarkRecord(b *testing.B) {
	evs := allFixtureEvents(b)
	perEvent := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	}
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
	b.Run("web-0-clients", func(b *testing.B) {
		s := web.New(web.Config{})
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range evs {
				s.Record(ev)
			}
		}
		perEvent(b)
	})
	b.Run("web-10-clients", func(b *testing.B) {
		srv, st := start(b, web.Config{ClientQueue: 1 << 15})
		for range 10 {
			resp, err := http.Get(srv.URL() + "api/events")
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		waitFor(b, "10 streams", func() bool { return srv.Snapshot().Clients == 10 })
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range evs {
				srv.Record(ev)
			}
			// Record outruns the ten streams on two cores; waiting for
			// them to catch up measures the steady state with every
			// client kept (the wait is in the time: the streams' writing
			// shares the cores with Record).
			for srv.Snapshot().Backlog > 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		perEvent(b)
		b.ReportMetric(float64(st.Get(web.TokenClientDropped)), "clients-dropped")
	})
}
