// Package http1 owns HTTP/1.x decoding: it turns the two byte streams of a
// TCP flow into request/response exchanges, incrementally and without I/O.
//
// It handles keep-alive and pipelining (any number of requests ahead of
// their responses, paired in order), Content-Length, chunked bodies in both
// directions (extensions and trailers), close-delimited responses, interim
// 1xx responses (Expect: 100-continue), bodiless responses (HEAD, 204, 304,
// 2xx to CONNECT), protocol switches (101 and CONNECT tunnels, handed to an
// optional next decoder) and content codings (via package content).
//
// Input may be split at any byte. Bad input never stops the flow: garbage
// before a start line is counted and skipped until the next plausible start
// line, and every buffer is bounded by httpmsg.Limits. Lost bytes
// (Chunk.Gap) mark the exchange partial; inside a body of known length the
// decoder skips exactly the lost bytes and keeps its place, elsewhere it
// resynchronises on the next start line. Every dropped byte is counted on
// the stats.Recorder under an "http1." token.
//
// Body arrival marks are kept per arrival (one mark per chunk time, capped
// by Limits.MaxMarks). When a content coding is removed the marks are not
// scaled: package content maps them through the decompressor, so each
// decoded byte carries the arrival time of the compressed bytes it came
// from.
package http1

import (
	"time"

	"github.com/oisp/oisp-sensor/sensor/content"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Counter tokens recorded by this package. Byte counts unless noted.
const (
	TokenBadStartLine      = "http1.bad_start_line"      // garbage skipped looking for a start line
	TokenResyncAfterGap    = "http1.resync_after_gap"    // bytes skipped after lost bytes
	TokenLostBytes         = "http1.lost_bytes"          // bytes the source reported lost (Chunk.Gap)
	TokenHeaderTooLarge    = "http1.header_too_large"    // header bytes over Limits.MaxHeaderBytes
	TokenTrailerTooLarge   = "http1.trailer_too_large"   // trailer bytes over Limits.MaxHeaderBytes
	TokenBadHeaderLine     = "http1.bad_header_line"     // lines in a header block that are not fields
	TokenBadContentLength  = "http1.bad_content_length"  // messages (count)
	TokenBadTransferCoding = "http1.bad_transfer_coding" // requests with a non-chunked Transfer-Encoding (count)
	TokenBadChunkSize      = "http1.bad_chunk_size"      // unreadable chunk-size lines (count)
	TokenBadChunkEnd       = "http1.bad_chunk_end"       // chunks not followed by CRLF (count)
	TokenBodyTruncated     = "http1.body_truncated"      // body bytes over Limits.MaxBody
	TokenUpgradedBytes     = "http1.upgraded_bytes"      // bytes after 101 with no next decoder
	TokenTunnelBytes       = "http1.tunnel_bytes"        // bytes after a CONNECT 2xx with no next decoder
	TokenH2Preface         = "http1.h2_preface"          // flows opening with the HTTP/2 preface (count)
	TokenH2Bytes           = "http1.h2_bytes"            // bytes of such a flow with no HTTP/2 decoder
	TokenResyncAfterError  = "http1.resync_after_error"  // bytes skipped after a broken body framing
	TokenAfterFin          = "http1.after_fin"           // bytes after a direction ended
	TokenIncomplete        = "http1.incomplete_message"  // bytes of start lines/headers cut off
	TokenPendingOverflow   = "http1.pending_overflow"    // exchanges given up waiting for a response (count)
	TokenOrphanResponse    = "http1.orphan_response"     // responses with no request seen (count)
	TokenInterimResponse   = "http1.interim_response"    // 1xx responses skipped (count)
	TokenHeldDropped       = "http1.held_dropped"        // client bytes over the hold buffer while an upgrade is pending
)

// Options are the optional behaviours of a Decoder.
type Options struct {
	// Upgrade is called when the connection stops carrying HTTP/1.x: after
	// a 101 Switching Protocols response (x.Request.Header names the
	// protocol in Upgrade) or a 2xx response to CONNECT (a tunnel). x has
	// already been delivered to the sink. A non-nil decoder returned here
	// receives every later byte of the flow, starting with any bytes that
	// followed the switch in the chunks already seen, and the Close. With
	// no callback, or a nil result, the later bytes are only counted
	// (http1.upgraded_bytes or http1.tunnel_bytes). sink is this decoder's
	// sink, so that a function shared by every flow can find the flow's
	// state there instead of a closure being made per flow.
	Upgrade func(sink httpmsg.Sink, x *httpmsg.Exchange) httpmsg.Decoder
	// H2Preface is called when the client opens the flow with the HTTP/2
	// connection preface ("PRI * HTTP/2.0"), with this decoder's flow,
	// sink, limits and recorder (so a constructor such as http2.New's
	// serves, with no closure made per flow). A non-nil result receives
	// the whole flow from its first byte; otherwise the flow is counted as
	// http1.h2_preface and its bytes as garbage.
	H2Preface func(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder
	// MaxPending caps exchanges waiting for their response (pipelining).
	// When it is reached the oldest is delivered without a response.
	// Zero means 64; values below 2 mean 2.
	MaxPending int
	// KeepContentEncoding leaves bodies as sent instead of removing
	// Content-Encoding.
	KeepContentEncoding bool
	// Readers, when set, lends the decompressors that remove
	// Content-Encoding (shared by the decoders of many flows).
	Readers *content.Readers
}

// Decoder decodes one HTTP/1.x flow. It implements httpmsg.Decoder and is
// not safe for concurrent use.
type Decoder struct {
	info    *flow.Info
	sink    httpmsg.Sink
	lim     httpmsg.Limits
	rec     stats.Recorder
	opts    Options
	content *content.Decoder

	client, server side

	queue []*exchange // undelivered exchanges in request order
	// queueInit backs queue while few exchanges wait (nearly always), so a
	// flow's queue costs no allocation of its own.
	queueInit [2]*exchange
	nextSeq   int
	evicted   int // requests given up on whose responses may still come

	// early holds server bytes that arrived before any client byte and do
	// not look like HTTP/1: a server speaking first is HTTP/2 (SETTINGS)
	// or skew between the directions; the client's first bytes decide.
	early   []byte
	earlyAt time.Time

	switched bool            // HTTP/1 parsing has stopped
	next     httpmsg.Decoder // receives the flow after a switch, if any
	nextTok  string          // token counting bytes after a switch with no next decoder
	closed   bool
}

// exchange is an Exchange with the parse state shared by both directions.
type exchange struct {
	x *httpmsg.Exchange
	// xv and resp are where x and its response live: one allocation per
	// exchange instead of three.
	xv   httpmsg.Exchange
	resp httpmsg.Response
	// marks hold the first arrival mark of the request and response
	// bodies: most bodies arrive at once and need no more.
	marks [2][1]httpmsg.Mark
	// fields is room for the request and response headers: an exchange's
	// two headers live and die together, and most fit (see
	// requestHeader). spare is what the request header left of it.
	fields      [exchangeFields]httpmsg.Field
	spare       httpmsg.Header
	reqDone     bool // the request ended (complete or not)
	respDone    bool // the final response ended (complete or not)
	respStarted bool // a final response has been paired with it
	orphan      bool // a response with no request seen
	head        bool // request method HEAD: the response has no body
	connect     bool // request method CONNECT
	upgrade     bool // request asks to switch protocols
	respLost    bool // bytes of the response were lost
}

// New returns a Decoder for the flow described by info that delivers
// exchanges to sink.
func New(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) *Decoder {
	return NewWithOptions(info, sink, lim, rec, Options{})
}

// NewWithOptions is New with optional behaviours.
func NewWithOptions(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder, opts Options) *Decoder {
	d := new(Decoder)
	d.Init(info, sink, lim, rec, opts)
	return d
}

// Init readies d, a zero Decoder, as NewWithOptions readies a new one: an
// owner that keeps a flow's decoder in a struct of its own (a pipeline's
// flow state) saves an allocation per flow. d must not be copied after.
func (d *Decoder) Init(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder, opts Options) {
	if rec == nil {
		rec = stats.Discard{}
	}
	if info == nil {
		info = &flow.Info{}
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = 64
	}
	opts.MaxPending = max(opts.MaxPending, 2)
	*d = Decoder{
		info: info,
		sink: sink,
		lim:  lim.WithDefaults(),
		rec:  rec,
		opts: opts,
	}
	d.queue = d.queueInit[:0]
	d.client = side{d: d, dir: flow.ClientToServer}
	d.server = side{d: d, dir: flow.ServerToClient}
}

// scheme is the URL scheme of the flow's requests.
func (d *Decoder) scheme() string {
	if d.info.TLS {
		return "https"
	}
	return "http"
}

// contentDecoder returns the decoder that removes content codings, made on
// first use: most flows carry no encoded body.
func (d *Decoder) contentDecoder() *content.Decoder {
	if d.content == nil {
		d.content = content.NewSharedDecoder(d.rec, d.opts.Readers)
	}
	return d.content
}

// Feed consumes one chunk of the flow.
func (d *Decoder) Feed(c flow.Chunk) {
	if d.closed {
		d.rec.Count(TokenAfterFin, int64(len(c.Data)))
		return
	}
	if d.switched {
		d.forward(c)
		return
	}
	s := &d.client
	if c.Dir == flow.ServerToClient {
		s = &d.server
	}
	if c.Gap > 0 {
		d.rec.Count(TokenLostBytes, c.Gap)
		s.lost(c.Gap, c.At)
	}
	if len(c.Data) > 0 {
		if s.dir == flow.ServerToClient && d.holdEarly(c.Data, c.At) {
			return
		}
		if s.dir == flow.ClientToServer && !d.client.seen {
			d.client.seen = true
			if d.early != nil {
				d.client.feed(c.Data, c.At)
				d.releaseEarly()
				c.Data = nil
			}
		}
		s.feed(c.Data, c.At)
	}
	if c.Fin {
		if s.dir == flow.ServerToClient && !d.switched {
			d.releaseEarly()
		}
		if d.switched { // the switch happened inside this chunk
			d.forward(flow.Chunk{Dir: c.Dir, At: c.At, Fin: true})
		} else {
			s.finish(c.At)
		}
	}
}

// holdEarly keeps server bytes that come before any client byte and do not
// start like an HTTP/1 response, up to MaxHeaderBytes.
func (d *Decoder) holdEarly(p []byte, at time.Time) bool {
	if d.client.seen || d.server.seen && d.early == nil {
		return false
	}
	if d.early == nil {
		if plausibleStatusStart(p[:min(len(p), 5)]) {
			return false
		}
		d.earlyAt = at
	}
	if len(d.early)+len(p) > d.lim.MaxHeaderBytes {
		d.releaseEarly()
		return false
	}
	d.early = append(d.early, p...)
	return true
}

// releaseEarly feeds held server bytes to the server side (or to the next
// decoder if the client's first bytes switched the flow).
func (d *Decoder) releaseEarly() {
	early := d.early
	if early == nil {
		return
	}
	d.early = nil
	d.server.seen = true
	if d.switched {
		d.forward(flow.Chunk{Dir: flow.ServerToClient, Data: early, At: d.earlyAt})
		return
	}
	d.server.feed(early, d.earlyAt)
}

// Close ends the flow: open messages are finished as they stand and every
// undelivered exchange is delivered, marked partial where incomplete.
func (d *Decoder) Close(ci flow.CloseInfo) {
	if d.closed {
		return
	}
	if !d.switched {
		d.releaseEarly()
	}
	if !d.switched && d.client.st == stHeld {
		// The switch was never confirmed: what the client sent after the
		// request is HTTP after all.
		d.client.resumeHeld()
	}
	if !d.switched {
		d.client.finish(ci.At)
		d.server.finish(ci.At)
	}
	d.closed = true
	for _, e := range d.queue {
		d.finalize(e)
		d.sink.Done(e.x)
	}
	d.queue = nil
	if d.next != nil {
		d.next.Close(ci)
	}
}

// finalize marks whatever is missing from an exchange delivered at Close or
// on overflow.
func (d *Decoder) finalize(e *exchange) {
	// A message still being read is delivered with the body so far.
	for _, s := range [...]*side{&d.client, &d.server} {
		if s.ex == e {
			s.joinBody()
		}
	}
	if !e.reqDone && !e.orphan {
		e.x.Partial = true
		addNote(e.x, "request incomplete")
	}
	if e.x.Response == nil {
		e.x.Partial = true
		addNote(e.x, "no response")
	} else if !e.respDone {
		e.x.Response.Complete = false
		e.x.Partial = true
		addNote(e.x, "response incomplete")
	}
}

// newExchange queues an exchange for a request (or an orphan response).
func (d *Decoder) newExchange(proto string) *exchange {
	if len(d.queue) >= d.opts.MaxPending {
		d.evictOldest()
	}
	e := &exchange{xv: httpmsg.Exchange{Flow: d.info, Seq: d.nextSeq, Proto: proto}}
	e.x = &e.xv
	e.spare = e.fields[:0]
	d.nextSeq++
	d.queue = append(d.queue, e)
	return e
}

// evictOldest gives up on the oldest exchange so that the queue stays
// bounded when responses stop coming. An exchange whose response is being
// read is given up on only at twice the limit: the server is still
// answering, it is just behind.
func (d *Decoder) evictOldest() {
	e := d.queue[0]
	if e.respStarted && len(d.queue) < 2*d.opts.MaxPending {
		return
	}
	d.rec.Count(TokenPendingOverflow, 1)
	addNote(e.x, "given up: too many pending requests")
	if !e.respStarted && !e.orphan {
		d.evicted++ // its response may still come; it must not pair with the next request
	}
	if d.server.ex == e {
		d.server.abandon("response abandoned: too many pending requests")
		d.server.enterResync(TokenResyncAfterError, false)
	}
	if len(d.queue) > 0 && d.queue[0] == e { // abandon may have delivered it
		d.finalize(e)
		k := copy(d.queue, d.queue[1:])
		d.queue[k] = nil
		d.queue = d.queue[:k]
		d.sink.Done(e.x)
	}
}

// pairResponse returns the exchange a new final response belongs to.
func (d *Decoder) pairResponse(proto string) *exchange {
	for _, e := range d.queue {
		if !e.respStarted && !e.orphan {
			return e
		}
	}
	d.rec.Count(TokenOrphanResponse, 1)
	e := d.newExchange(proto)
	e.orphan = true
	e.reqDone = true
	e.x.Partial = true
	if d.evicted > 0 {
		d.evicted--
		addNote(e.x, "response to a request given up on")
	} else {
		addNote(e.x, "response without a request")
	}
	return e
}

// nextUnanswered returns the oldest exchange still waiting for a response,
// or nil.
func (d *Decoder) nextUnanswered() *exchange {
	for _, e := range d.queue {
		if !e.respStarted && !e.orphan {
			return e
		}
	}
	return nil
}

// deliver hands finished exchanges to the sink in request order.
func (d *Decoder) deliver() {
	n := 0
	for n < len(d.queue) && d.queue[n].reqDone && d.queue[n].respDone {
		d.sink.Done(d.queue[n].x)
		d.queue[n] = nil
		n++
	}
	if n > 0 {
		// Shift rather than reslice, so the queue keeps its backing array
		// (it holds at most 2*MaxPending entries).
		k := copy(d.queue, d.queue[n:])
		clear(d.queue[k:])
		d.queue = d.queue[:k]
	}
}

// switchProtocols stops HTTP/1 parsing after e's response: e and everything
// before it is delivered, and later bytes go to the next decoder.
func (d *Decoder) switchProtocols(e *exchange, tunnel bool) {
	d.switched = true
	d.nextTok = TokenUpgradedBytes
	if tunnel {
		d.nextTok = TokenTunnelBytes
	}
	d.deliver()
	if len(d.queue) > 0 { // requests after the switch cannot be HTTP
		for _, q := range d.queue {
			d.finalize(q)
			d.sink.Done(q.x)
		}
		d.queue = nil
	}
	if d.opts.Upgrade != nil {
		d.next = d.opts.Upgrade(d.sink, e.x)
	}
	// Bytes the client sent after the request go first; the rest of the
	// server's chunk follows from the server's feed loop.
	held, heldAt := d.client.takeHeld()
	if len(held) > 0 {
		d.forward(flow.Chunk{Dir: flow.ClientToServer, Data: held, At: heldAt})
	}
}

// preface stops HTTP/1 parsing of a flow that opened with the HTTP/2
// preface and hands it to the decoder from H2Preface, if any. clientBytes
// are the bytes of the preface seen so far.
func (d *Decoder) preface(clientBytes []byte, at time.Time) {
	d.rec.Count(TokenH2Preface, 1)
	d.switched = true
	d.nextTok = TokenH2Bytes
	if d.opts.H2Preface != nil {
		d.next = d.opts.H2Preface(d.info, d.sink, d.lim, d.rec)
	}
	d.forward(flow.Chunk{Dir: flow.ClientToServer, Data: clientBytes, At: at})
	d.releaseEarly()
}

// forward passes a chunk to the decoder that took the flow over, or counts
// it.
func (d *Decoder) forward(c flow.Chunk) {
	if d.next != nil {
		d.next.Feed(c)
		return
	}
	d.rec.Count(d.nextTok, int64(len(c.Data)))
}

// maxNotes bounds the notes on one exchange: a long stream with many gaps
// must not grow a note per gap.
const maxNotes = 16

func addNote(x *httpmsg.Exchange, note string) {
	for _, n := range x.Notes {
		if n == note {
			return
		}
	}
	switch {
	case len(x.Notes) < maxNotes-1:
		x.Notes = append(x.Notes, note)
	case len(x.Notes) == maxNotes-1:
		x.Notes = append(x.Notes, "further notes dropped")
	}
}

var _ httpmsg.Decoder = (*Decoder)(nil)
