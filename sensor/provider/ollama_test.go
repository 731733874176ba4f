package provider

import (
	"slices"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
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
			messages: 1, cost: "unknown", // a local model has no price
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

// An Ollama server on a host the registry does not know is recognised by
// its path and body shape, keeps its real host, and says so in a note.
func TestOllamaUnknownHost(t *testing.T) {
	reg := moreRegistry(t)
	rec := moreRecording(t, "testdata/ollama/TestClient_GenerateChatStream.httprr")
	in := rec.Interactions[0]
	in.Request.URL = "http://gpu-box.lan:8080/api/chat"
	res, tg := moreDecode(t, reg, moreExchange(t, in))
	if tg.Known || res == nil || res.API() != apiOllamaChat {
		t.Fatalf("target %+v result %v", tg, res)
	}
	p := res.Request.Provider
	if p.Name != "ollama" || p.Host != "gpu-box.lan" || !slices.Contains(res.Notes, noteUnknownHostOllama) || res.Partial {
		t.Errorf("provider %+v notes %v partial %v", p, res.Notes, res.Partial)
	}
	if *res.Response.Usage.PromptTokens != 16 || *res.Response.Usage.CompletionTokens != 22 {
		t.Errorf("usage %+v", res.Response.Usage)
	}
	// A body without Ollama's shape on an unknown host is not Ollama.
	in.Request.Body = []byte(`{"query":"hello"}`)
	if res, _ := moreDecode(t, reg, moreExchange(t, in)); res != nil && res.API() == apiOllamaChat {
		t.Errorf("decoded a non-Ollama body as Ollama")
	}
}

// "stream" absent means streaming for chat and generate; false means not.
func TestOllamaStreamDefault(t *testing.T) {
	for body, want := range map[string]bool{
		`{"model":"m","messages":[]}`:                true,
		`{"model":"m","messages":[],"stream":false}`: false,
		`{"model":"m","messages":[],"stream":true}`:  true,
	} {
		res := newResult(apiOllamaChat, Target{ProviderID: "ollama", Known: true}, &httpmsg.Exchange{}, "chat")
		decodeOllamaRequest(apiOllamaChat, []byte(body), res)
		if *res.Request.Streaming != want {
			t.Errorf("%s: streaming %v", body, *res.Request.Streaming)
		}
	}
	res := newResult(apiOllamaEmbed, Target{ProviderID: "ollama", Known: true}, &httpmsg.Exchange{}, "embedding")
	decodeOllamaRequest(apiOllamaEmbed, []byte(`{"model":"m","input":["a","b"]}`), res)
	if *res.Request.Streaming || res.Request.InputCount != 2 {
		t.Errorf("embed: streaming %v inputs %d", *res.Request.Streaming, res.Request.InputCount)
	}
}
