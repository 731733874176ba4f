package report

import (
	"math/rand/v2"
	"testing"
)

func TestBucketsCoverValuesWithinTheirError(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<maxOctave; v += 1 + v/500 {
		i := bucketOf(v)
		if i < prev || i >= bucketCount {
			t.Fatalf("bucketOf(%d) = %d after %d (of %d)", v, i, prev, bucketCount)
		}
		prev = i
		if got := bucketValue(i); !near(got, v) {
			t.Fatalf("value %d reads back as %d", v, got)
		}
	}
	if bucketOf(-5) != 0 || bucketOf(1<<40) != bucketCount-1 {
		t.Errorf("out of range values: %d, %d", bucketOf(-5), bucketOf(1<<40))
	}
}

func TestQuantilesMatchExactPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() int64{
		"small":     func() int64 { return rng.Int64N(50) },
		"uniform":   func() int64 { return rng.Int64N(60_000) },
		"lognormal": func() int64 { return int64(200 * (1 + rng.ExpFloat64()*rng.ExpFloat64())) },
		"bimodal":   func() int64 { return []int64{30, 9_000}[rng.IntN(2)] + rng.Int64N(20) },
		"single":    func() int64 { return 1234 },
	}
	for name, draw := range dists {
		for _, n := range []int{1, 2, 19, 20, 21, 1000} {
			var h histogram
			samples := make([]int64, n)
			for i := range samples {
				samples[i] = draw()
				h.add(samples[i])
			}
			for _, q := range []float64{0.5, 0.95, 1} {
				want := exactPercentile(samples, q)
				if got := h.quantile(q); !near(got, want) {
					t.Errorf("%s n=%d q=%g: %d, exact %d", name, n, q, got, want)
				}
			}
			// merging two halves reads the same as one histogram
			var a, b histogram
			for i, v := range samples {
				if i%2 == 0 {
					a.add(v)
				} else {
					b.add(v)
				}
			}
			a.merge(&b)
			if a.quantile(0.95) != h.quantile(0.95) || a.n != h.n {
				t.Errorf("%s n=%d: merged p95 %d, whole %d", name, n, a.quantile(0.95), h.quantile(0.95))
			}
		}
	}
	var empty histogram
	if empty.percentiles() != nil {
		t.Error("an empty histogram has percentiles")
	}
}
