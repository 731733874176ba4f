package oisp

import (
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func TestPrefixedID(t *testing.T) {
	b := NewBuilder(BuilderOptions{})
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first := b.PrefixedID("req_", at)
	second := b.PrefixedID("req_", at)
	for _, id := range []string{first, second} {
		rest, ok := strings.CutPrefix(id, "req_")
		if !ok {
			t.Fatalf("%q lacks the prefix", id)
		}
		u, err := ulid.ParseStrict(rest)
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if got := ulid.Time(u.Time()); !got.Equal(at) {
			t.Fatalf("%q carries time %v, want %v", id, got, at)
		}
	}
	if second <= first {
		t.Fatalf("ids not increasing within one millisecond: %q then %q", first, second)
	}
	if id := b.NewID(at); len(id) != ulid.EncodedSize || id <= second[len("req_"):] {
		t.Fatalf("NewID %q: want a bare ULID after %q", id, second)
	}
}
