package http2_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/net/http2"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
)

// fuzzSeeds returns recordings: slices of the committed live connection
// and crafted edge cases.
func fuzzSeeds(t testing.TB) [][]byte {
	b, err := os.ReadFile(filepath.Join("testdata", "chat.bin"))
	if err != nil {
		t.Fatal(err)
	}
	recs := decodeRecording(b)
	// Slices of the live connection rather than all of it: the fuzzer
	// mutates and minimises small inputs far faster.
	seeds := [][]byte{encodeRecording(recs[:min(len(recs), 12)]), encodeRecording(recs[len(recs)/2 : len(recs)/2+20])}
	if cb, err := os.ReadFile(filepath.Join("testdata", "cancel.bin")); err == nil {
		seeds = append(seeds, encodeRecording(decodeRecording(cb)[:30]))
	} else {
		t.Fatal(err)
	}

	c := newCrafter(t).start([]http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 8192}}, nil)
	blk := c.block(cs, reqFields("POST", "/v1/messages", "content-type", "application/json")...)
	c.frames(cs, func(fr *http2.Framer) error {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:4], PadLength: 2}); err != nil {
			return err
		}
		return fr.WriteContinuation(1, true, blk[4:])
	})
	c.frames(cs, func(fr *http2.Framer) error { return fr.WriteDataPadded(1, true, []byte(`{"x":1}`), []byte{0, 0}) })
	c.headers(sc, 1, false, ":status", "200", "content-encoding", "gzip")
	c.data(sc, 1, false, []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	c.headers(sc, 1, true, "grpc-status", "0")
	c.headers(cs, 3, true, reqFields("GET", "/reset")...)
	c.frames(sc, func(fr *http2.Framer) error { return fr.WriteRSTStream(3, http2.ErrCodeCancel) })
	c.frames(sc, func(fr *http2.Framer) error { return fr.WriteGoAway(3, http2.ErrCodeNo, nil) })
	seeds = append(seeds, encodeRecording(c.recs))

	g := newCrafter(t).start(nil, nil)
	g.headers(cs, 1, true, reqFields("GET", "/gap")...)
	g.gap(sc, 100)
	g.headers(sc, 1, false, ":status", "200")
	g.data(sc, 1, true, []byte("after gap"))
	seeds = append(seeds, encodeRecording(g.recs))
	return seeds
}

// FuzzHTTP2 feeds arbitrary recordings: the decoder must not panic, must
// keep every exchange well formed and within limits, and (when it never had
// to hunt for frame boundaries) must not depend on where chunks are cut.
func FuzzHTTP2(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		chunks := chunksOf(decodeRecording(in))
		lims := []httpmsg.Limits{{}, {MaxBody: 512, MaxHeaderBytes: 256, MaxMarks: 3}}
		for _, lim := range lims {
			whole := decodeChunks(t, chunks, lim)
			split := decodeChunks(t, testutil.SplitChunks(chunks, func(i, n int) []int { return []int{(int(cut) + i) % n} }), lim)
			if whole.count("http2.resync") == 0 && split.count("http2.resync") == 0 {
				if d := diffExchanges(whole.xs, split.xs); d != "" {
					t.Fatalf("split at %d changes the result:\n%s", cut, d)
				}
			}
		}
	})
}
