package provider

import (
	"bytes"
	"testing"

	json "github.com/goccy/go-json"
)

// BenchmarkScanShapes decodes the recorded bodies each scan takes, with
// the scan (decodeLoose) and with the decoder alone, side by side.
func BenchmarkScanShapes(b *testing.B) {
	bodies := recordedBodies(b)
	b.Run("gemini-response", func(b *testing.B) {
		benchScan[geminiResponseBody](b, bodies, "candidates")
	})
	b.Run("gemini-request", func(b *testing.B) {
		benchScan[geminiRequestBody](b, bodies, "contents")
	})
	b.Run("responses-request", func(b *testing.B) {
		benchScan[responsesRequestBody](b, bodies, "input")
	})

}

// benchScan runs decodeLoose and the decoder over the bodies that name
// member and that the scan takes.
func benchScan[T any, PT interface {
	*T
	scannedBody
}](b *testing.B, bodies [][]byte, member string) {
	var taken [][]byte
	size := 0
	for _, body := range bodies {
		body = bytes.TrimSpace(body)
		var v T
		if bytes.Contains(body, []byte(`"`+member+`"`)) && PT(&v).scanJSON(body, nil) {
			taken = append(taken, body)
			size += len(body)
		}
	}
	if len(taken) == 0 {
		b.Skip("no bodies")
	}
	run := func(name string, decode func(body []byte, v *T)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for _, body := range taken {
					var v T
					decode(body, &v)
				}
			}
		})
	}
	run("scan", func(body []byte, v *T) { decodeLoose(body, PT(v)) })   //nolint:errcheck
	run("decoder", func(body []byte, v *T) { json.Unmarshal(body, v) }) //nolint:errcheck
}
