package stream

import (
	"bytes"
	"time"

	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// Counter tokens of the SSE reader.
const (
	TokenSSELineTooLong  = "sse.line_too_long"  // bytes of lines over the line cap
	TokenSSEEventTooLong = "sse.event_too_long" // data bytes over the event cap
	TokenSSEEventDropped = "sse.event_dropped"  // events not delivered because part of them was dropped (count)
	TokenSSEComment      = "sse.comment"        // comment lines, e.g. keep-alives (count)
	TokenSSEUnknownField = "sse.unknown_field"  // field lines with an unknown name (count)
	TokenSSEUnterminated = "sse.unterminated"   // events the stream ended inside, delivered anyway (count)
)

// SSEEvent is one Server-Sent Event.
type SSEEvent struct {
	// Event is the event type from the "event" field, or "" when the event
	// had none (the type is then "message" by the standard).
	Event string
	// ID is the last event ID at dispatch: like a browser, the reader keeps
	// an "id" value for the events that follow until another "id" line.
	ID string
	// Data is the event's data lines joined by "\n". From ParseSSE, the
	// data of an event with one data line is a slice of the body (callers
	// only read it); otherwise it is the caller's.
	Data []byte
	// At is when the event's last byte (the end of the empty line that
	// dispatched it) arrived.
	At time.Time
	// Offset is the stream offset of the event's first line, End the offset
	// just past the line end that dispatched it (a BOM counts in offsets).
	Offset, End int
	// Unterminated is set for an event the stream ended inside, before its
	// empty line; the standard discards such an event, the reader keeps it
	// so that a cut stream loses nothing.
	Unterminated bool
}

// SSEReader reads a text/event-stream body incrementally, following the
// WHATWG HTML "event stream interpretation": lines end in CRLF, LF or CR;
// a leading BOM is dropped; "data" lines accumulate; "event" names the
// event; "id" sets the last event ID; "retry" and unknown fields are
// ignored; lines starting with ":" are comments; an empty line dispatches
// the event if it has data. It is not safe for concurrent use.
type SSEReader struct {
	cfg   config
	emit  func(SSEEvent)
	lines lineSplitter
	bom   bomFilter
	at    time.Time

	data    []byte // the event's data lines so far, each with "\n" (see dataLen)
	dataLen int    // their length, also while data is still only in body
	event   string
	id      string
	// names are the event names seen most recently, so that a stream's
	// few names are each made into a string once rather than at every
	// change of name.
	names   memo.Strings
	evStart int  // offset of the current event's first line, or -1
	broken  bool // part of the current event was dropped
	// body, when set, is the whole stream (ParseSSE reads a complete
	// body): an event with one data line gets a slice of it as its data
	// instead of a copy, and its line is not copied into data at all until
	// a second data line comes. dataLines counts the current event's data
	// lines; firstData is where the first one's value is in body.
	body      []byte
	dataLines int
	firstData int
}

// NewSSE returns a reader that calls emit for each event.
func NewSSE(emit func(SSEEvent), opts ...Option) *SSEReader {
	r := new(SSEReader)
	r.init(emit, opts)
	return r
}

func (r *SSEReader) init(emit func(SSEEvent), opts []Option) {
	*r = SSEReader{cfg: newConfig(opts), emit: emit, evStart: -1}
	r.lines = lineSplitter{cr: true, max: r.cfg.maxLine}
}

// Feed consumes the next bytes of the stream, which arrived at at.
func (r *SSEReader) Feed(p []byte, at time.Time) {
	r.at = at
	p, dropped := r.bom.filter(p)
	if dropped {
		r.lines.pos, r.lines.start = len(utf8BOM), len(utf8BOM)
	}
	r.lines.feed(p, r)
}

// Close ends the stream: a last line without a line end is processed, and
// an event still holding data is delivered with Unterminated set.
func (r *SSEReader) Close() {
	if rest := r.bom.rest(); len(rest) > 0 {
		r.lines.feed(rest, r)
	}
	r.lines.flush(r)
	if r.dataLen > 0 || r.broken {
		r.cfg.rec.Count(TokenSSEUnterminated, 1)
		r.dispatch(r.lines.pos, true)
	}
}

func (r *SSEReader) line(b []byte, start, end int) {
	if len(b) == 0 {
		r.dispatch(end, false)
		return
	}
	if b[0] == ':' {
		r.cfg.rec.Count(TokenSSEComment, 1)
		return
	}
	if r.evStart < 0 {
		r.evStart = start
	}
	field, value := b, b[:0]
	if i := bytes.IndexByte(b, ':'); i >= 0 {
		field, value = b[:i], b[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if r.broken {
			return
		}
		if r.dataLen+len(value)+1 > r.cfg.maxEvent {
			r.cfg.rec.Count(TokenSSEEventTooLong, int64(r.dataLen+len(value)+1))
			r.broken = true
			r.data, r.dataLen = r.data[:0], 0
			return
		}
		r.dataLines++
		r.dataLen += len(value) + 1
		if r.body != nil {
			switch r.dataLines {
			case 1:
				// value is the end of the line, which starts at offset start.
				r.firstData = start + len(b) - len(value)
				return
			case 2:
				first := r.dataLen - len(value) - 2
				r.data = append(r.data, r.body[r.firstData:r.firstData+first]...)
				r.data = append(r.data, '\n')
			}
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	case "event":
		r.event = r.names.Get(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != r.id {
			r.id = string(value)
		}
	case "retry":
		// Reconnection delay: meaningless to an observer.
	default:
		r.cfg.rec.Count(TokenSSEUnknownField, 1)
	}
}

func (r *SSEReader) tooLong(n, start, end int) {
	r.cfg.rec.Count(TokenSSELineTooLong, int64(n))
	if r.evStart < 0 {
		r.evStart = start
	}
	r.broken = true
}

// eventData returns the current event's data lines joined by "\n" as the
// event's own: a slice of the body for one data line when the whole stream
// is at hand, else a copy the reader never changes again.
func (r *SSEReader) eventData() []byte {
	n := r.dataLen - 1 // every data line added a "\n"
	if r.body != nil && r.dataLines == 1 {
		start := r.firstData
		return r.body[start : start+n : start+n]
	}
	return append(make([]byte, 0, n), r.data[:n]...)
}

// dispatch ends the current event at the line end before offset end.
func (r *SSEReader) dispatch(end int, unterminated bool) {
	defer func() {
		r.data, r.dataLen = r.data[:0], 0
		r.dataLines = 0
		r.event = ""
		r.evStart = -1
		r.broken = false
	}()
	if r.broken {
		r.cfg.rec.Count(TokenSSEEventDropped, 1)
		return
	}
	if r.dataLen == 0 {
		return // no data: nothing to dispatch (a lone "event:" or "id:")
	}
	ev := SSEEvent{
		Event:        r.event,
		ID:           r.id,
		Data:         r.eventData(),
		At:           r.at,
		Offset:       r.evStart,
		End:          end,
		Unterminated: unterminated,
	}
	r.emit(ev)
}
