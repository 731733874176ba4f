package provider

import (
	"testing"
)

// Recorded Cohere exchanges (testdata/cohere/README.md lists the sources).
// Raw token counts win over billed units.
func TestCohereRecorded(t *testing.T) {
	runWants(t, []recWant{
		{ // v1 chat streamed as NDJSON; stream-end carries the response
			file: "cohere/test_cohere_chat_legacy_with_streaming.yaml", api: apiCohereChatV1,
			providerName: "cohere", model: "command", answeredModel: "command",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(69), completion: iptr(116), total: iptr(185),
			messages: 1, ttft: true,
		},
		{ // v2 named SSE events with tool-call-start/delta/end and tool-plan
			file: "cohere/test_cohere_v2_chat_legacy_with_tool_calls_and_streaming.yaml", api: apiCohereChatV2,
			providerName: "cohere", model: "command-r", answeredModel: "command-r",
			streaming: true, status: 200, finish: "tool_calls",
			prompt: iptr(968), completion: iptr(83), total: iptr(1051), tools: []string{"get_time", "get_weather"},
			messages: 1, ttft: true,
		},
		{ // v2 whole response, cached tokens
			file: "cohere/test_tool_choice_matrix[required-cohere].yaml", api: apiCohereChatV2,
			providerName: "cohere", model: "command-r7b-12-2024", answeredModel: "command-r7b-12-2024",
			status: 200, finish: "tool_calls",
			prompt: iptr(1452), completion: iptr(33), total: iptr(1485), cached: iptr(144), tools: []string{"get_weather"},
			messages: 1, cost: "priced",
		},
		{ // v1 generate, billed units only, no model named
			file: "cohere/TestCallbacksHandler.httprr", api: apiCohereGenerate,
			providerName: "cohere", status: 200, finish: "stop",
			prompt: iptr(1), completion: iptr(46), total: iptr(47),
			messages: 1,
		},
		{
			file: "cohere/TestCohere.test_embed_error.yaml", api: apiCohereEmbed,
			providerName: "cohere", model: "nonexistent", status: 404, failed: true, errType: "http_error",
			embedding: true, inputCount: 1,
		},
	})
}

func FuzzCohere(f *testing.F) {
	for _, p := range []string{"cohere/test_cohere_v2_chat_legacy_with_tool_calls_and_streaming.yaml", "cohere/test_cohere_chat_legacy_with_streaming.yaml", "cohere/TestCallbacksHandler.httprr", "cohere/TestCohere.test_embed_error.yaml"} {
		moreSeedBodies(f, "testdata/"+p, func(req, resp []byte) { f.Add(req, resp, uint8(0)) })
	}
	reg := moreRegistry(f)
	urls := []string{"https://api.cohere.com/v2/chat", "https://api.cohere.com/v1/chat", "https://api.cohere.ai/v1/generate", "https://api.cohere.com/v2/embed"}
	f.Fuzz(func(t *testing.T, req, resp []byte, variant uint8) {
		u := urls[int(variant)%len(urls)]
		ct := []string{"application/json", "text/event-stream", "application/stream+json"}[int(variant>>2)%3]
		moreFuzzDecode(t, reg, "POST", u, ct, req, resp, 200+int(variant>>6)*100)
	})
}
