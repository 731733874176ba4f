package conformance

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/quic-go/qpack"
)

func h3Frame(typ byte, payload []byte) []byte {
	// Types and lengths below 64 fit one-byte varints.
	return append([]byte{typ, byte(len(payload))}, payload...)
}

func qpackBlock(t *testing.T, fields ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := qpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := enc.WriteField(qpack.HeaderField{Name: fields[i], Value: fields[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestFoldQUICStreams reassembles out-of-order and retransmitted STREAM
// frames and reads the HTTP/3 frames of both directions, trailers ignored.
func TestFoldQUICStreams(t *testing.T) {
	req := append(h3Frame(h3FrameHeaders, qpackBlock(t, ":method", "POST", ":path", "/v1/chat/completions", ":scheme", "https")),
		h3Frame(h3FrameData, []byte(`{"model":"m"}`))...)
	resp := append(h3Frame(h3FrameHeaders, qpackBlock(t, ":status", "429")),
		h3Frame(h3FrameData, []byte(`{"error":{}}`))...)
	resp = append(resp, h3Frame(h3FrameHeaders, qpackBlock(t, "x-trailer", "1"))...)
	const client, relay = 50000, 60000
	frames := []quicStreamFrame{
		{conn: 3, src: client, dst: relay, streamID: 0, offset: 10, data: req[10:]},
		{conn: 3, src: client, dst: relay, streamID: 0, offset: 0, data: req[:12]},                 // overlaps
		{conn: 3, src: client, dst: relay, streamID: 2, offset: 0, data: []byte{0x00, 0x04, 0x00}}, // control stream
		{conn: 3, src: relay, dst: client, streamID: 0, offset: 0, data: resp},
	}
	got, err := foldQUICStreams(frames, map[int64]uint16{3: client})
	if err != nil {
		t.Fatal(err)
	}
	want := []WireStream{{ClientPort: client, ServerPort: relay, StreamID: 0, Method: "POST", Path: "/v1/chat/completions",
		Status: 429, RequestBytes: int64(len(`{"model":"m"}`)), ResponseBytes: int64(len(`{"error":{}}`))}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	hole := []quicStreamFrame{{conn: 1, src: client, dst: relay, streamID: 0, offset: 5, data: req[5:]}}
	if _, err := foldQUICStreams(hole, map[int64]uint16{1: client}); err == nil {
		t.Error("a stream with a hole folded without error")
	}
	cut := []quicStreamFrame{{conn: 1, src: client, dst: relay, streamID: 0, data: req[:len(req)-3]}}
	if _, err := foldQUICStreams(cut, map[int64]uint16{1: client}); err == nil {
		t.Error("a truncated frame folded without error")
	}
}

func TestQUICVarint(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		v    uint64
		size int
	}{
		{[]byte{0x25}, 37, 1},
		{[]byte{0x7b, 0xbd}, 15293, 2},
		{[]byte{0x9d, 0x7f, 0x3e, 0x7d}, 494878333, 4},
		{[]byte{0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}, 151288809941952652, 8},
		{[]byte{0x7b}, 0, 0},
		{nil, 0, 0},
	} {
		v, n := quicVarint(c.in)
		if v != c.v || n != c.size {
			t.Errorf("quicVarint(%x) = %d, %d; want %d, %d", c.in, v, n, c.v, c.size)
		}
	}
}
