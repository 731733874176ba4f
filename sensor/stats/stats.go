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

// Counters is a concurrency-safe set of named counters.
type Counters struct {
	m sync.Map // token -> *atomic.Int64
}

// Count adds n to token.
func (c *Counters) Count(token string, n int64) {
	v, ok := c.m.Load(token)
	if !ok {
		v, _ = c.m.LoadOrStore(token, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(n)
}

// Get returns the current value of token.
func (c *Counters) Get(token string) int64 {
	if v, ok := c.m.Load(token); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// Snapshot returns every non-zero counter.
func (c *Counters) Snapshot() map[string]int64 {
	out := map[string]int64{}
	c.m.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n != 0 {
			out[k.(string)] = n
		}
		return true
	})
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
