package http1

import (
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// canonicalNameLenByBytes is httpmsg.CanonicalNameLen's contract checked a byte at
// a time: the colon's offset when the name before it is non-empty, holds no
// byte under '!' and has its letters in canonical case, and the colon lies
// within s's whole eight-byte words; 0 otherwise.
func canonicalNameLenByBytes(s string) int {
	wantUpper := true
	for i := 0; i < len(s)&^7; i++ {
		c := s[i]
		switch {
		case c == ':':
			return i
		case c < '!':
			return 0
		case 'a' <= c && c <= 'z' && wantUpper, 'A' <= c && c <= 'Z' && !wantUpper:
			return 0
		}
		wantUpper = c == '-'
	}
	return 0
}

func FuzzCanonicalNameLen(f *testing.F) {
	for _, line := range strings.Split(responseFields, "\n") {
		f.Add(line + "\n")
	}
	for _, s := range []string{
		"content-type: a\r\n", "Content-type: a\r\n", "X-Request-ID: 1\r\n", "Host : x\r\n",
		" folded value\r\n", ": no name here\r\n", "\r\n", "Name:", "Abcdefg:", "Abcdefgh:",
		"Abcdefghijklmnop: v", "A-B-C-D-E-F-G-H-I: v", "\xc3\xa9t\xc3\xa9-Xyz: v", "Ab\tc: v",
		"Authorization: Bearer x", "ETag: \"a\"", "X-\x7fFoo-Bar: v", "Www-Authenticate: x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := httpmsg.CanonicalNameLen(s)
		if want := canonicalNameLenByBytes(s); n != want {
			t.Fatalf("CanonicalNameLen(%q) = %d, byte by byte %d", s, n, want)
		}
		if n > 0 {
			if name := s[:n]; httpmsg.CanonicalName(name) != name {
				t.Fatalf("CanonicalNameLen(%q) took %q, whose canonical form is %q", s, name, httpmsg.CanonicalName(name))
			}
		}
	})
}

// TestParseFieldsCanonicalNamesInPlace checks that the canonical names of
// a recorded response header are taken in place, at the first try.
func TestParseFieldsCanonicalNamesInPlace(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(responseFields, "\r\n\r\n"), "\r\n")
	at := 0
	for _, line := range lines {
		if n := httpmsg.CanonicalNameLen(responseFields[at:]); n != strings.IndexByte(line, ':') {
			t.Errorf("CanonicalNameLen at %q = %d, want its colon's offset", line, n)
		}
		at += len(line) + 2
	}
	h, bad, end := parseFields(responseFields, nil)
	if bad != 0 || end != len(responseFields) || len(h) != len(lines) {
		t.Fatalf("parseFields: %d fields, bad %d, end %d; want %d, 0, %d", len(h), bad, end, len(lines), len(responseFields))
	}
	for i, line := range lines {
		name, value, _ := strings.Cut(line, ":")
		if h[i].Name != name || h[i].Value != strings.TrimSpace(value) {
			t.Errorf("field %d = %q: %q, want %q: %q", i, h[i].Name, h[i].Value, name, strings.TrimSpace(value))
		}
	}
}
