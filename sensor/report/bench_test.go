package report

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// BenchmarkAdd measures Add over every fixture event (MB/s), beside a
// plain encoding/json decode of the same lines into a map: the floor any
// generic reader of the events pays.
func BenchmarkAdd(b *testing.B) {
	var lines [][]byte
	var size int64
	for _, name := range fixtureFiles(b) {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			lines = append(lines, l)
			size += int64(len(l)) + 1
		}
	}
	b.Run("report.Add", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		rep := New(Options{})
		for b.Loop() {
			for _, l := range lines {
				if err := rep.Add(l); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("encoding-json-map", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal(l, &m); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
