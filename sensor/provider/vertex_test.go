package provider

import (
	"testing"
)

// Recorded Vertex AI exchanges (testdata/vertex/README.md lists the
// sources).
func TestVertexRecorded(t *testing.T) {
	runWants(t, []recWant{
		{ // built-in googleSearch beside function declarations; thinking tokens
			file: "vertex/test_google_vertex_tool_combination_omits_include_server_side_tool_invocations.yaml", index: 0,
			api: apiVertexGenerate, providerName: "google", providerID: "google_vertex",
			model: "gemini-3-flash-preview", answeredModel: "gemini-3-flash-preview",
			status: 200, finish: "tool_calls",
			prompt: iptr(43), completion: iptr(71), total: iptr(114), reasoning: iptr(59), tools: []string{"get_user_city"},
			messages: 2, systemPrompt: true,
		},
		{
			file: "vertex/test_google_vertex_tool_combination_omits_include_server_side_tool_invocations.yaml", index: 1,
			api: apiVertexGenerate, providerName: "google", providerID: "google_vertex",
			model: "gemini-3-flash-preview", answeredModel: "gemini-3-flash-preview",
			status: 200, finish: "stop",
			prompt: iptr(125), completion: iptr(706), total: iptr(831), reasoning: iptr(456),
			toolResults: 1, messages: 4, systemPrompt: true,
		},
		{ // countTokens: request_type other, no usage (counting consumes none)
			file: "vertex/test_google_vertexai_count_tokens_forwards_native_tools.yaml", index: 0,
			api: apiVertexCountTokens, providerName: "google", providerID: "google_vertex",
			model: "gemini-2.5-flash", answeredModel: "gemini-2.5-flash",
			status: 200, messages: 2, systemPrompt: true,
		},
		{
			file: "vertex/test_google_vertex_service_tier_flex_stream.yaml",
			api:  apiVertexGenerate, providerName: "google", providerID: "google_vertex",
			model: "gemini-3-flash-preview", answeredModel: "gemini-3-flash-preview",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(5), completion: iptr(101), total: iptr(106), reasoning: iptr(100),
			messages: 1, ttft: true,
		},
	})
}
