// Package sink owns event exporters. JSONL writes one event per line to a
// file or stream; Memory keeps events for tests and the conformance suite.
package sink

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// JSONL writes events as JSON lines. It is safe for concurrent use.
type JSONL struct {
	mu  sync.Mutex
	w   *bufio.Writer
	enc *json.Encoder
	err error
	n   int64
	// within bounds how long a written event may wait in the buffer (0:
	// until Flush); pending is set while a flush is scheduled.
	within  time.Duration
	pending bool
}

// TailLatency is how long record lets an event wait before it reaches the
// output file: short enough for a live tail, long enough that a burst of
// events is one write.
const TailLatency = 100 * time.Millisecond

// NewJSONL returns a JSONL sink writing to w. With within > 0 every event
// reaches w at most that long after it is recorded (a live tail of the
// file sees it), flushed together with the events around it rather than
// one write per event; with 0 events wait until Flush or a full buffer.
func NewJSONL(w io.Writer, within time.Duration) *JSONL {
	bw := bufio.NewWriterSize(w, 64<<10)
	return &JSONL{w: bw, enc: json.NewEncoder(bw), within: within}
}

// Record writes one event.
func (s *JSONL) Record(ev *oisp.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	// The encoder writes the line (event and newline) only once the whole
	// event is encoded: a failed event leaves nothing half written.
	if err := s.enc.Encode(ev); err != nil {
		s.err = fmt.Errorf("encode or write %s event: %w", ev.EventType, err)
		return
	}
	s.n++
	if s.within > 0 && !s.pending {
		s.pending = true
		time.AfterFunc(s.within, s.flushPending)
	}
}

// flushPending is the scheduled flush.
func (s *JSONL) flushPending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = false
	if err := s.w.Flush(); err != nil && s.err == nil {
		s.err = fmt.Errorf("write events: %w", err)
	}
}

// Flush writes buffered events and returns the first error seen.
func (s *JSONL) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Flush(); err != nil && s.err == nil {
		s.err = fmt.Errorf("write events: %w", err)
	}
	return s.err
}

// Count returns the number of events written.
func (s *JSONL) Count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Memory keeps events in memory. It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	events []*oisp.Event
}

// Record keeps ev.
func (m *Memory) Record(ev *oisp.Event) {
	m.mu.Lock()
	m.events = append(m.events, ev)
	m.mu.Unlock()
}

// Events returns the events recorded so far.
func (m *Memory) Events() []*oisp.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*oisp.Event(nil), m.events...)
}

// Tee sends every event to each recorder in turn.
type Tee []interface{ Record(*oisp.Event) }

// Record sends ev to every recorder.
func (t Tee) Record(ev *oisp.Event) {
	for _, r := range t {
		r.Record(ev)
	}
}
