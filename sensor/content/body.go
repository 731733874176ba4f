package content

import (
	"errors"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// DecodeBody removes encoding (a Content-Encoding value) from b in place,
// keeping at most lim.MaxBody decoded bytes and lim.MaxMarks arrival marks.
//
// Arrival marks stay exact rather than being scaled: the compressed bytes
// are fed to the decompressor one arrival at a time, and each decoded byte
// is stamped with the arrival time of the wire bytes that had been consumed
// when it came out. A server that flushes its compressor per event (the
// usual way to stream compressed SSE) therefore keeps per-event times.
//
// Outcomes:
//   - nothing to remove (empty or identity): b is unchanged.
//   - success: b.Data holds the decoded bytes, b.ContentEncoding is set and
//     b.Truncated is set if the decoded size hit the cap (capped is true).
//   - the compressed data ends early (a body cut short or capped on the
//     wire): b holds the decoded prefix, b.ContentEncoding is set and the
//     error wraps ErrTruncated. If nothing could be decoded, the raw bytes
//     are kept as for corruption.
//   - unknown coding or corrupt data: b.Data keeps the raw bytes,
//     b.DecodeError says why and the error is returned.
func (d *Decoder) DecodeBody(b *httpmsg.Body, encoding string, lim httpmsg.Limits) (capped bool, err error) {
	var buf [maxListed]coding
	codings, perr := parseEncoding(encoding, buf[:0])
	if perr == nil && len(codings) == 0 {
		return false, nil
	}
	lim = lim.WithDefaults()

	var bounds []int
	var marks []httpmsg.Mark
	var progress progressFunc
	if len(b.Marks) > 1 {
		bounds = make([]int, len(b.Marks))
		for i, m := range b.Marks {
			bounds[i] = m.Offset
		}
		mi := 0 // first wire mark that may cover the last consumed byte
		progress = func(outLen, consumed int) {
			for mi < len(b.Marks)-1 && consumed > b.Marks[mi].Offset {
				mi++
			}
			marks = addMark(marks, outLen, b.Marks[mi].At, lim.MaxMarks)
		}
	}

	out, capped, err := d.decode(encoding, b.Data, bounds, lim.MaxBody, progress)
	if err != nil && !(errors.Is(err, ErrTruncated) && len(out) > 0) {
		b.DecodeError = err.Error()
		return false, err
	}
	if bounds == nil && len(out) > 0 && len(b.Marks) == 1 {
		marks = []httpmsg.Mark{{Offset: len(out), At: b.Marks[0].At}}
	}
	b.Data = out
	b.Marks = marks
	b.ContentEncoding = encoding
	if capped {
		b.Truncated = true
	}
	return capped, err
}

// DecodeBody removes encoding from b with a fresh Decoder; see
// [Decoder.DecodeBody].
func DecodeBody(b *httpmsg.Body, encoding string, lim httpmsg.Limits, rec stats.Recorder) (capped bool, err error) {
	return NewDecoder(rec).DecodeBody(b, encoding, lim)
}

// addMark records that data up to off had arrived by at, merging with the
// previous mark when the time is the same and merging into the last mark
// once max marks exist (the earlier marks stay exact).
func addMark(marks []httpmsg.Mark, off int, at time.Time, max int) []httpmsg.Mark {
	if n := len(marks); n > 0 {
		last := &marks[n-1]
		if last.At.Equal(at) || n >= max {
			last.Offset = off
			last.At = at
			return marks
		}
	}
	return append(marks, httpmsg.Mark{Offset: off, At: at})
}
