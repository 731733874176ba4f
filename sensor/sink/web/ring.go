package web

import "github.com/oisp/oisp-sensor/sensor/oisp"

// entry is one recorded event: its sequence number and its JSON. The data
// is shared by the ring and every stream queue, and never written again.
type entry struct {
	seq  uint64
	data []byte
}

// ring keeps the most recent entries within a count and a byte budget.
// Sequence numbers in it are consecutive, so an entry is found by
// arithmetic.
type ring struct {
	buf      []entry
	head     int // index of the oldest entry
	n        int // entries held
	bytes    int // their data bytes
	maxBytes int
	evicted  int64
}

func newRing(events, maxBytes int) ring {
	return ring{buf: make([]entry, events), maxBytes: maxBytes}
}

// push adds e, evicting the oldest entries past either bound. An entry
// larger than the whole byte budget is still kept alone, so that the
// latest event can always be seen.
func (r *ring) push(e entry) {
	if r.n == len(r.buf) {
		r.evictOldest()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
	r.bytes += len(e.data)
	for r.bytes > r.maxBytes && r.n > 1 {
		r.evictOldest()
	}
}

func (r *ring) evictOldest() {
	old := &r.buf[r.head]
	r.bytes -= len(old.data)
	*old = entry{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.evicted++
}

// firstSeq returns the oldest sequence number held, or 0 when empty.
func (r *ring) firstSeq() uint64 {
	if r.n == 0 {
		return 0
	}
	return r.buf[r.head].seq
}

// after returns the entries with a sequence number above seq, at most the
// last limit of them (limit <= 0: all), and how many entries above seq the
// ring no longer holds (evicted before they could be read).
func (r *ring) after(seq uint64, last uint64, limit int) (out []entry, missed uint64) {
	if r.n == 0 {
		if last > seq {
			missed = last - seq
		}
		return nil, missed
	}
	first := r.buf[r.head].seq
	skip := 0
	if seq+1 < first {
		missed = first - seq - 1
	} else {
		skip = int(seq + 1 - first)
	}
	count := r.n - skip
	if count <= 0 {
		return nil, missed
	}
	if limit > 0 && count > limit {
		skip += count - limit
		count = limit
	}
	out = make([]entry, count)
	for i := range out {
		out[i] = r.buf[(r.head+skip+i)%len(r.buf)]
	}
	return out, missed
}

// tally is what the dashboard's counters show: totals over every event
// recorded, not only those the ring still holds.
type tally struct {
	events           int64
	byType           map[string]int64
	promptTokens     int64
	completionTokens int64
	totalTokens      int64
	costUSD          float64
	errors           int64
}

func (t *tally) add(ev *oisp.Event) {
	t.events++
	t.byType[ev.EventType]++
	// Only ai.response counts: an embedding's ai.embedding event repeats
	// the usage of the ai.response beside it.
	d, ok := ev.Data.(*oisp.AIResponse)
	if !ok {
		return
	}
	usage := d.Usage
	failed := d.Error != nil || (d.Success != nil && !*d.Success) || d.StatusCode >= 400
	if failed {
		t.errors++
	}
	if usage == nil {
		return
	}
	if usage.PromptTokens != nil {
		t.promptTokens += int64(*usage.PromptTokens)
	}
	if usage.CompletionTokens != nil {
		t.completionTokens += int64(*usage.CompletionTokens)
	}
	switch {
	case usage.TotalTokens != nil:
		t.totalTokens += int64(*usage.TotalTokens)
	case usage.PromptTokens != nil || usage.CompletionTokens != nil:
		t.totalTokens += int64(deref(usage.PromptTokens) + deref(usage.CompletionTokens))
	}
	if usage.TotalCostUSD != nil {
		t.costUSD += *usage.TotalCostUSD
	}
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
