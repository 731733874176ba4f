package stats

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestCountersZeroValue(t *testing.T) {
	var c Counters
	if got := c.Get("a"); got != 0 {
		t.Fatalf("Get on empty counters = %d, want 0", got)
	}
	if snap := c.Snapshot(); len(snap) != 0 {
		t.Fatalf("Snapshot on empty counters = %v, want empty", snap)
	}
	c.Count("a", 2)
	c.Count("b", 0)
	c.Count("a", 3)
	if got := c.Get("a"); got != 5 {
		t.Fatalf("Get(a) = %d, want 5", got)
	}
	snap := c.Snapshot()
	if len(snap) != 1 || snap["a"] != 5 {
		t.Fatalf("Snapshot = %v, want only a=5 (zero counters are left out)", snap)
	}
	if keys := Sorted(map[string]int64{"b": 1, "a": 1}); fmt.Sprint(keys) != "[a b]" {
		t.Fatalf("Sorted = %v", keys)
	}
}

// TestCountersConcurrent counts new and known tokens from many goroutines
// while others read: every addition must be kept, including those racing
// to add a token for the first time (run with -race).
func TestCountersConcurrent(t *testing.T) {
	var c Counters
	const workers, rounds, tokens = 8, 300, 40
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for k, v := range c.Snapshot() {
				if v <= 0 || c.Get(k) < v {
					t.Errorf("snapshot %s=%d, then Get %d: counters only grow", k, v, c.Get(k))
					return
				}
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c.Count(fmt.Sprintf("t%d", (r+w)%tokens), 1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	var total int64
	snap := c.Snapshot()
	for _, v := range snap {
		total += v
	}
	if len(snap) != tokens || total != workers*rounds {
		t.Fatalf("%d tokens, %d counts; want %d tokens, %d counts", len(snap), total, tokens, workers*rounds)
	}
}

// TestCountersSharedSlot counts tokens that share a slot of the recent
// counters in turn, and the empty token: each keeps its own count.
func TestCountersSharedSlot(t *testing.T) {
	tokens := []string{"", "a.b"}
	for i := 0; len(tokens) < 4; i++ {
		if tok := fmt.Sprintf("decoder.token_%d", i); recentSlot(tok) == recentSlot("a.b") {
			tokens = append(tokens, tok)
		}
	}
	var c Counters
	for round := range 5 {
		for i, tok := range tokens {
			c.Count(tok, int64(i+1))
			if got, want := c.Get(tok), int64((round+1)*(i+1)); got != want {
				t.Fatalf("round %d: Get(%q) = %d, want %d", round, tok, got, want)
			}
		}
	}
	if snap := c.Snapshot(); len(snap) != len(tokens) {
		t.Fatalf("Snapshot = %v, want the %d tokens", snap, len(tokens))
	}
}

// syncMapCounters is the previous Counters (a sync.Map of counters), kept to
// benchmark against.
type syncMapCounters struct{ m sync.Map }

func (c *syncMapCounters) Count(token string, n int64) {
	v, ok := c.m.Load(token)
	if !ok {
		v, _ = c.m.LoadOrStore(token, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(n)
}

// BenchmarkCount counts the tokens a pipeline counts for each exchange over
// a set of 40 known tokens, as the sensor does all day.
func BenchmarkCount(b *testing.B) {
	hot := []string{"bytes.captured", "http.exchanges", "ai.exchanges", "events.ai_request", "events.ai_response"}
	for _, impl := range []struct {
		name string
		rec  Recorder
	}{{"Counters", &Counters{}}, {"sync.Map", &syncMapCounters{}}} {
		for i := range 35 {
			impl.rec.Count(fmt.Sprintf("decoder.token_%d", i), 1)
		}
		for _, tok := range hot {
			impl.rec.Count(tok, 1)
		}
		b.Run(impl.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				impl.rec.Count(hot[i%len(hot)], 1)
			}
		})
	}
}
