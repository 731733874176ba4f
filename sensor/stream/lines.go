package stream

import "bytes"

// lineSplitter cuts a byte stream into lines, fed in pieces split anywhere.
// A line's end offset is just past the first byte of its terminator, so the
// offsets do not depend on where a CRLF was split.
type lineSplitter struct {
	cr  bool // a bare CR ends a line too (SSE); otherwise only LF does
	max int

	buf    []byte // the current line so far, when it spans pieces
	over   bool   // the current line is longer than max and is being dropped
	overN  int    // its length so far
	pos    int    // stream offset of the next byte
	start  int    // stream offset of the current line's first byte
	skipLF bool   // the last line ended in CR; an LF right after is part of it
}

// lineHandler receives the lines of a lineSplitter. It is the reader
// itself rather than two funcs, so that a reader costs no method-value
// allocations when it is made.
type lineHandler interface {
	// line receives a complete line (without its terminator), valid only
	// during the call, with its start offset and the offset past its
	// terminator.
	line(line []byte, start, end int)
	// tooLong receives the length of a dropped line.
	tooLong(n, start, end int)
}

// feed splits p, calling h for each line that ends in p.
func (l *lineSplitter) feed(p []byte, h lineHandler) {
	i := 0
	if l.skipLF && len(p) > 0 {
		l.skipLF = false
		if p[0] == '\n' {
			i = 1
			l.pos++
			l.start = l.pos
		}
	}
	nextCR, nextLF := -1, -1 // absolute positions in p; -1: not searched yet
	for i < len(p) {
		if nextLF < i {
			if k := bytes.IndexByte(p[i:], '\n'); k >= 0 {
				nextLF = i + k
			} else {
				nextLF = len(p)
			}
		}
		j := nextLF
		if l.cr {
			if nextCR < i {
				if k := bytes.IndexByte(p[i:], '\r'); k >= 0 {
					nextCR = i + k
				} else {
					nextCR = len(p)
				}
			}
			j = min(j, nextCR)
		}
		if j == len(p) {
			l.add(p[i:])
			l.pos += len(p) - i
			return
		}
		seg := p[i:j]
		end := l.pos + len(seg) + 1
		l.emit(seg, end, h)
		l.pos, l.start = end, end
		i = j + 1
		if l.cr && p[j] == '\r' {
			if i == len(p) {
				l.skipLF = true
			} else if p[i] == '\n' {
				i++
				l.pos++
				l.start = l.pos
			}
		}
	}
}

// add appends part of a line that continues in a later piece.
func (l *lineSplitter) add(seg []byte) {
	if l.over {
		l.overN += len(seg)
		return
	}
	if len(l.buf)+len(seg) > l.max {
		l.over, l.overN = true, len(l.buf)+len(seg)
		l.buf = l.buf[:0]
		if cap(l.buf) > 64<<10 {
			l.buf = nil // do not keep a huge buffer for a line we drop
		}
		return
	}
	l.buf = append(l.buf, seg...)
}

// emit delivers the current line, whose last piece is seg.
func (l *lineSplitter) emit(seg []byte, end int, h lineHandler) {
	switch {
	case l.over:
		n := l.overN + len(seg)
		l.over, l.overN = false, 0
		h.tooLong(n, l.start, end)
	case len(l.buf)+len(seg) > l.max:
		n := len(l.buf) + len(seg)
		l.buf = l.buf[:0]
		h.tooLong(n, l.start, end)
	case len(l.buf) > 0:
		l.buf = append(l.buf, seg...)
		h.line(l.buf, l.start, end)
		l.buf = l.buf[:0]
	default:
		h.line(seg, l.start, end)
	}
}

// flush delivers a last line that has no terminator. It reports whether
// there was one.
func (l *lineSplitter) flush(h lineHandler) bool {
	if !l.over && len(l.buf) == 0 {
		return false
	}
	l.emit(nil, l.pos, h)
	l.start = l.pos
	return true
}

// utf8BOM is the byte order mark a stream may start with.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// bomFilter drops a UTF-8 byte order mark at the start of a stream, holding
// up to two bytes until it can tell.
type bomFilter struct {
	done bool
	held []byte
}

// filter returns the bytes of p to process and whether a BOM was just
// dropped (its three bytes still count in stream offsets).
func (b *bomFilter) filter(p []byte) (out []byte, dropped bool) {
	if b.done {
		return p, false
	}
	orig, fromEarlier := p, len(b.held) > 0
	for len(p) > 0 && len(b.held) < len(utf8BOM) {
		b.held = append(b.held, p[0])
		p = p[1:]
		if !bytes.HasPrefix(utf8BOM, b.held) {
			b.done = true
			if !fromEarlier {
				// Every held byte came from p: hand p back as it is
				// rather than copying it.
				b.held = nil
				return orig, false
			}
			out := append(b.held, p...)
			b.held = nil
			return out, false
		}
	}
	if len(b.held) == len(utf8BOM) {
		b.done, b.held = true, nil
		return p, true
	}
	return nil, false
}

// rest returns held bytes at the end of the stream (a partial BOM).
func (b *bomFilter) rest() []byte {
	h := b.held
	b.done, b.held = true, nil
	return h
}
