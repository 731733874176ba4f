package http1

import (
	"net/textproto"
	"testing"
)

// FuzzCanonicalKey checks canonicalKey against
// textproto.CanonicalMIMEHeaderKey, which it must equal on every name.
func FuzzCanonicalKey(f *testing.F) {
	for _, s := range []string{
		"content-type", "Content-Type", "CONTENT-TYPE", "x-ratelimit-limit-requests", "X-1abc", "a b",
		"cONTENT", "x--y", "-a", "A-", "ü-x", "Www-Authenticate", "WWW-Authenticate", "anthropic-version",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return // parseFields never asks
		}
		if got, want := canonicalKey(s), textproto.CanonicalMIMEHeaderKey(s); got != want {
			t.Fatalf("canonicalKey(%q) = %q; want %q", s, got, want)
		}
	})
}
