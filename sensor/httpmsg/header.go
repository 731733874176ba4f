package httpmsg

import (
	"math/bits"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
)

// Header is the header (or trailer) fields of one message in the order they
// arrived, each name in canonical form (textproto.CanonicalMIMEHeaderKey:
// HTTP/2 and HTTP/3 lower-case names look up the same as HTTP/1.1's), and a
// field that arrived several times is several entries, in order.
//
// It exists instead of an http.Header because of what a decoded exchange is
// used for: its fields (ten to thirty) are built once, from a block the
// decoder already holds, and then a handful are read. A map costs a table
// and an insertion per field to build, which is most of the cost of a small
// exchange's header; a list costs one allocation, and reading a field is a
// scan that mostly compares lengths. HTTPHeader converts for the few places
// that need net/http's type.
type Header []Field

// Field is one header field.
type Field struct {
	Name  string // canonical form
	Value string
}

// Get returns the first value of the field name (in any case), or "".
func (h Header) Get(name string) string {
	if i := h.index(name); i >= 0 {
		return h[i].Value
	}
	return ""
}

// Values returns every value of the field name (in any case), in order, or
// nil when there is none. The slice is new: changing it leaves h as it is.
func (h Header) Values(name string) []string {
	i := h.index(name)
	if i < 0 {
		return nil
	}
	name = h[i].Name
	var vs []string
	for _, f := range h[i:] {
		if f.Name == name {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// Has reports whether the field name (in any case) is present.
func (h Header) Has(name string) bool { return h.index(name) >= 0 }

// index returns where the first field called name is, or -1. Callers
// mostly ask for names in canonical form, found by comparing (mostly
// lengths) alone; a name in another form is put in canonical form and
// looked for again.
func (h Header) index(name string) int {
	for i := range h {
		if h[i].Name == name {
			return i
		}
	}
	if canonicalCase(name) {
		return -1
	}
	name = CanonicalName(name)
	for i := range h {
		if h[i].Name == name {
			return i
		}
	}
	return -1
}

// Add appends a field, its name put in canonical form.
func (h *Header) Add(name, value string) {
	*h = append(*h, Field{Name: CanonicalName(name), Value: value})
}

// Set replaces every value of the field name with value, keeping the place
// of its first entry (or appending it).
func (h *Header) Set(name, value string) {
	name = CanonicalName(name)
	for i := range *h {
		if (*h)[i].Name == name {
			(*h)[i].Value = value
			rest := (*h)[i+1:]
			*h = (*h)[:i+1+len(slices.DeleteFunc(rest, func(f Field) bool { return f.Name == name }))]
			return
		}
	}
	*h = append(*h, Field{Name: name, Value: value})
}

// Del removes every value of the field name.
func (h *Header) Del(name string) {
	name = CanonicalName(name)
	*h = slices.DeleteFunc(*h, func(f Field) bool { return f.Name == name })
}

// Clone returns a copy of h that shares no fields with it (nil for nil).
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	return slices.Clone(h)
}

// HTTPHeader returns the fields as a new http.Header (nil for nil), for the
// places that hand headers to net/http.
func (h Header) HTTPHeader() http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for _, f := range h {
		out[f.Name] = append(out[f.Name], f.Value)
	}
	return out
}

// HeaderOf returns the fields of an http.Header as a Header: names in sorted
// order (a map has none), each name's values in their order (nil for nil).
func HeaderOf(hh http.Header) Header {
	if hh == nil {
		return nil
	}
	names := make([]string, 0, len(hh))
	n := 0
	for k, vs := range hh {
		names = append(names, k)
		n += len(vs)
	}
	slices.Sort(names)
	h := make(Header, 0, n)
	for _, k := range names {
		for _, v := range hh[k] {
			h.Add(k, v)
		}
	}
	return h
}

// CanonicalName returns the canonical form of a field name, as
// textproto.CanonicalMIMEHeaderKey does. A name already in that form (the
// usual case) is returned as it is after an eight-bytes-at-a-time check,
// and the lower-case names AI clients and servers commonly send map to
// constant strings instead of a new string each.
func CanonicalName(name string) string {
	if canonicalCase(name) {
		return name
	}
	if k, ok := commonLowerNames[name]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// canonicalCase reports whether the letters of name are in canonical case:
// upper case first and after each '-', lower case elsewhere. Such a name is
// its own canonical form whatever its other bytes (textproto leaves a name
// with bytes outside a token unchanged). It looks at eight bytes at a time:
// field names are long ("X-Ratelimit-Remaining-Requests") and a byte at a
// time costs more than the rest of a field's parsing.
func canonicalCase(name string) bool {
	// carry has the high bit of the next word's first byte set when a
	// letter there must be upper case: at the start, and after a '-'.
	carry := uint64(0x80)
	n := len(name)
	for i := 0; i < n; i += 8 {
		var w uint64
		switch {
		case n-i >= 8:
			w = load64(name[i:])
		case n >= 8:
			// The last word overlaps the one before; shifting drops the
			// bytes already seen and pads with zero bytes, which are
			// neither letters nor '-'.
			w = load64(name[n-8:]) >> (8 * (8 - (n - i)))
		default:
			for k := n - 1; k >= 0; k-- {
				w = w<<8 | uint64(name[k])
			}
		}
		dash := zeroBytes(w ^ '-'*ones)
		wantUpper := dash<<8 | carry
		carry = dash >> 56
		// A letter is in the wrong case where being lower case (bit 5,
		// shifted to the high bit) and wantUpper agree.
		if letters(w)&^(w<<2^wantUpper) != 0 {
			return false
		}
	}
	return true
}

// CanonicalNameLen returns the length of the field name that starts s and
// ends at a colon when the name is its own canonical form (letters upper
// case first and after each '-', lower case elsewhere: what
// CanonicalName returns unchanged) and holds no byte under '!' (no
// whitespace to trim, no line end). It returns 0 for any other line, and
// when the colon is not within s's whole eight-byte words, leaving the line
// to a parser's general path. Almost every name a client or server sends
// is canonical: finding its colon and checking its case in one pass, eight
// bytes at a time, costs less than a search for the colon, a search for the
// line's end and a case check of the name after it.
func CanonicalNameLen(s string) int {
	// carry has the high bit of the next word's first byte set when a
	// letter there must be upper case: at the start, and after a '-'.
	carry := uint64(0x80)
	for i := 0; i+8 <= len(s); i += 8 {
		w := load64(s[i:])
		colons := zeroBytes(w ^ ':'*ones)
		// Bytes under '!' borrow: only the lowest flagged byte is sure,
		// and only it is looked at.
		stops := colons | (w-'!'*ones)&^w&high
		dash := zeroBytes(w ^ '-'*ones)
		// A letter is in the wrong case where being lower case (bit 5,
		// shifted to the high bit) and wanting upper case agree.
		wrong := letters(w) &^ (w<<2 ^ (dash<<8 | carry))
		if stops != 0 {
			first := stops & -stops
			if colons&first == 0 || wrong&(first-1) != 0 {
				return 0
			}
			return i + bits.TrailingZeros64(first)/8
		}
		if wrong != 0 {
			return 0
		}
		carry = dash >> 56
	}
	return 0
}

// load64 reads the first eight bytes of s as a little-endian word.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
)

// zeroBytes returns the high bit of each byte of w that is zero.
func zeroBytes(w uint64) uint64 {
	return ^((w&^high + ^uint64(high)) | w) & high
}

// letters returns the high bit of each byte of w that is an ASCII letter.
func letters(w uint64) uint64 {
	// Setting bit 5 folds upper case onto lower case, and nothing else
	// onto a letter; a byte under 0x80 plus up to 0x7f carries into no
	// other byte.
	x := (w | 0x20*ones) &^ high
	return (x + (0x80-'a')*ones) &^ (x + (0x80-'z'-1)*ones) &^ w & high
}

// commonLowerNames maps lower-case field names to their canonical form. It
// is built once and only read.
var commonLowerNames = func() map[string]string {
	names := []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Access-Control-Allow-Origin",
		"Access-Control-Expose-Headers", "Alt-Svc", "Anthropic-Beta", "Anthropic-Organization-Id",
		"Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining",
		"Anthropic-Ratelimit-Input-Tokens-Reset", "Anthropic-Ratelimit-Output-Tokens-Limit",
		"Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset",
		"Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining",
		"Anthropic-Ratelimit-Requests-Reset", "Anthropic-Ratelimit-Tokens-Limit",
		"Anthropic-Ratelimit-Tokens-Remaining", "Anthropic-Ratelimit-Tokens-Reset",
		"Anthropic-Version", "Api-Key", "Authorization", "Cache-Control", "Cf-Cache-Status", "Cf-Ray",
		"Connection", "Content-Encoding", "Content-Length", "Content-Type", "Cookie", "Date",
		"Expect", "Host", "Keep-Alive", "Openai-Beta", "Openai-Organization", "Openai-Processing-Ms",
		"Openai-Project", "Openai-Version", "Request-Id", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Trailer", "Transfer-Encoding", "Upgrade", "User-Agent", "Vary",
		"Via", "X-Api-Key", "X-Content-Type-Options", "X-Envoy-Upstream-Service-Time",
		"X-Goog-Api-Client", "X-Goog-Api-Key", "X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens",
		"X-Ratelimit-Remaining-Requests", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests",
		"X-Ratelimit-Reset-Tokens", "X-Request-Id", "X-Stainless-Arch", "X-Stainless-Async",
		"X-Stainless-Lang", "X-Stainless-Os", "X-Stainless-Package-Version", "X-Stainless-Retry-Count",
		"X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Timeout",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = textproto.CanonicalMIMEHeaderKey(n)
	}
	return m
}()
