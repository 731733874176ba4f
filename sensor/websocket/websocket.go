// Package websocket owns decoding of WebSocket connections (RFC 6455) after
// an HTTP/1.1 101 upgrade: frames of both directions are parsed
// incrementally from flow chunks (masking, fragmentation, interleaved
// control frames), messages are reassembled and, when permessage-deflate
// (RFC 7692) was negotiated, inflated with the negotiated context takeover
// and a cap on the inflated size, so a decompression bomb costs no more
// than the cap. Nothing does I/O; every dropped or undecodable byte is
// counted under a "websocket." token.
//
// Conn decodes one connection and hands each message to a callback;
// NewDecoder wraps it as the httpmsg.Decoder the HTTP/1.1 decoder's upgrade
// hook returns, delivering messages together with the upgrade exchange.
package websocket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Opcode is a frame opcode.
type Opcode byte

// Opcodes (RFC 6455 §5.2).
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

func (o Opcode) String() string {
	switch o {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode(" + strconv.Itoa(int(o)) + ")"
}

func (o Opcode) isControl() bool { return o&0x8 != 0 }

// Stats tokens counted by this package (bytes unless noted).
const (
	TokenBadFrame        = "websocket.bad_frame"            // frames breaking RFC 6455 framing (count)
	TokenDroppedBytes    = "websocket.dropped_bytes"        // bytes that could not be framed or were discarded
	TokenLostBytes       = "websocket.lost_bytes"           // bytes the source lost (Chunk.Gap)
	TokenMaskViolation   = "websocket.mask_violation"       // frames masked the wrong way for their direction (count)
	TokenMessageTooLarge = "websocket.message_truncated"    // message bytes over Options.MaxMessage
	TokenInflateCap      = "websocket.inflate_cap"          // messages whose inflated size hit the cap (count)
	TokenInflateError    = "websocket.inflate_error"        // compressed messages that did not inflate (count)
	TokenContextLost     = "websocket.inflate_context_lost" // compressed messages undecodable after an earlier failure (count)
	TokenTruncated       = "websocket.truncated"            // bytes of an unfinished frame or message when the flow ended
	TokenControlFrames   = "websocket.control_frames"       // ping, pong and close frames (count)
)

// DefaultMaxMessage caps a message's (inflated) size: realtime APIs send
// base64 audio in messages of a few hundred KiB; 16 MiB leaves room.
const DefaultMaxMessage = 16 << 20

// Message is one reassembled data message.
type Message struct {
	Dir    flow.Direction
	Opcode Opcode // OpText or OpBinary
	// Data is the payload, unmasked and inflated. It belongs to the
	// receiver.
	Data []byte
	// Start is when the first frame began to arrive, End when the last
	// one completed.
	Start, End time.Time
	Frames     int
	Compressed bool // sent with permessage-deflate
	// Truncated is set when Data is a prefix (over MaxMessage, or the
	// inflate cap was hit); Err says why when the message could not be
	// decoded at all (Data is then nil).
	Truncated bool
	Err       string
}

// CloseFrame is a received close frame.
type CloseFrame struct {
	Code   int // 1005 (no status) when the frame carried none
	Reason string
	At     time.Time
}

// Extensions are the negotiated extension parameters.
type Extensions struct {
	Deflate bool
	// Context takeover is the default; these disable it per direction
	// (server_* for server→client messages, client_* for client→server).
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	ServerMaxWindowBits     int // 8..15; 0 = 15
	ClientMaxWindowBits     int
}

// ParseExtensions reads the extensions the server accepted, from the 101
// response's Sec-WebSocket-Extensions header(s). Only permessage-deflate is
// understood; with any other extension in use frames are still parsed but
// RSV bits are not interpreted.
func ParseExtensions(h httpmsg.Header) Extensions {
	var e Extensions
	for _, line := range h.Values("Sec-Websocket-Extensions") {
		for _, ext := range strings.Split(line, ",") {
			params := strings.Split(ext, ";")
			if strings.TrimSpace(strings.ToLower(params[0])) != "permessage-deflate" || e.Deflate {
				continue
			}
			e.Deflate = true
			for _, p := range params[1:] {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				v = strings.Trim(strings.TrimSpace(v), `"`)
				bits, _ := strconv.Atoi(v)
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "server_no_context_takeover":
					e.ServerNoContextTakeover = true
				case "client_no_context_takeover":
					e.ClientNoContextTakeover = true
				case "server_max_window_bits":
					e.ServerMaxWindowBits = bits
				case "client_max_window_bits":
					e.ClientMaxWindowBits = bits
				}
			}
		}
	}
	return e
}

// IsUpgrade reports whether x is a completed WebSocket handshake: a GET
// with "Upgrade: websocket" answered 101.
func IsUpgrade(x *httpmsg.Exchange) bool {
	if x == nil || x.Response == nil || x.Response.Status != http.StatusSwitchingProtocols {
		return false
	}
	for _, v := range x.Request.Header.Values("Upgrade") {
		if strings.EqualFold(strings.TrimSpace(v), "websocket") {
			return true
		}
	}
	return false
}

// Options tune a Conn.
type Options struct {
	// MaxMessage caps a message's size after inflating (and its
	// compressed size before): longer messages are truncated and counted.
	MaxMessage int
}

// errors that stop a direction.
var (
	errReservedOpcode = errors.New("reserved opcode")
	errBadLength      = errors.New("64-bit length with the high bit set")
	errLostBytes      = errors.New("bytes lost")
)

// Conn decodes both directions of one WebSocket connection. It is not safe
// for concurrent use.
type Conn struct {
	emit   func(Message)
	rec    stats.Recorder
	max    int
	client *reader
	server *reader
}

// NewConn returns a decoder calling emit for each data message in the
// order its last frame arrived.
func NewConn(ext Extensions, emit func(Message), rec stats.Recorder, opt Options) *Conn {
	if rec == nil {
		rec = stats.Discard{}
	}
	if opt.MaxMessage <= 0 {
		opt.MaxMessage = DefaultMaxMessage
	}
	c := &Conn{emit: emit, rec: rec, max: opt.MaxMessage}
	c.client = &reader{conn: c, dir: flow.ClientToServer, deflate: ext.Deflate, takeover: !ext.ClientNoContextTakeover}
	c.server = &reader{conn: c, dir: flow.ServerToClient, deflate: ext.Deflate, takeover: !ext.ServerNoContextTakeover}
	return c
}

// Feed consumes one chunk of either direction.
func (c *Conn) Feed(ch flow.Chunk) {
	r := c.client
	if ch.Dir == flow.ServerToClient {
		r = c.server
	}
	if ch.Gap > 0 {
		c.rec.Count(TokenLostBytes, ch.Gap)
		r.fail(errLostBytes)
	}
	r.write(ch.Data, ch.At)
}

// Close ends the connection: a frame cut off is counted.
func (c *Conn) Close(flow.CloseInfo) {
	c.client.finish()
	c.server.finish()
}

// CloseFrames returns the close frames each side sent (nil when none).
func (c *Conn) CloseFrames() (client, server *CloseFrame) {
	return c.client.closeFrame, c.server.closeFrame
}

// Err returns the framing error that stopped a direction, if any.
func (c *Conn) Err(dir flow.Direction) error {
	if dir == flow.ServerToClient {
		return c.server.err
	}
	return c.client.err
}

// reader parses the frames of one direction.
type reader struct {
	conn     *Conn
	dir      flow.Direction
	deflate  bool
	takeover bool

	hdr     [14]byte
	hdrLen  int
	inFrame bool // header parsed, reading the payload
	fin     bool
	rsv1    bool
	op      Opcode
	masked  bool
	mask    [4]byte
	maskPos int
	left    uint64 // payload bytes still to come
	frameAt time.Time

	// message being assembled
	msgOpen    bool
	msgOp      Opcode
	compressed bool
	buf        []byte
	truncated  bool
	frames     int
	msgStart   time.Time

	ctl []byte // control frame payload (≤ 125 bytes)

	inflate    inflater
	closeFrame *CloseFrame
	err        error // sticky: later bytes are dropped
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("websocket %s: %w", r.dir, err)
		if err != errLostBytes {
			r.conn.rec.Count(TokenBadFrame, 1)
		}
	}
	if r.msgOpen {
		r.conn.rec.Count(TokenDroppedBytes, int64(len(r.buf)))
		r.msgOpen, r.buf = false, nil
	}
}

func (r *reader) write(p []byte, at time.Time) {
	rec := r.conn.rec
	for len(p) > 0 {
		if r.err != nil {
			rec.Count(TokenDroppedBytes, int64(len(p)))
			return
		}
		if !r.inFrame {
			p = r.header(p, at)
			continue
		}
		n := len(p)
		if uint64(n) > r.left {
			n = int(r.left)
		}
		r.payload(p[:n])
		p = p[n:]
		r.left -= uint64(n)
		if r.left == 0 {
			r.endFrame(at)
		}
	}
}

// header consumes header bytes from p and returns the rest.
func (r *reader) header(p []byte, at time.Time) []byte {
	if r.hdrLen == 0 {
		r.frameAt = at
	}
	need := 2
	if r.hdrLen >= 2 {
		need = headerSize(r.hdr[1])
	}
	for r.hdrLen < need && len(p) > 0 {
		r.hdr[r.hdrLen] = p[0]
		r.hdrLen++
		p = p[1:]
		if r.hdrLen == 2 {
			need = headerSize(r.hdr[1])
		}
	}
	if r.hdrLen < need {
		return p
	}
	h := r.hdr[:r.hdrLen]
	r.hdrLen = 0
	r.fin = h[0]&0x80 != 0
	r.rsv1 = h[0]&0x40 != 0
	r.op = Opcode(h[0] & 0x0f)
	r.masked = h[1]&0x80 != 0
	length := uint64(h[1] & 0x7f)
	off := 2
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:4]))
		off = 4
	case 127:
		length = binary.BigEndian.Uint64(h[2:10])
		off = 10
		if length>>63 != 0 {
			r.fail(errBadLength)
			return p
		}
	}
	if r.masked {
		copy(r.mask[:], h[off:off+4])
	}
	r.maskPos = 0
	r.left = length
	rec := r.conn.rec
	switch {
	case r.op > OpBinary && r.op < OpClose, r.op > OpPong:
		r.fail(errReservedOpcode)
		return p
	case r.op.isControl() && (!r.fin || length > 125):
		// A control frame may not be fragmented nor exceed 125 bytes;
		// its length is still known, so skip it.
		rec.Count(TokenBadFrame, 1)
	case r.op == OpContinuation && !r.msgOpen:
		rec.Count(TokenBadFrame, 1)
	case r.op == OpText || r.op == OpBinary:
		if r.msgOpen { // a new message before the last one finished
			rec.Count(TokenBadFrame, 1)
			rec.Count(TokenDroppedBytes, int64(len(r.buf)))
		}
		r.msgOpen, r.msgOp, r.buf, r.truncated, r.frames = true, r.op, r.buf[:0], false, 0
		r.compressed = r.rsv1 && r.deflate
		r.msgStart = r.frameAt
	}
	// RFC 6455 §5.1: clients mask, servers do not.
	if r.masked != (r.dir == flow.ClientToServer) {
		rec.Count(TokenMaskViolation, 1)
	}
	if r.rsv1 && !r.deflate || h[0]&0x30 != 0 {
		rec.Count(TokenBadFrame, 1) // RSV bits without a negotiated extension
	}
	r.ctl = r.ctl[:0]
	r.inFrame = true
	if length == 0 {
		r.endFrame(at)
	}
	return p
}

// headerSize is the full header length given the second header byte.
func headerSize(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// payload takes a piece of the current frame's payload.
func (r *reader) payload(p []byte) {
	rec := r.conn.rec
	switch {
	case r.op.isControl():
		if len(r.ctl)+len(p) <= 125 {
			start := len(r.ctl)
			r.ctl = append(r.ctl, p...)
			r.unmask(r.ctl[start:])
		} else {
			rec.Count(TokenDroppedBytes, int64(len(p)))
			r.maskPos += len(p)
		}
	case r.msgOpen && (r.op == OpContinuation || r.op == r.msgOp):
		room := r.conn.max - len(r.buf)
		take := min(room, len(p))
		if take > 0 {
			start := len(r.buf)
			r.buf = append(r.buf, p[:take]...)
			r.unmask(r.buf[start:])
		}
		if take < len(p) {
			r.truncated = true
			rec.Count(TokenMessageTooLarge, int64(len(p)-take))
			r.maskPos += len(p) - take
		}
	default: // a continuation with no message: already counted as bad
		rec.Count(TokenDroppedBytes, int64(len(p)))
		r.maskPos += len(p)
	}
}

// unmask XORs b with the mask key, continuing at maskPos.
func (r *reader) unmask(b []byte) {
	if !r.masked {
		return
	}
	r.maskPos = maskBytes(r.mask, r.maskPos, b)
}

// maskBytes XORs b with key starting at key position pos and returns the
// next position. Eight bytes at a time: masking is on the hot path of every
// client message.
func maskBytes(key [4]byte, pos int, b []byte) int {
	pos &= 3
	i := 0
	for ; i < len(b) && pos != 0; i++ {
		b[i] ^= key[pos]
		pos = (pos + 1) & 3
	}
	if len(b)-i >= 8 {
		k32 := uint64(binary.LittleEndian.Uint32(key[:]))
		k64 := k32 | k32<<32
		for ; len(b)-i >= 8; i += 8 {
			v := binary.LittleEndian.Uint64(b[i:])
			binary.LittleEndian.PutUint64(b[i:], v^k64)
		}
	}
	for ; i < len(b); i++ {
		b[i] ^= key[pos]
		pos = (pos + 1) & 3
	}
	return pos
}

// endFrame completes the current frame.
func (r *reader) endFrame(at time.Time) {
	r.inFrame = false
	rec := r.conn.rec
	if r.op.isControl() {
		rec.Count(TokenControlFrames, 1)
		if r.op == OpClose && r.fin {
			cf := &CloseFrame{Code: 1005, At: at}
			if len(r.ctl) >= 2 {
				cf.Code = int(binary.BigEndian.Uint16(r.ctl[:2]))
				cf.Reason = string(r.ctl[2:])
			}
			r.closeFrame = cf
		}
		return
	}
	if !r.msgOpen || (r.op != OpContinuation && r.op != r.msgOp) {
		return
	}
	r.frames++
	if !r.fin {
		return
	}
	m := Message{Dir: r.dir, Opcode: r.msgOp, Start: r.msgStart, End: at, Frames: r.frames,
		Compressed: r.compressed, Truncated: r.truncated}
	data := r.buf
	r.msgOpen = false
	switch {
	case r.compressed && r.truncated:
		// A cut compressed message cannot be inflated reliably, and the
		// shared window is lost with it.
		m.Data, m.Err = nil, "compressed message over the size cap"
		rec.Count(TokenInflateError, 1)
		r.inflate.lose(r.takeover)
	case r.compressed:
		out, capped, err := r.inflate.inflate(data, r.conn.max, r.takeover)
		switch {
		case errors.Is(err, errContextLost):
			rec.Count(TokenContextLost, 1)
			m.Err = err.Error()
		case err != nil:
			rec.Count(TokenInflateError, 1)
			m.Err = err.Error()
		default:
			m.Data = out
			if capped {
				m.Truncated = true
				rec.Count(TokenInflateCap, 1)
			}
		}
	default:
		m.Data = append([]byte(nil), data...)
	}
	r.conn.emit(m)
}

// finish counts a frame cut off by the end of the flow.
func (r *reader) finish() {
	if r.err != nil {
		return
	}
	// Bytes received but never delivered: a partial header, the control
	// payload or message so far. (Bytes that never arrived are not ours
	// to count.)
	cut := r.hdrLen
	if r.inFrame && r.op.isControl() {
		cut += len(r.ctl)
	}
	if r.msgOpen {
		cut += len(r.buf)
	}
	if cut > 0 {
		r.conn.rec.Count(TokenTruncated, int64(cut))
	}
	r.msgOpen, r.buf, r.inFrame, r.hdrLen = false, nil, false, 0
}
