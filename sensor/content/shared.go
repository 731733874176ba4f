package content

import (
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

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
			if d.gz == nil {
				d.gz, _ = s.gz.Get().(*gzip.Reader)
			}
		case codingDeflate:
			if d.zl == nil {
				d.zl, _ = s.zl.Get().(io.ReadCloser)
			}
			if d.fl == nil {
				d.fl, _ = s.fl.Get().(io.ReadCloser)
			}
		case codingBrotli:
			if d.br == nil {
				d.br, _ = s.br.Get().(*brotli.Reader)
			}
		case codingZstd:
			if d.zs == nil {
				d.zs, _ = s.zs.Get().(*zstd.Decoder)
			}
		}
	}
}

// giveBack returns the Decoder's decompressors to the shared set. A
// decompressor that failed mid-stream is still fine to lend: every use
// starts with Reset.
func (d *Decoder) giveBack() {
	s := d.shared
	if d.gz != nil {
		s.gz.Put(d.gz)
		d.gz = nil
	}
	if d.zl != nil {
		s.zl.Put(d.zl)
		d.zl = nil
	}
	if d.fl != nil {
		s.fl.Put(d.fl)
		d.fl = nil
	}
	if d.br != nil {
		s.br.Put(d.br)
		d.br = nil
	}
	if d.zs != nil {
		s.zs.Put(d.zs)
		d.zs = nil
	}
}
