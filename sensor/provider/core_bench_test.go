package provider

import (
	"encoding/json"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/stream"
)

// coreBenchFiles are representative recorded exchanges: small and large
// whole bodies, and streams of 8 to 118 events.
var coreBenchFiles = []string{
	"openai/chat.json",
	"openai/chat_stream_usage.json",
	"openai/deepseek_stream_usage.json",
	"openai/responses_stream_tool.json",
	"openai/embeddings.json",
	"anthropic/messages_cache.json",
	"anthropic/messages_stream_thinking.json",
}

// BenchmarkCoreDecode measures the whole decode path of one exchange:
// registry lookup, API match, request and response decoding, stream
// reassembly, model enrichment and pricing.
func BenchmarkCoreDecode(b *testing.B) {
	reg := coreRegistry(b)
	for _, name := range coreBenchFiles {
		rec := loadCoreRecording(b, name)
		x := rec.exchange()
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(x.Request.Body.Data) + len(x.Response.Body.Data)))
			b.ReportAllocs()
			for b.Loop() {
				coreDecode(b, reg, x)
			}
		})
	}
}

// BenchmarkCoreGenericJSON is the alternative design measured in the same
// run: unmarshalling the same request body and every response body (or
// SSE event) into map[string]any, before any field is even read.
func BenchmarkCoreGenericJSON(b *testing.B) {
	for _, name := range coreBenchFiles {
		rec := loadCoreRecording(b, name)
		x := rec.exchange()
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(x.Request.Body.Data) + len(x.Response.Body.Data)))
			b.ReportAllocs()
			for b.Loop() {
				var req map[string]any
				_ = json.Unmarshal(x.Request.Body.Data, &req)
				if looksSSE(x) {
					for _, ev := range stream.ParseSSE(x.Response.Body.Data, x.Response.Body.Marks) {
						var m map[string]any
						_ = json.Unmarshal(ev.Data, &m)
					}
				} else {
					var m map[string]any
					_ = json.Unmarshal(x.Response.Body.Data, &m)
				}
			}
		})
	}
}
