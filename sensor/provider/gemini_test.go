package provider

import (
	"testing"
)

// Recorded Gemini API exchanges (testdata/gemini/README.md lists the
// sources). Expected values were read from the recorded bodies: usage
// follows the sensor's convention (completion includes thoughts, prompt
// includes tool-use prompt tokens, so prompt + completion = total).
func TestGeminiRecorded(t *testing.T) {
	runWants(t, []want{
		{ // SSE with CRLF separators, system instruction, no end marker
			file: "gemini/test_google_model_stream.yaml", api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash-exp", answeredModel: "gemini-2.0-flash-exp",
			streaming: true, status: 200, finish: "stop",
			prompt: n(13), completion: n(8), total: n(21),
			messages: 2, systemPrompt: true, ttft: true,
		},
		{ // streamed tool loop, turn 1: a function call
			file: "gemini/test_google_model_iter_stream.yaml", index: 0, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "tool_calls",
			prompt: n(52), completion: n(5), total: n(57), tools: []string{"get_capital"},
			messages: 2, systemPrompt: true, ttft: true,
		},
		{ // turn 2: the function response goes back, another call comes
			file: "gemini/test_google_model_iter_stream.yaml", index: 1, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "tool_calls",
			prompt: n(64), completion: n(5), total: n(69), tools: []string{"get_temperature"},
			toolResults: 1, messages: 4, systemPrompt: true, ttft: true,
		},
		{ // turn 3: the answer
			file: "gemini/test_google_model_iter_stream.yaml", index: 2, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "stop",
			prompt: n(79), completion: n(12), total: n(91),
			toolResults: 2, messages: 6, systemPrompt: true, ttft: true,
		},
		{ // streaming without alt=sse: a JSON array, enums as integers
			file: "gemini/TestGoogleAIWithStreaming.httprr", api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "stop",
			prompt: n(8), completion: n(578), total: n(586),
			messages: 1, ttft: true,
		},
		{
			file: "gemini/TestGoogleAIToolCallResponse.httprr", index: 0, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			status: 200, finish: "tool_calls",
			prompt: n(21), completion: n(7), total: n(28), tools: []string{"calculate"},
			messages: 1,
		},
		{ // functionResponse round trip, streamed as a JSON array
			file: "gemini/TestGoogleAIToolCallResponse.httprr", index: 1, api: apiGeminiGenerate,
			providerName: "google", model: "gemini-2.0-flash", answeredModel: "gemini-2.0-flash",
			streaming: true, status: 200, finish: "stop",
			prompt: n(33), completion: n(12), total: n(45),
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
			prompt: n(3520), completion: n(44), total: n(3564), cached: n(3512), reasoning: n(42),
			messages: 1,
		},
		{
			file: "gemini/TestGoogle.test_instrumentation.yaml", api: apiGeminiEmbed,
			providerName: "google", model: "gemini-embedding-2-preview",
			status: 200, embedding: true, inputCount: 1, dims: 768, vectors: 1,
		},
	})
}
