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
// publishes a copy with it added (under mu, so no addition is lost). In
// front of the map, recent keeps the counter last used in each slot of a
// hash that reads only a token's length and two of its bytes, so that the
// hot tokens (a handful per exchange, one per chunk) are found with one
// comparison of equal strings instead of a hash of the whole token and a
// map probe.
type Counters struct {
	mu       sync.Mutex
	counters atomic.Pointer[map[string]*counter]
	recent   [recentSlots]atomic.Pointer[counter]
}

// counter is one token's count.
type counter struct {
	token string
	n     atomic.Int64
}

// recentSlots is the size of Counters.recent: the distinct hot tokens fall
// into distinct slots (a collision only costs the map lookups).
const recentSlots = 64

// recentSlot returns token's slot in Counters.recent.
func recentSlot(token string) int {
	n := len(token)
	if n == 0 {
		return 0
	}
	return (n*0x9e37 ^ int(token[n-1])<<3 ^ int(token[n/2])*5) & (recentSlots - 1)
}

// Count adds n to token.
func (c *Counters) Count(token string, n int64) {
	slot := &c.recent[recentSlot(token)]
	if v := slot.Load(); v != nil && v.token == token {
		v.n.Add(n)
		return
	}
	v := c.lookup(token)
	if v == nil {
		v = c.add(token)
	}
	slot.Store(v)
	v.n.Add(n)
}

// lookup returns token's counter, or nil if it has none yet.
func (c *Counters) lookup(token string) *counter {
	if m := c.counters.Load(); m != nil {
		return (*m)[token]
	}
	return nil
}

// add returns token's counter, publishing a set with it if it is new.
func (c *Counters) add(token string) *counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.lookup(token); v != nil {
		return v
	}
	var old map[string]*counter
	if m := c.counters.Load(); m != nil {
		old = *m
	}
	next := make(map[string]*counter, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	v := &counter{token: token}
	next[token] = v
	c.counters.Store(&next)
	return v
}

// Get returns the current value of token.
func (c *Counters) Get(token string) int64 {
	if v := c.lookup(token); v != nil {
		return v.n.Load()
	}
	return 0
}

// Snapshot returns every non-zero counter.
func (c *Counters) Snapshot() map[string]int64 {
	out := map[string]int64{}
	if m := c.counters.Load(); m != nil {
		for k, v := range *m {
			if n := v.n.Load(); n != 0 {
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
