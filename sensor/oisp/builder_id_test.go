package oisp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// TestAppendTime checks the hand-written timestamp against
// time.Time.AppendFormat with TimeLayout.
func TestAppendTime(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("x", -7*3600-30*60), time.FixedZone("y", 14*3600)}
	times := []time.Time{
		{},
		time.Date(2025, 8, 18, 12, 43, 0, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(1767225600, 5000).UTC(),
		time.Unix(0, 0), time.Unix(-1, 999999999),
		time.Date(2000, 2, 29, 23, 59, 59, 0, time.UTC), time.Date(2100, 2, 28, 23, 59, 59, 0, time.UTC),
		time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	for i := range int64(2000) {
		// Spread over years 1970-2100 with every sub-second digit used.
		times = append(times, time.Unix(i*2_039_401_237%4_102_444_800, i*7_919_337%1_000_000_000))
	}
	for _, base := range times {
		for _, z := range zones {
			at := base.In(z)
			if got, want := FormatTime(at), at.UTC().Format(TimeLayout); got != want {
				t.Errorf("FormatTime(%v) = %q; want %q", at, got, want)
			}
		}
	}
}

// TestInitWithID checks that events and an id made together equal the ones
// PrefixedID and New make in turn from the same entropy, with the extra
// bytes and with no stamps at all.
func TestInitWithID(t *testing.T) {
	entropy := func() *strings.Reader { return strings.NewReader(strings.Repeat("entropy for two builders", 64)) }
	host := &Host{OS: "linux", Arch: "x86_64"}
	apart := NewBuilder(BuilderOptions{Host: host, Entropy: entropy(), CollectorVersion: "v"})
	together := NewBuilder(BuilderOptions{Host: host, Entropy: entropy(), CollectorVersion: "v"})
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	for i := range 12 {
		wantID := apart.PrefixedID("req_", at)
		want := []*Event{apart.New(TypeAIRequest, at, "replay", i)}
		stamps := []Stamp{{Type: TypeAIRequest, At: at, Data: i}}
		// One to twelve events stamped together (past the builder's room
		// on the stack); the later ones at the same and at later
		// milliseconds.
		for k := range i {
			later := at.Add(time.Duration(k) * time.Millisecond)
			want = append(want, apart.New(TypeAIResponse, later, "replay", k))
			stamps = append(stamps, Stamp{Type: TypeAIResponse, At: later, Data: k})
		}
		got := make([]Event, len(stamps))
		for k := range stamps {
			stamps[k].Event = &got[k]
		}
		extra := []byte(fmt.Sprintf("conv_%d", i))
		id, extraString := together.InitWithID("req_", extra, "replay", stamps...)
		if id != wantID {
			t.Fatalf("id %q; want %q", id, wantID)
		}
		if extraString != string(extra) {
			t.Fatalf("extra %q; want %q", extraString, extra)
		}
		for k := range got {
			if diff := cmp.Diff(*want[k], got[k]); diff != "" {
				t.Fatalf("InitWithID event %d of %d (-want +got):\n%s", k, len(got), diff)
			}
		}
		var plain Event
		together.Init(&plain, TypeAIResponse, at, "replay", nil)
		if diff := cmp.Diff(*apart.New(TypeAIResponse, at, "replay", nil), plain); diff != "" {
			t.Fatalf("Init event (-want +got):\n%s", diff)
		}
		at = at.Add(time.Millisecond)
	}
	if id, extraString := together.InitWithID("req_", []byte("x"), "replay"); id != "" || extraString != "x" {
		t.Fatalf("no stamps: id %q, extra %q; want none and %q", id, extraString, "x")
	}
}
