package http3

import (
	"testing"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
)

// FuzzHTTP3 feeds arbitrary chunk recordings (see encodeChunks): the
// decoder must not panic, must keep every exchange well formed and within
// limits, and must not depend on where chunks are cut.
func FuzzHTTP3(f *testing.F) {
	for _, chunks := range scenarios(f) {
		f.Add(encodeChunks(chunks), uint8(5))
	}
	c := newConn(f)
	c.open(0, 4096)
	e := newQenc(4096)
	c.add(clientEncoder, cs, append(e.setCapacity(4096), e.insertLiteral("x-a", "1", false)...), false)
	c.add(0, cs, frame(frameHeaders, section(e.prefix(1, 1), lineDynamic(1, 0), lineStaticName(1, "/", false))), false)
	c.gap(0, cs, 3)
	c.add(0, cs, frame(0x21, nil), true)
	c.add(serverControl, sc, frame(frameGoAway, []byte{4}), false)
	f.Add(encodeChunks(c.chunks), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		chunks := decodeChunkRecording(in)
		for _, lim := range []httpmsg.Limits{{}, {MaxBody: 256, MaxHeaderBytes: 128, MaxMarks: 2}} {
			whole := decodeChunks(t, chunks, lim)
			split := decodeChunks(t, testutil.SplitChunks(chunks, func(i, n int) []int { return []int{(int(cut) + i) % n} }), lim)
			sameExchanges(t, whole.xs, split.xs)
		}
	})
}
