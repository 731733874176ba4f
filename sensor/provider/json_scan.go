package provider

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/jsonstr"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// A chat exchange's bodies (and each event of a chat stream) are small
// objects of a few well-known members. The reflection decoder spends more
// on them than their size suggests: it copies the bytes of every tolerant
// scalar before its UnmarshalJSON sees them, and every json.RawMessage. A
// body decoder may instead read its usual shape with jsonScan, which checks
// the grammar as strictly as the decoder (RFC 8259; invalid UTF-8 in
// strings is taken by both), hands each tolerant scalar the bytes of its
// value in place (so tolerance is the scalar's own) and lets
// json.RawMessage members refer to the body (they are read while the body
// is, never kept). Whatever the scan is not sure to read exactly as the
// decoder would — a member named twice, a name that matches a field only
// when case or '_' and '-' are ignored, a name with escapes or non-ASCII,
// a value of a kind the field does not take, deep nesting — makes it
// decline; decodeLoose then resets the target and decodes the body with
// the decoder, so the result never differs.

// scannedBody is a decode target with a scan of its usual shape: scanJSON
// reports whether it read data whole (a string member's value from strs
// when it holds it, see jsonScan.memo); when it did not, resetScan empties
// the target for the decoder.
type scannedBody interface {
	scanJSON(data []byte, strs *memo.Strings) bool
	resetScan()
}

// maxScanDepth bounds the nesting jsonScan follows (the decoder takes the
// rare deeper body).
const maxScanDepth = 64

// jsonScan reads one JSON document; i is the offset of the next byte.
type jsonScan struct {
	b     []byte
	i     int
	depth int
	// memo holds the last strings a stream's events decoded (nil: every
	// string is copied). Each event of a stream repeats its id and model
	// (and often a tool's name) and would otherwise copy them into new
	// strings one event after the other; a stream keeps a memo for its
	// events' scans, which give the held string to a jStr equal to it.
	memo *memo.Strings
}

// end reports whether only whitespace follows the document read. (A scan
// is a local variable of scanJSON, not given to a callback: the compiler
// keeps it on the stack only so.)
func (s *jsonScan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// peek returns the first byte of the next value (0 at the end).
func (s *jsonScan) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// value checks the next value and returns its bytes.
func (s *jsonScan) value() ([]byte, bool) {
	s.ws()
	start := s.i
	if !s.skip() {
		return nil, false
	}
	return s.b[start:s.i], true
}

// skip checks the value at s.i and moves past it. Skipped values (a
// tool's parameter schema, a message's content, logprobs) are most of
// what a scan reads, so skip walks them in one loop of jumps that calls
// nothing for the usual bytes: a short string up to its quote, an
// integer, a literal, whitespace before a byte above ' '; the kind of
// each open container is a bit of objects.
func (s *jsonScan) skip() bool {
	b, i := s.b, s.i
	var objects uint64 // bit d: the container at nesting d is an object
	d := 0
	maxD := min(63, maxScanDepth-s.depth) // deeper nesting declines
	var (
		c  byte
		e  int
		ok bool
	)
value:
	// (Whitespace is passed here and after a value in the same lines:
	// a function for both, too large to inline, cost 0.4% of the corpus
	// pass.)
	if i >= len(b) {
		return false
	}
	if c = b[i]; c <= ' ' {
		if i = skipWS(b, i); i >= len(b) {
			return false
		}
		c = b[i]
	}
	switch {
	case c == '"':
		if i, ok = s.skipStr(i); !ok {
			return false
		}
	case c == '{' || c == '[':
		if d >= maxD {
			return false
		}
		closer := byte(']')
		if c == '{' {
			objects |= 1 << d
			closer = '}'
		} else {
			objects &^= 1 << d
		}
		d++
		if i = skipWS(b, i+1); i < len(b) && b[i] == closer {
			i++
			d--
			goto afterValue
		}
		if c == '{' {
			goto key
		}
		goto value
	case c-'1' < 9:
		// An integer, as most numbers are; numberEnd checks the others.
		for e = i + 1; e < len(b) && b[e]-'0' < 10; e++ {
		}
		if e < len(b) && (b[e] == '.' || b[e]|0x20 == 'e') {
			if e, ok = numberEnd(b, i); !ok {
				return false
			}
		}
		i = e
	case c == '-' || c == '0':
		if i, ok = numberEnd(b, i); !ok {
			return false
		}
	case c == 'n' || c == 't':
		if i+4 > len(b) || binary.LittleEndian.Uint32(b[i:]) != litNull && binary.LittleEndian.Uint32(b[i:]) != litTrue {
			return false
		}
		i += 4
	case c == 'f':
		if i+5 > len(b) || binary.LittleEndian.Uint32(b[i+1:]) != litAlse {
			return false
		}
		i += 5
	default:
		return false
	}
afterValue:
	// A value ended at i: close containers, or go on to the next.
	if d == 0 {
		s.i = i
		return true
	}
	if i >= len(b) {
		return false
	}
	if c = b[i]; c <= ' ' {
		if i = skipWS(b, i); i >= len(b) {
			return false
		}
		c = b[i]
	}
	switch c {
	case ',':
		i++
		if objects&(1<<(d-1)) != 0 {
			i = skipWS(b, i)
			goto key
		}
		goto value
	case '}', ']':
		if (c == '}') != (objects&(1<<(d-1)) != 0) {
			return false
		}
		i++
		d--
		goto afterValue
	}
	return false
key:
	// A member's name, its colon, and its value.
	if i >= len(b) || b[i] != '"' {
		return false
	}
	if i, ok = s.skipStr(i); !ok {
		return false
	}
	if i < len(b) && b[i] == ':' {
		i++
		goto value
	}
	if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
		return false
	}
	i++
	goto value
}

// The literals skip compares as words: "null", "true", and "false" after
// its f.
const (
	litNull = 'n' | 'u'<<8 | 'l'<<16 | 'l'<<24
	litTrue = 't' | 'r'<<8 | 'u'<<16 | 'e'<<24
	litAlse = 'a' | 'l'<<8 | 's'<<16 | 'e'<<24
)

func (s *jsonScan) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// str checks the string at s.i: escapes as the grammar allows them and
// no control bytes (the decoder takes invalid UTF-8, and so does the
// scan). plain is set when the string holds only printable ASCII and no
// escape (its contents are then its value). Names and short values end
// in their first words, which are looked at eight bytes per step; longer
// strings are searched with bytes.IndexByte.
func (s *jsonScan) str() (ok, plain bool) {
	b, i := s.b, s.i+1
	for n := 0; n < 4 && i+8 <= len(b); n++ {
		x := binary.LittleEndian.Uint64(b[i:])
		if m := ((x - lanes20) | ((x ^ lanesQuote) - lanes01) | ((x ^ lanesBackslh) - lanes01) | x) & lanes80; m != 0 {
			// Lanes before the first special byte neither borrow nor set
			// a top bit, so the lowest set bit is that byte's.
			if k := i + bits.TrailingZeros64(m)>>3; b[k] == '"' {
				s.i = k + 1
				return true, true
			}
			break
		}
		i += 8
	}
	return s.strRest(s.i + 1)
}

// skipStr checks the string at b[i] and returns the offset after it.
// Most skipped strings (names, ids, short values) end in their first
// words, looked at eight bytes per step without a call; a longer one (a
// prompt, a description) or one with an escape is left to strRest, which
// searches it with bytes.IndexByte.
func (s *jsonScan) skipStr(i int) (int, bool) {
	b := s.b
	j := i + 1
	for last := min(j+40, len(b)-8); j <= last; j += 8 {
		if m := stringSpecials(binary.LittleEndian.Uint64(b[j:])); m != 0 {
			j += bits.TrailingZeros64(m) >> 3
			switch b[j] {
			case '"':
				return j + 1, true
			case '\\':
				ok, _ := s.strRest(j)
				return s.i, ok
			}
			return 0, false // a control byte
		}
	}
	ok, _ := s.strRest(j)
	return s.i, ok
}

// stringSpecials sets the top bit of each lane of x up to and including
// the first that holds a quote, a backslash or a control byte (so the
// lowest set bit is that byte's). Lanes before it neither borrow nor set
// a bit; a byte of 0x80 or more is cleared by &^x in every term at once
// (quote and backslash are under 0x80, so x^quote has the top bits of x).
func stringSpecials(x uint64) uint64 {
	q, bs := x^lanesQuote, x^lanesBackslh
	return ((q - lanes01) | (bs - lanes01) | (x - lanes20)) &^ x & lanes80
}

// strRest is str from i, inside the string.
func (s *jsonScan) strRest(i int) (ok, plain bool) {
	n, c, ok := jsonstr.Scan(s.b[i:])
	s.i = i + n
	return ok, c == 0
}

// Byte-lane constants of the string scans.
const (
	lanes01      = 0x0101010101010101
	lanesQuote   = '"' * lanes01
	lanesBackslh = '\\' * lanes01
)

// object reads the object at s.i, calling member with each name (a string
// of printable ASCII without escapes); member reads the value. (object and
// array are written out, not one function with a callback per item: the
// extra call per member cost 1.5% of the corpus pass.)
func (s *jsonScan) object(member func(key []byte) bool) bool {
	if s.depth >= maxScanDepth {
		return false
	}
	s.depth++
	s.i++ // '{'
	if s.peek() == '}' {
		s.i++
		s.depth--
		return true
	}
	for {
		if s.peek() != '"' {
			return false
		}
		start := s.i
		if ok, plain := s.str(); !ok || !plain {
			return false // names with escapes or non-ASCII are the decoder's
		}
		key := s.b[start+1 : s.i-1]
		if s.peek() != ':' {
			return false
		}
		s.i++
		if !member(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// array reads the array at s.i, calling elem for each element.
func (s *jsonScan) array(elem func() bool) bool {
	if s.depth >= maxScanDepth {
		return false
	}
	s.depth++
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		s.depth--
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return true
		default:
			return false
		}
	}
}

// fieldNames are the member names of a struct the scan decodes into, as
// its json tags give them, indexed for the two questions fields asks of
// every member name: which name is it (byLen: the names of each length),
// and, when none, might the decoder still take it for one (see mayMatch).
type fieldNames struct {
	names     []string
	looseLens []int
	// byLen has bit k set in entry n when names[k] is n bytes long.
	byLen [32]uint64
	// lenMask has bit n set when a name's loose length is n (n < 64);
	// initials has bit c-'a' set for the folded first letter c of a name.
	lenMask, initials uint64
}

func newFieldNames(names ...string) fieldNames {
	if len(names) > 64 {
		panic("fieldNames: more than 64 names")
	}
	f := fieldNames{names: names, looseLens: make([]int, len(names))}
	for k, n := range names {
		if len(n) < len(f.byLen) {
			f.byLen[len(n)] |= 1 << k
		}
		f.looseLens[k] = looseLen([]byte(n))
		f.lenMask |= 1 << f.looseLens[k]
		c, _ := initial([]byte(n))
		f.initials |= 1 << (c - 'a')
	}
	return f
}

// index returns the position of key among the names, or -1.
func (f *fieldNames) index(key []byte) int {
	if len(key) >= len(f.byLen) {
		return f.indexLong(key)
	}
	for m := f.byLen[len(key)]; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		if string(key) == f.names[k] {
			return k
		}
	}
	return -1
}

func (f *fieldNames) indexLong(key []byte) int {
	for k, name := range f.names {
		if string(key) == name {
			return k
		}
	}
	return -1
}

// initial returns the first byte of name that is not '_' or '-', ASCII
// lower-cased; ok is false when it is not a letter.
func initial(name []byte) (c byte, ok bool) {
	for _, c := range name {
		if c == '_' || c == '-' {
			continue
		}
		c |= 0x20
		return c, 'a' <= c && c <= 'z'
	}
	return 0, false
}

// looseLen is the length of name without '_' and '-'.
func looseLen(name []byte) int {
	n := 0
	for _, c := range name {
		if c != '_' && c != '-' {
			n++
		}
	}
	return n
}

// fields reads an object decoded into a struct with the member names of
// f: field reads the value of each (given the name from f). A name given
// twice declines (the decoder's last-wins and the tolerant scalars' null
// handling are not worth copying), as does an other name the decoder
// might match to a field; other members are checked and skipped.
func (s *jsonScan) fields(f *fieldNames, field func(name string) bool) bool {
	if s.peek() != '{' {
		return false
	}
	var seen uint64
	return s.object(func(key []byte) bool {
		if k := f.index(key); k >= 0 {
			if seen&(1<<k) != 0 {
				return false
			}
			seen |= 1 << k
			return field(f.names[k])
		}
		if f.mayMatch(key) {
			return false
		}
		_, ok := s.value()
		return ok
	})
}

// mayMatch reports whether the decoder might take key, which is none of
// the names, for one of them: whether it equals a name when ASCII case,
// '_' and '-' are ignored. (object declines names with non-ASCII bytes,
// which Unicode case folding might match.) Most keys are told apart by
// their initial alone.
func (f *fieldNames) mayMatch(key []byte) bool {
	if c, ok := initial(key); ok && f.initials&(1<<(c-'a')) == 0 {
		return false
	}
	n := looseLen(key)
	if n >= 64 || f.lenMask&(1<<n) == 0 {
		return false
	}
	for k, name := range f.names {
		if f.looseLens[k] == n && equalLoose(key, name) {
			return true
		}
	}
	return false
}

// equalLoose reports whether key equals name when ASCII case, '_' and '-'
// are ignored.
func equalLoose(key []byte, name string) bool {
	i, j := 0, 0
	for {
		for i < len(key) && (key[i] == '_' || key[i] == '-') {
			i++
		}
		for j < len(name) && (name[j] == '_' || name[j] == '-') {
			j++
		}
		if i == len(key) || j == len(name) {
			return i == len(key) && j == len(name)
		}
		a, b := key[i], name[j]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
		i++
		j++
	}
}

// tolerant gives the next value's bytes to a tolerant scalar (jStr, jInt,
// jFloat, jBool), whose UnmarshalJSON takes any value.
func (s *jsonScan) tolerant(v json.Unmarshaler) bool {
	raw, ok := s.value()
	if !ok {
		return false
	}
	if p, isStr := v.(*jStr); isStr && s.memo != nil && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		// jStr.UnmarshalJSON's fast path, with the memo's string (or
		// tokenString's, then held).
		v, held := s.memo.Lookup(raw[1 : len(raw)-1])
		if !held {
			v = tokenString(raw[1 : len(raw)-1])
			s.memo.Hold(v)
		}
		*p = jStr(v)
		return true
	}
	return v.UnmarshalJSON(raw) == nil
}

// text is tolerant for a string member seldom repeated (a stream's
// text), read without the memo, which it would only churn.
func (s *jsonScan) text(p *jStr) bool {
	raw, ok := s.value()
	return ok && p.UnmarshalJSON(raw) == nil
}

// tolerantPointer reads null (*p = nil) or any other value into a new *p.
func (s *jsonScan) tolerantPointer(p **jStr) bool {
	if s.peek() == 'n' {
		*p = nil
		return s.literal("null")
	}
	*p = new(jStr)
	return s.tolerant(*p)
}

// raw sets *p to the next value's bytes, in place (see the top of the
// file: the target never outlives the body).
func (s *jsonScan) raw(p *json.RawMessage) bool {
	raw, ok := s.value()
	*p = raw
	return ok
}

// content is raw for a member that is usually a string, and sets *plain
// when it is one of printable ASCII without escapes: its contents are then
// its text, which needs no second look.
func (s *jsonScan) content(p *json.RawMessage, plain *bool) bool {
	if s.peek() != '"' {
		return s.raw(p)
	}
	start := s.i
	ok, isPlain := s.str()
	*p = s.b[start:s.i]
	*plain = ok && isPlain
	return ok
}

// pointer reads null (*p = nil) or an object into a new *p with read.
func scanPointer[T any](s *jsonScan, p **T, read func(*T) bool) bool {
	if s.peek() == 'n' {
		*p = nil
		return s.literal("null")
	}
	v := new(T)
	*p = v
	return read(v)
}

// scanSlice reads null (*p = nil) or an array whose elements read reads,
// appended to (*p)[:0] as the decoder does.
func scanSlice[T any](s *jsonScan, p *[]T, read func(*T) bool) bool {
	switch s.peek() {
	case 'n':
		*p = nil
		return s.literal("null")
	case '[':
	default:
		return false
	}
	out := (*p)[:0]
	if out == nil {
		out = []T{}
	}
	ok := s.array(func() bool {
		var zero T
		out = append(out, zero)
		return read(&out[len(out)-1])
	})
	*p = out
	return ok
}
