package memo

import (
	"fmt"
	"testing"
	"unsafe"
)

func TestStrings(t *testing.T) {
	var m Strings
	if got := m.Get(nil); got != "" {
		t.Fatalf("Get(nil) = %q", got)
	}
	first := m.Get([]byte("content_block_delta"))
	for round := range 3 {
		for i := range 7 {
			name := fmt.Sprintf("name%d", i)
			if got := m.Get([]byte(name)); got != name {
				t.Fatalf("round %d: Get(%q) = %q", round, name, got)
			}
		}
	}
	// Eight strings fit: the first is still held, not made again.
	again := m.Get([]byte("content_block_delta"))
	if again != first || unsafe.StringData(again) != unsafe.StringData(first) {
		t.Fatalf("a held string was made again")
	}
	// A ninth pushes out the oldest, which is then made anew but equal.
	for i := range 9 {
		m.Get([]byte(fmt.Sprintf("other%d", i)))
	}
	if got := m.Get([]byte("content_block_delta")); got != first || unsafe.StringData(got) == unsafe.StringData(first) {
		t.Fatalf("Get after eviction = %q, want an equal new string", got)
	}
}

// TestLookupHold: a caller that makes its own strings finds what it held,
// and a held string is not made again; Lookup alone holds nothing.
func TestLookupHold(t *testing.T) {
	var m Strings
	if _, ok := m.Lookup([]byte("model")); ok {
		t.Fatal("an empty memo found a string")
	}
	if _, ok := m.Lookup([]byte("model")); ok {
		t.Fatal("Lookup held what it did not find")
	}
	const model = "claude-sonnet-4-5"
	m.Hold(model)
	b := []byte(model)
	got, ok := m.Lookup(b)
	if !ok || got != model || unsafe.StringData(got) != unsafe.StringData(model) {
		t.Fatalf("Lookup(%q) = %q, %v; want the held string", b, got, ok)
	}
	if n := testing.AllocsPerRun(100, func() { m.Lookup(b) }); n != 0 {
		t.Fatalf("Lookup allocates %.0f times", n)
	}
	if got := m.Get(b); unsafe.StringData(got) != unsafe.StringData(model) {
		t.Fatal("Get made a string Hold held")
	}
}
