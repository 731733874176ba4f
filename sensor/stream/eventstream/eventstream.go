// Package eventstream owns decoding of the AWS event stream framing
// (content type application/vnd.amazon.eventstream) that Bedrock uses for
// ConverseStream and InvokeModelWithResponseStream responses. Bytes arrive
// in pieces; the Decoder buffers at most one frame, hands every complete
// frame to the AWS SDK's decoder (which verifies the prelude and message
// CRC32s) and emits the decoded Message. Nothing is dropped silently: every
// bad frame and every byte that cannot be framed is counted.
//
// Frame layout (big endian): total length u32, headers length u32, prelude
// CRC u32, headers, payload, message CRC u32 over everything before it.
package eventstream

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	awsstream "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// Stats tokens counted by this package.
const (
	// TokenBadCRC counts frames whose prelude or message CRC did not match.
	TokenBadCRC = "eventstream.bad_crc"
	// TokenBadPrelude counts preludes with impossible lengths.
	TokenBadPrelude = "eventstream.bad_prelude"
	// TokenBadHeader counts frames whose headers could not be decoded.
	TokenBadHeader = "eventstream.bad_header"
	// TokenTruncated counts streams that ended inside a frame.
	TokenTruncated = "eventstream.truncated"
	// TokenDroppedBytes counts bytes discarded after a framing error or in
	// a bad frame.
	TokenDroppedBytes = "eventstream.dropped_bytes"
	// TokenBadChunk counts chunk payloads that are not {"bytes": base64}.
	TokenBadChunk = "eventstream.bad_chunk"
)

// Frame size limits from the AWS event stream specification: a prelude,
// its CRC and the message CRC make 16 bytes; messages are at most 16 MiB
// of payload plus 128 KiB of headers.
const (
	minFrame        = 16
	preludeLen      = 12
	DefaultMaxFrame = 16<<20 + 128<<10 + minFrame
)

// Errors returned by Write, Close and DecodeAll.
var (
	// ErrBadPreludeCRC: the prelude checksum failed, so the frame length
	// cannot be trusted and the rest of the stream cannot be framed.
	ErrBadPreludeCRC = errors.New("eventstream: prelude CRC mismatch")
	// ErrBadPrelude: the prelude declares impossible lengths.
	ErrBadPrelude = errors.New("eventstream: bad prelude")
	// ErrTruncated: the stream ended inside a frame.
	ErrTruncated = errors.New("eventstream: stream ends inside a frame")
)

// Message is one decoded frame. The well-known headers are lifted into
// fields; Headers keeps them all.
type Message struct {
	// MessageType is ":message-type": "event", "exception" or "error".
	MessageType string
	// EventType is ":event-type" ("chunk", "messageStart",
	// "contentBlockDelta", "metadata", …) for events.
	EventType string
	// ExceptionType is ":exception-type" for exceptions
	// ("throttlingException", "modelStreamErrorException", …).
	ExceptionType string
	// ErrorCode and ErrorMessage are ":error-code" and ":error-message"
	// for message type "error".
	ErrorCode    string
	ErrorMessage string
	ContentType  string
	Headers      awsstream.Headers
	Payload      []byte
	// Start and End are the frame's byte offsets in the whole stream.
	Start, End int64
}

// IsError reports whether the frame is an exception or error rather than
// an event.
func (m *Message) IsError() bool {
	return m.MessageType == "exception" || m.MessageType == "error"
}

// Options tune a Decoder.
type Options struct {
	// MaxFrame caps a frame's total length (default DefaultMaxFrame). A
	// longer prelude is treated as corrupt.
	MaxFrame int
}

// Decoder decodes an event stream incrementally. It is not safe for
// concurrent use.
type Decoder struct {
	emit     func(Message)
	rec      stats.Recorder
	maxFrame int
	aws      *awsstream.Decoder

	buf     []byte // bytes of an incomplete frame
	scratch []byte // payload buffer the SDK decoder verifies into
	offset  int64  // stream offset of buf[0]
	err     error  // sticky framing error; later bytes are dropped
	memo    headerMemo
}

// NewDecoder returns a decoder that calls emit for every good frame, in
// order. Message.Payload aliases the decoder's input: it stays valid after
// emit returns only if the frame arrived within one Write and the caller
// keeps that slice unchanged (DecodeAll's messages alias the body). Copy it
// otherwise. Headers belong to the callee.
func NewDecoder(emit func(Message), rec stats.Recorder, opt Options) *Decoder {
	if opt.MaxFrame <= 0 {
		opt.MaxFrame = DefaultMaxFrame
	}
	if rec == nil {
		rec = stats.Discard{}
	}
	return &Decoder{emit: emit, rec: rec, maxFrame: opt.MaxFrame, aws: awsstream.NewDecoder()}
}

// Write consumes p: complete frames are decoded and emitted, a trailing
// partial frame is kept for the next call. It returns len(p) and the
// sticky framing error, if any; after such an error all further bytes are
// counted as dropped.
func (d *Decoder) Write(p []byte) (int, error) {
	n := len(p)
	if d.err != nil {
		d.rec.Count(TokenDroppedBytes, int64(n))
		return n, d.err
	}
	if len(d.buf) == 0 {
		// Fast path: decode straight out of p, keep only the remainder.
		used := d.frames(p)
		if d.err == nil && used < len(p) {
			d.buf = append(d.buf[:0], p[used:]...)
		}
		d.offset += int64(used)
		return n, d.err
	}
	d.buf = append(d.buf, p...)
	used := d.frames(d.buf)
	d.offset += int64(used)
	if d.err != nil {
		d.buf = d.buf[:0]
		return n, d.err
	}
	rest := copy(d.buf, d.buf[used:])
	d.buf = d.buf[:rest]
	return n, nil
}

// frames decodes every complete frame at the start of b and returns how
// many bytes were consumed. On a fatal error it sets d.err and counts the
// rest of b as dropped.
func (d *Decoder) frames(b []byte) int {
	off := 0
	for len(b)-off >= preludeLen {
		total, err := d.prelude(b[off:])
		if err != nil {
			d.err = fmt.Errorf("at offset %d: %w", d.offset+int64(off), err)
			d.rec.Count(TokenDroppedBytes, int64(len(b)-off))
			return len(b)
		}
		if len(b)-off < total {
			break
		}
		d.frame(b[off:off+total], d.offset+int64(off))
		off += total
	}
	return off
}

// prelude validates the 12-byte prelude and returns the frame length. The
// prelude CRC is checked before the length is trusted: a corrupt length
// would otherwise make the decoder wait for bytes that never come.
func (d *Decoder) prelude(b []byte) (int, error) {
	total := binary.BigEndian.Uint32(b[0:4])
	headers := binary.BigEndian.Uint32(b[4:8])
	if crc32.ChecksumIEEE(b[0:8]) != binary.BigEndian.Uint32(b[8:12]) {
		d.rec.Count(TokenBadCRC, 1)
		return 0, ErrBadPreludeCRC
	}
	if total < minFrame || int64(total) > int64(d.maxFrame) || uint64(headers) > uint64(total)-minFrame {
		d.rec.Count(TokenBadPrelude, 1)
		return 0, fmt.Errorf("%w: length %d, headers %d", ErrBadPrelude, total, headers)
	}
	return int(total), nil
}

// frame decodes one complete frame. A frame with a bad message CRC or bad
// headers is skipped (its length was trustworthy, so the next frame can
// still be read).
func (d *Decoder) frame(b []byte, start int64) {
	headersLen := int(binary.BigEndian.Uint32(b[4:8]))
	headers, ok := d.stringHeaders(b[preludeLen : preludeLen+headersLen])
	if !ok || crc32.ChecksumIEEE(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		var err error
		if headers, err = d.sdkHeaders(b); err != nil {
			var ce awsstream.ChecksumError
			if errors.As(err, &ce) {
				d.rec.Count(TokenBadCRC, 1)
			} else {
				d.rec.Count(TokenBadHeader, 1)
			}
			d.rec.Count(TokenDroppedBytes, int64(len(b)))
			return
		}
	}
	payload := b[preludeLen+headersLen : len(b)-4 : len(b)-4]
	msg := Message{Headers: headers, Payload: payload, Start: start, End: start + int64(len(b))}
	for _, h := range headers {
		sv, ok := h.Value.(awsstream.StringValue)
		if !ok {
			continue
		}
		v := string(sv)
		switch h.Name {
		case ":message-type":
			msg.MessageType = v
		case ":event-type":
			msg.EventType = v
		case ":exception-type":
			msg.ExceptionType = v
		case ":error-code":
			msg.ErrorCode = v
		case ":error-message":
			msg.ErrorMessage = v
		case ":content-type":
			msg.ContentType = v
		}
	}
	d.emit(msg)
}

// sdkHeaders decodes frame b with the SDK's decoder, which checks its CRC
// and reads headers of every type, and returns the headers.
func (d *Decoder) sdkHeaders(b []byte) (awsstream.Headers, error) {
	r := sliceReader{b: b}
	// The SDK decoder copies the payload into scratch while checking the
	// CRC; the emitted payload aliases b instead, saving a copy per frame.
	m, err := d.aws.Decode(&r, d.scratch[:0])
	if err != nil {
		return nil, err
	}
	if cap(m.Payload) > cap(d.scratch) {
		d.scratch = m.Payload[:0]
	}
	return m.Headers, nil
}

// stringHeaders decodes a frame's header block as the SDK's decoder does
// when every header is a string with a name of its own, as Bedrock sends
// them, without its allocations: names and values come from the memo of
// the stream's few (":event-type", "chunk", …). ok is false for anything
// else (another type, a repeated name, a short block), which is left to
// the SDK.
func (d *Decoder) stringHeaders(block []byte) (hs awsstream.Headers, ok bool) {
	if len(block) == 0 {
		return nil, true
	}
	hs = make(awsstream.Headers, 0, 4)
	for len(block) > 0 {
		// name length u8, name, type u8 (7: string), value length u16, value
		nameEnd := 1 + int(block[0])
		if len(block) < nameEnd+3 || block[nameEnd] != stringValueType {
			return nil, false
		}
		name := block[1:nameEnd]
		valueEnd := nameEnd + 3 + int(binary.BigEndian.Uint16(block[nameEnd+1:]))
		if len(block) < valueEnd {
			return nil, false
		}
		for _, h := range hs {
			if h.Name == string(name) {
				return nil, false // the SDK keeps the last value in the first's place
			}
		}
		hs = append(hs, awsstream.Header{Name: d.memo.names.Get(name), Value: d.memo.value(block[nameEnd+3 : valueEnd])})
		block = block[valueEnd:]
	}
	return hs, true
}

// stringValueType is the header value type of a string.
const stringValueType = 7

// headerMemo holds the header names and string values a stream repeats in
// every frame, the values already boxed as awsstream.Value (immutable, so
// frames can share them).
type headerMemo struct {
	names     memo.Strings
	values    [8]awsstream.Value
	nextValue int
}

// value returns b as a StringValue, from the memo when it is there.
func (m *headerMemo) value(b []byte) awsstream.Value {
	for _, v := range m.values {
		if sv, ok := v.(awsstream.StringValue); ok && string(sv) == string(b) {
			return v
		}
	}
	v := awsstream.Value(awsstream.StringValue(b))
	m.values[m.nextValue] = v
	m.nextValue = (m.nextValue + 1) % len(m.values)
	return v
}

// Close ends the stream. Bytes of an incomplete frame are counted as
// dropped and reported as ErrTruncated; a sticky framing error is returned
// as is.
func (d *Decoder) Close() error {
	if d.err != nil {
		return d.err
	}
	if len(d.buf) > 0 {
		d.rec.Count(TokenTruncated, 1)
		d.rec.Count(TokenDroppedBytes, int64(len(d.buf)))
		d.err = fmt.Errorf("%w (%d bytes at offset %d)", ErrTruncated, len(d.buf), d.offset)
		d.buf = nil
		return d.err
	}
	return nil
}

// Buffered returns the number of bytes held for an incomplete frame.
func (d *Decoder) Buffered() int { return len(d.buf) }

// DecodeAll decodes a complete body. It returns every good frame and the
// first framing error (a truncated tail, a corrupt prelude); frames before
// the error are still returned.
func DecodeAll(body []byte, rec stats.Recorder, opt Options) ([]Message, error) {
	var out []Message
	d := NewDecoder(func(m Message) { out = append(out, m) }, rec, opt)
	_, err := d.Write(body)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return out, err
}

// chunkPayload is the JSON payload of an InvokeModelWithResponseStream
// "chunk" event: the model's own JSON event, base64 encoded. ("p" is
// padding Bedrock adds against length side channels.)
// encoding/json decodes a []byte field from standard base64.
type chunkPayload struct {
	Bytes []byte `json:"bytes"`
}

// ChunkBytes returns the model event carried by a "chunk" event payload
// ({"bytes": "<base64>"}). Failures are counted as eventstream.bad_chunk.
func ChunkBytes(payload []byte, rec stats.Recorder) ([]byte, error) {
	if b, ok := chunkBytesFast(payload); ok {
		return b, nil
	}
	var c chunkPayload
	if err := json.Unmarshal(payload, &c); err != nil {
		if rec != nil {
			rec.Count(TokenBadChunk, 1)
		}
		return nil, fmt.Errorf("eventstream: chunk payload: %w", err)
	}
	if c.Bytes == nil {
		if rec != nil {
			rec.Count(TokenBadChunk, 1)
		}
		return nil, errors.New("eventstream: chunk payload has no bytes")
	}
	return c.Bytes, nil
}

// chunkBytesFast decodes Bedrock's layout {"bytes":"<base64>",…} without
// the JSON decoder: base64 has no characters JSON must escape, so the
// value runs to the next quote. Anything else (escapes, another member
// first) is left to encoding/json.
func chunkBytesFast(payload []byte) ([]byte, bool) {
	const prefix = `{"bytes":"`
	v := bytes.TrimLeft(payload, " \t\r\n")
	if !bytes.HasPrefix(v, []byte(prefix)) {
		return nil, false
	}
	v = v[len(prefix):]
	end := bytes.IndexByte(v, '"')
	if end < 0 || bytes.IndexByte(v[:end], '\\') >= 0 {
		return nil, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(end))
	n, err := base64.StdEncoding.Decode(out, v[:end])
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// sliceReader is a minimal io.Reader with ReadByte over one frame, so the
// SDK decoder reads bytes without an extra copy through bufio.
type sliceReader struct {
	b []byte
	i int
}

func (r *sliceReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}

func (r *sliceReader) ReadByte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}
