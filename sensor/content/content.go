// Package content owns HTTP content codings: it removes Content-Encoding
// (gzip, x-gzip, deflate, br, zstd, identity, and stacks of them such as
// "gzip, br") from a complete message body, with the inflated size capped so
// that a decompression bomb costs at most the cap in memory.
//
// It is pure: no I/O beyond reading the bytes it is given. Decoders for every
// HTTP version call it once a body is complete.
package content

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Counter tokens recorded by this package.
const (
	// TokenTruncated counts bodies whose inflated size exceeded the cap.
	TokenTruncated = "content.truncated"
	// TokenUnknownEncoding counts bodies with a coding this package does not
	// know; the caller keeps the raw bytes.
	TokenUnknownEncoding = "content.unknown_encoding"
	// TokenDecodeError counts bodies whose compressed data was corrupt or
	// ended early.
	TokenDecodeError = "content.decode_error"
	// TokenTrailingGarbage counts bodies with bytes after a complete gzip
	// member that are not another member; the decoded data is kept.
	TokenTrailingGarbage = "content.trailing_garbage"
)

var (
	// ErrUnknownEncoding is returned for a content coding this package
	// cannot remove (for example "compress" or a typo).
	ErrUnknownEncoding = errors.New("unknown content encoding")
	// ErrTruncated is returned when the compressed data ends before the
	// compressed stream does: the body was cut short on the wire or by a
	// cap. The decoded prefix is returned with it.
	ErrTruncated = errors.New("compressed data ends early")
)

// MaxZstdWindow is the largest zstd window accepted. RFC 9659 says HTTP
// senders SHOULD NOT use windows over 8 MiB and receivers need not accept
// them; refusing larger windows bounds the decoder's history allocation.
const MaxZstdWindow = 8 << 20

// Decoder removes content codings. It keeps one decompressor of each kind
// and reuses it between bodies, so a long-lived decoder allocates little.
// A Decoder is not safe for concurrent use.
type Decoder struct {
	rec stats.Recorder

	gz   *gzip.Reader
	zl   io.ReadCloser
	fl   io.ReadCloser
	br   *brotli.Reader
	zs   *zstd.Decoder
	used [numCodings]bool // codings already in use in the current chain
	// wire and members serve the body being decoded (the source of the
	// first decompressor and the gzip chain), kept here so that a body
	// costs no allocations of its own beyond its output; peeked holds the
	// first bytes of a deflate stream.
	wire    bytes.Reader
	members gzipMembers
	peeked  [2]byte
	// shared, when set, lends the decompressors for each body instead of
	// the Decoder keeping them.
	shared *Readers
}

// NewDecoder returns a Decoder that counts problems on rec.
func NewDecoder(rec stats.Recorder) *Decoder {
	if rec == nil {
		rec = stats.Discard{}
	}
	return &Decoder{rec: rec}
}

// Decode removes the content codings listed in encoding (a Content-Encoding
// header value) from wire with a fresh Decoder. See [Decoder.Decode].
func Decode(encoding string, wire []byte, max int, rec stats.Recorder) (out []byte, truncated bool, err error) {
	return NewDecoder(rec).Decode(encoding, wire, max)
}

// Decode removes the content codings listed in encoding from wire and
// returns at most max decoded bytes; truncated reports that more would have
// followed. Codings are removed in the reverse of the order listed, as
// RFC 9110 section 8.4 requires. An empty or identity-only encoding returns
// wire itself.
//
// On an unknown coding Decode returns an error wrapping ErrUnknownEncoding
// and no data. When the compressed data ends early it returns the decoded
// prefix and an error wrapping ErrTruncated. On other corruption it returns
// the prefix decoded so far and the error; callers normally keep the raw
// bytes then.
func (d *Decoder) Decode(encoding string, wire []byte, max int) (out []byte, truncated bool, err error) {
	out, truncated, err = d.decode(encoding, wire, nil, max, nil)
	return out, truncated, err
}

// Coding is one content coding this package can remove.
type coding uint8

const (
	codingGzip coding = iota
	codingDeflate
	codingBrotli
	codingZstd
	numCodings
)

func (c coding) String() string {
	switch c {
	case codingGzip:
		return "gzip"
	case codingDeflate:
		return "deflate"
	case codingBrotli:
		return "br"
	default:
		return "zstd"
	}
}

// maxListed is how many codings a body usually lists at most; parsing
// into an array of this size costs no allocation.
const maxListed = 4

// ParseEncoding splits a Content-Encoding value into the codings to remove,
// in the order they must be removed (last applied first), appended to list
// (normally a slice of a local array of maxListed). Identity entries are
// dropped. It fails on a coding that is not known.
func parseEncoding(encoding string, list []coding) ([]coding, error) {
	for field := range strings.SplitSeq(encoding, ",") {
		name := strings.ToLower(strings.TrimSpace(field))
		switch name {
		case "", "identity":
			continue
		case "gzip", "x-gzip":
			list = append(list, codingGzip)
		case "deflate":
			list = append(list, codingDeflate)
		case "br":
			list = append(list, codingBrotli)
		case "zstd":
			list = append(list, codingZstd)
		default:
			return nil, fmt.Errorf("content coding %q: %w", name, ErrUnknownEncoding)
		}
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	return list, nil
}

// Known reports whether every coding in encoding can be removed.
func Known(encoding string) bool {
	var buf [maxListed]coding
	_, err := parseEncoding(encoding, buf[:0])
	return err == nil
}

// progressFunc is told, after each read from the decoded stream, how many
// decoded bytes exist and how many wire bytes have been consumed so far.
type progressFunc func(outLen, wireConsumed int)

// decode is Decode with an optional list of wire boundaries (reads of the
// wire never cross one) and a progress callback, used to carry arrival
// marks through decompression.
func (d *Decoder) decode(encoding string, wire []byte, bounds []int, max int, progress progressFunc) ([]byte, bool, error) {
	var buf [maxListed]coding
	codings, err := parseEncoding(encoding, buf[:0])
	if err != nil {
		d.rec.Count(TokenUnknownEncoding, 1)
		return nil, false, err
	}
	if max < 0 {
		max = 0
	}
	if len(codings) == 0 {
		if len(wire) > max {
			d.rec.Count(TokenTruncated, 1)
			return wire[:max], true, nil
		}
		return wire, false, nil
	}
	d.used = [numCodings]bool{}
	if d.shared != nil {
		d.borrow(codings)
		defer d.giveBack()
	}

	var src io.Reader
	var wr *wireReader
	if bounds == nil {
		d.wire.Reset(wire) // a *bytes.Reader lets flate use its fast path
		defer d.wire.Reset(nil)
		src = &d.wire
	} else {
		wr = &wireReader{b: wire, bounds: bounds}
		src = wr
	}
	r := src
	defer func() { d.members = gzipMembers{} }()
	for _, c := range codings {
		r, err = d.open(c, r)
		if err != nil {
			d.rec.Count(TokenDecodeError, 1)
			return nil, false, fmt.Errorf("%s: %w", c, classify(err))
		}
	}
	consumed := func() int {
		if wr != nil {
			return wr.pos
		}
		return len(wire) - src.(*bytes.Reader).Len()
	}

	out, truncated, err := readCapped(r, max, sizeHint(codings, wire), consumed, progress)
	if truncated {
		d.rec.Count(TokenTruncated, 1)
	}
	if err != nil {
		d.rec.Count(TokenDecodeError, 1)
		return out, truncated, fmt.Errorf("%s: %w", encoding, classify(err))
	}
	return out, truncated, nil
}

func classify(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w (%v)", ErrTruncated, err)
	}
	return err
}

// open returns a reader that removes coding c from r, reusing the cached
// decompressor for c unless it is already in use in this chain.
func (d *Decoder) open(c coding, r io.Reader) (io.Reader, error) {
	reuse := !d.used[c]
	d.used[c] = true
	switch c {
	case codingGzip:
		// Members are chained here rather than by the gzip reader so that
		// bytes after the last member are told apart from a broken member.
		src := byteSource(r)
		if !reuse || d.gz == nil {
			gz, err := gzip.NewReader(src)
			if err != nil {
				return nil, err
			}
			if reuse {
				d.gz = gz
			}
			gz.Multistream(false)
			return &gzipMembers{gz: gz, src: src, rec: d.rec}, nil
		}
		if err := d.gz.Reset(src); err != nil {
			return nil, err
		}
		d.gz.Multistream(false)
		d.members = gzipMembers{gz: d.gz, src: src, rec: d.rec}
		return &d.members, nil
	case codingDeflate:
		// "deflate" is zlib (RFC 1950) by the standard, but some servers
		// send a raw RFC 1951 stream; the zlib header tells them apart.
		head, r := peek2(r, d.peeked[:])
		if isZlibHeader(head) {
			if !reuse || d.zl == nil {
				zl, err := zlib.NewReader(r)
				if err != nil {
					return nil, err
				}
				if reuse {
					d.zl = zl
				}
				return zl, nil
			}
			if err := d.zl.(zlib.Resetter).Reset(r, nil); err != nil {
				return nil, err
			}
			return d.zl, nil
		}
		if !reuse || d.fl == nil {
			fl := flate.NewReader(r)
			if reuse {
				d.fl = fl
			}
			return fl, nil
		}
		if err := d.fl.(flate.Resetter).Reset(r, nil); err != nil {
			return nil, err
		}
		return d.fl, nil
	case codingBrotli:
		if !reuse {
			return brotli.NewReader(r), nil
		}
		if d.br == nil {
			d.br = brotli.NewReader(r)
			return d.br, nil
		}
		if err := d.br.Reset(r); err != nil {
			return nil, err
		}
		return d.br, nil
	default:
		if !reuse || d.zs == nil {
			zs, err := zstd.NewReader(r,
				zstd.WithDecoderConcurrency(1), // synchronous: no goroutines
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(MaxZstdWindow))
			if err != nil {
				return nil, err
			}
			if reuse {
				d.zs = zs
			}
			return zs, nil
		}
		if err := d.zs.Reset(r); err != nil {
			return nil, err
		}
		return d.zs, nil
	}
}

// byteSource returns r if it is one of the byte-at-a-time readers this
// package can peek into, else r behind a bufio.Reader. Decompressors read
// such sources without buffering of their own, so they consume exactly the
// bytes they need.
func byteSource(r io.Reader) io.Reader {
	switch r.(type) {
	case *bytes.Reader, *wireReader, *bufio.Reader:
		return r
	}
	return bufio.NewReader(r)
}

// peek returns up to len(buf) bytes that r (from byteSource) will yield
// next, without consuming them; they may be in buf.
func peek(r io.Reader, buf []byte) []byte {
	n := len(buf)
	switch v := r.(type) {
	case *bytes.Reader:
		k, _ := v.ReadAt(buf, v.Size()-int64(v.Len()))
		return buf[:k]
	case *wireReader:
		return v.b[v.pos:min(v.pos+n, len(v.b))]
	case *bufio.Reader:
		b, _ := v.Peek(n)
		return b
	}
	return nil
}

// peek2 returns the first two bytes r will yield and a reader that still
// yields them.
func peek2(r io.Reader, buf []byte) ([]byte, io.Reader) {
	r = byteSource(r)
	return peek(r, buf[:2]), r
}

// gzipMembers reads the gzip members of a body one after another (RFC 1952
// allows several) and stops cleanly at bytes that do not start another
// member, counting them.
type gzipMembers struct {
	gz   *gzip.Reader
	src  io.Reader
	rec  stats.Recorder
	next [2]byte // the bytes after a member
}

func (m *gzipMembers) Read(p []byte) (int, error) {
	n, err := m.gz.Read(p)
	if err != io.EOF {
		return n, err
	}
	next := peek(m.src, m.next[:])
	switch {
	case len(next) == 0:
		return n, io.EOF
	case len(next) == 2 && next[0] == 0x1f && next[1] == 0x8b:
		if err := m.gz.Reset(m.src); err != nil {
			return n, err
		}
		m.gz.Multistream(false)
		return n, nil
	default:
		m.rec.Count(TokenTrailingGarbage, 1)
		return n, io.EOF
	}
}

// isZlibHeader reports whether b starts a zlib stream: compression method 8
// (deflate) and a header checksum that is a multiple of 31 (RFC 1950 2.2).
func isZlibHeader(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	return b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// sizeHint guesses the decoded size of wire for the first allocation: a
// lone gzip member states its size (mod 2^32) in its last four bytes, which
// is believed up to the largest ratio deflate can reach; otherwise four
// times the wire size, and at least 4 KiB. One more byte than the stated
// size leaves room to see the end without growing.
func sizeHint(codings []coding, wire []byte) int {
	guess := max(4*len(wire), 4096)
	if len(codings) != 1 || codings[0] != codingGzip || len(wire) < 18 {
		return guess
	}
	isize := int(binary.LittleEndian.Uint32(wire[len(wire)-4:]))
	if isize == 0 || isize > 1032*len(wire) {
		return guess
	}
	return isize + 1
}

// readCapped reads r to the end into a new slice of at most max bytes and
// reports whether more data followed. It grows the slice only as data
// actually arrives, so a bomb costs at most max bytes.
func readCapped(r io.Reader, limit, hint int, consumed func() int, progress progressFunc) ([]byte, bool, error) {
	out := make([]byte, 0, min(limit, hint))
	for {
		if len(out) == cap(out) {
			if len(out) >= limit {
				// Probe for one more byte: anything means truncation.
				var probe [1]byte
				for {
					n, err := r.Read(probe[:])
					if n > 0 {
						return out, true, nil
					}
					if err == io.EOF {
						return out, false, nil
					}
					if err != nil {
						return out, false, err
					}
				}
			}
			grown := make([]byte, len(out), min(limit, 2*cap(out)+4096))
			copy(grown, out)
			out = grown
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if n > 0 && progress != nil {
			progress(len(out), consumed())
		}
		if err == io.EOF {
			return out, false, nil
		}
		if err != nil {
			return out, false, err
		}
	}
}

// wireReader serves a compressed body so that no single read crosses an
// arrival boundary; decoded output can then be attributed to the wire bytes
// that were needed to produce it.
type wireReader struct {
	b      []byte
	pos    int
	bounds []int // ascending wire offsets
	next   int   // index of the first bound > pos
}

func (w *wireReader) limit() int {
	for w.next < len(w.bounds) && w.bounds[w.next] <= w.pos {
		w.next++
	}
	if w.next < len(w.bounds) && w.bounds[w.next] < len(w.b) {
		return w.bounds[w.next]
	}
	return len(w.b)
}

func (w *wireReader) Read(p []byte) (int, error) {
	if w.pos >= len(w.b) {
		return 0, io.EOF
	}
	n := copy(p, w.b[w.pos:w.limit()])
	w.pos += n
	return n, nil
}

func (w *wireReader) ReadByte() (byte, error) {
	if w.pos >= len(w.b) {
		return 0, io.EOF
	}
	c := w.b[w.pos]
	w.pos++
	return c, nil
}
