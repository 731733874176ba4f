// Package jsonstr owns reading JSON string literals exactly as
// encoding/json reads them: the grammar of RFC 8259 (no control byte, only
// the escapes it defines), a valid surrogate pair joined into one rune,
// and a lone or invalid surrogate, and every byte of invalid UTF-8, read as
// U+FFFD.
//
// Scan, Append and Unquote read from the byte after the opening quote (the
// caller has found the quote, which tells it a string begins) and say
// where the literal ended: n is the offset just after its closing quote.
// UnquoteLiteral reads a literal that is the whole of its bytes.
//
// Unquote reads a string, so that a caller holding one gets the plain
// strings as slices of it; the others read bytes. (Functions generic over
// string | []byte cost 15 % more instructions over bytes and 36 % over
// strings: which IndexByte and utf8.Valid of the standard library to call
// is chosen at run time, and the 8-byte checks are not inlined.)
package jsonstr

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Contents says what a literal's contents hold, and so whether they are
// its value: contents with neither are ASCII (without control bytes, which
// the grammar forbids), their value byte for byte.
type Contents uint8

const (
	// Escapes: the contents hold an escape, and must be unescaped.
	Escapes Contents = 1 << iota
	// NonASCII: the contents hold bytes of 0x80 or more. Without escapes
	// they are the value when they are valid UTF-8 (each byte of invalid
	// UTF-8 reads as U+FFFD).
	NonASCII
)

// Scan checks the literal whose contents begin at s[0] as encoding/json's
// scanner does and returns n, the offset just after its closing quote, and
// what its contents hold; ok is false when the literal is invalid or does
// not end in s. Long strings (prompts, descriptions) are searched with
// IndexByte and checked eight bytes per step.
func Scan(s []byte) (n int, c Contents, ok bool) {
	i := 0
	q := -1 // offset of the first quote at or after i once found (an escape may pass it)
	for {
		if q < i {
			k := bytes.IndexByte(s[i:], '"')
			if k < 0 {
				return 0, 0, false
			}
			q = i + k
		}
		seg := s[i:q]
		e := bytes.IndexByte(seg, '\\')
		if e >= 0 {
			seg = seg[:e]
		}
		ctl, high := controlOrHigh(seg)
		if ctl {
			return 0, 0, false
		}
		if high {
			c |= NonASCII
		}
		if e < 0 {
			return q + 1, c, true
		}
		c |= Escapes
		i += e
		if i+1 >= len(s) {
			return 0, 0, false
		}
		switch s[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(s) {
				return 0, 0, false
			}
			if _, ok := hex4(s[i+2 : i+6]); !ok {
				return 0, 0, false
			}
			i += 6
		default:
			return 0, 0, false
		}
	}
}

// Append appends the value of the literal whose contents begin at s[0] to
// dst and returns it, with n, the offset just after the closing quote; ok
// is false (and dst is returned as given) when the literal is invalid or
// does not end in s.
func Append(dst, s []byte) (value []byte, n int, ok bool) {
	n, _, ok = Scan(s)
	if !ok {
		return dst, 0, false
	}
	value, _ = appendContents(dst, s[:n-1])
	return value, n, true
}

// Unquote returns the value of the literal whose contents begin at s[0],
// and n, the offset just after the closing quote; ok is false when the
// literal is invalid or does not end in s. When the contents are the value
// it is a slice of s; otherwise a new string, made with one allocation
// (two when invalid UTF-8 makes the value longer than the contents).
func Unquote(s string) (value string, n int, ok bool) {
	// The bytes of s are read, never written, and not kept.
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	n, c, ok := Scan(b)
	if !ok {
		return "", 0, false
	}
	if c == 0 || c == NonASCII && utf8.ValidString(s[:n-1]) {
		return s[:n-1], n, true
	}
	// The value is no longer than the contents, save invalid UTF-8 (a
	// byte becomes three).
	buf, _ := appendContents(make([]byte, 0, n-1), b[:n-1])
	return unsafe.String(unsafe.SliceData(buf), len(buf)), n, true
}

// UnquoteLiteral returns the value of the literal lit, its quotes included
// and nothing around them; ok is false when lit is anything else. The value
// is a new string, made as Unquote makes a copy.
func UnquoteLiteral(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	contents := lit[1 : len(lit)-1]
	if bytes.IndexByte(contents, '\\') < 0 {
		ctl, high := controlOrHigh(contents)
		if ctl || bytes.IndexByte(contents, '"') >= 0 {
			return "", false
		}
		if !high || utf8.Valid(contents) {
			return string(contents), true
		}
	}
	// The end is known: one pass checks and unescapes.
	buf, ok := appendContents(make([]byte, 0, len(contents)), contents)
	if !ok {
		return "", false
	}
	// The buffer is not kept: the string is made from it in place, as
	// strings.Builder does.
	return unsafe.String(unsafe.SliceData(buf), len(buf)), true
}

// appendContents appends the value of contents, a literal's between its
// quotes, to dst; ok is false when they are not a literal's (a quote, a
// control byte, an escape the grammar does not have).
func appendContents(dst, contents []byte) (value []byte, ok bool) {
	for {
		seg := contents
		k := bytes.IndexByte(contents, '\\')
		if k >= 0 {
			seg = contents[:k]
		}
		ctl, high := controlOrHigh(seg)
		if ctl || bytes.IndexByte(seg, '"') >= 0 {
			return dst, false
		}
		dst = appendText(dst, seg, high)
		if k < 0 {
			return dst, true
		}
		contents = contents[k:]
		if len(contents) < 2 {
			return dst, false
		}
		n := 2
		switch e := contents[1]; e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			dst = append(dst, unescaped(e))
		case 'u':
			if len(contents) < 6 {
				return dst, false
			}
			r, ok := hex4(contents[2:6])
			if !ok {
				return dst, false
			}
			n = 6
			if utf16.IsSurrogate(r) {
				// A pair is read whole; a surrogate without its partner
				// is U+FFFD, and the escape after it is read anew.
				pair := utf8.RuneError
				if len(contents) >= 12 && contents[6] == '\\' && contents[7] == 'u' {
					if r2, ok := hex4(contents[8:12]); ok {
						pair = utf16.DecodeRune(r, r2)
					}
				}
				if r = pair; pair != utf8.RuneError {
					n = 12
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
		contents = contents[n:]
	}
}

// unescaped returns the byte a one-letter escape stands for.
func unescaped(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e // '"', '\\', '/'
}

// appendText appends seg, contents without an escape, with each byte of
// invalid UTF-8 as U+FFFD; nonASCII is false when seg is all ASCII.
func appendText(dst, seg []byte, nonASCII bool) []byte {
	if !nonASCII || utf8.Valid(seg) {
		return append(dst, seg...)
	}
	for len(seg) > 0 {
		r, size := utf8.DecodeRune(seg)
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, seg[:size]...)
		}
		seg = seg[size:]
	}
	return dst
}

// hex4 reads four hex digits.
func hex4(h []byte) (rune, bool) {
	var r rune
	for _, c := range h[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Byte-lane constants of controlOrHigh.
const (
	lanes20 = 0x2020202020202020
	lanes80 = 0x8080808080808080
)

// controlOrHigh reports whether b has a byte under 0x20, and one of 0x80
// or more; eight bytes per step ((x-0x20…)&^x sets a lane's top bit
// exactly when some lane is under 0x20: a borrow only leaves such a lane).
func controlOrHigh(b []byte) (ctl, high bool) {
	var acc, hi uint64
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		acc |= (x - lanes20) &^ x
		hi |= x
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return true, false
		}
		hi |= uint64(c)
	}
	return acc&lanes80 != 0, hi&lanes80 != 0
}
