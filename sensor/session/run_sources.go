package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// NamedSource is a capture source with the name status output and errors
// use for it ("capture proxy", "extension socket", "eBPF").
type NamedSource struct {
	Name   string
	Source flow.Source
}

// RunSources runs several sources at once into the session's pipeline, as
// `oisp-sensor record` does with the capture proxy, the extension socket
// and eBPF. Flow ids only need to be unique per source: every source in
// this tree prefixes its own ("px", "sock", "ebpf-").
//
// A source that stops early (a failed attach, a listener error) is
// reported through exited as soon as it stops, so the others keep
// capturing; exited may be nil. RunSources returns when every source has
// returned (normally because ctx ended), after flushing the flows still
// open into events. The error joins the failures of the sources, each
// prefixed by its name; a source that returns context.Canceled has not
// failed.
func (s *Session) RunSources(ctx context.Context, srcs []NamedSource, exited func(name string, err error)) error {
	if len(srcs) == 0 {
		return errors.New("session: no capture source")
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := src.Source.Run(ctx, s.Pipeline)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", src.Name, err)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			if exited != nil {
				exited(src.Name, err)
			}
		}()
	}
	wg.Wait()
	s.Pipeline.Flush(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
	return errors.Join(errs...)
}

// Summary is the run so far in the numbers a person watching a sensor
// wants: how much traffic it saw, what came out, and what was lost.
type Summary struct {
	FlowsOpened int64
	FlowsOpen   int
	Events      int64
	// EventsByType counts events per event_type ("ai.request" → 3).
	EventsByType map[string]int64
	Bytes        int64 // plaintext bytes captured
	// Dropped is every byte lost on the way: by the capture source (queue
	// overflow, a capture helper that could not reach the sensor), or
	// arriving for a flow the sensor did not know.
	Dropped         int64
	Exchanges       int64
	PartialExchange int64
	DecodeErrors    int64
	// Exporters counts, per exporter (kafka, otlp, web), the events it
	// delivered and lost, from its sink.<name>.* counters.
	Exporters map[string]ExporterSummary
}

// ExporterSummary is what one exporter delivered and lost.
type ExporterSummary struct {
	Sent, Dropped, Errors int64
}

// Summary reads the session's counters.
func (s *Session) Summary() Summary {
	snap := s.Stats.Snapshot()
	sum := Summary{
		FlowsOpened:     snap["flows.opened"],
		FlowsOpen:       s.Pipeline.OpenFlows(),
		Bytes:           snap["bytes.captured"],
		Dropped:         snap["bytes.lost_by_source"] + snap["bytes.dropped"],
		Exchanges:       snap["http.exchanges"],
		PartialExchange: snap["http.exchanges_partial"],
		DecodeErrors:    snap["ai.decode_errors"],
		EventsByType:    map[string]int64{},
	}
	for k, v := range snap {
		if t, ok := strings.CutPrefix(k, "events."); ok {
			sum.Events += v
			sum.EventsByType[t] = v
		}
		if rest, ok := strings.CutPrefix(k, "sink."); ok {
			name, what, _ := strings.Cut(rest, ".")
			if sum.Exporters == nil {
				sum.Exporters = map[string]ExporterSummary{}
			}
			e := sum.Exporters[name]
			switch what {
			case "sent":
				e.Sent = v
			case "dropped":
				e.Dropped = v
			case "errors":
				e.Errors = v
			}
			sum.Exporters[name] = e
		}
	}
	return sum
}
