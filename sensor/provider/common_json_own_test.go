package provider

import (
	"bytes"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/google/go-cmp/cmp"
)

// TestJStrOwnsItsBytes: a decoded string field owns its bytes, so it
// survives both a rewrite of the caller's body and later decodes (which may
// reuse the decoder's internal buffers).
func TestJStrOwnsItsBytes(t *testing.T) {
	body := []byte(`{"id":"chatcmpl-first","model":"gpt-4o-mini","object":"chat.completion"}`)
	var first openaiChatResponseBody
	if _, err := decodeLoose(body, &first); err != nil {
		t.Fatal(err)
	}
	copy(body, bytes.Repeat([]byte{'x'}, len(body)))
	for range 50 {
		var other openaiChatResponseBody
		if _, err := decodeLoose([]byte(`{"id":"chatcmpl-other","model":"gpt-4o-XXXX","object":"chat.completionX"}`), &other); err != nil {
			t.Fatal(err)
		}
	}
	if first.ID != "chatcmpl-first" || first.Model != "gpt-4o-mini" || first.Object != "chat.completion" {
		t.Fatalf("decoded strings changed after reuse: %q %q %q", first.ID, first.Model, first.Object)
	}
	var empty struct {
		S jStr `json:"s"`
	}
	if _, err := decodeLoose([]byte(`{"s":""}`), &empty); err != nil || empty.S != "" {
		t.Fatalf("empty string: %q %v", empty.S, err)
	}
}

// TestTokenString: every string comes back equal, and the common words
// without an allocation.
func TestTokenString(t *testing.T) {
	for _, tok := range []string{"user", "assistant", "chat.completion.chunk", "stop", "STOP", "end_turn", "response.output_text.delta",
		"", "User", "stop ", "gpt-4o-mini", "chatcmpl-123", "caf\xc3\xa9", "\xff"} {
		b := []byte(tok)
		if got := tokenString(b); got != tok {
			t.Fatalf("tokenString(%q) = %q", tok, got)
		}
		var s jStr
		if err := s.UnmarshalJSON([]byte(`"` + tok + `"`)); err != nil || string(s) != tok {
			t.Fatalf("jStr of %q = %q, %v", tok, s, err)
		}
	}
	b := []byte("assistant")
	if n := testing.AllocsPerRun(100, func() { _ = tokenString(b) }); n != 0 {
		t.Fatalf("tokenString of a common word allocates %.0f times", n)
	}
	b = []byte("gpt-4o-mini-2024-07-18")
	var keep string
	if n := testing.AllocsPerRun(100, func() { keep = tokenString(b) }); n != 1 {
		t.Fatalf("tokenString of another string allocates %.0f times, want its copy", n)
	}
	b[0] = 'X'
	if keep != "gpt-4o-mini-2024-07-18" {
		t.Fatalf("tokenString kept the caller's bytes: %q", keep)
	}
}

// TestTrimSpace holds trimSpace to bytes.TrimSpace, on the exact tokens it
// answers itself and on everything it hands on.
func TestTrimSpace(t *testing.T) {
	for _, s := range []string{
		"", " ", "\t\n\v\f\r ", `"x"`, `1`, `-1.5e3`, `true`, `{}`, `[]`, ` "x"`, `"x" `, "\t1\n",
		"\x01x\x01", "x\x7f", "\u00a0x", "x\u0085", "\u2028\"x\"\u3000", "\xffx", "x\xc3", "é", "~",
	} {
		got, want := trimSpace([]byte(s)), bytes.TrimSpace([]byte(s))
		if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("trimSpace(%q) = %q; bytes.TrimSpace gives %q", s, got, want)
		}
	}
}

// TestAnyValueAgreesWithDecoder: anyValue reads what the decoder reads
// into an interface (strings it reads itself among them).
func TestAnyValueAgreesWithDecoder(t *testing.T) {
	for _, raw := range []string{`"auto"`, ` "required" `, `"none"`, `"any"`, `"specific"`, `"caf\u00e9"`, `"a\"b"`, `"é"`, `{"type":"function","function":{"name":"f"}}`, `null`, `1`, `"unterminated`, `"a" "b"`} {
		var want any
		if json.Unmarshal([]byte(raw), &want) != nil {
			want = nil
		}
		if got := anyValue([]byte(raw)); !cmp.Equal(got, want) {
			t.Errorf("anyValue(%s) = %#v, the decoder %#v", raw, got, want)
		}
	}
}

// TestAnyValueUsualChoicesAllocateNothing: the usual tool choices are
// constants.
func TestAnyValueUsualChoicesAllocateNothing(t *testing.T) {
	raw := []byte(`"auto"`)
	if n := testing.AllocsPerRun(100, func() {
		if anyValue(raw) != "auto" {
			t.Fatal("misread")
		}
	}); n != 0 {
		t.Fatalf("anyValue(%s) allocates %.0f times", raw, n)
	}
}
