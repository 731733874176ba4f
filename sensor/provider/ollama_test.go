package provider

import (
	"testing"
)

// Recorded Ollama exchanges (testdata/ollama/README.md lists the sources):
// NDJSON streams (chunk-encoded on the wire in the httprr traces), final
// lines with done_reason and token counts.
func TestOllamaRecorded(t *testing.T) {
	runWants(t, []recWant{
		{
			file: "ollama/TestClient_GenerateChatStream.httprr", api: apiOllamaChat,
			providerName: "ollama", model: "gemma3:1b", answeredModel: "gemma3:1b",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(16), completion: iptr(22), total: iptr(38),
			messages: 1, ttft: true,
		},
		{
			file: "ollama/TestClient_GenerateStream.httprr", api: apiOllamaGenerate,
			providerName: "ollama", model: "gemma3:1b", answeredModel: "gemma3:1b",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(16), completion: iptr(22), total: iptr(38),
			messages: 1, ttft: true,
		},
		{
			file: "ollama/test_ollama_chat_legacy.yaml", api: apiOllamaChat,
			providerName: "ollama", model: "llama3", answeredModel: "llama3",
			status: 200, finish: "stop",
			prompt: iptr(17), completion: iptr(66), total: iptr(83),
			messages: 1,
		},
		{
			file: "ollama/test_ollama_chat_tool_calls_legacy.yaml", api: apiOllamaChat,
			providerName: "ollama", model: "llama3.1", answeredModel: "llama3.1",
			status: 200, finish: "stop",
			prompt: iptr(44), completion: iptr(113), total: iptr(157),
			toolResults: 1, messages: 2, // a role "tool" message answers an earlier call
		},
		{
			file: "ollama/test_ollama_streaming_chat_legacy.yaml", api: apiOllamaChat,
			providerName: "ollama", model: "llama3", answeredModel: "llama3",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(17), completion: iptr(50), total: iptr(67),
			messages: 1, ttft: true,
		},
		{
			file: "ollama/TestClient_CreateEmbedding.httprr", api: apiOllamaEmbed,
			providerName: "ollama", model: "nomic-embed-text", status: 200,
			embedding: true, inputCount: 1, dims: 768, vectors: 1, prompt: iptr(2),
		},
	})
}

func FuzzOllama(f *testing.F) {
	for _, p := range []string{"ollama/TestClient_GenerateChatStream.httprr", "ollama/TestClient_GenerateStream.httprr", "ollama/test_ollama_chat_tool_calls_legacy.yaml"} {
		moreSeedBodies(f, "testdata/"+p, func(req, resp []byte) { f.Add(req, resp, uint8(0)) })
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi","images":["x"]}]}`), []byte("{\"error\":\"boom\"}\n{\"done\":true,\"eval_count\":\"7\"}"), uint8(1))
	reg := moreRegistry(f)
	urls := []string{"http://localhost:11434/api/chat", "http://localhost:11434/api/generate", "http://localhost:11434/api/embed", "http://10.0.0.5:8080/api/chat"}
	f.Fuzz(func(t *testing.T, req, resp []byte, variant uint8) {
		u := urls[int(variant)%len(urls)]
		if variant%4 == 3 && !(bodyHas(req, "model", '"') && bodyHas(req, "messages", '[')) {
			return // an unknown host is Ollama only by body shape
		}
		moreFuzzDecode(t, reg, "POST", u, "application/x-ndjson", req, resp, 200+int(variant>>6)*100)
	})
}
