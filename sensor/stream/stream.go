// Package stream owns the readers for streamed response bodies: Server-Sent
// Events, newline-delimited JSON and JSON arrays delivered element by
// element. Each reader is incremental — Feed it bytes as they arrive, in
// pieces split anywhere, and it calls back as soon as an event, line or
// element is complete — and does no I/O.
//
// Provider decoders mostly use the Parse helpers, which run a reader over a
// complete httpmsg.Body and stamp each item with the arrival time of its
// last byte, so time to first token comes from capture time, not decode
// time.
//
// Every dropped or malformed byte is counted on a stats.Recorder under an
// "sse.", "ndjson." or "jsonarray." token.
package stream

import (
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Default caps. A single SSE event of an OpenAI Responses stream
// (response.completed) repeats the whole response, so they are generous;
// they exist so that a stream without line ends cannot grow without bound.
const (
	DefaultMaxLine    = 4 << 20 // SSE and NDJSON line
	DefaultMaxEvent   = 8 << 20 // SSE event data
	DefaultMaxElement = 8 << 20 // JSON array element
)

// Option configures a reader.
type Option func(*config)

type config struct {
	rec        stats.Recorder
	maxLine    int
	maxEvent   int
	maxElement int
}

func newConfig(opts []Option) config {
	c := config{rec: stats.Discard{}, maxLine: DefaultMaxLine, maxEvent: DefaultMaxEvent, maxElement: DefaultMaxElement}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithRecorder counts dropped and malformed input on rec.
func WithRecorder(rec stats.Recorder) Option {
	return func(c *config) {
		if rec != nil {
			c.rec = rec
		}
	}
}

// WithMaxLine caps one SSE or NDJSON line (without its line end). Longer
// lines are dropped and counted.
func WithMaxLine(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxLine = n
		}
	}
}

// WithMaxEvent caps the data of one SSE event. A longer event is dropped
// and counted.
func WithMaxEvent(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxEvent = n
		}
	}
}

// WithMaxElement caps one JSON array element. A longer element is dropped
// and counted.
func WithMaxElement(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxElement = n
		}
	}
}

// arrival answers "when did the byte at offset off arrive" for offsets
// asked in increasing order, walking the marks once.
type arrival struct {
	marks []httpmsg.Mark
	i     int
}

func (a *arrival) at(off int) time.Time {
	for a.i < len(a.marks)-1 && off >= a.marks[a.i].Offset {
		a.i++
	}
	if len(a.marks) == 0 {
		return time.Time{}
	}
	return a.marks[a.i].At
}
