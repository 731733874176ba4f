// Package assemble owns turning the decoded pieces of one multiplexed stream
// (header lists, DATA payloads, end-of-stream and reset signals) into an
// httpmsg.Exchange. The HTTP/2 and HTTP/3 decoders share it: they differ in
// framing and header compression, not in how a request and its response are
// put together, capped and content-decoded.
package assemble

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/content"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Side says which half of an exchange a header block or body belongs to.
type Side uint8

const (
	// Request is the client's half (client→server bytes).
	Request Side = iota
	// Response is the server's half (server→client bytes).
	Response
)

func (s Side) String() string {
	if s == Response {
		return "response"
	}
	return "request"
}

// Field is one decoded header field as it appeared on the wire (lowercase
// name, pseudo-headers included).
type Field struct {
	Name, Value string
}

// maxBodyPrealloc bounds the buffer reserved up front from a Content-Length
// header: the header is peer-controlled and a thousand streams each claiming
// MaxBody must not reserve gigabytes before a byte arrives.
const maxBodyPrealloc = 64 << 10

// minBodyGrow is the smallest buffer a body grows into, and initialMarks the
// arrival marks reserved with the first one.
const (
	minBodyGrow  = 4 << 10
	initialMarks = 16
)

// Config is shared by every exchange of one connection.
type Config struct {
	Flow   *flow.Info
	Proto  string // "HTTP/2" or "HTTP/3"
	Limits httpmsg.Limits
	Rec    stats.Recorder
	// Prefix names the counters ("http2" counts "http2.body_truncated").
	Prefix string
	// BodyBudget bounds the body bytes held by all open exchanges of the
	// connection together; zero means 2×MaxBody but at least 64 MiB.
	BodyBudget int64
	// HeaderBudget bounds the decoded header bytes (name+value+32 per
	// field) held by all open exchanges together; zero means
	// 16×MaxHeaderBytes. A thousand open streams with maximal header lists
	// must not hold a thousand times MaxHeaderBytes.
	HeaderBudget int64

	held       int64 // body bytes currently held by open exchanges
	headerHeld int64 // header bytes currently held by open exchanges
	// tokens are the counter names, built once so the hot path does not
	// concatenate strings.
	content *content.Decoder
	tokBodyTruncated, tokConnBudget, tokMissingStatus, tokUnknownPseudo,
	tokInformational, tokBadContentLength, tokHeaderBudget string
}

// Init fills defaults; call it once before Start.
func (c *Config) Init() {
	c.Limits = c.Limits.WithDefaults()
	if c.BodyBudget <= 0 {
		c.BodyBudget = max(int64(c.Limits.MaxBody)*2, 64<<20)
	}
	if c.HeaderBudget <= 0 {
		c.HeaderBudget = 16 * int64(c.Limits.MaxHeaderBytes)
	}
	if c.content == nil {
		c.content = content.NewDecoder(c.Rec)
	}
	p := c.Prefix + "."
	c.tokBodyTruncated = p + "body_truncated"
	c.tokConnBudget = p + "connection_body_budget_exceeded"
	c.tokMissingStatus = p + "missing_status"
	c.tokUnknownPseudo = p + "unknown_pseudo_header"
	c.tokInformational = p + "informational_response"
	c.tokBadContentLength = p + "bad_content_length"
	c.tokHeaderBudget = p + "connection_header_budget_exceeded"
}

// Held reports the body bytes currently held by open exchanges.
func (c *Config) Held() int64 { return c.held }

// Exchange is one exchange being assembled. It is not safe for concurrent
// use.
type Exchange struct {
	cfg *Config
	x   httpmsg.Exchange

	body        [2]bodyBuilder
	headersSeen [2]bool // request headers / final response headers decoded
	headsDue    [2]bool // a header block is known to be on its way (QPACK blocked)
	ended       [2]bool // END_STREAM / FIN seen for the side
	lastAt      [2]time.Time
	headerBytes int64 // this exchange's share of Config.headerHeld
	encoding    [2]string
	lost        [2]bool // bytes of the side were lost
	aborted     bool    // reset, refused or cut short by GOAWAY
	endUnseen   string  // why the end of an undeclared-length response was not seen (see Unended)
	finished    bool
}

// Start begins an exchange for a stream. seq numbers exchanges within the
// connection in the order their streams were first seen.
func (c *Config) Start(streamID int64, seq int, at time.Time) *Exchange {
	e := &Exchange{cfg: c}
	e.x = httpmsg.Exchange{
		Flow:     c.Flow,
		Seq:      seq,
		Proto:    c.Proto,
		StreamID: streamID,
	}
	e.x.Request.Start = at
	if c.Flow != nil {
		if c.Flow.TLS {
			e.x.Request.Scheme = "https"
		} else {
			e.x.Request.Scheme = "http"
		}
	}
	return e
}

// StreamID returns the stream the exchange belongs to.
func (e *Exchange) StreamID() int64 { return e.x.StreamID }

// Ended reports whether the side's end of stream was seen.
func (e *Exchange) Ended(s Side) bool { return e.ended[s] || e.lengthReached(s) }

// lengthReached reports whether side's body reached its declared
// Content-Length with no bytes lost: the message is complete even when the
// END_STREAM (or QUIC FIN) after it was not seen — a capture often misses
// that trailing empty frame when the connection is torn down right after
// the last byte.
func (e *Exchange) lengthReached(s Side) bool {
	if e.lost[s] {
		return false
	}
	if s == Request {
		return declaredLengthReached(e.x.Request.Header, e.body[Request].wire)
	}
	return e.x.Response != nil && !e.aborted && declaredLengthReached(e.x.Response.Header, e.body[Response].wire)
}

// HeadersSeen reports whether the side's (final) header block was decoded.
func (e *Exchange) HeadersSeen(s Side) bool { return e.headersSeen[s] }

// Note records why the exchange is incomplete and marks it partial. The
// same note is kept once.
func (e *Exchange) Note(note string) {
	e.x.Partial = true
	for _, n := range e.x.Notes {
		if n == note {
			return
		}
	}
	e.x.Notes = append(e.x.Notes, note)
}

// Block is one decoded header block (HEADERS plus CONTINUATION in HTTP/2, a
// HEADERS frame's field section in HTTP/3).
type Block struct {
	Fields []Field
	// EndStream is set when the block ends its side of the stream.
	EndStream bool
	// Unknown counts fields that could not be decoded (references to
	// compression-table entries whose content is unknown).
	Unknown int
}

// Headers applies one decoded header block. On the request side the first
// block is the request head and later ones are trailers; on the response
// side 1xx blocks are skipped, the first final block is the response head
// and later ones are trailers. The fields are copied.
func (e *Exchange) Headers(side Side, b Block, at time.Time) {
	e.touch(side, at)
	b.Fields = e.budgetFields(b.Fields)
	if !e.headersSeen[side] && e.looksLikeTrailers(side, b) {
		// Joined after the head: what follows is the trailer section.
		e.headersSeen[side] = true
		if side == Response {
			e.response(at)
		}
	}
	if side == Request {
		e.requestHeaders(b.Fields, at)
		return
	}
	e.responseHeaders(b.Fields, at)
}

// maxPseudoOverBudget is the longest pseudo-header value kept once the
// header budget is spent: :method, :status and ordinary paths say what the
// exchange is, a 20 KiB :path from a flood does not.
const maxPseudoOverBudget = 256

// budgetFields charges the block to the connection's header budget; past
// it, regular fields and long pseudo-header values are dropped.
func (e *Exchange) budgetFields(fields []Field) []Field {
	c := e.cfg
	size := int64(0)
	for _, f := range fields {
		size += int64(len(f.Name) + len(f.Value) + 32)
	}
	if c.headerHeld+size <= c.HeaderBudget {
		c.headerHeld += size
		e.headerBytes += size
		return fields
	}
	kept := fields[:0:0]
	dropped := 0
	for _, f := range fields {
		sz := int64(len(f.Name) + len(f.Value) + 32)
		if isPseudo(f) && len(f.Value) <= maxPseudoOverBudget || c.headerHeld+sz <= c.HeaderBudget {
			c.headerHeld += sz
			e.headerBytes += sz
			kept = append(kept, f)
			continue
		}
		dropped++
	}
	c.Rec.Count(c.tokHeaderBudget, int64(dropped))
	e.Note("header fields dropped: connection header budget exceeded")
	return kept
}

// looksLikeTrailers tells a trailer section from a head when the head was
// never seen (joined mid-connection): trailers carry no pseudo-header and
// end the stream, and follow body bytes if there were any. A block with
// undecodable fields and no body is taken as the head, whose :status or
// :method may be among the unknown fields.
func (e *Exchange) looksLikeTrailers(side Side, b Block) bool {
	if hasPseudo(b.Fields) || e.headsDue[side] {
		return false
	}
	return e.body[side].wire > 0 || b.EndStream && b.Unknown == 0
}

func (e *Exchange) requestHeaders(fields []Field, at time.Time) {
	r := &e.x.Request
	if e.headersSeen[Request] {
		if r.Trailer == nil {
			r.Trailer = make(httpmsg.Header, 0, len(fields))
		}
		e.countPseudo(fields)
		r.Trailer = addFields(r.Trailer, fields, isPseudo)
		return
	}
	e.headersSeen[Request] = true
	if r.Start.IsZero() || at.Before(r.Start) {
		r.Start = at
	}
	if r.Header == nil {
		r.Header = make(httpmsg.Header, 0, len(fields))
	}
	var cookies []string
	for _, f := range fields {
		if f.Name == "cookie" {
			// RFC 9113 §8.2.3: cookie crumbs are joined with "; " for
			// HTTP/1.1-shaped consumers.
			cookies = append(cookies, f.Value)
			continue
		}
		if isPseudo(f) {
			switch f.Name {
			case ":method":
				r.Method = f.Value
			case ":scheme":
				r.Scheme = f.Value
			case ":authority":
				r.Authority = f.Value
			case ":path":
				r.Target = f.Value
			case ":protocol":
				// Extended CONNECT (RFC 8441/9220); the method says CONNECT.
			default:
				e.cfg.Rec.Count(e.cfg.tokUnknownPseudo, 1)
			}
		}
	}
	r.Header = addFields(r.Header, fields, func(f Field) bool { return isPseudo(f) || f.Name == "cookie" })
	if len(cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(cookies, "; "))
	}
	if r.Authority == "" {
		r.Authority = r.Header.Get("Host")
	}
	e.afterHead(Request, r.Header)
}

func (e *Exchange) responseHeaders(fields []Field, at time.Time) {
	if e.headersSeen[Response] {
		resp := e.x.Response
		if resp.Trailer == nil {
			resp.Trailer = make(httpmsg.Header, 0, len(fields))
		}
		e.countPseudo(fields)
		resp.Trailer = addFields(resp.Trailer, fields, isPseudo)
		return
	}
	status, hasStatus := 0, false
	for _, f := range fields {
		if f.Name == ":status" {
			if n, err := strconv.Atoi(f.Value); err == nil && n >= 100 && n <= 999 {
				status, hasStatus = n, true
			}
			break
		}
	}
	if hasStatus && status < 200 && status != 101 {
		// 100 Continue, 103 Early Hints: the final response follows.
		e.cfg.Rec.Count(e.cfg.tokInformational, 1)
		return
	}
	e.headersSeen[Response] = true
	resp := e.response(at)
	if resp.Start.IsZero() || at.Before(resp.Start) {
		resp.Start = at
	}
	if !hasStatus {
		e.cfg.Rec.Count(e.cfg.tokMissingStatus, 1)
		e.Note("response status unknown")
	}
	resp.Status = status
	resp.Reason = http.StatusText(status)
	if resp.Header == nil {
		resp.Header = make(httpmsg.Header, 0, len(fields))
	}
	for _, f := range fields {
		if isPseudo(f) && f.Name != ":status" {
			e.cfg.Rec.Count(e.cfg.tokUnknownPseudo, 1)
		}
	}
	resp.Header = addFields(resp.Header, fields, isPseudo)
	e.afterHead(Response, resp.Header)
}

// afterHead reads what the body builder needs from a header: the content
// coding to remove and a size hint.
func (e *Exchange) afterHead(side Side, h httpmsg.Header) {
	if ce := h.Values("Content-Encoding"); len(ce) > 0 {
		e.encoding[side] = strings.Join(ce, ", ")
	}
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			e.cfg.Rec.Count(e.cfg.tokBadContentLength, 1)
			return
		}
		b := &e.body[side]
		if b.data == nil && n > 0 {
			b.data = make([]byte, 0, min(n, int64(e.cfg.Limits.MaxBody), maxBodyPrealloc))
		}
	}
}

func (e *Exchange) response(at time.Time) *httpmsg.Response {
	if e.x.Response == nil {
		e.x.Response = &httpmsg.Response{Start: at}
	}
	return e.x.Response
}

// HeadersPending records that the side's head block arrived but cannot be
// decoded yet (HTTP/3 sections blocked on the QPACK dynamic table), so body
// bytes arriving meanwhile are not taken as a sign of a missed head.
func (e *Exchange) HeadersPending(side Side) {
	if !e.headersSeen[side] {
		e.headsDue[side] = true
	}
}

// HeadersUnknown records that a header block for the side could not be
// decoded at all (HPACK/QPACK state lost, section too large). The side
// counts as having its head, so later blocks are taken as trailers.
func (e *Exchange) HeadersUnknown(side Side, note string, at time.Time) {
	e.touch(side, at)
	e.Note(note)
	if e.headersSeen[side] {
		return
	}
	e.headersSeen[side] = true
	if side == Response {
		e.response(at)
	}
}

// Data appends body bytes for the side. p is copied.
func (e *Exchange) Data(side Side, p []byte, at time.Time) {
	e.touch(side, at)
	if side == Response {
		if e.x.Response == nil {
			e.response(at)
		}
		if !e.headersSeen[Response] && !e.headsDue[Response] {
			e.Note("response headers not seen")
		}
	} else if !e.headersSeen[Request] && !e.headsDue[Request] {
		e.Note("request headers not seen")
	}
	if len(p) == 0 {
		return
	}
	b := &e.body[side]
	b.wire += int64(len(p))
	keep := len(p)
	if room := e.cfg.Limits.MaxBody - len(b.data); keep > room {
		keep = max(room, 0)
	}
	if room := e.cfg.BodyBudget - e.cfg.held; int64(keep) > room {
		keep = int(max(room, 0))
		e.cfg.Rec.Count(e.cfg.tokConnBudget, int64(len(p)-keep))
	}
	if keep < len(p) {
		b.truncated = true
		b.dropped += int64(len(p) - keep)
		e.cfg.Rec.Count(e.cfg.tokBodyTruncated, int64(len(p)-keep))
	}
	if keep > 0 {
		if len(b.data)+keep > cap(b.data) {
			// Grow ahead of append's small steps: streamed bodies arrive
			// in many small pieces.
			grown := make([]byte, len(b.data), min(max(2*cap(b.data), len(b.data)+keep, minBodyGrow), e.cfg.Limits.MaxBody))
			copy(grown, b.data)
			b.data = grown
		}
		b.data = append(b.data, p[:keep]...)
		e.cfg.held += int64(keep)
		b.mark(len(b.data), at, e.cfg.Limits.MaxMarks)
	}
}

// End records the end of the side's stream (END_STREAM, QUIC FIN).
func (e *Exchange) End(side Side, at time.Time) {
	e.touch(side, at)
	e.ended[side] = true
}

func (e *Exchange) touch(side Side, at time.Time) {
	if at.After(e.lastAt[side]) || e.lastAt[side].IsZero() {
		e.lastAt[side] = at
	}
	if side == Request && (e.x.Request.Start.IsZero() || (!at.IsZero() && at.Before(e.x.Request.Start))) {
		e.x.Request.Start = at
	}
}

// Finish ends assembly: it removes content codings, fills End times and
// completeness, and returns the exchange for the sink. end is when the
// exchange was closed (used as the response End when the response did not
// finish). The Exchange must not be used afterwards.
func (e *Exchange) Finish(end time.Time) *httpmsg.Exchange {
	if e.finished {
		panic("assemble: Finish called twice")
	}
	e.finished = true
	e.cfg.headerHeld -= e.headerBytes
	e.headerBytes = 0
	x := &e.x
	x.Request.End = e.lastAt[Request]
	if x.Request.End.IsZero() {
		x.Request.End = x.Request.Start
	}
	if e.lengthReached(Request) {
		e.ended[Request] = true
	}
	x.Request.Body = e.finishBody(Request)
	if !e.ended[Request] {
		e.Note("request incomplete")
	}
	if x.Response == nil {
		e.Note("no response")
	} else {
		resp := x.Response
		if e.lengthReached(Response) {
			e.ended[Response] = true
		}
		resp.Body = e.finishBody(Response)
		resp.Complete = e.ended[Response] && !e.aborted && !e.lost[Response]
		resp.End = e.lastAt[Response]
		if !resp.Complete {
			e.Note(noteResponseIncomplete)
			if end.After(resp.End) {
				resp.End = end
			}
		}
		if resp.End.IsZero() {
			resp.End = resp.Start
		}
		x.EndUnseen = e.onlyEndUnseen()
	}
	return x
}

const noteResponseIncomplete = "response incomplete"

// Reset records a peer's stream reset. A reset that arrives after both
// messages are whole — the request ended and the response reached its
// declared Content-Length — cuts nothing: clients routinely cancel a stream
// they have finished reading before the server's trailing END_STREAM
// frame arrives. Such a reset leaves the exchange complete and Reset
// reports false; any other reset aborts it with the note and reports true.
// A client's reset is taken as Unended: the client may simply have read
// an event stream to its last event.
func (e *Exchange) Reset(byClient bool, note string) (aborted bool) {
	if e.Ended(Request) && e.lengthReached(Response) {
		return false
	}
	if byClient {
		e.Unended(note)
	} else {
		e.Abort(note)
	}
	return true
}

// Unended records, with a note, that the response's end will not be seen:
// the client reset the stream, or the connection ended while the stream
// sat between two frames. The exchange is not complete. When the request
// had ended, a response of undeclared length was arriving and, at Finish,
// nothing was lost, truncated or otherwise noted, the exchange is marked
// EndUnseen: whether the response had all arrived is for its content to
// tell.
func (e *Exchange) Unended(note string) {
	if e.Ended(Request) && e.x.Response != nil && !e.ended[Response] &&
		e.x.Response.Header.Get("Content-Length") == "" {
		e.endUnseen = note
	}
	e.Abort(note)
}

// onlyEndUnseen reports whether the end recorded by Unended is the
// exchange's only shortfall: nothing lost, nothing truncated, no other
// note.
func (e *Exchange) onlyEndUnseen() bool {
	if e.endUnseen == "" || e.lost[Request] || e.lost[Response] ||
		e.x.Request.Body.Truncated || e.x.Response.Body.Truncated {
		return false
	}
	return e.x.OnlyNoted(e.endUnseen, noteResponseIncomplete)
}

// Abort marks the response as not completed (reset, lost bytes, GOAWAY)
// with a note; Finish still delivers what was seen.
func (e *Exchange) Abort(note string) {
	e.aborted = true
	e.Note(note)
}

// Lost records that bytes of the side were lost while the exchange was
// open; a response that lost bytes is never complete.
func (e *Exchange) Lost(side Side, note string) {
	e.lost[side] = true
	e.Note(note)
}

func (e *Exchange) finishBody(side Side) httpmsg.Body {
	b := &e.body[side]
	e.cfg.held -= int64(len(b.data))
	out := httpmsg.Body{
		Data:       b.data,
		Marks:      b.marks,
		WireLength: b.wire,
		Truncated:  b.truncated,
		Dropped:    b.dropped,
	}
	if b.truncated {
		e.Note(side.String() + " body truncated")
	}
	if enc := e.encoding[side]; enc != "" && len(b.data) > 0 {
		e.decodeContent(side, enc, &out)
	}
	b.data, b.marks = nil, nil
	return out
}

// declaredLengthReached reports whether a message declared a
// Content-Length and exactly that many body bytes arrived.
func declaredLengthReached(h httpmsg.Header, got int64) bool {
	v := h.Get("Content-Length")
	if v == "" {
		return false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && n == got
}

func isPseudo(f Field) bool { return len(f.Name) > 0 && f.Name[0] == ':' }

func hasPseudo(fields []Field) bool {
	for _, f := range fields {
		if isPseudo(f) {
			return true
		}
	}
	return false
}

// countPseudo counts pseudo-headers where none belong (trailers).
func (e *Exchange) countPseudo(fields []Field) {
	for _, f := range fields {
		if isPseudo(f) {
			e.cfg.Rec.Count(e.cfg.tokUnknownPseudo, 1)
		}
	}
}

// addFields appends the fields that skip does not reject to h, names in
// canonical form (HTTP/2 and HTTP/3 send them in lower case).
func addFields(h httpmsg.Header, fields []Field, skip func(Field) bool) httpmsg.Header {
	for _, f := range fields {
		if skip != nil && skip(f) {
			continue
		}
		h = append(h, httpmsg.Field{Name: httpmsg.CanonicalName(f.Name), Value: f.Value})
	}
	return h
}

// bodyBuilder accumulates one body's wire bytes and arrival marks.
type bodyBuilder struct {
	data      []byte
	marks     []httpmsg.Mark
	wire      int64
	truncated bool
	dropped   int64
}

// mark records that the body up to off had arrived by at. Bytes that
// arrived together share one mark; past maxMarks the last mark is moved
// forward, so the first marks (time to first byte) stay exact.
func (b *bodyBuilder) mark(off int, at time.Time, maxMarks int) {
	if n := len(b.marks); n > 0 {
		last := &b.marks[n-1]
		if last.At.Equal(at) || n >= maxMarks {
			last.Offset = off
			if at.After(last.At) {
				last.At = at
			}
			return
		}
	}
	if b.marks == nil {
		b.marks = make([]httpmsg.Mark, 0, min(initialMarks, maxMarks))
	}
	b.marks = append(b.marks, httpmsg.Mark{Offset: off, At: at})
}
