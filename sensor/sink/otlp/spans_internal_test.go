package otlp

import (
	"bytes"
	"testing"
)

// FuzzEachAttr feeds eachAttr arbitrary bytes (it must not panic or loop)
// and checks that it reads back every attribute attrs writes.
func FuzzEachAttr(f *testing.F) {
	f.Add("gen_ai.request.model", "gpt-4o", []byte{0x4a, 0x03, 0x0a, 0x01, 0x61})
	f.Add("", "\xff", []byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, key, value string, junk []byte) {
		eachAttr(junk, func(k, field []byte) {
			if len(field) > len(junk) || len(k) > len(field) {
				t.Fatalf("field %x key %x outside %x", field, k, junk)
			}
		})
		a := attrs{field: fieldSpanAttributes}
		a.str(key, value)
		a.int("n", 7)
		if value == "" {
			key = "n" // str wrote nothing
		}
		var keys [][]byte
		eachAttr(a.b, func(k, _ []byte) { keys = append(keys, k) })
		if len(keys) == 0 || !bytes.Equal(keys[0], []byte(key)) || !hasAttr(a.b, []byte("n")) {
			t.Fatalf("read back %q from the attributes of %q", keys, key)
		}
	})
}
