package socket

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"unicode/utf8"
)

// Protocol constants (spec/wire/PROTOCOL.md).
const (
	Magic           = "OISPWIRE"
	Version         = 1
	MinMaxFrame     = 4096     // smallest max_frame a peer may announce; also the limit before HELLO
	MaxMaxFrame     = 16 << 20 // largest max_frame a peer may announce
	MaxSystemJSON   = 65536
	UnknownUID      = 0xFFFFFFFF
	dataFixedBody   = 34 // DATA body bytes before the payload
	frameHeaderSize = 5  // u32 length + u8 type
)

// String limits per field.
const (
	maxName          = 256
	maxProcessPath   = 4096
	maxShortString   = 256
	maxALPN          = 255
	maxCaptureMethod = 32
	maxMessage       = 1024
)

// FrameType identifies a frame.
type FrameType uint8

// Frame types.
const (
	TypeHello     FrameType = 0x01
	TypeFlowOpen  FrameType = 0x02
	TypeData      FrameType = 0x03
	TypeFlowClose FrameType = 0x04
	TypeSystem    FrameType = 0x05
	TypeCredit    FrameType = 0x06
	TypeGoodbye   FrameType = 0x07
)

func (t FrameType) String() string {
	switch t {
	case TypeHello:
		return "HELLO"
	case TypeFlowOpen:
		return "FLOW_OPEN"
	case TypeData:
		return "DATA"
	case TypeFlowClose:
		return "FLOW_CLOSE"
	case TypeSystem:
		return "SYSTEM"
	case TypeCredit:
		return "CREDIT"
	case TypeGoodbye:
		return "GOODBYE"
	}
	return fmt.Sprintf("0x%02x", uint8(t))
}

// Flag bits.
const (
	FlagTLS     uint8 = 1 << 0 // FLOW_OPEN
	FlagResumed uint8 = 1 << 1 // FLOW_OPEN
	FlagFin     uint8 = 1 << 0 // DATA
)

// Close reasons carried in FLOW_CLOSE.
const (
	ReasonEOF          uint8 = 0
	ReasonReset        uint8 = 1
	ReasonTimeout      uint8 = 2
	ReasonSourceClosed uint8 = 3
	ReasonError        uint8 = 4
)

var reasonNames = []string{"eof", "reset", "timeout", "source_closed", "error"}

// ReasonName maps a FLOW_CLOSE reason to the flow.CloseInfo reason string.
func ReasonName(r uint8) string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "other"
}

// ReasonCode maps a flow.CloseInfo reason string to its wire code.
func ReasonCode(s string) uint8 {
	for i, n := range reasonNames {
		if n == s {
			return uint8(i)
		}
	}
	return ReasonError
}

// Code is a GOODBYE code and the class of every protocol error.
type Code uint16

// GOODBYE codes.
const (
	CodeNormal             Code = 0
	CodeProtocolError      Code = 1
	CodeFrameTooLarge      Code = 2
	CodeVersionUnsupported Code = 3
	CodeNotAuthorized      Code = 4
	CodeCreditExceeded     Code = 5
	CodeShuttingDown       Code = 6
)

var codeNames = []string{"normal", "protocol_error", "frame_too_large", "version_unsupported",
	"not_authorized", "credit_exceeded", "shutting_down"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code_%d", uint16(c))
}

// ProtocolError is a violation of the wire protocol by the peer. It closes
// the connection it happened on (with a GOODBYE carrying Code) and nothing
// else.
type ProtocolError struct {
	Code   Code
	Reason string
}

func (e *ProtocolError) Error() string { return e.Code.String() + ": " + e.Reason }

func protoErr(code Code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Frame is one decoded frame.
type Frame interface {
	Type() FrameType
	appendBody(b []byte) ([]byte, error)
}

// Hello is the first frame in each direction.
type Hello struct {
	Version  uint16
	Flags    uint16
	MaxFrame uint32
	Credit   uint32
	Name     string
}

// FlowOpen announces a flow.
type FlowOpen struct {
	FlowID        uint64
	Started       uint64 // ns since epoch
	Transport     uint8  // 0 tcp, 1 quic
	Flags         uint8
	PID           uint32
	PPID          uint32
	UID           uint32
	RemotePort    uint16
	Local         netip.AddrPort
	Remote        netip.AddrPort
	ProcessPath   string
	ProcessName   string
	BundleID      string
	SigningID     string
	RemoteHost    string
	SNI           string
	ALPN          string
	CaptureMethod string
}

// Data carries payload bytes of one flow direction (and QUIC stream).
type Data struct {
	FlowID   uint64
	Dir      uint8
	Flags    uint8
	StreamID uint64
	Seq      uint64
	At       uint64
	Payload  []byte
}

// FlowClose ends a flow.
type FlowClose struct {
	FlowID     uint64
	At         uint64
	Reason     uint8
	BytesC2S   uint64
	BytesS2C   uint64
	DroppedC2S uint64
	DroppedS2C uint64
}

// System is a host activity event as a JSON object.
type System struct {
	At   uint64
	JSON []byte
}

// Credit grants DATA credit to the client.
type Credit struct {
	Grant uint32
}

// Goodbye is the last frame before a close.
type Goodbye struct {
	Code    Code
	Message string
}

// Unknown is an extension frame (type 0x80–0xFF) the decoder skipped.
type Unknown struct {
	FrameType FrameType
	Body      []byte
}

// Type implementations.
func (*Hello) Type() FrameType     { return TypeHello }
func (*FlowOpen) Type() FrameType  { return TypeFlowOpen }
func (*Data) Type() FrameType      { return TypeData }
func (*FlowClose) Type() FrameType { return TypeFlowClose }
func (*System) Type() FrameType    { return TypeSystem }
func (*Credit) Type() FrameType    { return TypeCredit }
func (*Goodbye) Type() FrameType   { return TypeGoodbye }
func (u *Unknown) Type() FrameType { return u.FrameType }

// AppendFrame appends the encoding of f to dst. It fails (appending
// nothing) when a field is outside its limits.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(f.Type()))
	dst, err := f.appendBody(dst)
	if err != nil {
		return dst[:start], err
	}
	n := len(dst) - start - 4
	if n > MaxMaxFrame {
		return dst[:start], fmt.Errorf("encoding %s: frame length %d exceeds %d", f.Type(), n, MaxMaxFrame)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// FrameLen returns the wire length field value of f (type byte + body).
func FrameLen(f Frame) int {
	b, err := AppendFrame(nil, f)
	if err != nil {
		return -1
	}
	return len(b) - 4
}

func appendStr(b []byte, field, s string, max int) ([]byte, error) {
	if len(s) > max {
		return b, fmt.Errorf("%s is %d bytes, limit %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return b, fmt.Errorf("%s is not valid UTF-8", field)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...), nil
}

func appendAddr(b []byte, a netip.AddrPort) []byte {
	if !a.IsValid() {
		return append(b, 0)
	}
	ip := a.Addr().Unmap()
	if ip.Is4() {
		b = append(b, 4)
		v := ip.As4()
		b = append(b, v[:]...)
	} else {
		b = append(b, 6)
		v := ip.As16()
		b = append(b, v[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port())
}

func (h *Hello) appendBody(b []byte) ([]byte, error) {
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = binary.BigEndian.AppendUint16(b, h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MaxFrame)
	b = binary.BigEndian.AppendUint32(b, h.Credit)
	return appendStr(b, "name", h.Name, maxName)
}

func (o *FlowOpen) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, o.FlowID)
	b = binary.BigEndian.AppendUint64(b, o.Started)
	b = append(b, o.Transport, o.Flags)
	b = binary.BigEndian.AppendUint32(b, o.PID)
	b = binary.BigEndian.AppendUint32(b, o.PPID)
	b = binary.BigEndian.AppendUint32(b, o.UID)
	b = binary.BigEndian.AppendUint16(b, o.RemotePort)
	b = appendAddr(b, o.Local)
	b = appendAddr(b, o.Remote)
	var err error
	for _, s := range []struct {
		name string
		v    string
		max  int
	}{
		{"process_path", o.ProcessPath, maxProcessPath},
		{"process_name", o.ProcessName, maxShortString},
		{"bundle_id", o.BundleID, maxShortString},
		{"signing_id", o.SigningID, maxShortString},
		{"remote_host", o.RemoteHost, maxShortString},
		{"sni", o.SNI, maxShortString},
		{"alpn", o.ALPN, maxALPN},
		{"capture_method", o.CaptureMethod, maxCaptureMethod},
	} {
		if b, err = appendStr(b, s.name, s.v, s.max); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (d *Data) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, d.FlowID)
	b = append(b, d.Dir, d.Flags)
	b = binary.BigEndian.AppendUint64(b, d.StreamID)
	b = binary.BigEndian.AppendUint64(b, d.Seq)
	b = binary.BigEndian.AppendUint64(b, d.At)
	return append(b, d.Payload...), nil
}

func (c *FlowClose) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, c.FlowID)
	b = binary.BigEndian.AppendUint64(b, c.At)
	b = append(b, c.Reason)
	b = binary.BigEndian.AppendUint64(b, c.BytesC2S)
	b = binary.BigEndian.AppendUint64(b, c.BytesS2C)
	b = binary.BigEndian.AppendUint64(b, c.DroppedC2S)
	return binary.BigEndian.AppendUint64(b, c.DroppedS2C), nil
}

func (s *System) appendBody(b []byte) ([]byte, error) {
	if len(s.JSON) > MaxSystemJSON {
		return b, fmt.Errorf("system json is %d bytes, limit %d", len(s.JSON), MaxSystemJSON)
	}
	b = binary.BigEndian.AppendUint64(b, s.At)
	return append(b, s.JSON...), nil
}

func (c *Credit) appendBody(b []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint32(b, c.Grant), nil
}

func (g *Goodbye) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, uint16(g.Code))
	msg := g.Message
	if len(msg) > maxMessage {
		msg = truncateUTF8(msg, maxMessage)
	}
	return appendStr(b, "message", msg, maxMessage)
}

func (u *Unknown) appendBody(b []byte) ([]byte, error) { return append(b, u.Body...), nil }

func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// decoder walks a frame body; the first failure sticks.
type decoder struct {
	b   []byte
	err *ProtocolError
	typ FrameType
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = protoErr(CodeProtocolError, "%s: "+format, append([]any{d.typ}, args...)...)
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("body ends inside %s", what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(what string) uint8 {
	if v := d.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16(what string) uint16 {
	if v := d.take(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if v := d.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if v := d.take(8, what); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) str(what string, max int) string {
	n := int(d.u16(what + " length"))
	if d.err != nil {
		return ""
	}
	if n > max {
		d.fail("%s is %d bytes, limit %d", what, n, max)
		return ""
	}
	v := d.take(n, what)
	if d.err != nil {
		return ""
	}
	if !utf8.Valid(v) {
		d.fail("%s is not valid UTF-8", what)
		return ""
	}
	return string(v)
}

func (d *decoder) addr(what string) netip.AddrPort {
	switch fam := d.u8(what + " family"); {
	case d.err != nil:
	case fam == 0:
	case fam == 4:
		v := d.take(4, what)
		port := d.u16(what + " port")
		if d.err == nil {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(v)), port)
		}
	case fam == 6:
		v := d.take(16, what)
		port := d.u16(what + " port")
		if d.err == nil {
			// An IPv4-mapped address means IPv4; keep one representation.
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte(v)).Unmap(), port)
		}
	default:
		d.fail("%s has unknown address family %d", what, fam)
	}
	return netip.AddrPort{}
}

func (d *decoder) exact() {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d unexpected bytes after the body", len(d.b))
	}
}

// ParseFrame decodes one frame body of type typ. Byte slices in the result
// (Data.Payload, System.JSON, Unknown.Body) alias body.
func ParseFrame(typ FrameType, body []byte) (Frame, error) {
	d := &decoder{b: body, typ: typ}
	var f Frame
	switch typ {
	case TypeHello:
		if magic := d.take(len(Magic), "magic"); d.err == nil && string(magic) != Magic {
			return nil, protoErr(CodeProtocolError, "HELLO: bad magic %q", magic)
		}
		h := &Hello{Version: d.u16("version"), Flags: d.u16("flags"), MaxFrame: d.u32("max_frame"),
			Credit: d.u32("credit"), Name: d.str("name", maxName)}
		if d.err == nil {
			if h.Version == 0 {
				return nil, protoErr(CodeVersionUnsupported, "HELLO: version 0")
			}
			if h.MaxFrame < MinMaxFrame || h.MaxFrame > MaxMaxFrame {
				return nil, protoErr(CodeProtocolError, "HELLO: max_frame %d outside %d…%d", h.MaxFrame, MinMaxFrame, MaxMaxFrame)
			}
		}
		f = h
	case TypeFlowOpen:
		o := &FlowOpen{FlowID: d.u64("flow_id"), Started: d.u64("started"), Transport: d.u8("transport"),
			Flags: d.u8("flags"), PID: d.u32("pid"), PPID: d.u32("ppid"), UID: d.u32("uid"),
			RemotePort: d.u16("remote_port")}
		o.Local = d.addr("local")
		o.Remote = d.addr("remote")
		o.ProcessPath = d.str("process_path", maxProcessPath)
		o.ProcessName = d.str("process_name", maxShortString)
		o.BundleID = d.str("bundle_id", maxShortString)
		o.SigningID = d.str("signing_id", maxShortString)
		o.RemoteHost = d.str("remote_host", maxShortString)
		o.SNI = d.str("sni", maxShortString)
		o.ALPN = d.str("alpn", maxALPN)
		o.CaptureMethod = d.str("capture_method", maxCaptureMethod)
		if d.err == nil {
			switch {
			case o.FlowID == 0:
				d.fail("flow_id 0")
			case o.Transport > 1:
				d.fail("unknown transport %d", o.Transport)
			case o.Flags&^(FlagTLS|FlagResumed) != 0:
				d.fail("unknown flags 0x%02x", o.Flags)
			}
		}
		f = o
	case TypeData:
		x := &Data{FlowID: d.u64("flow_id"), Dir: d.u8("dir"), Flags: d.u8("flags"),
			StreamID: d.u64("stream_id"), Seq: d.u64("seq"), At: d.u64("at")}
		if d.err == nil {
			x.Payload = d.b
			d.b = nil
			switch {
			case x.Dir > 1:
				d.fail("unknown direction %d", x.Dir)
			case x.Flags&^FlagFin != 0:
				d.fail("unknown flags 0x%02x", x.Flags)
			case len(x.Payload) == 0 && x.Flags&FlagFin == 0:
				d.fail("empty payload without FIN")
			}
		}
		f = x
	case TypeFlowClose:
		f = &FlowClose{FlowID: d.u64("flow_id"), At: d.u64("at"), Reason: d.u8("reason"),
			BytesC2S: d.u64("bytes_c2s"), BytesS2C: d.u64("bytes_s2c"),
			DroppedC2S: d.u64("dropped_c2s"), DroppedS2C: d.u64("dropped_s2c")}
	case TypeSystem:
		s := &System{At: d.u64("at")}
		if d.err == nil {
			s.JSON = d.b
			d.b = nil
			if len(s.JSON) > MaxSystemJSON {
				d.fail("json is %d bytes, limit %d", len(s.JSON), MaxSystemJSON)
			}
		}
		f = s
	case TypeCredit:
		c := &Credit{Grant: d.u32("grant")}
		d.exact()
		if d.err == nil && c.Grant == 0 {
			d.fail("grant 0")
		}
		f = c
	case TypeGoodbye:
		g := &Goodbye{Code: Code(d.u16("code")), Message: d.str("message", maxMessage)}
		d.exact()
		f = g
	default:
		if typ >= 0x80 {
			return &Unknown{FrameType: typ, Body: body}, nil
		}
		return nil, protoErr(CodeProtocolError, "unknown frame type %s", typ)
	}
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}

// FrameReader reads frames from a stream, checking every length against
// the limit before reading the body.
type FrameReader struct {
	r *bufio.Reader
	// Max is the largest length field accepted; it starts at MinMaxFrame
	// and the owner raises it after its own HELLO is sent.
	Max uint32
}

// NewFrameReader returns a reader with Max = MinMaxFrame.
func NewFrameReader(r *bufio.Reader) *FrameReader {
	return &FrameReader{r: r, Max: MinMaxFrame}
}

// Next reads one frame. Each frame body is a fresh allocation, so payloads
// may be handed on without copying. io.EOF is returned only at a frame
// boundary; a truncated frame gives io.ErrUnexpectedEOF.
func (fr *FrameReader) Next() (Frame, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(fr.r, hdr[:4]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n == 0 {
		return nil, protoErr(CodeProtocolError, "frame length 0")
	}
	if n > fr.Max {
		return nil, protoErr(CodeFrameTooLarge, "frame length %d exceeds limit %d", n, fr.Max)
	}
	typ, err := fr.r.ReadByte()
	if err != nil {
		return nil, unexpected(err)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(fr.r, body); err != nil {
		return nil, unexpected(err)
	}
	return ParseFrame(FrameType(typ), body)
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
