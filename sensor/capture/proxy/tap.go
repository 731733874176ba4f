package proxy

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// tapKey names one byte stream of a flow: a direction, and for QUIC a
// stream.
type tapKey struct {
	dir    flow.Direction
	stream int64
}

// flowTap is the bounded queue between the forward path and the handler
// of one flow. The forward path only ever copies into it (or counts a
// drop); a goroutine per flow delivers to the handler, so a slow handler
// never slows the connection it observes.
type flowTap struct {
	h    flow.Handler
	info *flow.Info
	// attribute, when set, completes info (process attribution) on the
	// delivery goroutine before Open.
	attribute func(*flow.Info)
	st        stats.Recorder
	log       *slog.Logger
	max       int64
	// shared, when set, is the proxy-wide byte budget all taps draw from,
	// so many stalled flows cannot add up to unbounded memory.
	shared *budget

	mu       sync.Mutex
	queue    []flow.Chunk
	queued   int64
	gap      map[tapKey]int64
	dropped  int64
	warned   bool
	closed   bool
	closeInf flow.CloseInfo
	wake     chan struct{}
	done     chan struct{}
}

func newFlowTap(h flow.Handler, info *flow.Info, max int64, st stats.Recorder, log *slog.Logger,
	attribute func(*flow.Info)) *flowTap {
	t := &flowTap{h: h, info: info, attribute: attribute, st: st, log: log, max: max, gap: map[tapKey]int64{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go t.deliver()
	return t
}

// budget is a byte budget shared by taps. A nil budget is unlimited.
type budget struct {
	max  int64
	used atomic.Int64
}

func (b *budget) take(n int64) bool {
	if b == nil {
		return true
	}
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *budget) give(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

// Chunk queues a copy of c.Data; c.Data is only read during the call.
// When the queue is full the bytes are counted as lost and the next chunk
// of the same direction/stream carries the Gap.
func (t *flowTap) Chunk(c flow.Chunk) {
	n := int64(len(c.Data))
	if n == 0 && !c.Fin {
		return
	}
	key := tapKey{c.Dir, c.StreamID}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	if n > 0 && (t.queued+n > t.max || !t.shared.take(n)) {
		t.gap[key] += n
		t.dropped += n
		warn := !t.warned
		t.warned = true
		t.mu.Unlock()
		t.st.Count("proxy.queue_overflow_bytes", n)
		if warn {
			t.log.Warn("capture handler is too slow: dropping captured bytes of this flow (forwarding is unaffected)",
				"flow", t.info.ID, "host", t.info.Host(), "queue_bytes", t.max)
		}
		if !c.Fin {
			return
		}
		t.mu.Lock()
		c.Data, n = nil, 0
	}
	if n > 0 {
		c.Data = append([]byte(nil), c.Data...)
	}
	if g := t.gap[key]; g > 0 {
		c.Gap = g
		delete(t.gap, key)
	}
	t.queue = append(t.queue, c)
	t.queued += n
	t.mu.Unlock()
	t.poke()
}

func (t *flowTap) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Close ends the flow after everything queued has been delivered.
func (t *flowTap) Close(ci flow.CloseInfo) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	ci.Dropped += t.dropped
	if ci.At.IsZero() {
		ci.At = time.Now()
	}
	t.closeInf = ci
	t.mu.Unlock()
	t.poke()
}

// Wait blocks until the handler has seen Close.
func (t *flowTap) Wait() { <-t.done }

func (t *flowTap) deliver() {
	defer close(t.done)
	if t.attribute != nil {
		t.attribute(t.info)
	}
	t.h.Open(t.info)
	var batch []flow.Chunk
	for range t.wake {
		for {
			t.mu.Lock()
			batch, t.queue = t.queue, batch[:0]
			closed := t.closed && len(batch) == 0
			ci := t.closeInf
			t.mu.Unlock()
			if closed {
				t.h.Close(t.info.ID, ci)
				return
			}
			if len(batch) == 0 {
				break
			}
			// Bytes count against the bound until the handler has them,
			// so memory stays within max even while a batch is delivered.
			for i, c := range batch {
				t.h.Data(t.info.ID, c)
				batch[i] = flow.Chunk{}
				t.mu.Lock()
				t.queued -= int64(len(c.Data))
				t.mu.Unlock()
				t.shared.give(int64(len(c.Data)))
			}
		}
	}
}
