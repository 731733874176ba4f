package http3

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go/quicvarint"
	"golang.org/x/net/http2/hpack"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

const (
	cs = flow.ClientToServer
	sc = flow.ServerToClient
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Stream ids of the usual unidirectional streams (RFC 9000 §2.1: client
// uni ids are 2 mod 4, server uni ids 3 mod 4).
const (
	clientControl = 2
	clientEncoder = 6
	clientDecoder = 10
	serverControl = 3
	serverEncoder = 7
	serverDecoder = 11
)

// conn records the chunks of a crafted HTTP/3 connection.
type conn struct {
	t      testing.TB
	chunks []flow.Chunk
}

func newConn(t testing.TB) *conn { return &conn{t: t} }

func (c *conn) add(id int64, dir flow.Direction, data []byte, fin bool) {
	c.chunks = append(c.chunks, flow.Chunk{StreamID: id, Dir: dir, Data: bytes.Clone(data), Fin: fin,
		At: epoch.Add(time.Duration(len(c.chunks)) * time.Millisecond)})
}

func (c *conn) gap(id int64, dir flow.Direction, n int64) {
	c.chunks = append(c.chunks, flow.Chunk{StreamID: id, Dir: dir, Gap: n,
		At: epoch.Add(time.Duration(len(c.chunks)) * time.Millisecond)})
}

// frame writes one HTTP/3 frame.
func frame(t uint64, payload []byte) []byte {
	b := quicvarint.Append(nil, t)
	b = quicvarint.Append(b, uint64(len(payload)))
	return append(b, payload...)
}

func settings(pairs ...uint64) []byte {
	var p []byte
	for _, v := range pairs {
		p = quicvarint.Append(p, v)
	}
	return frame(frameSettings, p)
}

// open writes the control streams (with SETTINGS giving each peer's
// decoder table capacity) and the stream types of the QPACK streams.
func (c *conn) open(clientCapacity, serverCapacity uint64) {
	c.add(clientControl, cs, append([]byte{streamControl}, settings(settingQPACKMaxTableCapacity, clientCapacity, settingQPACKBlockedStreams, 16, 0x6, 1<<16)...), false)
	c.add(serverControl, sc, append([]byte{streamControl}, settings(settingQPACKMaxTableCapacity, serverCapacity, settingQPACKBlockedStreams, 16)...), false)
	c.add(clientEncoder, cs, []byte{streamQPACKEncoder}, false)
	c.add(serverEncoder, sc, []byte{streamQPACKEncoder}, false)
	c.add(clientDecoder, cs, []byte{streamQPACKDecoder}, false)
	c.add(serverDecoder, sc, []byte{streamQPACKDecoder}, false)
}

// staticSection encodes fields with qpack's (static-table) encoder.
func staticSection(t testing.TB, kv ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := qpack.NewEncoder(&b)
	for i := 0; i+1 < len(kv); i += 2 {
		if err := enc.WriteField(qpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func reqFields(method, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", "https", ":authority", "api.example.test", ":path", path}, extra...)
}

// appendInt encodes an RFC 7541 §5.1 integer with an n-bit prefix below
// the given high bits.
func appendInt(b []byte, high byte, n uint8, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(b, high|byte(v))
	}
	b = append(b, high|byte(max))
	v -= max
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendStr encodes a string literal with an n-bit length prefix; the
// Huffman flag is bit n.
func appendStr(b []byte, high byte, n uint8, s string, huff bool) []byte {
	if huff {
		enc := hpack.AppendHuffmanString(nil, s)
		b = appendInt(b, high|1<<n, n, uint64(len(enc)))
		return append(b, enc...)
	}
	b = appendInt(b, high, n, uint64(len(s)))
	return append(b, s...)
}

// qenc is a test-side QPACK encoder model that emits encoder-stream
// instructions and field lines exactly as RFC 9204 §4.3 and §4.5 lay them
// out, tracking its own table to compute indices.
type qenc struct {
	maxEntries uint64
	inserted   uint64
}

func newQenc(maxCapacity uint64) *qenc { return &qenc{maxEntries: maxCapacity / 32} }

func (e *qenc) setCapacity(c uint64) []byte { return appendInt(nil, 0x20, 5, c) }

func (e *qenc) insertLiteral(name, value string, huff bool) []byte {
	e.inserted++
	b := appendStr(nil, 0x40, 5, name, huff)
	return appendStr(b, 0, 7, value, huff)
}

func (e *qenc) insertStaticName(idx uint64, value string) []byte {
	e.inserted++
	return appendStr(appendInt(nil, 0xc0, 6, idx), 0, 7, value, false)
}

// insertDynamicName refers to the entry with absolute index abs.
func (e *qenc) insertDynamicName(abs uint64, value string) []byte {
	rel := e.inserted - 1 - abs
	e.inserted++
	return appendStr(appendInt(nil, 0x80, 6, rel), 0, 7, value, false)
}

func (e *qenc) duplicate(abs uint64) []byte {
	rel := e.inserted - 1 - abs
	e.inserted++
	return appendInt(nil, 0x00, 5, rel)
}

// prefix encodes a field section prefix for required insert count ric and
// base.
func (e *qenc) prefix(ric, base uint64) []byte {
	var enc uint64
	if ric > 0 {
		enc = ric%(2*e.maxEntries) + 1
	}
	b := appendInt(nil, 0, 8, enc)
	if base >= ric {
		return appendInt(b, 0, 7, base-ric)
	}
	return appendInt(b, 0x80, 7, ric-base-1)
}

// Field line encoders (RFC 9204 §4.5.2-§4.5.6); base is the section's.
func lineStatic(idx uint64) []byte { return appendInt(nil, 0xc0, 6, idx) }
func lineDynamic(base, abs uint64) []byte {
	return appendInt(nil, 0x80, 6, base-1-abs)
}
func linePostBase(base, abs uint64) []byte { return appendInt(nil, 0x10, 4, abs-base) }
func lineStaticName(idx uint64, v string, huff bool) []byte {
	return appendStr(appendInt(nil, 0x50, 4, idx), 0, 7, v, huff)
}
func lineDynamicName(base, abs uint64, v string) []byte {
	return appendStr(appendInt(nil, 0x40, 4, base-1-abs), 0, 7, v, false)
}
func linePostBaseName(base, abs uint64, v string) []byte {
	return appendStr(appendInt(nil, 0x00, 3, abs-base), 0, 7, v, false)
}
func lineLiteral(n, v string, huff bool) []byte {
	return appendStr(appendStr(nil, 0x20, 3, n, huff), 0, 7, v, huff)
}

func section(prefix []byte, lines ...[]byte) []byte {
	return append(prefix, slices.Concat(lines...)...)
}

// staticIndex finds a static table entry.
func staticIndex(t testing.TB, name, value string) uint64 {
	t.Helper()
	for i, f := range staticTable {
		if f.Name == name && f.Value == value {
			return uint64(i)
		}
	}
	t.Fatalf("no static entry %s: %s", name, value)
	return 0
}

type result struct {
	xs  []*httpmsg.Exchange
	ctr *stats.Counters
}

func (r result) count(tok string) int64 { return r.ctr.Get(tok) }

func (r result) byStream() map[int64]*httpmsg.Exchange {
	m := map[int64]*httpmsg.Exchange{}
	for _, x := range r.xs {
		m[x.StreamID] = x
	}
	return m
}

func decodeChunks(t testing.TB, chunks []flow.Chunk, lim httpmsg.Limits) result {
	t.Helper()
	ctr := &stats.Counters{}
	var xs []*httpmsg.Exchange
	d := New(&flow.Info{ID: "q", Transport: flow.QUIC, TLS: true, ALPN: "h3"}, httpmsg.SinkFunc(func(x *httpmsg.Exchange) {
		checkExchange(t, x, lim.WithDefaults())
		xs = append(xs, x)
	}), lim, ctr)
	var last time.Time
	for _, c := range chunks {
		c.Data = bytes.Clone(c.Data)
		d.Feed(c)
		last = c.At
	}
	d.Close(flow.CloseInfo{At: last.Add(time.Millisecond), Reason: "eof"})
	return result{xs: xs, ctr: ctr}
}

func checkExchange(t testing.TB, x *httpmsg.Exchange, lim httpmsg.Limits) {
	t.Helper()
	if x.Proto != "HTTP/3" || x.StreamID%4 != 0 {
		t.Errorf("stream %d: proto %q", x.StreamID, x.Proto)
	}
	if x.Partial != (len(x.Notes) > 0) {
		t.Errorf("stream %d: partial=%v notes %q", x.StreamID, x.Partial, x.Notes)
	}
	bodies := []*httpmsg.Body{&x.Request.Body}
	if x.Response != nil {
		bodies = append(bodies, &x.Response.Body)
	}
	for _, b := range bodies {
		if len(b.Data) > lim.MaxBody || len(b.Marks) > lim.MaxMarks {
			t.Errorf("stream %d: body %d bytes %d marks over limits", x.StreamID, len(b.Data), len(b.Marks))
		}
		if !slices.IsSortedFunc(b.Marks, func(a, c httpmsg.Mark) int { return a.Offset - c.Offset }) {
			t.Errorf("stream %d: marks not sorted", x.StreamID)
		}
		if n := len(b.Marks); n > 0 && b.Marks[n-1].Offset != len(b.Data) {
			t.Errorf("stream %d: last mark %d body %d", x.StreamID, b.Marks[n-1].Offset, len(b.Data))
		}
	}
}

func hasNote(x *httpmsg.Exchange, sub string) bool {
	return slices.ContainsFunc(x.Notes, func(n string) bool { return strings.Contains(n, sub) })
}

// Recording format for fuzz inputs: ctl(1) streamID(varint) length(2)
// data, where ctl bit 0 is the direction, bit 1 Fin and bit 2 a gap of
// length bytes (no data).
func encodeChunks(chunks []flow.Chunk) []byte {
	var b []byte
	for _, c := range chunks {
		ctl := byte(c.Dir & 1)
		if c.Fin {
			ctl |= 2
		}
		n := len(c.Data)
		if c.Gap > 0 {
			ctl |= 4
			n = int(min(c.Gap, 0xffff))
		}
		b = append(b, ctl)
		b = quicvarint.Append(b, uint64(c.StreamID))
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		if c.Gap == 0 {
			b = append(b, c.Data...)
		}
	}
	return b
}

func decodeChunkRecording(b []byte) []flow.Chunk {
	var out []flow.Chunk
	for len(b) > 0 {
		ctl := b[0]
		id, n, err := quicvarint.Parse(b[1:])
		if err != nil || len(b) < 1+n+2 {
			break
		}
		b = b[1+n:]
		l := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		c := flow.Chunk{Dir: flow.Direction(ctl & 1), StreamID: int64(id), Fin: ctl&2 != 0,
			At: epoch.Add(time.Duration(len(out)) * time.Millisecond)}
		if ctl&4 != 0 {
			c.Gap = int64(l)
		} else {
			l = min(l, len(b))
			c.Data, b = b[:l], b[l:]
		}
		out = append(out, c)
	}
	return out
}
