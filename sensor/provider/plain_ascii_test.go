package provider

import (
	"bytes"
	"strings"
	"testing"
)

// plainASCIIBytewise is the definition plainASCII implements eight bytes
// at a time.
func plainASCIIBytewise(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '\\' || c == '"' || c >= 0x80 {
			return false
		}
	}
	return true
}

// TestPlainASCIIEveryByteInEveryLane puts every byte value at every offset
// of a 1–24 byte run of plain text (so in each lane of the word loop and in
// the tail), next to the bytes most likely to hide it by a borrow.
func TestPlainASCIIEveryByteInEveryLane(t *testing.T) {
	for _, filler := range []byte{' ', '!', '#', '[', ']', 'a', '~', 0x7f} {
		for n := 1; n <= 24; n++ {
			for pos := range n {
				for c := range 256 {
					b := bytes.Repeat([]byte{filler}, n)
					b[pos] = byte(c)
					if got, want := plainASCII(b), plainASCIIBytewise(b); got != want {
						t.Fatalf("filler %q len %d byte %#x at %d: plainASCII %v, want %v", filler, n, c, pos, got, want)
					}
				}
			}
		}
	}
}

// TestPlainASCIITwoBadBytes: two special bytes in one word, the lower of
// which borrows from the higher, are still found.
func TestPlainASCIITwoBadBytes(t *testing.T) {
	specials := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0x81, 0xa0, 0xff}
	for _, a := range specials {
		for _, c := range specials {
			for i := range 8 {
				for j := range 8 {
					b := []byte("abcdefgh")
					b[i], b[j] = a, c
					if got, want := plainASCII(b), plainASCIIBytewise(b); got != want {
						t.Fatalf("%q: plainASCII %v, want %v", b, got, want)
					}
				}
			}
		}
	}
}

func TestPlainStringBytes(t *testing.T) {
	long := strings.Repeat("The quick brown fox. ", 60)
	for _, tc := range []struct {
		raw, want string
		ok        bool
	}{
		{`""`, "", true},
		{` "abc" `, "abc", true},
		{`"` + long + `"`, long, true},
		{`"` + long + `\n"`, "", false},
		{`"` + long + "\x01" + `"`, "", false},
		{`"` + long + "é" + `"`, "", false},
		{`"` + long + "\xff" + `"`, "", false},
		{`"tab` + "\t" + `"`, "", false},
		{`abc`, "", false},
		{`"`, "", false},
		{`12`, "", false},
	} {
		got, ok := plainStringBytes([]byte(tc.raw))
		if ok != tc.ok || string(got) != tc.want {
			t.Errorf("plainStringBytes(%.30q) = %.30q, %v; want %.30q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzPlainASCII(f *testing.F) {
	f.Add([]byte("The capital of France is Paris."))
	f.Add([]byte(`{"role":"user","content":"hi \"there\""}`))
	f.Add([]byte("caf\xc3\xa9 \x00\x1f\x7f\x80"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := plainASCII(b), plainASCIIBytewise(b); got != want {
			t.Fatalf("plainASCII(%q) = %v, want %v", b, got, want)
		}
	})
}
