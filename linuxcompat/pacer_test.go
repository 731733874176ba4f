package linuxcompat

import (
	"slices"
	"testing"
	"time"
)

func TestReadPacerBacksOffWhenIdleAndResetsOnRecords(t *testing.T) {
	ms := time.Millisecond
	p := newReadPacer(25*ms, 200*ms)
	var waits []time.Duration
	for range 44 {
		waits = append(waits, p.empty())
	}
	// 40 ticks of 25 ms make the quiet second; then 50, 100, 200, 200.
	want := append(slices.Repeat([]time.Duration{25 * ms}, 40), 50*ms, 100*ms, 200*ms, 200*ms)
	if !slices.Equal(waits, want) {
		t.Fatalf("waits on an idle ring:\n got %v\nwant %v", waits, want)
	}
	p.busy()
	if d := p.empty(); d != 25*ms {
		t.Fatalf("first wait after records = %v, want the base 25ms", d)
	}
}

func TestReadPacerIdleNeverBelowBase(t *testing.T) {
	p := newReadPacer(50*time.Millisecond, 10*time.Millisecond)
	for range 100 {
		if d := p.empty(); d != 50*time.Millisecond {
			t.Fatalf("wait %v with idle below base, want the base", d)
		}
	}
}
