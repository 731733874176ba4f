// Package http3 owns decoding one HTTP/3 connection's QUIC streams into
// exchanges. It is incremental and does no I/O: chunks (each naming its QUIC
// stream and direction) go in through Feed, finished exchanges come out
// through the sink.
//
// Client-initiated bidirectional streams carry one request and its response
// as HTTP/3 frames (RFC 9114 §7); unidirectional streams carry the control
// streams (SETTINGS, GOAWAY) and the QPACK encoder and decoder streams
// (RFC 9204 §4.2). Each peer's encoder stream fills the dynamic table used to
// decode the header sections that peer sends. A section that refers to
// entries not received yet is blocked: it waits, bounded in count and bytes,
// and is decoded when the entries arrive, or with the unknown fields left out
// (and the exchange partial) when the flow ends first.
//
// Counters (stats tokens) start with "http3.": bad_direction, bad_stream,
// feed_after_close, frame_reserved, frame_unexpected, frame_unknown,
// push_promise, push_stream_bytes, uni_stream_unknown, uni_streams_dropped,
// control_stream_duplicate, settings_too_large, header_section_too_large,
// header_buffer_budget_exceeded, qpack_error, qpack_encoder_error, qpack_unknown_entry,
// qpack_capacity_capped, qpack_settings_unknown, qpack_blocked,
// qpack_blocked_overflow, qpack_never_unblocked, header_list_truncated,
// gap_bytes, unsynced_bytes, streams_dropped, untracked_stream_bytes,
// server_bidi_stream_bytes, plus the assemble counters (body_truncated, …).
package http3

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/quic-go/quic-go/quicvarint"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http2/assemble"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2).
const (
	streamControl      = 0x00
	streamPush         = 0x01
	streamQPACKEncoder = 0x02
	streamQPACKDecoder = 0x03
)

// SETTINGS identifiers this decoder reads (RFC 9204 §5).
const (
	settingQPACKMaxTableCapacity = 0x1
	settingQPACKBlockedStreams   = 0x7
)

const (
	// maxTrackedStreams bounds the exchanges open at once.
	maxTrackedStreams = 1000
	// maxUniStreams bounds the unidirectional streams followed; a
	// connection needs three per peer plus push streams.
	maxUniStreams = 64
	// doneMemory is how many finished stream ids are remembered.
	doneMemory = 4096
	// maxBlockedSections bounds the header sections waiting for dynamic
	// table entries, whatever SETTINGS_QPACK_BLOCKED_STREAMS says.
	maxBlockedSections = 100
	// maxControlFrame bounds a buffered control frame (SETTINGS, GOAWAY).
	maxControlFrame = 4096
	// headerBufferBudget bounds, in units of MaxHeaderBytes, the HEADERS
	// payload collected across all request streams at once.
	headerBufferBudget = 8
)

// Decoder decodes one HTTP/3 connection. It implements httpmsg.Decoder and
// is not safe for concurrent use.
type Decoder struct {
	info *flow.Info
	sink httpmsg.Sink
	rec  stats.Recorder
	lim  httpmsg.Limits
	cfg  assemble.Config

	// tables[d] decodes header sections flowing in direction d; the
	// encoder stream of the peer that writes in d fills it.
	tables [2]*dynTable
	// blockedLimit[d] is the SETTINGS_QPACK_BLOCKED_STREAMS of the peer
	// that decodes direction d, capped.
	blockedLimit [2]int

	streams map[int64]*reqStream
	done    assemble.DoneSet[int64]
	uni     map[int64]*uniStream
	seq     int
	lastAt  time.Time
	closed  bool

	// blocked lists the stream halves holding sections that wait for
	// dynamic table entries, in the order they blocked.
	blocked      []*half
	blockedCount int
	blockedBytes int

	// headerBuffered is the HEADERS payload bytes being collected across
	// all request streams; a peer opening many streams with large
	// sections must not make the decoder hold them all.
	headerBuffered uint64

	// goAwayID is the lowest request stream id the server said it will
	// not process, once goAwaySeen.
	goAwayID   int64
	goAwaySeen bool

	fields []assemble.Field // scratch for one header section
}

var _ httpmsg.Decoder = (*Decoder)(nil)

// New returns a decoder for the flow. Zero fields of lim take
// httpmsg.DefaultLimits; rec must not be nil (use stats.Discard{}).
func New(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) *Decoder {
	lim = lim.WithDefaults()
	d := &Decoder{
		info:    info,
		sink:    sink,
		rec:     rec,
		lim:     lim,
		streams: make(map[int64]*reqStream),
		uni:     make(map[int64]*uniStream),
		done:    assemble.NewDoneSet[int64](doneMemory),
	}
	d.cfg = assemble.Config{Flow: info, Proto: "HTTP/3", Limits: lim, Rec: rec, Prefix: "http3"}
	d.cfg.Init()
	for i := range d.tables {
		d.tables[i] = newDynTable()
		d.blockedLimit[i] = maxBlockedSections
	}
	return d
}

// Feed consumes one chunk of one QUIC stream.
func (d *Decoder) Feed(c flow.Chunk) {
	if d.closed {
		d.rec.Count("http3.feed_after_close", int64(len(c.Data)))
		return
	}
	if c.Dir != flow.ClientToServer && c.Dir != flow.ServerToClient {
		d.rec.Count("http3.bad_direction", int64(len(c.Data)))
		return
	}
	if c.StreamID < 0 {
		d.rec.Count("http3.bad_stream", int64(len(c.Data)))
		return
	}
	if c.At.After(d.lastAt) {
		d.lastAt = c.At
	}
	switch c.StreamID % 4 {
	case 0:
		d.feedRequest(c)
	case 1:
		// Server-initiated bidirectional streams have no meaning in
		// HTTP/3 (RFC 9114 §6.1) unless an extension negotiated them.
		d.rec.Count("http3.server_bidi_stream_bytes", int64(len(c.Data)))
	default:
		d.feedUni(c)
	}
}

// Close ends the flow: blocked sections are decoded with what the tables
// hold, and every exchange still open is delivered, partial.
func (d *Decoder) Close(ci flow.CloseInfo) {
	if d.closed {
		return
	}
	d.closed = true
	at := ci.At
	if at.IsZero() {
		at = d.lastAt
	}
	for _, h := range d.blocked {
		for _, pb := range h.pending {
			d.rec.Count("http3.qpack_never_unblocked", 1)
			h.s.x.Note("QPACK dynamic table entries never arrived: headers partly unknown")
			d.applySection(h, pb.data, pb.at)
		}
		h.pending = nil
	}
	d.blocked = nil
	open := make([]*reqStream, 0, len(d.streams))
	for _, s := range d.streams {
		open = append(open, s)
	}
	slices.SortFunc(open, func(a, b *reqStream) int { return cmp.Compare(a.id, b.id) })
	reason := ci.Reason
	if reason == "" {
		reason = "closed"
	}
	for _, s := range open {
		if !s.x.Ended(assemble.Response) {
			note := "connection ended before the response (" + reason + ")"
			if resp := &s.halves[flow.ServerToClient]; s.halves[flow.ClientToServer].fin && !resp.unsync && resp.fp.idle() && len(resp.pending) == 0 {
				// The response stopped between two frames: a client
				// that stopped reading at an event stream's last event
				// leaves exactly this.
				s.x.Unended(note)
			} else {
				s.x.Note(note)
			}
		}
		d.deliver(s, at)
	}
}

// reqStream is a client-initiated bidirectional stream: one exchange.
type reqStream struct {
	d      *Decoder
	id     int64
	x      *assemble.Exchange
	halves [2]half
	// finished is set once the exchange went to the sink; frames still
	// being parsed from the same chunk are dropped after that.
	finished bool
}

// half is one direction of a request stream.
type half struct {
	s       *reqStream
	dir     flow.Direction
	side    assemble.Side
	at      time.Time
	fp      frameParser
	pending []pendingSection // blocked header sections, in order
	fin     bool
	unsync  bool // frame sync lost: the rest of this direction is dropped
	// headersLost is set when the HEADERS frame being read lost bytes.
	headersLost bool
	// reserved is this half's share of Decoder.headerBuffered.
	reserved uint64
}

// release returns the half's reservation of the header buffer budget.
func (h *half) release() {
	h.s.d.headerBuffered -= h.reserved
	h.reserved = 0
}

type pendingSection struct {
	data []byte
	at   time.Time
}

func (d *Decoder) feedRequest(c flow.Chunk) {
	s := d.streams[c.StreamID]
	if s == nil {
		if d.done.Has(c.StreamID) {
			d.rec.Count("http3.untracked_stream_bytes", int64(len(c.Data)))
			return
		}
		if len(d.streams) >= maxTrackedStreams {
			d.rec.Count("http3.streams_dropped", 1)
			d.rec.Count("http3.untracked_stream_bytes", int64(len(c.Data)))
			d.done.Add(c.StreamID)
			return
		}
		s = &reqStream{d: d, id: c.StreamID, x: d.cfg.Start(c.StreamID, d.seq, c.At)}
		d.seq++
		for i := range s.halves {
			s.halves[i] = half{s: s, dir: flow.Direction(i), side: assemble.Side(i)}
		}
		d.streams[c.StreamID] = s
		if d.goAwaySeen && c.StreamID >= d.goAwayID {
			s.x.Abort(fmt.Sprintf("not processed: GOAWAY stream %d", d.goAwayID))
		}
	}
	h := &s.halves[c.Dir]
	h.at = c.At
	if c.Gap > 0 {
		d.rec.Count("http3.gap_bytes", c.Gap)
		if h.unsync || !h.fp.lose(uint64(c.Gap), h) {
			if !h.unsync {
				h.unsync = true
				s.x.Lost(h.side, h.side.String()+" bytes lost")
			}
		}
	}
	if h.unsync {
		d.rec.Count("http3.unsynced_bytes", int64(len(c.Data)))
	} else if len(c.Data) > 0 {
		h.fp.feed(c.Data, h)
	}
	if c.Fin && !h.fin && !s.finished {
		h.fin = true
		if !h.fp.idle() {
			d.rec.Count("http3.unsynced_bytes", 1)
			s.x.Note(h.side.String() + " stream ended inside a frame")
		}
		s.x.End(h.side, c.At)
		d.maybeDeliver(s)
	}
}

// maybeDeliver hands the exchange over once the response stream ended and
// no header section of the stream is still waiting for table entries.
func (d *Decoder) maybeDeliver(s *reqStream) {
	if d.streams[s.id] != s || !s.halves[flow.ServerToClient].fin {
		return
	}
	if len(s.halves[0].pending) > 0 || len(s.halves[1].pending) > 0 {
		return
	}
	d.deliver(s, s.halves[flow.ServerToClient].at)
}

func (d *Decoder) deliver(s *reqStream, at time.Time) {
	s.finished = true
	delete(d.streams, s.id)
	d.done.Add(s.id)
	for i := range s.halves {
		h := &s.halves[i]
		for _, pb := range h.pending {
			d.blockedCount--
			d.blockedBytes -= len(pb.data)
		}
		h.pending = nil
	}
	d.blocked = slices.DeleteFunc(d.blocked, func(h *half) bool { return h.s == s })
	s.halves[0].release()
	s.halves[1].release()
	d.sink.Done(s.x.Finish(at))
}

// begin implements frameSink for a request stream half.
func (h *half) begin(t, l uint64) frameMode {
	d := h.s.d
	if h.s.finished {
		d.rec.Count("http3.untracked_stream_bytes", int64(l))
		return modeSkip
	}
	switch {
	case t == frameData:
		return modeStream
	case t == frameHeaders:
		h.headersLost = false
		if l > uint64(2*d.lim.MaxHeaderBytes) {
			d.rec.Count("http3.header_section_too_large", 1)
			h.s.x.HeadersUnknown(h.side, fmt.Sprintf("%s header section of %d bytes over the limit", h.side, l), h.at)
			return modeSkip
		}
		if d.headerBuffered+l > uint64(headerBufferBudget*d.lim.MaxHeaderBytes) {
			d.rec.Count("http3.header_buffer_budget_exceeded", 1)
			h.s.x.HeadersUnknown(h.side, h.side.String()+" header section dropped: too many large sections at once", h.at)
			return modeSkip
		}
		h.reserved = l
		d.headerBuffered += l
		return modeBuffer
	case t == framePushPromise && h.dir == flow.ServerToClient:
		// Push is ignored; skipping the section is safe because QPACK
		// sections never change the dynamic table.
		d.rec.Count("http3.push_promise", 1)
	case reservedFrameType(t):
		d.rec.Count("http3.frame_reserved", 1)
	case t == frameCancelPush || t == frameSettings || t == frameGoAway || t == frameMaxPushID || t == framePushPromise:
		// RFC 9114 §7.2: not allowed on request streams.
		d.rec.Count("http3.frame_unexpected", 1)
	case t == framePriorityUpdate || t == framePriorityPush || greaseType(t):
	default:
		d.rec.Count("http3.frame_unknown", 1)
	}
	return modeSkip
}

func (h *half) data(p []byte) {
	if !h.s.finished {
		h.s.x.Data(h.side, p, h.at)
	}
}

func (h *half) end(t uint64, payload []byte) {
	if t == frameHeaders {
		h.release()
	}
	if t != frameHeaders || h.headersLost || h.s.finished {
		return
	}
	h.s.d.section(h, payload, h.at)
}

func (h *half) lost(t uint64, n uint64) {
	if h.s.finished {
		return
	}
	switch t {
	case frameData:
		h.s.x.Lost(h.side, h.side.String()+" bytes lost")
	case frameHeaders:
		h.headersLost = true
		h.s.x.HeadersUnknown(h.side, h.side.String()+" header section lost", h.at)
	}
}

// section handles one complete header section of a request stream half.
func (d *Decoder) section(h *half, payload []byte, at time.Time) {
	if len(h.pending) > 0 {
		// Sections of one stream apply in order: queue behind the
		// blocked one.
		d.block(h, payload, at)
		return
	}
	t := d.tables[h.dir]
	pre, err := t.parsePrefix(payload)
	if err == nil && pre.requiredInsertCount > t.insertCount() && !t.broken {
		d.rec.Count("http3.qpack_blocked", 1)
		d.block(h, payload, at)
		return
	}
	d.applySection(h, payload, at)
}

// block queues a section until the table has the entries it needs.
func (d *Decoder) block(h *half, payload []byte, at time.Time) {
	if d.blockedCount >= d.blockedLimit[h.dir] || d.blockedBytes+len(payload) > 4*d.lim.MaxHeaderBytes {
		// Over the bound: decode now (after the stream's earlier
		// sections, to keep their order), leaving unknown what is
		// missing.
		d.rec.Count("http3.qpack_blocked_overflow", 1)
		h.s.x.Note("too many blocked QPACK sections: headers partly unknown")
		for _, pb := range h.pending {
			d.blockedCount--
			d.blockedBytes -= len(pb.data)
			d.applySection(h, pb.data, pb.at)
		}
		if len(h.pending) > 0 {
			h.pending = nil
			d.blocked = slices.DeleteFunc(d.blocked, func(o *half) bool { return o == h })
		}
		d.applySection(h, payload, at)
		d.maybeDeliver(h.s)
		return
	}
	if len(h.pending) == 0 {
		d.blocked = append(d.blocked, h)
		h.s.x.HeadersPending(h.side)
	}
	h.pending = append(h.pending, pendingSection{data: append([]byte(nil), payload...), at: at})
	d.blockedCount++
	d.blockedBytes += len(payload)
}

// applySection decodes a section and applies it to the exchange; entries
// the table lacks are left out as unknown.
func (d *Decoder) applySection(h *half, payload []byte, at time.Time) {
	x := h.s.x
	t := d.tables[h.dir]
	pre, err := t.parsePrefix(payload)
	if err != nil {
		d.rec.Count("http3.qpack_error", 1)
		x.HeadersUnknown(h.side, fmt.Sprintf("%s header section undecodable (%v)", h.side, err), at)
		return
	}
	if !t.settingsKnown && pre.requiredInsertCount > 0 {
		d.rec.Count("http3.qpack_settings_unknown", 1)
	}
	var res sectionResult
	if pre.requiredInsertCount == 0 && pre.base == 0 {
		res = decodeStatic(payload, d.lim.MaxHeaderBytes, d.fields[:0])
	} else {
		res = t.decodeSection(pre, d.lim.MaxHeaderBytes, d.fields[:0])
	}
	d.fields = res.fields[:0]
	if res.err != nil {
		d.rec.Count("http3.qpack_error", 1)
		if len(res.fields) == 0 {
			x.HeadersUnknown(h.side, fmt.Sprintf("%s header section undecodable (%v)", h.side, res.err), at)
			return
		}
		x.Note(fmt.Sprintf("%s header section partly undecodable (%v)", h.side, res.err))
	}
	x.Headers(h.side, assemble.Block{Fields: res.fields, Unknown: res.unknown}, at)
	if res.unknown > 0 {
		d.rec.Count("http3.qpack_unknown_entry", int64(res.unknown))
		x.Note("QPACK dynamic table entries unavailable: headers partly unknown")
	}
	if res.truncated {
		d.rec.Count("http3.header_list_truncated", 1)
		x.Note(h.side.String() + " header list truncated")
	}
}

// unblock decodes the sections of direction dir whose entries arrived.
func (d *Decoder) unblock(dir flow.Direction) {
	t := d.tables[dir]
	var ready []*half
	for _, h := range d.blocked {
		if h.dir != dir {
			continue
		}
		for len(h.pending) > 0 {
			pb := h.pending[0]
			pre, err := t.parsePrefix(pb.data)
			if err == nil && pre.requiredInsertCount > t.insertCount() && !t.broken {
				break
			}
			h.pending = h.pending[1:]
			d.blockedCount--
			d.blockedBytes -= len(pb.data)
			d.applySection(h, pb.data, pb.at)
		}
		if len(h.pending) == 0 {
			h.pending = nil
			ready = append(ready, h)
		}
	}
	if len(ready) == 0 {
		return
	}
	d.blocked = slices.DeleteFunc(d.blocked, func(h *half) bool { return slices.Contains(ready, h) })
	for _, h := range ready {
		d.maybeDeliver(h.s)
	}
}

// uniStream is a unidirectional stream: control, push, QPACK encoder or
// decoder, or an unknown (grease) type.
type uniStream struct {
	d       *Decoder
	dir     flow.Direction
	typeBuf []byte
	typed   bool
	kind    uint64
	ignore  bool
	fp      frameParser
	unsync  bool
}

func (d *Decoder) feedUni(c flow.Chunk) {
	// id%4 == 2 is client-initiated, 3 server-initiated (RFC 9000 §2.1).
	want := flow.ClientToServer
	if c.StreamID%4 == 3 {
		want = flow.ServerToClient
	}
	if c.Dir != want {
		d.rec.Count("http3.bad_direction", int64(len(c.Data)))
		return
	}
	u := d.uni[c.StreamID]
	if u == nil {
		if len(d.uni) >= maxUniStreams {
			d.rec.Count("http3.uni_streams_dropped", int64(len(c.Data)))
			return
		}
		u = &uniStream{d: d, dir: c.Dir}
		d.uni[c.StreamID] = u
	}
	if c.Gap > 0 {
		d.rec.Count("http3.gap_bytes", c.Gap)
		u.lose(c.Gap)
	}
	p := c.Data
	if !u.typed {
		// The stream type is a varint of at most 8 bytes.
		buf := append(u.typeBuf, p[:min(len(p), 8-len(u.typeBuf))]...)
		t, n, err := quicvarint.Parse(buf)
		if err != nil {
			u.typeBuf = buf // incomplete: all of p is in buf
			return
		}
		p = p[n-len(u.typeBuf):]
		u.typeBuf = nil
		u.typed = true
		u.open(t)
	}
	if len(p) > 0 {
		u.feed(p)
	}
}

// open sets the stream's kind from its type.
func (u *uniStream) open(t uint64) {
	d := u.d
	u.kind = t
	switch t {
	case streamControl:
		for _, o := range d.uni {
			if o != u && o.typed && o.dir == u.dir && o.kind == streamControl {
				d.rec.Count("http3.control_stream_duplicate", 1)
				u.ignore = true
			}
		}
	case streamQPACKEncoder, streamQPACKDecoder:
	case streamPush:
		u.ignore = true
	default:
		d.rec.Count("http3.uni_stream_unknown", 1)
		u.ignore = true
	}
}

func (u *uniStream) feed(p []byte) {
	d := u.d
	switch {
	case u.kind == streamPush:
		d.rec.Count("http3.push_stream_bytes", int64(len(p)))
	case u.ignore || u.unsync:
	case u.kind == streamControl:
		u.fp.feed(p, u)
	case u.kind == streamQPACKEncoder:
		t := d.tables[u.dir]
		wasBroken := t.broken
		n, err := t.feedEncoder(p)
		if err != nil {
			d.rec.Count("http3.qpack_encoder_error", 1)
		}
		if n > 0 || t.broken && !wasBroken {
			d.unblock(u.dir)
		}
	case u.kind == streamQPACKDecoder:
		// Section acknowledgements and insert count increments: nothing
		// to record.
	}
}

// lose handles lost bytes of a unidirectional stream.
func (u *uniStream) lose(n int64) {
	d := u.d
	switch {
	case !u.typed:
		u.ignore = true
	case u.kind == streamQPACKEncoder:
		t := d.tables[u.dir]
		if !t.broken {
			t.broken = true
			t.pending = nil
			d.unblock(u.dir)
		}
	case u.kind == streamControl:
		if !u.fp.lose(uint64(n), u) {
			u.unsync = true
		}
	}
}

// begin implements frameSink for the control stream.
func (u *uniStream) begin(t, l uint64) frameMode {
	d := u.d
	switch {
	case t == frameSettings || t == frameGoAway:
		if l > maxControlFrame {
			d.rec.Count("http3.settings_too_large", 1)
			return modeSkip
		}
		return modeBuffer
	case t == frameMaxPushID || t == frameCancelPush || t == framePriorityUpdate || t == framePriorityPush || greaseType(t):
	case reservedFrameType(t):
		d.rec.Count("http3.frame_reserved", 1)
	case t == frameData || t == frameHeaders || t == framePushPromise:
		d.rec.Count("http3.frame_unexpected", 1)
	default:
		d.rec.Count("http3.frame_unknown", 1)
	}
	return modeSkip
}

func (u *uniStream) data([]byte)         {}
func (u *uniStream) lost(uint64, uint64) {}

func (u *uniStream) end(t uint64, payload []byte) {
	if payload == nil && t != frameSettings {
		return
	}
	switch t {
	case frameSettings:
		u.settings(payload)
	case frameGoAway:
		if id, _, err := quicvarint.Parse(payload); err == nil && u.dir == flow.ServerToClient {
			u.d.goAway(int64(min(id, 1<<62)))
		}
	}
}

// settings applies the SETTINGS a peer sent. They describe the peer's QPACK
// decoder, so they bound the table of the OTHER direction: the server's
// QPACK_MAX_TABLE_CAPACITY limits the client's encoder, whose table decodes
// client→server sections.
func (u *uniStream) settings(p []byte) {
	d := u.d
	other := 1 - u.dir
	t := d.tables[other]
	for len(p) > 0 {
		id, n1, err := quicvarint.Parse(p)
		if err != nil {
			return
		}
		v, n2, err := quicvarint.Parse(p[n1:])
		if err != nil {
			return
		}
		p = p[n1+n2:]
		switch id {
		case settingQPACKMaxTableCapacity:
			if v > maxTableCapacity {
				d.rec.Count("http3.qpack_capacity_capped", 1)
				v = maxTableCapacity
			}
			t.maxCapacity = v
			t.settingsKnown = true
		case settingQPACKBlockedStreams:
			d.blockedLimit[other] = int(min(v, maxBlockedSections))
		}
	}
}

// goAway closes the request streams the server will not process
// (RFC 9114 §5.2: ids at or above the one sent).
func (d *Decoder) goAway(id int64) {
	if !d.goAwaySeen || id < d.goAwayID {
		d.goAwayID, d.goAwaySeen = id, true
	}
	var gone []*reqStream
	for sid, s := range d.streams {
		if sid >= id {
			gone = append(gone, s)
		}
	}
	slices.SortFunc(gone, func(a, b *reqStream) int { return cmp.Compare(a.id, b.id) })
	for _, s := range gone {
		s.x.Abort(fmt.Sprintf("not processed: GOAWAY stream %d", id))
		d.deliver(s, d.lastAt)
	}
}
