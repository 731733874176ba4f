package provider

import (
	"testing"
)

// Recorded Cohere exchanges (testdata/cohere/README.md lists the sources).
// Raw token counts win over billed units.
func TestCohereRecorded(t *testing.T) {
	runWants(t, []want{
		{ // v1 chat streamed as NDJSON; stream-end carries the response
			file: "cohere/test_cohere_chat_legacy_with_streaming.yaml", api: apiCohereChatV1,
			providerName: "cohere", model: "command", answeredModel: "command",
			streaming: true, status: 200, finish: "stop",
			prompt: n(69), completion: n(116), total: n(185),
			messages: 1, ttft: true,
		},
		{ // v2 named SSE events with tool-call-start/delta/end and tool-plan
			file: "cohere/test_cohere_v2_chat_legacy_with_tool_calls_and_streaming.yaml", api: apiCohereChatV2,
			providerName: "cohere", model: "command-r", answeredModel: "command-r",
			streaming: true, status: 200, finish: "tool_calls",
			prompt: n(968), completion: n(83), total: n(1051), tools: []string{"get_time", "get_weather"},
			messages: 1, ttft: true,
		},
		{ // v2 whole response, cached tokens
			file: "cohere/test_tool_choice_matrix[required-cohere].yaml", api: apiCohereChatV2,
			providerName: "cohere", model: "command-r7b-12-2024", answeredModel: "command-r7b-12-2024",
			status: 200, finish: "tool_calls",
			prompt: n(1452), completion: n(33), total: n(1485), cached: n(144), tools: []string{"get_weather"},
			messages: 1,
		},
		{ // v1 generate, billed units only, no model named
			file: "cohere/TestCallbacksHandler.httprr", api: apiCohereGenerate,
			providerName: "cohere", status: 200, finish: "stop",
			prompt: n(1), completion: n(46), total: n(47),
			messages: 1,
		},
		{
			file: "cohere/TestCohere.test_embed_error.yaml", api: apiCohereEmbed,
			providerName: "cohere", model: "nonexistent", status: 404, failed: true, errType: "http_error",
			embedding: true, inputCount: 1,
		},
	})
}
