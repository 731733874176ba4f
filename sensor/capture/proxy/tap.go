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
// drop); a dispatcher goroutine delivers to the handler, so a slow handler
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
	d      *tapDispatcher

	mu      sync.Mutex
	queued  int64
	gap     map[tapKey]int64
	dropped int64
	warned  bool
	closed  bool
	done    chan struct{}
}

// newFlowTap starts a flow's tap on dispatcher d; nil gives the tap a
// dispatcher of its own (its events keep their order, but not relative to
// other flows).
func newFlowTap(h flow.Handler, info *flow.Info, max int64, st stats.Recorder, log *slog.Logger,
	attribute func(*flow.Info), d *tapDispatcher) *flowTap {
	if d == nil {
		d = &tapDispatcher{}
	}
	t := &flowTap{h: h, info: info, attribute: attribute, st: st, log: log, max: max, gap: map[tapKey]int64{},
		d: d, done: make(chan struct{})}
	d.push(tapItem{t: t, kind: tapOpen})
	return t
}

// tapDispatcher delivers what many flow taps queued to their handlers in
// the order the forward path queued it, on one goroutine that runs only
// while there is work. One order across flows matters: a client that reads
// a response on one connection and sends its next request on another must
// have the decoder see them in that order, or a tool result in the request
// arrives before the tool call it answers.
type tapDispatcher struct {
	mu      sync.Mutex
	queue   []tapItem
	running bool
}

type tapItemKind uint8

const (
	tapOpen tapItemKind = iota
	tapData
	tapClose
)

type tapItem struct {
	t     *flowTap
	kind  tapItemKind
	chunk flow.Chunk
	ci    flow.CloseInfo
}

func (d *tapDispatcher) push(it tapItem) {
	d.mu.Lock()
	d.queue = append(d.queue, it)
	if d.running {
		d.mu.Unlock()
		return
	}
	d.running = true
	d.mu.Unlock()
	go d.run()
}

func (d *tapDispatcher) run() {
	var batch []tapItem
	for {
		d.mu.Lock()
		batch, d.queue = d.queue, batch[:0]
		if len(batch) == 0 {
			d.running = false
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		for i := range batch {
			batch[i].t.deliver(&batch[i])
			batch[i] = tapItem{}
		}
	}
}

func (t *flowTap) deliver(it *tapItem) {
	switch it.kind {
	case tapOpen:
		if t.attribute != nil {
			t.attribute(t.info)
		}
		t.h.Open(t.info)
	case tapData:
		t.h.Data(t.info.ID, it.chunk)
		// Bytes count against the bound until the handler has them, so
		// memory stays within max while they wait.
		n := int64(len(it.chunk.Data))
		t.mu.Lock()
		t.queued -= n
		t.mu.Unlock()
		t.shared.give(n)
	case tapClose:
		t.h.Close(t.info.ID, it.ci)
		close(t.done)
	}
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
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if n > 0 && (t.queued+n > t.max || !t.shared.take(n)) {
		t.gap[key] += n
		t.dropped += n
		t.st.Count("proxy.queue_overflow_bytes", n)
		if !t.warned {
			t.warned = true
			t.log.Warn("capture handler is too slow: dropping captured bytes of this flow (forwarding is unaffected)",
				"flow", t.info.ID, "host", t.info.Host(), "queue_bytes", t.max)
		}
		if !c.Fin {
			return
		}
		c.Data, n = nil, 0
	}
	if n > 0 {
		c.Data = append([]byte(nil), c.Data...)
	}
	if g := t.gap[key]; g > 0 {
		c.Gap = g
		delete(t.gap, key)
	}
	t.queued += n
	// Queued while t.mu is held, so nothing can follow the close.
	t.d.push(tapItem{t: t, kind: tapData, chunk: c})
}

// Close ends the flow after everything queued has been delivered.
func (t *flowTap) Close(ci flow.CloseInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	ci.Dropped += t.dropped
	if ci.At.IsZero() {
		ci.At = time.Now()
	}
	t.d.push(tapItem{t: t, kind: tapClose, ci: ci})
}

// Wait blocks until the handler has seen Close.
func (t *flowTap) Wait() { <-t.done }
