package http3

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// retainedBy feeds the built chunks to a fresh decoder and returns the heap
// the live decoder holds afterwards (before Close), with its counters.
func retainedBy(t *testing.T, build func() []flow.Chunk, lim httpmsg.Limits) (uint64, *stats.Counters) {
	t.Helper()
	ctr := &stats.Counters{}
	held := testutil.HeapHeld(build, func() httpmsg.Decoder {
		return New(&flow.Info{ID: "b", Transport: flow.QUIC}, httpmsg.SinkFunc(func(*httpmsg.Exchange) {}), lim, ctr)
	})
	return held, ctr
}

func TestMaliciousInputsStayBounded(t *testing.T) {
	t.Run("many half-sent large sections", func(t *testing.T) {
		held, ctr := retainedBy(t, func() []flow.Chunk {
			c := newConn(t)
			for i := 0; i < 1000; i++ {
				// A HEADERS frame announcing 400 KB, of which 100 KB arrive.
				hdr := frame(frameHeaders, nil)[:1]
				hdr = append(hdr, 0x80, 0x06, 0x1a, 0x80) // varint 400000
				c.add(int64(4*i), cs, append(hdr, make([]byte, 100_000)...), false)
			}
			return c.chunks
		}, httpmsg.Limits{})
		t.Logf("held %d", held)
		// The budget is 8×MaxHeaderBytes (2 MiB) of sections in progress.
		if held > 4<<20 || ctr.Get("http3.header_buffer_budget_exceeded") == 0 {
			t.Errorf("held %d; counters %v", held, ctr.Snapshot())
		}
	})
	t.Run("sections that never unblock", func(t *testing.T) {
		held, ctr := retainedBy(t, func() []flow.Chunk {
			c := newConn(t)
			c.open(0, 1<<20)
			e := newQenc(1 << 18)
			for i := 0; i < 1000; i++ {
				sec := section(e.prefix(5000, 5000), lineStaticName(1, "/"+strings.Repeat("p", 20000), false), lineDynamic(5000, 4999))
				c.add(int64(4*i), cs, frame(frameHeaders, sec), true)
			}
			return c.chunks
		}, httpmsg.Limits{})
		t.Logf("held %d", held)
		// At most 16 sections wait (QPACK_BLOCKED_STREAMS); decoded
		// headers of open exchanges share the 16×MaxHeaderBytes (4 MiB)
		// connection budget; each open exchange costs ~1.5 KiB besides.
		if held > 8<<20 || ctr.Get("http3.qpack_blocked_overflow") == 0 || ctr.Get("http3.connection_header_budget_exceeded") == 0 {
			t.Errorf("held %d; counters %v", held, ctr.Snapshot())
		}
	})
	t.Run("table capacity games", func(t *testing.T) {
		held, ctr := retainedBy(t, func() []flow.Chunk {
			c := newConn(t)
			c.open(0, 1<<40) // capped
			e := newQenc(maxTableCapacity)
			c.add(clientEncoder, cs, e.setCapacity(maxTableCapacity), false)
			for i := 0; i < 2000; i++ {
				c.add(clientEncoder, cs, e.insertLiteral(fmt.Sprintf("x-%d", i), strings.Repeat("v", 1000), false), false)
			}
			c.add(clientEncoder, cs, e.setCapacity(maxTableCapacity*4), false)
			return c.chunks
		}, httpmsg.Limits{})
		t.Logf("held %d", held)
		if held > 2*maxTableCapacity+(256<<10) || ctr.Get("http3.qpack_capacity_capped") != 1 || ctr.Get("http3.qpack_encoder_error") != 1 {
			t.Errorf("held %d; counters %v", held, ctr.Snapshot())
		}
	})
}
