package provider

import (
	"testing"
)

// Recorded Ollama exchanges (testdata/ollama/README.md lists the sources):
// NDJSON streams (chunk-encoded on the wire in the httprr traces), final
// lines with done_reason and token counts.
func TestOllamaRecorded(t *testing.T) {
	runWants(t, []want{
		{
			file: "ollama/TestClient_GenerateChatStream.httprr", api: apiOllamaChat,
			providerName: "ollama", model: "gemma3:1b", answeredModel: "gemma3:1b",
			streaming: true, status: 200, finish: "stop",
			prompt: n(16), completion: n(22), total: n(38),
			messages: 1, ttft: true,
		},
		{
			file: "ollama/TestClient_GenerateStream.httprr", api: apiOllamaGenerate,
			providerName: "ollama", model: "gemma3:1b", answeredModel: "gemma3:1b",
			streaming: true, status: 200, finish: "stop",
			prompt: n(16), completion: n(22), total: n(38),
			messages: 1, ttft: true,
		},
		{
			file: "ollama/test_ollama_chat_legacy.yaml", api: apiOllamaChat,
			providerName: "ollama", model: "llama3", answeredModel: "llama3",
			status: 200, finish: "stop",
			prompt: n(17), completion: n(66), total: n(83),
			messages: 1,
		},
		{
			file: "ollama/test_ollama_chat_tool_calls_legacy.yaml", api: apiOllamaChat,
			providerName: "ollama", model: "llama3.1", answeredModel: "llama3.1",
			status: 200, finish: "stop",
			prompt: n(44), completion: n(113), total: n(157),
			toolResults: 1, messages: 2, // a role "tool" message answers an earlier call
		},
		{
			file: "ollama/test_ollama_streaming_chat_legacy.yaml", api: apiOllamaChat,
			providerName: "ollama", model: "llama3", answeredModel: "llama3",
			streaming: true, status: 200, finish: "stop",
			prompt: n(17), completion: n(50), total: n(67),
			messages: 1, ttft: true,
		},
		{
			file: "ollama/TestClient_CreateEmbedding.httprr", api: apiOllamaEmbed,
			providerName: "ollama", model: "nomic-embed-text", status: 200,
			embedding: true, inputCount: 1, dims: 768, vectors: 1, prompt: n(2),
		},
	})
}
