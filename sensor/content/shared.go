package content

import (
	"sync"

	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Readers is a set of idle decompressors shared by the Decoders of many
// flows. A decompressor's set-up (the 32 KiB deflate window, zstd and
// brotli state) costs more than decoding a typical provider body, and a
// flow usually carries one compressed body, so the decompressors are lent
// to a Decoder for the length of one Decode and then returned. Readers is
// safe for concurrent use; the zero value is ready.
type Readers struct {
	gz, zl, fl, br, zs sync.Pool
}

// NewSharedDecoder returns a Decoder that counts problems on rec and
// borrows its decompressors from shared (when non-nil) for each body
// instead of keeping its own.
func NewSharedDecoder(rec stats.Recorder, shared *Readers) *Decoder {
	d := NewDecoder(rec)
	d.shared = shared
	return d
}

// borrow takes idle decompressors for the codings a body is about to use.
func (d *Decoder) borrow(codings []coding) {
	s := d.shared
	for _, c := range codings {
		switch c {
		case codingGzip:
			take(&s.gz, &d.gz)
		case codingDeflate:
			take(&s.zl, &d.zl)
			take(&s.fl, &d.fl)
		case codingBrotli:
			take(&s.br, &d.br)
		case codingZstd:
			take(&s.zs, &d.zs)
		}
	}
}

// giveBack returns the Decoder's decompressors to the shared set. A
// decompressor that failed mid-stream is still fine to lend: every use
// starts with Reset.
func (d *Decoder) giveBack() {
	s := d.shared
	give(&s.gz, &d.gz)
	give(&s.zl, &d.zl)
	give(&s.fl, &d.fl)
	give(&s.br, &d.br)
	give(&s.zs, &d.zs)
}

// take fills an empty decompressor slot from pool (it stays empty when
// the pool has none: the Decoder then makes one).
func take[T comparable](pool *sync.Pool, slot *T) {
	var none T
	if *slot == none {
		*slot, _ = pool.Get().(T)
	}
}

// give empties a decompressor slot into pool.
func give[T comparable](pool *sync.Pool, slot *T) {
	var none T
	if *slot != none {
		pool.Put(*slot)
		*slot = none
	}
}
