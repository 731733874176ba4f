package report

import "math/bits"

// Latencies are kept in a fixed-bucket histogram rather than as samples, so
// a group's memory does not grow with its calls: values below exactLimit
// milliseconds get a bucket each, and above that every power of two is cut
// into subBuckets equal buckets, so a percentile read back is within 1/64
// of the true value (the bucket's midpoint is reported). Values beyond
// 2^maxOctave ms (about 4.6 hours) share the last bucket.
const (
	subBucketBits = 5
	subBuckets    = 1 << subBucketBits // per power of two
	exactLimit    = 2 * subBuckets     // values below are exact
	maxOctave     = 24
	bucketCount   = exactLimit + (maxOctave-subBucketBits-1)*subBuckets
)

// histogram counts millisecond values into fixed buckets. Its bucket array
// is allocated on the first value: most groups of a report see no TTFT.
type histogram struct {
	counts   []uint64
	n        uint64
	min, max int64 // exact, to clamp what a bucket reads back as
}

// bucketOf maps a value in ms to its bucket index.
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v < exactLimit {
		return int(v)
	}
	octave := bits.Len64(uint64(v)) - 1 // ≥ subBucketBits+1
	if octave >= maxOctave {
		return bucketCount - 1
	}
	sub := int(v>>(octave-subBucketBits)) & (subBuckets - 1)
	return exactLimit + (octave-subBucketBits-1)*subBuckets + sub
}

// bucketValue is the value reported for a bucket: its midpoint.
func bucketValue(i int) int64 {
	if i < exactLimit {
		return int64(i)
	}
	k := i - exactLimit
	octave := k/subBuckets + subBucketBits + 1
	width := int64(1) << (octave - subBucketBits)
	lo := int64(1)<<octave + int64(k%subBuckets)*width
	return lo + width/2
}

func (h *histogram) add(v int64) {
	if h.counts == nil {
		h.counts = make([]uint64, bucketCount)
	}
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if h.n == 0 || v > h.max {
		h.max = v
	}
	h.counts[bucketOf(v)]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, bucketCount)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.n == 0 || o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
}

// quantile returns the nearest-rank q-quantile (0 < q ≤ 1): the value of
// the bucket holding the ceil(q·n)-th smallest value, kept within the
// smallest and largest values seen (so one sample reads back exactly).
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(bucketValue(i), h.min), h.max)
		}
	}
	return h.max
}

// percentiles summarises h for the result, nil when it holds nothing.
func (h *histogram) percentiles() *Percentiles {
	if h.n == 0 {
		return nil
	}
	return &Percentiles{Samples: int64(h.n), P50: h.quantile(0.50), P95: h.quantile(0.95)}
}
