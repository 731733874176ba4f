// Package http2 owns decoding one HTTP/2 connection's two byte streams into
// exchanges. It is incremental and does no I/O: chunks go in through Feed,
// finished exchanges come out through the sink.
//
// Framing is golang.org/x/net/http2's Framer (one per direction, fed from an
// internal buffer only once a whole frame is buffered, so it never blocks);
// header compression is golang.org/x/net/http2/hpack with one decoding
// context per direction. Header blocks are written to the hpack decoder
// fragment by fragment instead of through Framer.ReadMetaHeaders: a passive
// observer must keep what it can of an odd header list, keep the HPACK table
// in step across CONTINUATION floods, and recover from lost table state,
// while ReadMetaHeaders drops a whole list on one invalid field and needs the
// CONTINUATION frames already buffered. The same list-size rule
// (Limits.MaxHeaderBytes, RFC 9113 §6.5.2 sizes) is applied in the emit
// callback, with SetEmitEnabled(false) past it.
//
// Joining mid-connection (no client preface, or a server stream that does not
// open with SETTINGS) or losing bytes makes the decoder hunt for a frame
// boundary (a plausible frame header confirmed by the next one) and decode
// header blocks against an HPACK table of placeholders: fields that refer to
// entries inserted before the join come out as unknown (counted as
// http2.hpack_unknown_index), everything literal or static is kept, and the
// exchange is marked partial with a note. DATA frames, which carry the
// bodies, are never affected by HPACK state.
//
// Counters (stats tokens) start with "http2.": preface_mismatch, resync
// (hunts for a frame boundary), resync_skipped_bytes, gap_bytes, frame_invalid, frame_unknown_type,
// frame_exceeds_advertised_size, truncated_frame_bytes, hpack_error,
// hpack_unknown_index, hpack_gave_up, header_list_truncated,
// header_table_size_capped, continuation_missing, continuation_flood,
// streams_dropped, untracked_stream_frames, push_promise, pushed_stream_frames,
// body_truncated, connection_body_budget_exceeded, bad_direction,
// feed_after_close, plus the assemble counters (missing_status, …).
package http2

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/net/http2"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http2/assemble"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// ClientPreface is the connection preface every HTTP/2 client sends first
// (RFC 9113 §3.4).
const ClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

const (
	// frameHeaderLen is the fixed size of an HTTP/2 frame header.
	frameHeaderLen = 9
	// defaultMaxFrameSize is SETTINGS_MAX_FRAME_SIZE before SETTINGS say
	// otherwise (RFC 9113 §6.5.2).
	defaultMaxFrameSize = 16384
	// maxFrameSize is the largest length a frame header can carry; a
	// synchronised direction buffers at most one such frame.
	maxFrameSize = 1<<24 - 1
	// maxTrackedStreams bounds the exchanges open at once; a peer that
	// opens more gets the extra streams counted and dropped.
	maxTrackedStreams = 1000
	// doneMemory is how many finished stream ids are remembered so that
	// late frames for them are not mistaken for new streams.
	doneMemory = 4096
)

// Decoder decodes one HTTP/2 connection. It implements httpmsg.Decoder and
// is not safe for concurrent use.
type Decoder struct {
	info *flow.Info
	sink httpmsg.Sink
	rec  stats.Recorder
	lim  httpmsg.Limits
	cfg  assemble.Config

	dirs    [2]direction
	streams map[uint32]*assemble.Exchange
	done    assemble.DoneSet[uint32]
	seq     int
	// maxClientStream is the highest client stream id that opened an
	// exchange; on a connection seen from its start, lower ids that are
	// not open are finished or dropped.
	maxClientStream uint32
	lastAt          time.Time
	closed          bool

	maxStreams int
}

var _ httpmsg.Decoder = (*Decoder)(nil)

// New returns a decoder for the flow. Zero fields of lim take
// httpmsg.DefaultLimits; rec must not be nil (use stats.Discard{}).
func New(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) *Decoder {
	lim = lim.WithDefaults()
	d := &Decoder{
		info:       info,
		sink:       sink,
		rec:        rec,
		lim:        lim,
		streams:    make(map[uint32]*assemble.Exchange),
		done:       assemble.NewDoneSet[uint32](doneMemory),
		maxStreams: maxTrackedStreams,
	}
	d.cfg = assemble.Config{Flow: info, Proto: "HTTP/2", Limits: lim, Rec: rec, Prefix: "http2"}
	d.cfg.Init()
	d.dirs[flow.ClientToServer].init(d, flow.ClientToServer)
	d.dirs[flow.ServerToClient].init(d, flow.ServerToClient)
	return d
}

// Feed consumes one chunk of either direction.
func (d *Decoder) Feed(c flow.Chunk) {
	if d.closed {
		d.rec.Count("http2.feed_after_close", int64(len(c.Data)))
		return
	}
	if c.Dir != flow.ClientToServer && c.Dir != flow.ServerToClient {
		d.rec.Count("http2.bad_direction", int64(len(c.Data)))
		return
	}
	if c.At.After(d.lastAt) {
		d.lastAt = c.At
	}
	dir := &d.dirs[c.Dir]
	dir.at = c.At
	if c.Gap > 0 {
		dir.lose(c.Gap)
	}
	if len(c.Data) > 0 {
		dir.consume(c.Data)
	}
	if c.Fin {
		dir.finish()
	}
}

// Close ends the flow: every exchange still open is delivered, partial.
func (d *Decoder) Close(ci flow.CloseInfo) {
	if d.closed {
		return
	}
	d.closed = true
	at := ci.At
	if at.IsZero() {
		at = d.lastAt
	}
	for i := range d.dirs {
		d.dirs[i].at = at
		d.dirs[i].finish()
	}
	open := make([]*assemble.Exchange, 0, len(d.streams))
	for _, x := range d.streams {
		open = append(open, x)
	}
	slices.SortFunc(open, func(a, b *assemble.Exchange) int { return cmp.Compare(a.StreamID(), b.StreamID()) })
	reason := ci.Reason
	if reason == "" {
		reason = "closed"
	}
	for _, x := range open {
		if !x.Ended(assemble.Response) {
			x.Note("connection ended before the response (" + reason + ")")
		}
		d.deliver(uint32(x.StreamID()), at)
	}
}

// stream returns the open exchange for id, opening one when the frame may
// start a stream: request HEADERS, or any frame when the stream may have
// started before the decoder joined (or while bytes were lost).
func (d *Decoder) stream(id uint32, from flow.Direction, opens bool) *assemble.Exchange {
	if x, ok := d.streams[id]; ok {
		return x
	}
	if id == 0 || id%2 == 0 || d.done.Has(id) {
		return nil
	}
	if d.dirs[flow.ClientToServer].fromStart {
		// Seen from the start: only request HEADERS open a stream, and
		// stream ids only grow (RFC 9113 §5.1.1), so a lower id that is
		// not open was finished or dropped already.
		if !opens || id <= d.maxClientStream {
			return nil
		}
	}
	if len(d.streams) >= d.maxStreams {
		d.rec.Count("http2.streams_dropped", 1)
		d.done.Add(id)
		return nil
	}
	at := d.dirs[from].at
	x := d.cfg.Start(int64(id), d.seq, at)
	d.seq++
	d.streams[id] = x
	if id > d.maxClientStream {
		d.maxClientStream = id
	}
	return x
}

// deliver finishes the stream's exchange and hands it to the sink.
func (d *Decoder) deliver(id uint32, at time.Time) {
	x, ok := d.streams[id]
	if !ok {
		return
	}
	delete(d.streams, id)
	d.done.Add(id)
	d.sink.Done(x.Finish(at))
}

// markOpen adds a note to every open exchange (bytes lost, HPACK reset).
func (d *Decoder) markOpen(side assemble.Side, note string, lost bool) {
	for _, x := range d.streams {
		if lost {
			x.Lost(side, note)
		} else {
			x.Note(note)
		}
	}
}

// direction is one byte stream of the connection with its own framer and
// HPACK decoding context.
type direction struct {
	d      *Decoder
	dir    flow.Direction
	side   assemble.Side
	at     time.Time
	state  dirState
	framer *http2.Framer
	src    frameSource
	peek   bytes.Reader
	// buf holds bytes of an incomplete frame (or preface) between chunks.
	buf []byte
	// prefaceSeen counts client preface bytes matched so far.
	prefaceSeen int
	// fromStart is true while the direction has been decoded from the
	// connection start without loss, so its HPACK table is known.
	fromStart bool
	// maxFrame is the SETTINGS_MAX_FRAME_SIZE the other peer advertised for
	// this direction's frames.
	maxFrame uint32
	// fh is the header of the frame whose payload is awaited.
	fh         http2.FrameHeader
	haveHeader bool
	headers    headerState
}

type dirState uint8

const (
	statePreface    dirState = iota // client: matching the connection preface
	stateFirstFrame                 // server: expecting SETTINGS first
	stateFrames                     // synchronised on frame boundaries
	stateHunting                    // looking for a frame boundary
)

func (dir *direction) init(d *Decoder, fd flow.Direction) {
	dir.d = d
	dir.dir = fd
	dir.side = assemble.Request
	dir.state = statePreface
	if fd == flow.ServerToClient {
		dir.side = assemble.Response
		dir.state = stateFirstFrame
	}
	dir.maxFrame = defaultMaxFrameSize
	dir.framer = http2.NewFramer(nil, &dir.src)
	// Frame order (CONTINUATION contiguity) is checked here, not in the
	// Framer, whose check would fail every later frame after one slip.
	dir.framer.AllowIllegalReads = true
	dir.framer.SetMaxReadFrameSize(maxFrameSize)
	dir.framer.SetReuseFrames()
	dir.headers.init(dir)
}

// consume parses as much of data as forms whole frames and keeps the rest.
func (dir *direction) consume(data []byte) {
	var src []byte
	owned := len(dir.buf) > 0
	if owned {
		dir.buf = append(dir.buf, data...)
		src = dir.buf
	} else {
		src = data
	}
	n := dir.parse(src, len(src)-len(data))
	rest := src[n:]
	switch {
	case len(rest) == 0:
		dir.buf = dir.buf[:0]
		if cap(dir.buf) > 1<<20 {
			dir.buf = nil
		}
	case owned:
		dir.buf = dir.buf[:copy(dir.buf, rest)]
	default:
		// The chunk's backing array may be shared with other chunks, so
		// the remainder is copied rather than kept.
		dir.buf = append(dir.buf[:0], rest...)
	}
}

// parse consumes frames from src, whose newest chunk starts at chunkStart,
// and returns how many bytes were used.
func (dir *direction) parse(src []byte, chunkStart int) int {
	off := 0
	for off < len(src) || dir.haveHeader && dir.fh.Length == 0 {
		p := src[off:]
		switch dir.state {
		case statePreface:
			n := min(len(p), len(ClientPreface)-dir.prefaceSeen)
			if string(p[:n]) != ClientPreface[dir.prefaceSeen:dir.prefaceSeen+n] {
				dir.d.rec.Count("http2.preface_mismatch", 1)
				dir.startHunting("joined mid-connection")
				continue
			}
			dir.prefaceSeen += n
			off += n
			if dir.prefaceSeen == len(ClientPreface) {
				dir.state = stateFrames
				dir.fromStart = true
			}
		case stateFirstFrame:
			if len(p) < frameHeaderLen {
				return off
			}
			fh := dir.peekHeader(p)
			if fh.Type == http2.FrameSettings && fh.StreamID == 0 && fh.Flags == 0 && fh.Length%6 == 0 {
				dir.state = stateFrames
				dir.fromStart = true
				continue
			}
			dir.startHunting("joined mid-connection")
		case stateHunting:
			skip, found := dir.hunt(p, chunkStart-off)
			if skip > 0 {
				dir.d.rec.Count("http2.resync_skipped_bytes", int64(skip))
				off += skip
			}
			if !found {
				return off
			}
			dir.state = stateFrames
		case stateFrames:
			// The header is read as soon as it is there and the payload
			// once it is complete, so the Framer never waits on input.
			if !dir.haveHeader {
				if len(p) < frameHeaderLen {
					return off
				}
				dir.src.p = p[:frameHeaderLen]
				fh, err := dir.framer.ReadFrameHeader()
				if err != nil { // only with fewer than 9 bytes
					panic(fmt.Sprintf("http2: frame header: %v", err))
				}
				off += frameHeaderLen
				if fh.Length > dir.maxFrame && fh.Length > defaultMaxFrameSize {
					// Allowed by the wire format and kept, but the peer
					// was not told it may send this much.
					dir.d.rec.Count("http2.frame_exceeds_advertised_size", 1)
				}
				dir.fh, dir.haveHeader = fh, true
				continue
			}
			n := int(dir.fh.Length)
			if len(p) < n {
				return off
			}
			dir.src.p = p[:n]
			dir.haveHeader = false
			f, err := dir.framer.ReadFrameForHeader(dir.fh)
			off += n
			if err != nil {
				dir.frameError(dir.fh, err)
				continue
			}
			dir.handle(f)
		}
	}
	return off
}

func (dir *direction) peekHeader(p []byte) http2.FrameHeader {
	dir.peek.Reset(p[:frameHeaderLen])
	fh, _ := http2.ReadFrameHeader(&dir.peek) // 9 bytes are there
	return fh
}

// startHunting drops frame sync: the decoder looks for the next frame
// boundary, and the HPACK table of this direction is no longer known.
func (dir *direction) startHunting(why string) {
	dir.d.rec.Count("http2.resync", 1)
	dir.state = stateHunting
	dir.haveHeader = false
	dir.fromStart = false
	dir.headers.abandon()
	dir.headers.forget(why + ": headers partly unknown")
}

// lose handles a gap: n bytes of this direction never arrived.
func (dir *direction) lose(n int64) {
	dir.d.rec.Count("http2.gap_bytes", n)
	if len(dir.buf) > 0 {
		dir.d.rec.Count("http2.resync_skipped_bytes", int64(len(dir.buf)))
		dir.buf = dir.buf[:0]
	}
	dir.prefaceSeen = 0
	dir.d.markOpen(dir.side, dir.side.String()+" bytes lost", true)
	dir.startHunting("bytes lost")
}

// finish handles the end of this direction's bytes.
func (dir *direction) finish() {
	if dir.haveHeader {
		dir.d.rec.Count("http2.truncated_frame_bytes", frameHeaderLen)
		dir.haveHeader = false
	}
	if len(dir.buf) > 0 {
		dir.d.rec.Count("http2.truncated_frame_bytes", int64(len(dir.buf)))
		dir.buf = dir.buf[:0]
	}
	dir.headers.abandon()
}

// frameError counts a frame the Framer rejected; its bytes are consumed.
func (dir *direction) frameError(fh http2.FrameHeader, err error) {
	dir.d.rec.Count("http2.frame_invalid", 1)
	switch fh.Type {
	case http2.FrameHeaders, http2.FrameContinuation, http2.FramePushPromise:
		// The fragment never reached HPACK, so the table may be off.
		dir.headers.abandon()
		dir.headers.forget(fmt.Sprintf("invalid %v frame: headers partly unknown", fh.Type))
		if x := dir.d.streams[fh.StreamID]; x != nil {
			x.HeadersUnknown(dir.side, "header block lost ("+errText(err)+")", dir.at)
		}
	}
}

func errText(err error) string {
	if err == io.ErrUnexpectedEOF {
		return "truncated frame"
	}
	return err.Error()
}

// handle applies one frame. Frames are only valid until the next ReadFrame.
func (dir *direction) handle(f http2.Frame) {
	d := dir.d
	if dir.headers.active() {
		if cf, ok := f.(*http2.ContinuationFrame); ok {
			dir.headers.continuation(cf)
			return
		}
		// RFC 9113 §6.10: a header block is a contiguous sequence of
		// frames; anything else in between is a connection error.
		d.rec.Count("http2.continuation_missing", 1)
		dir.headers.abandon()
		dir.headers.forget("header block interrupted: headers partly unknown")
	}
	switch f := f.(type) {
	case *http2.DataFrame:
		dir.data(f)
	case *http2.HeadersFrame:
		dir.headersFrame(f)
	case *http2.ContinuationFrame:
		d.rec.Count("http2.continuation_missing", 1)
	case *http2.RSTStreamFrame:
		if x := d.streams[f.StreamID]; x != nil {
			if !x.Reset(dir.dir == flow.ClientToServer, fmt.Sprintf("stream reset by %s: %v", peerName(dir.dir), f.ErrCode)) {
				d.rec.Count("http2.reset_after_complete", 1)
			}
			d.deliver(f.StreamID, dir.at)
		}
	case *http2.SettingsFrame:
		if !f.IsAck() {
			dir.settings(f)
		}
	case *http2.PushPromiseFrame:
		d.rec.Count("http2.push_promise", 1)
		// The block still goes through HPACK to keep the table in step.
		dir.headers.begin(f.StreamID, nil, false, f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.GoAwayFrame:
		if dir.dir == flow.ServerToClient {
			dir.goAway(f.LastStreamID, f.ErrCode)
		}
	case *http2.PriorityFrame, *http2.PingFrame, *http2.WindowUpdateFrame:
		// Flow control and scheduling carry nothing to record.
	default:
		d.rec.Count("http2.frame_unknown_type", 1)
	}
}

func peerName(fd flow.Direction) string {
	if fd == flow.ServerToClient {
		return "server"
	}
	return "client"
}

func (dir *direction) data(f *http2.DataFrame) {
	x := dir.streamFor(f.StreamID, false)
	if x == nil {
		return
	}
	x.Data(dir.side, f.Data(), dir.at)
	if f.StreamEnded() {
		dir.endStream(x)
	}
}

func (dir *direction) headersFrame(f *http2.HeadersFrame) {
	x := dir.streamFor(f.StreamID, dir.dir == flow.ClientToServer)
	dir.headers.begin(f.StreamID, x, f.StreamEnded(), f.HeaderBlockFragment(), f.HeadersEnded())
}

// streamFor finds (or opens) the exchange a stream frame of this
// direction belongs to, counting frames that belong to none.
func (dir *direction) streamFor(id uint32, opens bool) *assemble.Exchange {
	d := dir.d
	if id%2 == 0 {
		// Server-initiated (pushed) streams are not exchanges the client
		// asked for.
		d.rec.Count("http2.pushed_stream_frames", 1)
		return nil
	}
	x := d.stream(id, dir.dir, opens)
	if x == nil {
		d.rec.Count("http2.untracked_stream_frames", 1)
	}
	return x
}

// endStream records END_STREAM; a finished response delivers the exchange.
func (dir *direction) endStream(x *assemble.Exchange) {
	x.End(dir.side, dir.at)
	if dir.side == assemble.Response {
		dir.d.deliver(uint32(x.StreamID()), dir.at)
	}
}

// settings applies the SETTINGS this direction's peer sent. They bound what
// the OTHER peer may send: SETTINGS_HEADER_TABLE_SIZE from the client caps
// the server's HPACK encoder table, so it sizes the decoder of server→client
// header blocks, and SETTINGS_MAX_FRAME_SIZE likewise applies to frames
// flowing the other way.
func (dir *direction) settings(f *http2.SettingsFrame) {
	other := &dir.d.dirs[1-dir.dir]
	_ = f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingHeaderTableSize:
			other.headers.allowTableSize(s.Val)
		case http2.SettingMaxFrameSize:
			if s.Val >= defaultMaxFrameSize && s.Val <= maxFrameSize {
				other.maxFrame = s.Val
			}
		}
		return nil
	})
}

// goAway closes the streams the server says it never processed.
func (dir *direction) goAway(last uint32, code http2.ErrCode) {
	d := dir.d
	var ids []uint32
	for id := range d.streams {
		if id > last {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		d.streams[id].Abort(fmt.Sprintf("not processed: GOAWAY last stream %d (%v)", last, code))
		d.deliver(id, dir.at)
	}
}

// frameSource is the Framer's reader: it serves exactly the bytes of the
// frame being read, which the caller made sure are all there.
type frameSource struct{ p []byte }

func (s *frameSource) Read(b []byte) (int, error) {
	if len(s.p) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(b, s.p)
	s.p = s.p[n:]
	return n, nil
}
