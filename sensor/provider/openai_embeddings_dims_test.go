package provider

import "testing"

func TestEmbeddingDimensions(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want int
	}{
		{`[0.1, -0.2, 3e-4]`, 3},
		{` [1]`, 1},
		{`[]`, 0},
		// 4 float32 values: 16 bytes, 24 base64 characters with no padding.
		{`"AAAAAAAAAAAAAAAAAAAAAAAA"`, 4},
		// 3 float32 values: 12 bytes, 16 characters.
		{`"AAAAAAAAAAAAAAAA"`, 3},
		// The same 16 characters with an escaped slash decode alike.
		{`"AAAAAAAAAAAAAA\/A"`, 3},
		{`"AAAAAAAAAAAAAAAAAAAAAA=="`, 4},
		{`"unterminated`, 0},
		{`null`, 0},
		{`{"a":1}`, 0},
	} {
		if got := embeddingDimensions([]byte(tc.raw)); got != tc.want {
			t.Errorf("embeddingDimensions(%s) = %d, want %d", tc.raw, got, tc.want)
		}
	}
}
