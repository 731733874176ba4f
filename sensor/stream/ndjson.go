package stream

import "time"

// Counter tokens of the NDJSON reader.
const (
	TokenNDJSONLineTooLong = "ndjson.line_too_long" // bytes of lines over the line cap
)

// NDJSONReader reads newline-delimited JSON (application/x-ndjson, JSON
// Lines) incrementally: one value per line, LF or CRLF line ends, blank
// lines skipped, a leading BOM dropped, a last line without a line end
// delivered at Close. It does not parse the JSON. It is not safe for
// concurrent use.
type NDJSONReader struct {
	cfg   config
	emit  func(line []byte, start, end int, at time.Time)
	lines lineSplitter
	bom   bomFilter
	at    time.Time
}

// NewNDJSON returns a reader that calls emit for each non-blank line,
// without its line end. line is only valid during the call: copy it to
// keep it.
func NewNDJSON(emit func(line []byte, at time.Time), opts ...Option) *NDJSONReader {
	return newNDJSON(func(line []byte, _, _ int, at time.Time) { emit(line, at) }, opts)
}

func newNDJSON(emit func(line []byte, start, end int, at time.Time), opts []Option) *NDJSONReader {
	r := &NDJSONReader{cfg: newConfig(opts), emit: emit}
	r.lines = lineSplitter{max: r.cfg.maxLine}
	return r
}

// Feed consumes the next bytes of the stream, which arrived at at.
func (r *NDJSONReader) Feed(p []byte, at time.Time) {
	r.at = at
	p, dropped := r.bom.filter(p)
	if dropped {
		r.lines.pos, r.lines.start = len(utf8BOM), len(utf8BOM)
	}
	r.lines.feed(p, r)
}

// Close ends the stream, delivering a last line that has no line end.
func (r *NDJSONReader) Close() {
	if rest := r.bom.rest(); len(rest) > 0 {
		r.lines.feed(rest, r)
	}
	r.lines.flush(r)
}

func (r *NDJSONReader) line(b []byte, start, end int) {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if isBlank(b) {
		return
	}
	r.emit(b, start, end, r.at)
}

func (r *NDJSONReader) tooLong(n, _, _ int) {
	r.cfg.rec.Count(TokenNDJSONLineTooLong, int64(n))
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
