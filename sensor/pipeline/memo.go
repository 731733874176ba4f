package pipeline

import (
	"strings"
	"sync"
)

// boundedMemo remembers values by key for a pipeline: answers that cost
// more to work out than to look up and that repeat (a host's provider, a
// tool name's type). It is emptied when full, so keys an attacker makes
// up cost memory only up to the bound.
type boundedMemo[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (c *boundedMemo[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	return v, ok
}

// put remembers v for k, emptying the memo first when it holds max keys.
// Keys should not share memory with anything larger than themselves (a
// substring of a header block or body): the memo would keep it alive.
func (c *boundedMemo[K, V]) put(k K, v V, max int) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= max {
		c.m = make(map[K]V)
	}
	c.m[k] = v
	c.mu.Unlock()
}

func (c *boundedMemo[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// toolTypeCache remembers toolType by tool name. An agent sends the same
// few tools with every step, and toolType lowers each name and searches it
// for some twenty words (about a microsecond).
type toolTypeCache struct{ memo boundedMemo[string, string] }

// maxCachedToolTypes bounds the tool names a pipeline remembers.
const maxCachedToolTypes = 1024

func (c *toolTypeCache) of(name string) string {
	if t, ok := c.memo.get(name); ok {
		return t
	}
	t := toolType(name)
	c.memo.put(strings.Clone(name), t, maxCachedToolTypes)
	return t
}
