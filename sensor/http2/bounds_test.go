package http2_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/oisp/oisp-sensor/sensor/flow"
	h2 "github.com/oisp/oisp-sensor/sensor/http2"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// retainedBy feeds chunks to a fresh decoder and returns the heap the live
// decoder holds afterwards (before Close), with its counters.
func retainedBy(t *testing.T, build func() []flow.Chunk, lim httpmsg.Limits) (uint64, *stats.Counters) {
	t.Helper()
	ctr := &stats.Counters{}
	held := testutil.HeapHeld(build, func() httpmsg.Decoder {
		return h2.New(&flow.Info{ID: "b"}, httpmsg.SinkFunc(func(*httpmsg.Exchange) {}), lim, ctr)
	})
	return held, ctr
}

// TestMaliciousInputsStayBounded: floods meant to exhaust memory leave the
// decoder holding a bounded amount, and every drop is counted.
func TestMaliciousInputsStayBounded(t *testing.T) {
	t.Run("CONTINUATION flood", func(t *testing.T) {
		held, ctr := retainedBy(t, func() []flow.Chunk {
			c := newCrafter(t).start(nil, nil)
			c.frames(cs, func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(cs, reqFields("GET", "/")...)})
			})
			frag := bytes.Repeat([]byte{0x00, 0x01, 'a', 0x7f, 0x80, 0x7f}, 16000/6)
			for i := 0; i < 600; i++ { // ≈ 9.6 MB of header block
				c.frames(cs, func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, frag) })
			}
			return chunksOf(c.recs)
		}, httpmsg.Limits{})
		t.Logf("held %d", held)
		if held > 1<<20 || ctr.Get("http2.continuation_flood") != 1 {
			t.Errorf("held %d bytes; counters %v", held, ctr.Snapshot())
		}
	})
	t.Run("many streams with maximal header lists", func(t *testing.T) {
		held, ctr := retainedBy(t, func() []flow.Chunk {
			c := newCrafter(t).start(nil, nil)
			for i := 0; i < 1000; i++ {
				var kv []string
				for j := 0; j < 15; j++ {
					kv = append(kv, fmt.Sprintf("x-h%d", j), strings.Repeat("v", 1000))
				}
				// Never-indexed literals: the HPACK table does not absorb them.
				var b bytes.Buffer
				enc := hpack.NewEncoder(&b)
				for k := 0; k+1 < len(kv); k += 2 {
					_ = enc.WriteField(hpack.HeaderField{Name: kv[k], Value: kv[k+1], Sensitive: true})
				}
				blk := append(c.block(cs, reqFields("GET", fmt.Sprintf("/%d", i))...), b.Bytes()...)
				c.frames(cs, func(fr *http2.Framer) error {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: blk, EndHeaders: true, EndStream: true})
				})
			}
			return chunksOf(c.recs)
		}, httpmsg.Limits{MaxHeaderBytes: 16 << 10})
		// 1000 open exchanges cost a few KiB each; the header lists are
		// capped at 16×MaxHeaderBytes together.
		t.Logf("held %d", held)
		if held > 4<<20 || ctr.Get("http2.connection_header_budget_exceeded") == 0 {
			t.Errorf("held %d bytes; counters %v", held, ctr.Snapshot())
		}
	})
	t.Run("HPACK table size games", func(t *testing.T) {
		held, ctr := retainedBy(t, func() []flow.Chunk {
			c := newCrafter(t).start([]http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 1<<32 - 1}}, nil)
			c.enc[sc].SetMaxDynamicTableSizeLimit(1 << 30)
			c.enc[sc].SetMaxDynamicTableSize(1 << 18)
			for i := 0; i < 400; i++ {
				c.headers(cs, uint32(2*i+1), true, reqFields("GET", "/")...)
				c.headers(sc, uint32(2*i+1), true, ":status", "200", fmt.Sprintf("x-fill-%d", i), strings.Repeat("f", 2000))
			}
			return chunksOf(c.recs)
		}, httpmsg.Limits{})
		t.Logf("held %d", held)
		if held > 1<<20 || ctr.Get("http2.header_table_size_capped") != 1 {
			t.Errorf("held %d bytes; counters %v", held, ctr.Snapshot())
		}
	})
}
