package provider

import (
	"testing"
)

// Recorded Gemini API exchanges (testdata/gemini/README.md lists the
// sources). Expected values were read from the recorded bodies: usage
// follows the sensor's convention (completion includes thoughts, prompt
// includes tool-use prompt tokens, so prompt + completion = total).
func TestGeminiRecorded(t *testing.T) {
	runWants(t, []recWant{
		{ // SSE with CRLF separators, system instruction, no end marker
			file: "gemini/test_google_model_stream.yaml", api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash-exp", answeredModel: "gemini-2.0-flash-exp",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(13), completion: iptr(8), total: iptr(21),
			messages: 2, systemPrompt: true, ttft: true,
		},
		{ // streamed tool loop, turn 1: a function call
			file: "gemini/test_google_model_iter_stream.yaml", index: 0, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "tool_calls",
			prompt: iptr(52), completion: iptr(5), total: iptr(57), tools: []string{"get_capital"},
			messages: 2, systemPrompt: true, ttft: true,
		},
		{ // turn 2: the function response goes back, another call comes
			file: "gemini/test_google_model_iter_stream.yaml", index: 1, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "tool_calls",
			prompt: iptr(64), completion: iptr(5), total: iptr(69), tools: []string{"get_temperature"},
			toolResults: 1, messages: 4, systemPrompt: true, ttft: true,
		},
		{ // turn 3: the answer
			file: "gemini/test_google_model_iter_stream.yaml", index: 2, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(79), completion: iptr(12), total: iptr(91),
			toolResults: 2, messages: 6, systemPrompt: true, ttft: true,
		},
		{ // streaming without alt=sse: a JSON array, enums as integers
			file: "gemini/TestGoogleAIWithStreaming.httprr", api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(8), completion: iptr(578), total: iptr(586),
			messages: 1, ttft: true,
		},
		{
			file: "gemini/TestGoogleAIToolCallResponse.httprr", index: 0, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			status: 200, finish: "tool_calls",
			prompt: iptr(21), completion: iptr(7), total: iptr(28), tools: []string{"calculate"},
			messages: 1,
		},
		{ // functionResponse round trip, streamed as a JSON array
			file: "gemini/TestGoogleAIToolCallResponse.httprr", index: 1, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(33), completion: iptr(12), total: iptr(45),
			toolResults: 1, messages: 3, ttft: true,
		},
		{ // 404 with a Google error body
			file: "gemini/test_model_name_suggestion[google].yaml", api: apiGeminiGenerate,
			providerName: "google", model: "gemini-3.6-flahs", answeredModel: "gemini-3.6-flahs",
			status: 404, failed: true, errType: "NOT_FOUND", messages: 1,
		},
		{ // cached content: cachedContentTokenCount is part of the prompt
			file: "gemini/test_google_model_cached_content.yaml", index: 1, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.5-flash", answeredModel: "gemini-2.5-flash",
			status: 200, finish: "stop",
			prompt: iptr(3520), completion: iptr(44), total: iptr(3564), cached: iptr(3512), reasoning: iptr(42),
			messages: 1,
		},
		{
			file: "gemini/TestGoogle.test_instrumentation.yaml", api: apiGeminiEmbed,
			providerName: "google", model: "gemini-embedding-2-preview",
			status: 200, embedding: true, inputCount: 1, dims: 768, vectors: 1,
		},
	})
}

func FuzzGemini(f *testing.F) {
	for _, p := range []string{"gemini/test_google_model_iter_stream.yaml", "gemini/TestGoogleAIWithStreaming.httprr", "gemini/test_google_model_cached_content.yaml", "gemini/test_model_name_suggestion[google].yaml"} {
		moreSeedBodies(f, "testdata/"+p, func(req, resp []byte) { f.Add(req, resp, uint8(0)) })
	}
	f.Add([]byte(`{"contents":{"parts":[{"function_response":{"name":"x","response":{"error":1}}}]},"tools":[{"codeExecution":{}}]}`), []byte(`[{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f"}}]},"finishReason":10}]}]`), uint8(1))
	reg := moreRegistry(f)
	urls := []string{
		"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
		"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
		"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent",
		"https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:countTokens",
		"https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:batchEmbedContents",
		"https://generativelanguage.googleapis.com/v1beta/interactions",
		"https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict",
		"https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/text-embedding-005:predict",
	}
	f.Fuzz(func(t *testing.T, req, resp []byte, variant uint8) {
		u := urls[int(variant)%len(urls)]
		ct := "application/json"
		if variant&0x10 != 0 {
			ct = "text/event-stream"
		}
		moreFuzzDecode(t, reg, "POST", u, ct, req, resp, 200+int(variant>>6)*100)
	})
}
