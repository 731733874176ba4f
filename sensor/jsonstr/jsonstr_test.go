package jsonstr

import (
	"bytes"
	stdjson "encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	goccy "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/cassette"
)

// recordedLiterals returns the contents (after the opening quote, up to
// and including the closing one) of the string literals, each once, of the
// fixtures' recorded bodies as the clients and providers wrote them
// (prompts with escaped line breaks and quotes, \u escapes of non-ASCII
// and of HTML characters, escaped slashes, non-ASCII text) and of the
// events the sensor wrote of them.
func recordedLiterals(tb testing.TB) [][]byte {
	tb.Helper()
	root := filepath.Join("..", "..", "fixtures")
	cassettes, err := filepath.Glob(filepath.Join(root, "*", "*", "cassette.yaml"))
	if err != nil || len(cassettes) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	var texts [][]byte
	for _, name := range cassettes {
		rec, err := cassette.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		for _, in := range rec.Interactions {
			texts = append(texts, in.Request.Body)
			if in.Response.Header.Get("Content-Encoding") == "" {
				texts = append(texts, in.Response.Body)
			}
		}
		events, err := os.ReadFile(filepath.Join(filepath.Dir(name), "expected.jsonl"))
		if err != nil {
			tb.Fatal(err)
		}
		texts = append(texts, events)
	}
	var out [][]byte
	seen := make(map[string]bool)
	for _, text := range texts {
		for _, lit := range literalsOf(text) {
			if !seen[string(lit)] {
				seen[string(lit)] = true
				out = append(out, lit)
			}
		}
	}
	return out
}

// literalsOf splits the string literals out of JSON text by the quotes and backslashes alone (what they hold is for the test to judge).
func literalsOf(line []byte) [][]byte {
	var out [][]byte
	for i := 0; i < len(line); i++ {
		if line[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(line) && line[j] != '"' {
			if line[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(line) {
			break
		}
		out = append(out, bytes.Clone(line[i+1:j+1]))
		i = j
	}
	return out
}

// oddLiterals are contents at the edges of the grammar and of UTF-8.
var oddLiterals = []string{
	`"`, `plain"`, `a\nb\"c\\d\/e\bf\fg\rh\ti"`, `caf\u00e9 \u00E9 \u0000 \uffff"`, `\u2028\u2029<&>"`,
	`\ud83d\ude00"`, `\ud800"`, `\ude00"`, `\ud83dx"`, `\ud83d\u0041"`, `\ud83d\ud83d\ude00"`, `\ud83d\ud83d"`,
	`\udbff\udfff"`, `\ud800\udc00"`, `\ud83d\ude0"`, `\ud83d\"`, `\ud83d\u12"`, `\ude00\ud83d"`,
	`\x"`, `\a"`, `\'"`, `\u12G4"`, `\u12"`, `\u"`, `\"`, `\`, ``, `unterminated`, `a"b"`, `a" `, "a\" \t\n",
	"\xff\"", "\\n\xff\"", "a\xc3\"", "\xc3\xa9\"", "\xed\xa0\x80\"", "\xf4\x90\x80\x80\"", "\xe2\x82\"",
	"\xe2\x82\\n\"", "a\x01\"", "a\x1f\\n\"", "\x00\"", "a\nb\"", "\x7f\"", "日本語\\n\"",
	"0123456789abcdef\x01\"", "0123456789abcdef\\n0123456789abcdef\xff0123456789\"",
}

// readStd is the reference: what encoding/json makes of the literal whose
// contents are rest, and whether it takes it.
func readStd(rest []byte) (string, bool) {
	var v string
	err := stdjson.Unmarshal(append([]byte{'"'}, rest...), &v)
	return v, err == nil
}

// onlySpace reports whether b is JSON whitespace, which may follow a
// literal that Unmarshal takes.
func onlySpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// checkLiteral fails when Unquote, UnquoteLiteral, Append or Scan read
// rest otherwise than encoding/json does.
func checkLiteral(t *testing.T, rest []byte) {
	t.Helper()
	want, wantOK := readStd(rest)
	got, n, ok := Unquote(string(rest))
	if ok {
		// The literal ends at n: encoding/json takes it alone, and the
		// whole text exactly when only whitespace follows.
		if w, wOK := readStd(rest[:n]); !wOK || w != got {
			t.Fatalf("Unquote(%q) = %q, %d; encoding/json reads %q as %q, %v", rest, got, n, rest[:n], w, wOK)
		}
	}
	if wholeOK := ok && onlySpace(rest[n:]); wholeOK != wantOK || wantOK && got != want {
		t.Fatalf("Unquote(%q) = %q, %d, %v; encoding/json reads %q, %v", rest, got, n, ok, want, wantOK)
	}
	lit := append([]byte{'"'}, rest...)
	if gotL, okL := UnquoteLiteral(lit); okL != (ok && n == len(rest)) || okL && gotL != got {
		t.Fatalf("UnquoteLiteral(%q) = %q, %v; Unquote of its contents %q, %d, %v", lit, gotL, okL, got, n, ok)
	}
	if ok {
		if gotL, okL := UnquoteLiteral(lit[:n+1]); !okL || gotL != got {
			t.Fatalf("UnquoteLiteral(%q) = %q, %v; want %q", lit[:n+1], gotL, okL, got)
		}
	}
	dst := []byte("prefix")
	app, nA, okA := Append(dst, rest)
	if okA != ok || nA != n || ok && string(app) != "prefix"+got || !ok && string(app) != "prefix" {
		t.Fatalf("Append(%q) = %q, %d, %v; Unquote %q, %d, %v", rest, app, nA, okA, got, n, ok)
	}
	nScan, c, okScan := Scan(rest)
	if okScan != ok || nScan != n {
		t.Fatalf("Scan(%q) = %d, %v; Unquote %d, %v", rest, nScan, okScan, n, ok)
	}
	if ok {
		contents := string(rest[:n-1])
		if (c&Escapes != 0) != strings.Contains(contents, `\`) ||
			(c&NonASCII != 0) != strings.ContainsFunc(contents, func(r rune) bool { return r >= 0x80 }) ||
			c == 0 && contents != got {
			t.Fatalf("Scan(%q) says %d of contents read as %q", rest, c, got)
		}
	}
}

func TestRecordedLiterals(t *testing.T) {
	lits := recordedLiterals(t)
	escaped := 0
	for _, lit := range lits {
		checkLiteral(t, lit)
		if bytes.IndexByte(lit, '\\') >= 0 {
			escaped++
		}
	}
	if escaped == 0 {
		t.Fatalf("none of the %d recorded literals has an escape", len(lits))
	}
}

func TestOddLiterals(t *testing.T) {
	for _, s := range oddLiterals {
		checkLiteral(t, []byte(s))
	}
}

// TestUnquoteAllocations: a string whose contents are its value is read
// by Unquote as a slice of the text, without an allocation; any other
// string, and any by UnquoteLiteral, with one (invalid UTF-8 in place of
// escapes would make the value longer than the contents, and take two).
func TestUnquoteAllocations(t *testing.T) {
	text := `gpt-4o-mini", "next"`
	got, n, ok := Unquote(text)
	if !ok || got != "gpt-4o-mini" || n != len(`gpt-4o-mini"`) || unsafe.StringData(got) != unsafe.StringData(text) {
		t.Fatalf("Unquote(%q) = %q, %d, %v (a copy?)", text, got, n, ok)
	}
	if a := testing.AllocsPerRun(100, func() { Unquote(text) }); a != 0 {
		t.Fatalf("Unquote of a plain string allocates %.0f times", a)
	}
	escaped := "line one\\nline two \\u00e9\\ud83d\\ude00 \\\"quoted\\\" \xff\""
	escapedLit, plainLit := []byte(`"`+escaped), []byte(`"plain"`)
	invalidLit := []byte("\"caf\xc3\xa9\\n\\n\xff\"")
	var keep string
	for i, f := range []func(){
		func() { keep, _, _ = Unquote(escaped) },
		func() { keep, _, _ = Unquote("caf\xc3\xa9\\n\\n\xff\"") },
		func() { keep, _ = UnquoteLiteral(escapedLit) },
		func() { keep, _ = UnquoteLiteral(plainLit) },
		func() { keep, _ = UnquoteLiteral(invalidLit) },
	} {
		if a := testing.AllocsPerRun(100, f); a != 1 {
			t.Fatalf("reading string %d allocates %.0f times", i, a)
		}
	}
	if keep != "café\n\n\uFFFD" {
		t.Fatalf("last string read as %q", keep)
	}
}

func FuzzUnquote(f *testing.F) {
	for _, lit := range recordedLiterals(f) {
		if len(lit) < 512 {
			f.Add(lit)
		}
	}
	for _, s := range oddLiterals {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, rest []byte) {
		checkLiteral(t, rest)
	})
}

// FuzzGoccyAgrees: github.com/goccy/go-json reads every string literal as
// encoding/json does, value and acceptance. Package provider decodes with
// goccy and reads the string members it scans itself with this package;
// the two agree only because of this.
func FuzzGoccyAgrees(f *testing.F) {
	for _, lit := range recordedLiterals(f) {
		if len(lit) < 512 {
			f.Add(append([]byte{'"'}, lit...))
		}
	}
	for _, s := range oddLiterals {
		f.Add(append([]byte{'"'}, s...))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		var std, gc string
		stdErr := stdjson.Unmarshal(text, &std)
		gcErr := goccy.Unmarshal(text, &gc)
		if (stdErr == nil) != (gcErr == nil) || stdErr == nil && std != gc {
			t.Fatalf("%q: encoding/json reads %q (%v), goccy %q (%v)", text, std, stdErr, gc, gcErr)
		}
	})
}

// BenchmarkUnquote reads the recorded literals: "literal" as package
// provider reads a decoded string, "string" as package pipeline reads the
// strings of tool-call arguments. (The readers they replace were measured
// on the same literals: see the commit.)
func BenchmarkUnquote(b *testing.B) {
	lits := recordedLiterals(b)
	quoted := make([][]byte, len(lits))
	strs := make([]string, len(lits))
	size := 0
	for i, lit := range lits {
		quoted[i] = append([]byte{'"'}, lit...)
		strs[i] = string(lit)
		size += len(lit)
	}
	b.Run("literal", func(b *testing.B) { benchEach(b, size, quoted, func(lit []byte) { UnquoteLiteral(lit) }) })
	b.Run("string", func(b *testing.B) { benchEach(b, size, strs, func(s string) { Unquote(s) }) })
}

// benchEach reads each input once per op, size bytes in all.
func benchEach[T any](b *testing.B, size int, inputs []T, read func(T)) {
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, in := range inputs {
			read(in)
		}
	}
}
