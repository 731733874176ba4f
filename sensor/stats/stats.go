// Package stats owns the sensor's counters: every dropped, truncated or
// undecodable byte and every decode error is counted under a stable token
// ("http1.bad_chunk_size", "sse.line_too_long", …) so that nothing is lost
// silently and the CLI can print what happened.
package stats

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Recorder counts occurrences under a token. Decoders take a Recorder; a nil
// Recorder is not allowed, use Discard.
type Recorder interface {
	Count(token string, n int64)
}

// Discard is a Recorder that drops counts (for tests that do not look).
type Discard struct{}

// Count does nothing.
func (Discard) Count(string, int64) {}

// Counters is a concurrency-safe set of named counters. The zero value is
// ready to use.
//
// The tokens are a few dozen fixed names, each counted again and again from
// every flow, so the set is read-mostly: the counters live in a map that is
// never written once published, and a token seen for the first time
// publishes a copy with it added (under mu, so no addition is lost). A count
// is then one plain map lookup and an atomic add, with no lock and no shared
// write other than the counter's own.
type Counters struct {
	mu       sync.Mutex
	counters atomic.Pointer[map[string]*atomic.Int64]
}

// Count adds n to token.
func (c *Counters) Count(token string, n int64) {
	if m := c.counters.Load(); m != nil {
		if v := (*m)[token]; v != nil {
			v.Add(n)
			return
		}
	}
	c.add(token).Add(n)
}

// add returns token's counter, publishing a set with it if it is new.
func (c *Counters) add(token string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]*atomic.Int64
	if m := c.counters.Load(); m != nil {
		old = *m
	}
	if v := old[token]; v != nil {
		return v
	}
	next := make(map[string]*atomic.Int64, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	v := new(atomic.Int64)
	next[token] = v
	c.counters.Store(&next)
	return v
}

// Get returns the current value of token.
func (c *Counters) Get(token string) int64 {
	if m := c.counters.Load(); m != nil {
		if v := (*m)[token]; v != nil {
			return v.Load()
		}
	}
	return 0
}

// Snapshot returns every non-zero counter.
func (c *Counters) Snapshot() map[string]int64 {
	out := map[string]int64{}
	if m := c.counters.Load(); m != nil {
		for k, v := range *m {
			if n := v.Load(); n != 0 {
				out[k] = n
			}
		}
	}
	return out
}

// Sorted returns the snapshot's tokens in order, for printing.
func Sorted(snap map[string]int64) []string {
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
