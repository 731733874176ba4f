package http1

import (
	"bytes"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// state is where a direction's parser stands.
type state uint8

const (
	stStart     state = iota // before a start line (skipping empty lines)
	stOverflow               // in a header or trailer block over the cap
	stBodyLen                // in a Content-Length body
	stChunkSize              // expecting a chunk-size line
	stChunkData              // in a chunk's data
	stChunkEnd               // expecting the CRLF after a chunk's data
	stTrailer                // in the trailer block after the last chunk
	stBodyClose              // in a body that ends when the direction ends
	stResync                 // skipping bytes until a plausible start line
	stHeld                   // client: waiting to learn whether a switch happened
	stEnded                  // the direction ended
)

// maxOverflowLine is how much of a line is kept while skipping an
// oversized header block: enough for the framing fields.
const maxOverflowLine = 256

// side is the parser for one direction of the flow.
type side struct {
	d    *Decoder
	dir  flow.Direction
	st   state
	seen bool // a byte arrived in this direction
	fin  bool // the direction ended

	buf   []byte    // header block, chunk-size line, resync window or held bytes
	bufAt time.Time // arrival of buf's first byte
	from  int       // resume offset for searches in buf
	// lineOK: the first line of the header block in buf is complete and
	// parses, so it need not be checked again as bytes arrive.
	lineOK bool

	ex        *exchange     // exchange of the message being parsed
	body      *httpmsg.Body // its body
	transfer  []string      // transfer codings besides chunked
	remaining int64         // bytes left of a Content-Length body or chunk
	// pieces hold a chunked or close-delimited body as it arrives, slices
	// of the input (which the decoder owns), until the message ends and
	// they are joined into body.Data: the length is unknown until then,
	// and growing one buffer would copy it again and again and overshoot.
	// pending counts their bytes.
	pieces  [][]byte
	pending int
	sawCR   bool      // stChunkEnd: the CR has been seen
	lastAt  time.Time // arrival of the last byte consumed

	resyncTok string
	replay    []byte // bytes to parse before the rest of the input

	ov *overflow // while skipping an oversized block (rare: kept out of line)
}

// overflow is the state of skipping an oversized header or trailer block.
type overflow struct {
	trailer bool
	kept    string // start line and fields that fitted under the cap
	keptAt  time.Time
	line    []byte // current line, up to maxOverflowLine bytes
	long    bool   // current line was longer than that
	dropped int64
	framing []string // "Name: value" framing fields seen past the cap
}

func (s *side) isClient() bool { return s.dir == flow.ClientToServer }

// feed consumes p. Each step consumes at least one byte or changes state.
func (s *side) feed(p []byte, at time.Time) {
	s.seen = true
	if len(p) > 0 {
		s.lastAt = at
	}
	for len(p) > 0 {
		if s.d.switched {
			s.d.forward(flow.Chunk{Dir: s.dir, Data: p, At: at})
			return
		}
		var n int
		switch s.st {
		case stStart:
			n = s.start(p, at)
		case stOverflow:
			n = s.overflow(p, at)
		case stBodyLen:
			n = s.bodyBytes(p, at)
		case stChunkData:
			n = s.chunkData(p, at)
		case stChunkSize:
			n = s.chunkSize(p, at)
		case stChunkEnd:
			n = s.chunkEnd(p)
		case stTrailer:
			n = s.trailer(p, at)
		case stBodyClose:
			s.appendBody(p, at)
			n = len(p)
		case stResync:
			n = s.resync(p)
		case stHeld:
			n = s.hold(p, at)
		case stEnded:
			s.d.rec.Count(TokenAfterFin, int64(len(p)))
			return
		}
		p = p[n:]
		if s.replay != nil {
			p = append(s.replay, p...)
			s.replay = nil
		}
	}
}

// start accumulates a start line and header block.
func (s *side) start(p []byte, at time.Time) int {
	lim := s.d.lim.MaxHeaderBytes
	if len(s.buf) == 0 {
		s.lineOK = false
		// Empty lines before a message are ignored (RFC 9112 2.2).
		i := 0
		for i < len(p) && (p[i] == '\r' || p[i] == '\n') {
			i++
		}
		if i > 0 {
			return i
		}
		s.bufAt = at
		if e := s.startInPlace(p, at); e > 0 {
			return e
		}
	}
	old := len(s.buf)
	take := min(len(p), lim+3-old)
	s.buf = append(s.buf, p[:take]...)
	if !s.lineOK {
		// Only the first line is checked; until it ends, old bytes hold
		// no line end.
		if bytes.IndexByte(s.buf[old:], '\n') >= 0 {
			s.lineOK = true
		}
		if !s.plausible(s.buf) {
			s.lineOK = false
			s.enterResync(TokenBadStartLine, true)
			return take
		}
	}
	if e := blockEnd(s.buf, max(0, old-2)); e >= 0 {
		s.lineOK = false
		s.block(s.buf[:e], at, true)
		s.buf = s.buf[:0]
		return e - old
	}
	if len(s.buf) > lim {
		s.lineOK = false
		s.beginOverflow(false)
	}
	return take
}

// startInPlace reads a header block that arrives whole in p where it is,
// and returns its length; 0 when p does not hold a whole block under the
// cap (it is then gathered in s.buf). The decoder owns its input
// (flow.Chunk data is the receiver's, and the decoder's own buffers are
// never written again once fed), so its bytes never change and one string
// over them serves the start-line check, every field name and every value
// without a copy. Blocks gathered in s.buf, which is reused, are copied
// (block). The fields are parsed as the block's end is looked for, in one
// pass over its lines.
func (s *side) startInPlace(p []byte, at time.Time) int {
	lim := s.d.lim.MaxHeaderBytes
	str := unsafe.String(&p[0], min(len(p), lim+3))
	l, fields, ok := s.parseStart(str)
	if !ok {
		e := blockEnd(p, 0)
		if e < 0 || e > lim+3 {
			return 0
		}
		s.buf = append(s.buf, p[:e]...)
		s.enterResync(TokenBadStartLine, true)
		return e
	}
	var gathered [maxStackFields]httpmsg.Field
	fs, bad, n := parseFields(fields, gathered[:0])
	if n < 0 {
		return 0
	}
	e := len(str) - len(fields) + n
	s.begin(l, fs, bad, p[:e], at, true)
	return e
}

// plausible reports whether b, the start of a message, can be one: its
// first line parses, or while incomplete could still parse.
func (s *side) plausible(b []byte) bool {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if s.isClient() {
			return plausibleRequestStart(b)
		}
		return plausibleStatusStart(b)
	}
	return s.plausibleBlock(string(b[:i]))
}

// plausibleBlock is plausible for a block that holds its whole first line.
func (s *side) plausibleBlock(b string) bool {
	_, _, ok := s.parseStart(b)
	return ok
}

// startLine is the parsed first line of a message: method, target and
// proto of a request, or proto, status and reason of a response.
type startLine struct {
	method, target, proto string
	status                int
	reason                string
}

// parseStart parses the first line of block, which holds at least that
// whole line, as this side's start line, and returns the field lines that
// follow it.
func (s *side) parseStart(block string) (l startLine, fields string, ok bool) {
	nl := strings.IndexByte(block, '\n')
	if nl < 0 {
		nl = len(block)
	} else {
		fields = block[nl+1:]
	}
	first := trimCR(block[:nl])
	if s.isClient() {
		l.method, l.target, l.proto, ok = parseRequestLine(first)
	} else {
		l.proto, l.status, l.reason, ok = parseStatusLine(first)
	}
	return l, fields, ok
}

// block handles a header block whose start line is known to parse. b may
// alias buffers; nothing keeps it. complete is false when the block was cut
// off (flow ended or bytes lost) and only its whole lines are present.
func (s *side) block(b []byte, at time.Time, complete bool) {
	str := string(b)
	l, fields, _ := s.parseStart(str)
	var gathered [maxStackFields]httpmsg.Field
	fs, bad, _ := parseFields(fields, gathered[:0])
	s.begin(l, fs, bad, b, at, complete)
}

// begin starts the message of a header block (b, whose start line parsed
// as l, and whose fields are fs, with bad bytes of lines that are not
// fields). fs may be on the caller's stack: the message keeps a copy.
func (s *side) begin(l startLine, fs httpmsg.Header, bad int, b []byte, at time.Time, complete bool) {
	if s.isClient() {
		if l.method == "PRI" && l.target == "*" && l.proto == "HTTP/2.0" {
			s.buf = s.buf[:0]
			s.d.preface(bytes.Clone(b), s.bufAt)
			return
		}
		s.beginRequest(l.method, l.target, l.proto, fs, at, complete)
	} else {
		s.beginResponse(l.proto, l.status, l.reason, fs, at, complete)
	}
	if bad > 0 {
		s.d.rec.Count(TokenBadHeaderLine, int64(bad))
	}
}

// maxStackFields is how many fields a header block's parse gathers on the
// stack; a block with more grows them on the heap first. (The block's size
// is not known until its end is found, and finding it first would cost a
// pass over its lines: the fields are gathered and copied once, into the
// message's header.)
const maxStackFields = 32

// requestHeader copies fs, the fields of e's request, into the start of
// e's room for fields when they fit (or a header of their own), and leaves
// the rest of the room to the response header (e.spare).
func (d *Decoder) requestHeader(e *exchange, fs httpmsg.Header) httpmsg.Header {
	n := len(fs)
	var h httpmsg.Header
	if n <= len(e.fields) {
		h = e.fields[:n:n]
		e.spare = e.fields[n:n:len(e.fields)]
	} else {
		h = make(httpmsg.Header, n)
	}
	copy(h, fs)
	return h
}

// responseHeader copies fs, the fields of e's response, into e's spare
// room when they fit, or a header of their own.
func (d *Decoder) responseHeader(e *exchange, fs httpmsg.Header) httpmsg.Header {
	n := len(fs)
	h := e.spare
	e.spare = nil
	if cap(h) < n {
		h = make(httpmsg.Header, 0, n)
	}
	h = h[:n:n]
	copy(h, fs)
	return h
}

// exchangeFields is the room for fields in an exchange: an exchange with it
// is in the 1408-byte size class. Recorded API requests have 5-16 fields
// and responses mostly 2-28: the two fit together in three exchanges out of
// four, and a response that does not fit has a header of its own.
const exchangeFields = 22

func (s *side) beginRequest(method, target, proto string, fs httpmsg.Header, at time.Time, complete bool) {
	d := s.d
	e := d.newExchange(proto)
	h := d.requestHeader(e, fs)
	req := &e.x.Request
	req.Method = method
	req.Target = target
	req.Scheme = d.scheme()
	req.Header = h
	req.Start = s.bufAt
	req.End = at
	if host := h.Get("Host"); host != "" {
		req.Authority = host
	} else if i := authorityEnd(target); i > 0 {
		req.Authority = target[strings.Index(target, "://")+3 : i]
	} else if method == "CONNECT" {
		req.Authority = target
	}
	e.head = method == "HEAD"
	e.connect = method == "CONNECT"
	e.upgrade = h.Has("Upgrade") && headerHasToken(h, "Connection", "upgrade")
	s.ex, s.body, s.transfer = e, &req.Body, nil
	if s.ov != nil && s.ov.dropped > 0 {
		s.noteOverflow()
	}
	if !complete {
		s.abandon("request headers incomplete")
		return
	}
	if h.Has("Transfer-Encoding") {
		chunked, others := transferCodings(h)
		if chunked {
			s.transfer = others
			s.st = stChunkSize
			return
		}
		// RFC 9112 6.3: a request whose Transfer-Encoding does not end in
		// chunked cannot be framed; read it to the end of the direction.
		d.rec.Count(TokenBadTransferCoding, 1)
		e.x.Partial = true
		addNote(e.x, "request Transfer-Encoding does not end in chunked")
		s.transfer = others
		s.st = stBodyClose
		return
	}
	if h.Has("Content-Length") {
		n, ok := parseContentLength(h)
		if !ok {
			d.rec.Count(TokenBadContentLength, 1)
			e.x.Partial = true
			addNote(e.x, "request Content-Length unreadable; body skipped")
		} else if n > 0 {
			s.expectBody(n)
			return
		}
	}
	s.endMessage(at, true)
}

// authorityEnd returns where the authority ends in an absolute-form target,
// or -1 for other forms.
func authorityEnd(target string) int {
	i := strings.Index(target, "://")
	if i <= 0 || i > 8 {
		return -1
	}
	rest := target[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		return i + 3 + j
	}
	return len(target)
}

func (s *side) beginResponse(proto string, status int, reason string, fs httpmsg.Header, at time.Time, complete bool) {
	d := s.d
	if status < 200 && status != 101 {
		// Interim responses (100 Continue, 103 Early Hints) come before
		// the final response of the same request; they carry no body.
		d.rec.Count(TokenInterimResponse, 1)
		return
	}
	e := d.pairResponse(proto)
	e.respStarted = true
	h := d.responseHeader(e, fs)
	e.resp = httpmsg.Response{Status: status, Reason: reason, Header: h, Start: s.bufAt, End: at}
	resp := &e.resp
	e.x.Response = resp
	s.ex, s.body, s.transfer = e, &resp.Body, nil
	if s.ov != nil && s.ov.dropped > 0 {
		s.noteOverflow()
	}
	if !complete {
		s.abandon("response headers incomplete")
		return
	}
	switch {
	case status == 101,
		e.connect && status/100 == 2,
		e.head, status == 204, status == 304:
		// No body (RFC 9112 6.3 rules 1 and 2).
		s.endMessage(at, true)
		return
	}
	if h.Has("Transfer-Encoding") {
		chunked, others := transferCodings(h)
		s.transfer = others
		if chunked {
			s.st = stChunkSize
		} else {
			s.st = stBodyClose
		}
		return
	}
	if h.Has("Content-Length") {
		n, ok := parseContentLength(h)
		if !ok {
			d.rec.Count(TokenBadContentLength, 1)
			e.x.Partial = true
			addNote(e.x, "response Content-Length unreadable; body read to the end of the flow")
			s.st = stBodyClose
			return
		}
		if n > 0 {
			s.expectBody(n)
			return
		}
		s.endMessage(at, true)
		return
	}
	s.st = stBodyClose
}

// expectBody prepares for a Content-Length body of n bytes.
func (s *side) expectBody(n int64) {
	s.remaining = n
	s.st = stBodyLen
}

// bodyBytes consumes Content-Length body bytes.
func (s *side) bodyBytes(p []byte, at time.Time) int {
	n := int(min(int64(len(p)), s.remaining))
	b := s.body
	switch {
	case b.Data == nil && int64(n) == s.remaining && n <= s.d.lim.MaxBody:
		// The whole body is in this input, which the decoder owns (a
		// flow.Chunk's Data belongs to its receiver; replayed and held
		// bytes are the decoder's own copies): keep the body where it is
		// instead of copying it. The slice is capped at the body, so an
		// append never writes past it.
		b.Data = p[:n:n]
		b.WireLength += int64(n)
		if b.Marks == nil {
			b.Marks = s.firstMark()
		}
		b.Marks = addMark(b.Marks, n, at, s.d.lim.MaxMarks)
	case b.Data == nil:
		// Reserve room for what is announced, bounded by the cap and by a
		// modest first allocation so a lying header costs little.
		b.Data = make([]byte, 0, min(s.remaining, int64(s.d.lim.MaxBody), 1<<20))
		fallthrough
	default:
		s.appendBody(p[:n], at)
	}
	s.remaining -= int64(n)
	if s.remaining == 0 {
		s.endMessage(at, true)
	}
	return n
}

// chunkData consumes chunk data and, while whole pieces are at hand, the
// line end and the next chunk-size line too, so a stream of small chunks
// costs one pass. Anything partial or unusual is left to the states.
func (s *side) chunkData(p []byte, at time.Time) int {
	total := 0
	for {
		n := int(min(int64(len(p)), s.remaining))
		s.appendBody(p[:n], at)
		s.remaining -= int64(n)
		total += n
		p = p[n:]
		if s.remaining > 0 {
			return total
		}
		s.st, s.sawCR = stChunkEnd, false
		switch {
		case len(p) >= 2 && p[0] == '\r' && p[1] == '\n':
			p, total = p[2:], total+2
		case len(p) >= 1 && p[0] == '\n':
			p, total = p[1:], total+1
		default:
			return total
		}
		s.st = stChunkSize
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return total
		}
		size, ok := parseChunkSize(p[:i])
		if !ok {
			return total // chunkSize reports it
		}
		p, total = p[i+1:], total+i+1
		if size == 0 {
			s.st = stTrailer
			return total
		}
		s.remaining = size
		s.st = stChunkData
	}
}

func (s *side) chunkSize(p []byte, at time.Time) int {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		if len(s.buf)+len(p) > maxChunkSizeLine {
			s.badFraming(TokenBadChunkSize, "chunk-size line too long")
			return 0
		}
		s.buf = append(s.buf, p...)
		return len(p)
	}
	line := p[:i]
	if len(s.buf) > 0 {
		s.buf = append(s.buf, line...)
		line = s.buf
	}
	n, ok := parseChunkSize(line)
	s.buf = s.buf[:0]
	switch {
	case !ok:
		s.badFraming(TokenBadChunkSize, "unreadable chunk size")
		return i + 1
	case n == 0:
		s.st = stTrailer
	default:
		s.remaining = n
		s.st = stChunkData
	}
	return i + 1
}

func (s *side) chunkEnd(p []byte) int {
	switch {
	case p[0] == '\n':
		s.st = stChunkSize
		return 1
	case p[0] == '\r' && !s.sawCR:
		s.sawCR = true
		return 1
	}
	// Tolerate a missing line end: the next chunk-size line decides.
	s.d.rec.Count(TokenBadChunkEnd, 1)
	s.st = stChunkSize
	return 0
}

// trailer accumulates the trailer block after the last chunk; usually it is
// just the empty line.
func (s *side) trailer(p []byte, at time.Time) int {
	if len(s.buf) == 0 {
		switch {
		case p[0] == '\n':
			s.endMessage(at, true)
			return 1
		case p[0] == '\r' && len(p) > 1 && p[1] == '\n':
			s.endMessage(at, true)
			return 2
		}
		s.bufAt = at
	}
	lim := s.d.lim.MaxHeaderBytes
	old := len(s.buf)
	take := min(len(p), lim+3-old)
	s.buf = append(s.buf, p[:take]...)
	e := -1
	switch {
	case string(s.buf) == "\r":
	case bytes.HasPrefix(s.buf, []byte("\r\n")):
		e = 2
	default:
		e = blockEnd(s.buf, max(0, old-2))
	}
	if e >= 0 {
		s.trailerBlock(string(s.buf[:e]))
		s.buf = s.buf[:0]
		s.endMessage(at, true)
		return e - old
	}
	if len(s.buf) > lim {
		s.beginOverflow(true)
	}
	return take
}

// trailerBlock keeps the trailer fields of the message.
func (s *side) trailerBlock(fields string) {
	if strings.TrimSpace(fields) == "" {
		return
	}
	h, bad, _ := parseFields(fields, nil)
	if bad > 0 {
		s.d.rec.Count(TokenBadHeaderLine, int64(bad))
	}
	if s.isClient() {
		s.ex.x.Request.Trailer = h
		return
	}
	s.ex.x.Response.Trailer = h
}

// beginOverflow switches to skipping an oversized header or trailer block,
// keeping the whole lines that fitted.
func (s *side) beginOverflow(trailer bool) {
	last := bytes.LastIndexByte(s.buf, '\n')
	if !trailer && last < 0 {
		// Not even the start line fits: nothing to keep.
		s.d.rec.Count(TokenHeaderTooLarge, int64(len(s.buf)))
		s.buf = s.buf[:0]
		s.enterResync(TokenHeaderTooLarge, false)
		return
	}
	rest := s.buf[last+1:]
	s.ov = &overflow{trailer: trailer, kept: string(s.buf[:last+1]), keptAt: s.bufAt}
	s.ov.addLine(rest)
	s.ov.dropped = int64(len(rest))
	s.buf = s.buf[:0]
	s.st = stOverflow
}

func (o *overflow) addLine(b []byte) {
	if len(o.line)+len(b) > maxOverflowLine {
		o.long = true
		return
	}
	o.line = append(o.line, b...)
}

// overflow skips the rest of an oversized block line by line, keeping the
// framing fields so that the body can still be found.
func (s *side) overflow(p []byte, at time.Time) int {
	o := s.ov
	i := 0
	for i < len(p) {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			o.addLine(p[i:])
			o.dropped += int64(len(p) - i)
			return len(p)
		}
		o.addLine(p[i : i+j])
		o.dropped += int64(j + 1)
		i += j + 1
		line := bytes.TrimSuffix(o.line, []byte("\r"))
		if len(line) == 0 && !o.long {
			s.endOverflow(at)
			return i
		}
		if !o.long && !o.trailer && isFramingField(line) {
			o.framing = append(o.framing, string(line))
		}
		o.line, o.long = o.line[:0], false
	}
	return i
}

func isFramingField(line []byte) bool {
	for _, name := range []string{"content-length:", "transfer-encoding:", "content-encoding:"} {
		if len(line) >= len(name) && bytes.EqualFold(line[:len(name)], []byte(name)) {
			return true
		}
	}
	return false
}

// endOverflow finishes an oversized block: the kept part is parsed as if it
// were the whole block, plus the framing fields seen past the cap.
func (s *side) endOverflow(at time.Time) {
	o := s.ov
	s.d.rec.Count(TokenHeaderTooLarge, o.dropped)
	if o.trailer {
		s.d.rec.Count(TokenTrailerTooLarge, o.dropped)
		s.trailerBlock(strings.TrimPrefix(o.kept, "\r\n"))
		addNote(s.ex.x, fmt.Sprintf("trailer block over %d bytes; %d bytes dropped", s.d.lim.MaxHeaderBytes, o.dropped))
		s.ex.x.Partial = true
		s.ov = nil
		s.endMessage(at, true)
		return
	}
	block := o.kept + strings.Join(o.framing, "\n") + "\n"
	s.bufAt = o.keptAt
	s.st = stStart
	s.block([]byte(block), at, true)
	s.ov = nil
}

// noteOverflow marks the new message's exchange for a dropped header tail.
func (s *side) noteOverflow() {
	s.ex.x.Partial = true
	addNote(s.ex.x, fmt.Sprintf("header block over %d bytes; %d bytes dropped", s.d.lim.MaxHeaderBytes, s.ov.dropped))
	s.ov.dropped = 0
}

// appendBody adds body bytes, applying the body cap and recording arrival.
func (s *side) appendBody(p []byte, at time.Time) {
	b := s.body
	b.WireLength += int64(len(p))
	have := s.bodyLen()
	room := s.d.lim.MaxBody - have
	if len(p) > room {
		dropped := len(p) - max(room, 0)
		b.Dropped += int64(dropped)
		s.d.rec.Count(TokenBodyTruncated, int64(dropped))
		if !b.Truncated {
			b.Truncated = true
			s.ex.x.Partial = true
			addNote(s.ex.x, fmt.Sprintf("%s body over %d bytes; truncated", s.what(), s.d.lim.MaxBody))
		}
		p = p[:max(room, 0)]
	}
	if len(p) == 0 {
		return
	}
	if s.st != stBodyLen {
		if s.pieces == nil {
			s.pieces = make([][]byte, 0, 16) // a stream arrives in many pieces
		}
		s.pieces = append(s.pieces, p[:len(p):len(p)])
		s.pending += len(p)
	} else {
		if need := len(b.Data) + len(p); need > cap(b.Data) {
			c := max(2*cap(b.Data), need, 4096)
			c = min(c, len(b.Data)+int(min(s.remaining, int64(s.d.lim.MaxBody)))) // exactly what is announced
			c = min(max(c, need), s.d.lim.MaxBody)
			grown := make([]byte, len(b.Data), c)
			copy(grown, b.Data)
			b.Data = grown
		}
		b.Data = append(b.Data, p...)
	}
	if b.Marks == nil {
		b.Marks = s.firstMark()
	}
	b.Marks = addMark(b.Marks, have+len(p), at, s.d.lim.MaxMarks)
}

// headerOf returns the header of this side's message of e.
func (s *side) headerOf(e *exchange) httpmsg.Header {
	if s.isClient() {
		return e.x.Request.Header
	}
	return e.resp.Header
}

// bodyLen is the length of the body read so far.
func (s *side) bodyLen() int { return len(s.body.Data) + s.pending }

// maxKeptPieces bounds the room for pieces kept between messages.
const maxKeptPieces = 256

// joinBody moves the pieces of the body read so far into body.Data: a
// lone piece as it is, several in one allocation of their total size.
func (s *side) joinBody() {
	b := s.body
	switch {
	case len(s.pieces) == 0:
		return
	case len(s.pieces) == 1 && len(b.Data) == 0:
		b.Data = s.pieces[0]
	default:
		data := make([]byte, 0, len(b.Data)+s.pending)
		data = append(data, b.Data...)
		for _, p := range s.pieces {
			data = append(data, p...)
		}
		b.Data = data
	}
	clear(s.pieces) // keep no input alive
	s.pieces, s.pending = s.pieces[:0], 0
	if cap(s.pieces) > maxKeptPieces {
		s.pieces = nil
	}
}

// firstMark returns room for the first arrival mark of the body being
// read, inside its exchange.
func (s *side) firstMark() []httpmsg.Mark {
	m := &s.ex.marks[0]
	if !s.isClient() {
		m = &s.ex.marks[1]
	}
	return m[:0:1]
}

func (s *side) what() string {
	if s.isClient() {
		return "request"
	}
	return "response"
}

// endMessage finishes the message being parsed: removes content codings
// and marks the exchange's half done.
func (s *side) endMessage(at time.Time, complete bool) {
	e := s.ex
	d := s.d
	s.joinBody()
	s.ex, s.st, s.buf = nil, stStart, s.buf[:0]
	if !d.opts.KeepContentEncoding && (len(s.body.Data) > 0) {
		s.decodeContent(e)
	}
	if s.isClient() {
		e.x.Request.End = at
		e.reqDone = true
		if !complete {
			e.x.Partial = true
		}
		if (e.upgrade || e.connect) && !e.respDone {
			s.st = stHeld
			s.bufAt = time.Time{}
		}
		s.body = nil
		d.deliver()
		return
	}
	resp := e.x.Response
	resp.End = at
	resp.Complete = complete && !e.respLost
	if !resp.Complete {
		e.x.Partial = true
	}
	e.respDone = true
	s.body = nil
	if resp.Status == 101 || e.connect && resp.Status/100 == 2 {
		d.switchProtocols(e, resp.Status != 101)
		return
	}
	if (e.upgrade || e.connect) && d.client.st == stHeld {
		d.client.resumeHeld()
	}
	d.deliver()
}

// decodeContent removes Content-Encoding and any transfer codings other
// than chunked from the finished body.
func (s *side) decodeContent(e *exchange) {
	// The codings in the order they were applied, joined: the content
	// codings, then transfer codings other than chunked. The usual single
	// coding is the field's value as it is.
	var enc string
	n := 0
	join := func(c string) {
		if n++; n == 1 {
			enc = c
		} else {
			enc += ", " + c
		}
	}
	for _, f := range s.headerOf(e) {
		if f.Name == "Content-Encoding" {
			join(f.Value)
		}
	}
	for _, c := range s.transfer {
		join(c)
	}
	if n == 0 {
		return
	}
	capped, err := s.d.contentDecoder().DecodeBody(s.body, enc, s.d.lim)
	if capped {
		e.x.Partial = true
		addNote(e.x, fmt.Sprintf("%s body over %d bytes after content decoding; truncated", s.what(), s.d.lim.MaxBody))
	}
	if err != nil {
		e.x.Partial = true
		addNote(e.x, fmt.Sprintf("%s content decoding: %v", s.what(), err))
	}
}

// abandon ends the message being parsed as incomplete.
func (s *side) abandon(note string) {
	if s.ex == nil {
		return
	}
	s.ex.x.Partial = true
	addNote(s.ex.x, note)
	s.endMessage(s.lastAt, false)
}

// badFraming abandons a message whose body framing broke and looks for the
// next message.
func (s *side) badFraming(tok, note string) {
	s.d.rec.Count(tok, 1)
	s.abandon(s.what() + " " + note)
	s.buf = s.buf[:0]
	s.enterResync(TokenResyncAfterError, false)
}

// enterResync starts looking for the next plausible start line. Bytes
// already in buf are searched first; skipFirst says buf[0] was rejected
// as a start and is dropped.
func (s *side) enterResync(tok string, skipFirst bool) {
	s.st = stResync
	s.resyncTok = tok
	s.from = 0
	if len(s.buf) > 0 {
		r := s.buf
		if skipFirst {
			s.d.rec.Count(tok, 1)
			r = r[1:]
		}
		s.replay = append(s.replay, r...)
		s.buf = s.buf[:0]
	}
}

// resyncWindow is how many bytes are searched at once for a start line;
// resyncKeep of them are kept between searches so a start line split
// across chunks is still found.
const (
	resyncWindow = 64 << 10
	resyncKeep   = 16 << 10
)

// resync consumes p looking for a plausible start line. When it finds one,
// the bytes from there on are queued in s.replay to be parsed again.
func (s *side) resync(p []byte) int {
	consumed := 0
	for {
		take := min(resyncWindow-len(s.buf), len(p)-consumed)
		s.buf = append(s.buf, p[consumed:consumed+take]...)
		consumed += take
		var k int
		if s.isClient() {
			k = resyncRequest(s.buf, s.from)
		} else {
			k = resyncStatus(s.buf, s.from)
		}
		if k >= 0 {
			s.d.rec.Count(s.resyncTok, int64(k))
			replay := make([]byte, 0, len(s.buf)-k+len(p)-consumed)
			replay = append(append(replay, s.buf[k:]...), p[consumed:]...)
			s.buf = s.buf[:0]
			s.st = stStart
			s.replay = replay
			return len(p)
		}
		s.from = max(0, len(s.buf)-16)
		if consumed == len(p) {
			return consumed
		}
		drop := len(s.buf) - resyncKeep
		s.d.rec.Count(s.resyncTok, int64(drop))
		s.buf = s.buf[:copy(s.buf, s.buf[drop:])]
		s.from = max(0, s.from-drop)
	}
}

// hold keeps client bytes sent after an Upgrade or CONNECT request until the
// response says whether they are HTTP.
func (s *side) hold(p []byte, at time.Time) int {
	n := len(p)
	if s.bufAt.IsZero() {
		s.bufAt = at
	}
	room := s.d.lim.MaxHeaderBytes - len(s.buf)
	if len(p) > room {
		s.d.rec.Count(TokenHeldDropped, int64(len(p)-max(room, 0)))
		p = p[:max(room, 0)]
	}
	s.buf = append(s.buf, p...)
	return n
}

// takeHeld returns the held client bytes and stops holding.
func (s *side) takeHeld() ([]byte, time.Time) {
	if s.st != stHeld {
		return nil, time.Time{}
	}
	held := bytes.Clone(s.buf)
	s.buf = s.buf[:0]
	s.st = stStart
	return held, s.bufAt
}

// resumeHeld parses held client bytes as HTTP after the server declined to
// switch protocols.
func (s *side) resumeHeld() {
	held, at := s.takeHeld()
	if len(held) > 0 {
		s.feed(held, at)
	}
	if s.fin {
		s.finish(s.lastAt)
	}
}

// lost handles bytes the source lost before the next chunk.
func (s *side) lost(n int64, at time.Time) {
	note := func() {
		s.ex.x.Partial = true
		addNote(s.ex.x, fmt.Sprintf("%d %s body bytes lost at offset %d", n, s.what(), s.bodyLen()+int(s.body.Dropped)))
		if !s.isClient() {
			s.ex.respLost = true
		}
	}
	switch s.st {
	case stBodyLen, stChunkData:
		if n <= s.remaining {
			// The framing says exactly where we are: skip the hole.
			note()
			s.remaining -= n
			if s.remaining == 0 {
				if s.st == stChunkData {
					s.st, s.sawCR = stChunkEnd, false
				} else {
					s.endMessage(at, true)
				}
			}
			return
		}
	case stBodyClose:
		note()
		return
	case stResync, stEnded, stHeld:
		return
	case stOverflow:
		s.d.rec.Count(TokenIncomplete, int64(len(s.ov.kept))+s.ov.dropped)
	case stStart:
		if len(s.buf) > 0 {
			s.d.rec.Count(TokenIncomplete, int64(len(s.buf)))
			s.salvage()
		}
		s.buf = s.buf[:0]
		s.enterResync(TokenResyncAfterGap, false)
		return
	}
	if s.ex != nil {
		s.abandon(fmt.Sprintf("%d bytes lost; %s incomplete", n, s.what()))
	}
	s.buf = s.buf[:0]
	s.ov = nil
	s.enterResync(TokenResyncAfterGap, false)
}

// salvage turns a cut-off header block into a partial message when its
// start line is complete.
func (s *side) salvage() {
	last := bytes.LastIndexByte(s.buf, '\n')
	if last < 0 || !s.plausible(s.buf[:last+1]) {
		return
	}
	s.block(s.buf[:last+1], s.lastAt, false)
}

// finish ends the direction (Fin or Close).
func (s *side) finish(at time.Time) {
	s.fin = true
	switch s.st {
	case stEnded, stHeld:
		return
	case stBodyClose:
		s.endMessage(s.lastAt, true)
	case stStart:
		if len(s.buf) > 0 {
			s.d.rec.Count(TokenIncomplete, int64(len(s.buf)))
			s.salvage()
		}
	case stResync:
		s.d.rec.Count(s.resyncTok, int64(len(s.buf)))
	case stOverflow:
		s.d.rec.Count(TokenHeaderTooLarge, s.ov.dropped)
		if s.ov.trailer {
			s.abandon(s.what() + " trailers incomplete")
		} else {
			s.buf = append(s.buf[:0], s.ov.kept...)
			s.bufAt = s.ov.keptAt
			s.salvage()
		}
	default:
		if s.endUnseenOnly() {
			s.ex.x.EndUnseen = true
		}
		s.abandon(s.what() + " body incomplete: flow ended")
	}
	if s.d.switched {
		return
	}
	s.buf = s.buf[:0]
	s.ov = nil
	s.st = stEnded
}

// endUnseenOnly reports whether a response ending with its flow lacks
// nothing but its last chunk: the request ended whole, the chunked body
// stopped between two chunks, and nothing was lost, truncated or left
// content-coded (a coded body cut there would not decode). Clients that
// stop at an event stream's last event and close see exactly this.
func (s *side) endUnseenOnly() bool {
	e := s.ex
	return !s.isClient() && e != nil && s.st == stChunkSize && len(s.buf) == 0 &&
		e.reqDone && !e.orphan && !e.x.Partial && !e.respLost && !s.body.Truncated &&
		len(s.transfer) == 0 && !s.headerOf(e).Has("Content-Encoding")
}

// addMark records that body bytes up to off had arrived by at: one mark
// per arrival time, and once max marks exist the last one absorbs later
// arrivals so the earlier marks stay exact.
func addMark(marks []httpmsg.Mark, off int, at time.Time, max int) []httpmsg.Mark {
	if n := len(marks); n > 0 {
		last := &marks[n-1]
		if last.At == at || last.At.Equal(at) {
			last.Offset = off
			return marks
		}
		if n >= max {
			last.Offset = off
			last.At = at
			return marks
		}
		if n == cap(marks) && n < 8 {
			// A body that arrives in two pieces usually arrives in many
			// (a stream): skip the smallest steps of growth.
			grown := make([]httpmsg.Mark, n, min(8, max))
			copy(grown, marks)
			marks = grown
		}
	}
	return append(marks, httpmsg.Mark{Offset: off, At: at})
}
