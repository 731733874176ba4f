package replay

import "testing"

// BenchmarkPlan compares natural chunking with seeded split-anywhere
// chunking of the same recording.
func BenchmarkPlan(b *testing.B) {
	rec := testRecording()
	for _, bc := range []struct {
		name string
		seed int64
	}{{"natural", 0}, {"split", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			src := New(rec, Options{Seed: bc.seed})
			for b.Loop() {
				if _, err := src.Plan(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
