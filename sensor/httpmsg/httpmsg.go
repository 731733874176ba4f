// Package httpmsg owns the transport-neutral HTTP exchange: one request and
// its response, as decoded from HTTP/1.1, HTTP/2 or HTTP/3 by the decoders
// below it, with arrival times and completeness. Everything above the HTTP
// layer (stream readers, provider decoders) reads only this type, so one code
// path serves every transport.
package httpmsg

import (
	"slices"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// Exchange is one HTTP request and its response.
type Exchange struct {
	Flow *flow.Info
	// Seq numbers exchanges within a flow from 0 in request order (HTTP/1.1)
	// or stream order (HTTP/2 and HTTP/3).
	Seq int
	// Proto is "HTTP/1.1", "HTTP/1.0", "HTTP/2" or "HTTP/3".
	Proto    string
	StreamID int64 // HTTP/2 or HTTP/3 stream id; 0 for HTTP/1.x

	Request  Request
	Response *Response // nil when no response was seen

	// Partial is set when anything about the exchange is incomplete: bytes
	// lost, headers unknown (joined mid-connection), a body over the cap, a
	// reset stream, a response that never finished. Notes says what.
	Partial bool
	Notes   []string
	// EndUnseen is set when the only thing that kept the exchange from
	// completing is that the end of a response of undeclared length was
	// not seen, after the request ended and with nothing lost: the client
	// reset the stream (HTTP/2), or the flow ended between two DATA frames
	// (HTTP/3) or two chunks (HTTP/1.1). Clients routinely stop at an event
	// stream's last event and close before the server's end-of-stream
	// arrives, so whether the response had all arrived is for the content
	// to tell (a stream's own end marker). Partial and Notes still describe
	// what was not seen.
	EndUnseen bool
}

// OnlyNoted reports whether every note of the exchange is one of allowed.
func (x *Exchange) OnlyNoted(allowed ...string) bool {
	for _, n := range x.Notes {
		if !slices.Contains(allowed, n) {
			return false
		}
	}
	return true
}

// Request is a decoded HTTP request.
type Request struct {
	Method string
	// Scheme is "https" or "http" (from the flow's TLS flag or :scheme).
	Scheme string
	// Authority is the Host header or :authority (may include a port).
	Authority string
	// Target is the request target as sent: origin-form path with query
	// ("/v1/chat/completions?x=1"), or absolute-form for proxy requests.
	Target  string
	Header  Header
	Trailer Header // chunked (HTTP/1.1) or trailing HEADERS (HTTP/2, HTTP/3)
	Body    Body
	Start   time.Time // first byte of the request
	End     time.Time // last byte of the request
}

// Response is a decoded HTTP response.
type Response struct {
	Status  int
	Reason  string
	Header  Header
	Trailer Header
	Body    Body
	Start   time.Time // first byte of the response (status line / HEADERS)
	End     time.Time // last byte, or when the flow ended
	// Complete is false when the response ended early (reset, flow closed
	// mid-body, lost bytes).
	Complete bool
}

// Body is a message body after transfer decoding (chunked, HTTP/2 DATA
// frames) and after content decoding (gzip, br, zstd, deflate).
type Body struct {
	Data []byte
	// Marks records when bytes arrived: Marks[i] says that Data up to
	// Offset arrived by At. Streaming readers use them for time to first
	// token. Always sorted by Offset; the last mark covers len(Data).
	Marks []Mark
	// WireLength is the number of body bytes seen on the wire (after
	// transfer decoding, before content decoding).
	WireLength int64
	// Truncated is set when the body exceeded the cap; Data holds the
	// prefix. Dropped counts the bytes that were discarded.
	Truncated bool
	Dropped   int64
	// ContentEncoding is the Content-Encoding that was removed ("" if none).
	// DecodeError is set when content decoding failed; Data then holds the
	// raw bytes.
	ContentEncoding string
	DecodeError     string
}

// Mark says that a body's bytes up to Offset had arrived at At.
type Mark struct {
	Offset int
	At     time.Time
}

// TimeAt returns when the byte at offset off arrived, or the zero time if no
// marks are recorded.
func (b *Body) TimeAt(off int) time.Time {
	for _, m := range b.Marks {
		if off < m.Offset {
			return m.At
		}
	}
	if n := len(b.Marks); n > 0 {
		return b.Marks[n-1].At
	}
	return time.Time{}
}

// URL returns scheme://authority/target for an origin-form target, or the
// target itself when it is already absolute.
func (r *Request) URL() string {
	if len(r.Target) > 0 && r.Target[0] != '/' && r.Target != "*" {
		return r.Target
	}
	scheme := r.Scheme
	if scheme == "" {
		scheme = "https"
	}
	return scheme + "://" + r.Authority + r.Target
}

// Path returns the request target's path without the query.
func (r *Request) Path() string {
	t := r.Target
	if len(t) == 0 || t[0] != '/' {
		if i := indexAfterAuthority(t); i >= 0 {
			t = t[i:]
		}
	}
	// Provider matching asks for the path of every exchange many times:
	// two vectorised searches beat one byte loop.
	if i := strings.IndexByte(t, '?'); i >= 0 {
		t = t[:i]
	}
	if i := strings.IndexByte(t, '#'); i >= 0 {
		t = t[:i]
	}
	return t
}

// Query returns the raw query of the request target ("" if none).
func (r *Request) Query() string {
	t := r.Target
	for i := 0; i < len(t); i++ {
		if t[i] == '?' {
			q := t[i+1:]
			for j := 0; j < len(q); j++ {
				if q[j] == '#' {
					return q[:j]
				}
			}
			return q
		}
	}
	return ""
}

// Host returns the request's host without port: Authority, else the flow's
// host.
func (x *Exchange) Host() string {
	h := x.Request.Authority
	if h == "" && x.Flow != nil {
		h = x.Flow.Host()
	}
	return stripPort(h)
}

// indexAfterAuthority returns where the path starts in an absolute-form
// target, or -1 for origin-form.
func indexAfterAuthority(t string) int {
	for _, p := range []string{"https://", "http://", "wss://", "ws://"} {
		if len(t) >= len(p) && t[:len(p)] == p {
			rest := t[len(p):]
			for i := 0; i < len(rest); i++ {
				if rest[i] == '/' || rest[i] == '?' {
					return len(p) + i
				}
			}
			return len(t)
		}
	}
	return -1
}

func stripPort(h string) string {
	if len(h) > 0 && h[0] == '[' {
		for i := 1; i < len(h); i++ {
			if h[i] == ']' {
				return h[1:i]
			}
		}
		return h
	}
	colon := -1
	for i := 0; i < len(h); i++ {
		if h[i] == ':' {
			if colon >= 0 {
				return h // bare IPv6
			}
			colon = i
		}
	}
	if colon >= 0 {
		return h[:colon]
	}
	return h
}

// Decoder turns one flow's chunks into exchanges. Implementations (http1,
// http2, http3) do no I/O; they call the sink as exchanges complete.
// Decoders are not safe for concurrent use.
type Decoder interface {
	// Feed consumes one chunk. It never fails the flow: undecodable bytes
	// are counted and the decoder resynchronises where it can.
	Feed(c flow.Chunk)
	// Close ends the flow: exchanges still open are delivered, marked
	// partial if they were incomplete.
	Close(ci flow.CloseInfo)
}

// Sink receives finished exchanges from a decoder, on the goroutine that
// feeds the decoder.
type Sink interface {
	Done(x *Exchange)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(x *Exchange)

// Done calls f(x).
func (f SinkFunc) Done(x *Exchange) { f(x) }

// Limits bounds a decoder's memory.
type Limits struct {
	// MaxBody caps each body (after content decoding). Bytes beyond it are
	// counted and dropped; the exchange is marked partial.
	MaxBody int
	// MaxHeaderBytes caps a header block.
	MaxHeaderBytes int
	// MaxMarks caps the arrival marks kept per body (older marks are
	// merged, keeping the first ones exact).
	MaxMarks int
}

// DefaultLimits returns the limits used when a field is zero: 8 MiB per
// body, 256 KiB per header block, 4096 arrival marks per body.
func DefaultLimits() Limits {
	return Limits{MaxBody: 8 << 20, MaxHeaderBytes: 256 << 10, MaxMarks: 4096}
}

// WithDefaults returns l with zero fields replaced by DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBody <= 0 {
		l.MaxBody = d.MaxBody
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxMarks <= 0 {
		l.MaxMarks = d.MaxMarks
	}
	return l
}
