package httpmsg

import (
	"net/textproto"
	"testing"
)

// FuzzCanonicalName checks CanonicalName against
// textproto.CanonicalMIMEHeaderKey, which it must equal on every name.
func FuzzCanonicalName(f *testing.F) {
	for _, s := range []string{
		"content-type", "Content-Type", "CONTENT-TYPE", "x-ratelimit-limit-requests", "X-1abc", "a b",
		"cONTENT", "x--y", "-a", "A-", "ü-x", "Www-Authenticate", "WWW-Authenticate", "anthropic-version",
		// '-' and case changes at and across the eight-byte words the
		// canonical check reads.
		"Abcdefg-Hijklmno", "Abcdefg-hijklmno", "Abcdefgh-Ijklmno", "Abcdefgh-ijklmno",
		"Abcdefghijklmn-O", "Abcdefghijklmn-o", "Abcdefghijklmno-", "Abcdefghijklmnop", "AbcdefghijklmnoP",
		"X-Ratelimit-Remaining-Requests", "x-ratelimit-remaining-requests", "Content-Type\xff", "Ab\x00cdefgh-I",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := CanonicalName(s), textproto.CanonicalMIMEHeaderKey(s); got != want {
			t.Fatalf("CanonicalName(%q) = %q; want %q", s, got, want)
		}
	})
}
