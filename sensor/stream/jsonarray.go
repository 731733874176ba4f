package stream

import (
	"bytes"
	"time"
)

// Counter tokens of the JSON array reader.
const (
	TokenJSONNotArray        = "jsonarray.not_array"          // bytes of a body that is not a JSON array
	TokenJSONElementTooLong  = "jsonarray.element_too_long"   // bytes of elements over the element cap
	TokenJSONMalformed       = "jsonarray.malformed"          // bytes that cannot start an element (count of bytes)
	TokenJSONMissingComma    = "jsonarray.missing_comma"      // elements not separated by a comma (count)
	TokenJSONTrailingGarbage = "jsonarray.trailing_garbage"   // non-space bytes after the closing bracket
	TokenJSONUnterminated    = "jsonarray.unterminated"       // arrays the stream ended inside (count)
	TokenJSONIncomplete      = "jsonarray.incomplete_element" // bytes of an element cut off by the end of the stream
)

type jsonState uint8

const (
	jsBefore   jsonState = iota // before the opening bracket
	jsExpect                    // expecting an element or the closing bracket
	jsElem                      // inside an element
	jsAfter                     // after an element: expecting a comma or the closing bracket
	jsDone                      // after the closing bracket
	jsNotArray                  // the body is not an array
)

// JSONArrayReader reads a body holding one JSON array, such as Gemini's
// streamGenerateContent without alt=sse, and delivers each top-level
// element as soon as its last byte arrives. It tracks strings, escapes and
// nesting depth incrementally but does not validate the JSON: consumers
// parse each element. It is not safe for concurrent use.
type JSONArrayReader struct {
	cfg  config
	emit func(elem []byte, start, end int, at time.Time)
	bom  bomFilter
	st   jsonState
	pos  int       // stream offset of the next byte
	at   time.Time // arrival of the last piece

	// The element being read.
	start int    // its stream offset
	buf   []byte // its bytes so far when it spans pieces
	kind  byte   // 0 before its first byte, 'c' object or array, '"' string, 's' scalar
	depth int
	inStr bool
	esc   bool
	over  bool // longer than the cap: being skipped
	n     int  // its length so far
}

// NewJSONArray returns a reader that calls emit for each top-level element,
// without surrounding whitespace. elem is only valid during the call: copy
// it to keep it.
func NewJSONArray(emit func(elem []byte, at time.Time), opts ...Option) *JSONArrayReader {
	return newJSONArray(func(elem []byte, _, _ int, at time.Time) { emit(elem, at) }, opts)
}

func newJSONArray(emit func(elem []byte, start, end int, at time.Time), opts []Option) *JSONArrayReader {
	return &JSONArrayReader{cfg: newConfig(opts), emit: emit}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

// isValueStart reports whether c can begin a JSON value.
func isValueStart(c byte) bool {
	switch c {
	case '{', '[', '"', '-', 't', 'f', 'n':
		return true
	}
	return '0' <= c && c <= '9'
}

// Feed consumes the next bytes of the body, which arrived at at.
func (r *JSONArrayReader) Feed(p []byte, at time.Time) {
	r.at = at
	p, dropped := r.bom.filter(p)
	if dropped {
		r.pos = len(utf8BOM)
	}
	i := 0
	for i < len(p) {
		c := p[i]
		switch r.st {
		case jsBefore:
			switch {
			case isSpace(c):
				i++
			case c == '[':
				r.st = jsExpect
				i++
			default:
				r.st = jsNotArray
			}
		case jsNotArray:
			r.cfg.rec.Count(TokenJSONNotArray, int64(len(p)-i))
			i = len(p)
		case jsExpect:
			switch {
			case isSpace(c):
				i++
			case c == ']':
				r.st = jsDone // also ends "[1,]", leniently
				i++
			case isValueStart(c):
				r.st = jsElem
				r.start, r.kind, r.depth, r.inStr, r.esc, r.over, r.n = r.pos+i, 0, 0, false, false, false, 0
				r.buf = r.buf[:0]
			default: // a stray comma or junk
				r.cfg.rec.Count(TokenJSONMalformed, 1)
				i++
			}
		case jsElem:
			n, done := r.scan(p[i:])
			seg := p[i : i+n]
			i += n
			if !done {
				r.keep(seg)
				continue
			}
			r.finish(seg, r.pos+i, at)
			r.st = jsAfter
		case jsAfter:
			switch {
			case isSpace(c):
				i++
			case c == ',':
				r.st = jsExpect
				i++
			case c == ']':
				r.st = jsDone
				i++
			default:
				r.cfg.rec.Count(TokenJSONMissingComma, 1)
				r.st = jsExpect
			}
		case jsDone:
			if !isSpace(c) {
				r.cfg.rec.Count(TokenJSONTrailingGarbage, 1)
			}
			i++
		}
	}
	r.pos += len(p)
}

// scan advances through the current element. It returns how many bytes of
// q belong to it and whether it ended there. State lives in locals during
// the loop; string contents are skipped with IndexByte.
func (r *JSONArrayReader) scan(q []byte) (n int, done bool) {
	kind, depth, inStr, esc := r.kind, r.depth, r.inStr, r.esc
	defer func() { r.kind, r.depth, r.inStr, r.esc = kind, depth, inStr, esc }()
	k := 0
	if kind == 0 {
		switch q[0] {
		case '{', '[':
			kind, depth = 'c', 1
		case '"':
			kind, inStr = '"', true
		default:
			kind = 's'
		}
		k = 1
	}
	nextQuote, nextEsc := -1, -1 // positions in q; -1: not searched yet
	for k < len(q) {
		if inStr {
			if esc {
				esc = false
				k++
				continue
			}
			if nextQuote < k {
				nextQuote = indexFrom(q, k, '"')
			}
			if nextEsc < k {
				nextEsc = indexFrom(q, k, '\\')
			}
			j := min(nextQuote, nextEsc)
			if j == len(q) {
				return len(q), false
			}
			k = j + 1
			if q[j] == '\\' {
				esc = true
				continue
			}
			inStr = false
			if kind == '"' {
				return k, true
			}
			continue
		}
		c := q[k]
		k++
		if kind == 's' {
			if isSpace(c) || c == ',' || c == ']' || c == '}' {
				return k - 1, true
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return k, true
			}
		}
	}
	return len(q), false
}

// indexFrom returns the position of the first c in q at or after from, or
// len(q).
func indexFrom(q []byte, from int, c byte) int {
	if i := bytes.IndexByte(q[from:], c); i >= 0 {
		return from + i
	}
	return len(q)
}

// keep holds part of an element that continues in a later piece.
func (r *JSONArrayReader) keep(seg []byte) {
	r.n += len(seg)
	if r.over {
		return
	}
	if r.n > r.cfg.maxElement {
		r.over = true
		r.buf = r.buf[:0]
		if cap(r.buf) > 64<<10 {
			r.buf = nil
		}
		return
	}
	r.buf = append(r.buf, seg...)
}

// finish delivers the element whose last piece is seg, ending at offset end.
func (r *JSONArrayReader) finish(seg []byte, end int, at time.Time) {
	r.n += len(seg)
	switch {
	case r.over || r.n > r.cfg.maxElement:
		r.cfg.rec.Count(TokenJSONElementTooLong, int64(r.n))
	case len(r.buf) > 0:
		r.buf = append(r.buf, seg...)
		r.emit(r.buf, r.start, end, at)
	default:
		r.emit(seg, r.start, end, at)
	}
	r.buf = r.buf[:0]
	r.over = false
}

// Close ends the body. A number or literal at the very end is complete and
// delivered; an unclosed object, array or string is dropped and counted; an
// array never closed is counted.
func (r *JSONArrayReader) Close() {
	at := r.at
	if rest := r.bom.rest(); len(rest) > 0 {
		r.Feed(rest, at)
	}
	if r.st == jsElem {
		if r.kind == 's' {
			r.finish(nil, r.pos, at)
		} else {
			r.cfg.rec.Count(TokenJSONIncomplete, int64(r.n))
			r.buf = r.buf[:0]
		}
		r.st = jsAfter
	}
	if r.st == jsExpect || r.st == jsAfter {
		r.cfg.rec.Count(TokenJSONUnterminated, 1)
	}
	r.st = jsDone
}
