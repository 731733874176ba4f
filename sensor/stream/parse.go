package stream

import (
	"bytes"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// Item is one NDJSON line or JSON array element of a complete body.
type Item struct {
	// Data is the line or element. It aliases the body passed in.
	Data []byte
	// Offset and End delimit it (End excludes any line end) in the body.
	Offset, End int
	// At is when its last byte arrived, from the body's arrival marks.
	At time.Time
}

// maxPresizedEvents bounds the events ParseSSE makes room for before it
// has seen them.
const maxPresizedEvents = 512

// ParseSSE reads a complete event-stream body and stamps each event with
// the arrival time of its last byte (the end of its dispatching empty line)
// according to marks; see httpmsg.Body.TimeAt. With no marks At is zero.
func ParseSSE(body []byte, marks []httpmsg.Mark, opts ...Option) []SSEEvent {
	// The reader, the arrival walk and the events are one allocation
	// (sseParse) and the events' slice another: a body's fixed cost.
	p := &sseParse{when: arrival{marks: marks}}
	// An event ends at an empty line: in the usual LF-only stream the
	// count of "\n\n" sizes the slice at once (CRLF streams grow it).
	// Empty lines need not end events, so the guess is bounded.
	p.events = make([]SSEEvent, 0, min(bytes.Count(body, []byte("\n\n"))+1, maxPresizedEvents))
	p.r.init(p.add, opts)
	p.r.body = body
	p.r.Feed(body, time.Time{})
	p.r.Close()
	if len(p.events) == 0 {
		return nil // as before the slice was sized
	}
	return p.events
}

// sseParse is ParseSSE's state.
type sseParse struct {
	r      SSEReader
	when   arrival
	events []SSEEvent
}

func (p *sseParse) add(ev SSEEvent) {
	ev.At = p.when.at(max(ev.End-1, 0))
	p.events = append(p.events, ev)
}

// ParseNDJSON reads a complete newline-delimited JSON body; see ParseSSE
// for At.
func ParseNDJSON(body []byte, marks []httpmsg.Mark, opts ...Option) []Item {
	var items []Item
	when := arrival{marks: marks}
	r := newNDJSON(func(line []byte, start, end int, _ time.Time) {
		stop := start + len(line) // the line, without CR or LF
		items = append(items, Item{Data: body[start:stop:stop], Offset: start, End: stop, At: when.at(max(end-1, 0))})
	}, opts)
	r.Feed(body, time.Time{})
	r.Close()
	return items
}

// ParseJSONArray reads a complete JSON-array body element by element; see
// ParseSSE for At.
func ParseJSONArray(body []byte, marks []httpmsg.Mark, opts ...Option) []Item {
	var items []Item
	when := arrival{marks: marks}
	r := newJSONArray(func(_ []byte, start, end int, _ time.Time) {
		items = append(items, Item{Data: body[start:end:end], Offset: start, End: end, At: when.at(max(end-1, 0))})
	}, opts)
	r.Feed(body, time.Time{})
	r.Close()
	return items
}

// ParseSSEBody is ParseSSE over an httpmsg.Body.
func ParseSSEBody(b *httpmsg.Body, opts ...Option) []SSEEvent {
	return ParseSSE(b.Data, b.Marks, opts...)
}

// ParseNDJSONBody is ParseNDJSON over an httpmsg.Body.
func ParseNDJSONBody(b *httpmsg.Body, opts ...Option) []Item {
	return ParseNDJSON(b.Data, b.Marks, opts...)
}

// ParseJSONArrayBody is ParseJSONArray over an httpmsg.Body.
func ParseJSONArrayBody(b *httpmsg.Body, opts ...Option) []Item {
	return ParseJSONArray(b.Data, b.Marks, opts...)
}
