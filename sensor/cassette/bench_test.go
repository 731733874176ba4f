package cassette

import (
	"bytes"
	"testing"

	"gopkg.in/yaml.v3"
)

// BenchmarkParse compares our reading of a vcrpy cassette (YAML node tree,
// PyYAML scalar rules, body rebuilding) with the floor: yaml.v3 decoding
// the same bytes into map[string]any.
func BenchmarkParse(b *testing.B) {
	big := bytes.Repeat([]byte(parsedBodyYAML[len("interactions:\n"):len(parsedBodyYAML)-len("version: 1\n")]), 50)
	big = append([]byte("interactions:\n"), big...)
	b.Run("cassette.Parse", func(b *testing.B) {
		b.SetBytes(int64(len(big)))
		for b.Loop() {
			if _, err := Parse("bench", big); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("yaml.v3.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(big)))
		for b.Loop() {
			var v map[string]any
			if err := yaml.Unmarshal(big, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHTTPRR measures the byte-count splitter on a trace.
func BenchmarkHTTPRR(b *testing.B) {
	trace := []byte(httprrMagic)
	for i := 0; i < 50; i++ {
		trace = append(trace, httprrTrace()[len(httprrMagic):]...)
	}
	b.SetBytes(int64(len(trace)))
	for b.Loop() {
		if _, err := Parse("bench", trace); err != nil {
			b.Fatal(err)
		}
	}
}
