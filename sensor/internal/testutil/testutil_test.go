package testutil

import (
	"bytes"
	"slices"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// TestWebSocketFrameRFCExamples builds the frames of RFC 6455 §5.7.
func TestWebSocketFrameRFCExamples(t *testing.T) {
	hello := []byte("Hello")
	for _, c := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"unmasked text", WebSocketFrame(true, false, 0x1, nil, hello), []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{"masked text", WebSocketFrame(true, false, 0x1, []byte{0x37, 0xfa, 0x21, 0x3d}, hello),
			[]byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{"first fragment", WebSocketFrame(false, false, 0x1, nil, []byte("Hel")), []byte{0x01, 0x03, 0x48, 0x65, 0x6c}},
		{"256 bytes", WebSocketFrame(true, false, 0x2, nil, make([]byte, 256))[:4], []byte{0x82, 0x7e, 0x01, 0x00}},
		{"64 KiB", WebSocketFrame(true, false, 0x2, nil, make([]byte, 65536))[:10], []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0}},
		{"compressed", WebSocketFrame(true, true, 0x1, nil, nil), []byte{0xc1, 0x00}},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, c.want)
		}
	}
}

func TestSplitChunksAndPrefix(t *testing.T) {
	chunks := []flow.Chunk{
		{Dir: flow.ClientToServer, Data: []byte("hello"), Gap: 3},
		{Dir: flow.ServerToClient, Data: []byte("x")},
		{Dir: flow.ServerToClient, Data: []byte("world!"), Fin: true},
	}
	split := SplitChunks(chunks, func(i, n int) []int { return []int{0, 2, 2, 1, 4, n + 1} })
	var pieces []string
	for _, c := range split {
		pieces = append(pieces, string(c.Data))
	}
	if want := []string{"he", "ll", "o", "x", "wo", "rl", "d!"}; !slices.Equal(pieces, want) {
		t.Fatalf("pieces %q, want %q", pieces, want)
	}
	if split[0].Gap != 3 || split[1].Gap != 0 || split[2].Gap != 0 {
		t.Errorf("the gap must stay on the first piece only: %d %d %d", split[0].Gap, split[1].Gap, split[2].Gap)
	}
	for i, c := range split {
		if c.Fin != (i == len(split)-1) {
			t.Errorf("piece %d (%q): Fin %v", i, c.Data, c.Fin)
		}
	}

	for n, want := range map[int][]string{0: nil, 3: {"hel"}, 5: {"hello"}, 6: {"hello", "x"}, 8: {"hello", "x", "wo"}, 12: {"hello", "x", "world!"}} {
		p := Prefix(chunks, n)
		var got []string
		for _, c := range p {
			got = append(got, string(c.Data))
		}
		if !slices.Equal(got, want) {
			t.Errorf("Prefix(%d) = %q, want %q", n, got, want)
		}
		if fin := len(p) > 0 && p[len(p)-1].Fin; fin != (n == 12) {
			t.Errorf("Prefix(%d): FIN %v", n, fin)
		}
	}
}
