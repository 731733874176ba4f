package provider

// Rules every API decoder must keep, checked over one minimal exchange per
// API (everyAPICases). The decoders were written one per API family, so a
// rule kept by most of them is easy to miss in one; these tables make the
// miss a test failure. The WebSocket APIs (openai.realtime,
// openai.responses_websocket) are not in the table: they decode a
// sequence of WebSocket messages, not a request body and a response body,
// and have their own tests in realtime_test.go.

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// everyAPICase is one API's minimal exchange: its URL and a request body
// naming model (when the API takes the model in the body or the URL), the
// streaming form of the same call, and an error body in the provider's
// own format with the type and message the decoder must report from it.
type everyAPICase struct {
	api, url, body, model string
	// resultAPI is the Result's API when it is not api: the Vertex
	// rawPredict decoder names Claude's answers vertex.anthropic_messages.
	resultAPI string
	// streamURL and streamBody ask for a streamed answer ("" when the API
	// has no streaming form); streamResp is a minimal streamed answer with
	// streamType its Content-Type.
	streamURL, streamBody, streamResp, streamType string
	// streamCut is a streamed answer that stops before the format's end
	// marker; "" for formats without one (Gemini's SSE stream ends with a
	// chunk finishing every candidate, which a blocked prompt or a
	// usage-only last chunk never sends) and for Bedrock's binary
	// eventstream.
	streamCut string
	// fail is a 429 answer in the provider's own error format.
	fail providerError
	// noJSONAnswer is true when a 200 body need not be JSON (audio
	// speech returns audio bytes), so a non-JSON body is no problem.
	noJSONAnswer bool
}

// streamEndpoint is the URL of c's streamed call.
func (c everyAPICase) streamEndpoint() string {
	if c.streamURL != "" {
		return c.streamURL
	}
	return c.url
}

// name is the case's test name: its Result's API.
func (c everyAPICase) name() string {
	if c.resultAPI != "" {
		return c.resultAPI
	}
	return c.api
}

// providerError is an error body in a provider's format, with the type
// and message the decoder must report from it. header carries the error
// type when the provider sends it there (Bedrock).
type providerError struct {
	body, typ, message string
	header             [2]string
}

// The providers' error formats.
var (
	openaiErr    = providerError{body: `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`, typ: "rate_limit_error", message: "slow down"}
	anthropicErr = providerError{body: `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, typ: "rate_limit_error", message: "slow down"}
	googleErr    = providerError{body: `{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`, typ: "RESOURCE_EXHAUSTED", message: "slow down"}
	bedrockErr   = providerError{body: `{"message":"slow down"}`, typ: "ThrottlingException", message: "slow down",
		header: [2]string{"X-Amzn-Errortype", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}}
	// Cohere and Ollama send a message and no type.
	cohereErr = providerError{body: `{"id":"e1","message":"slow down"}`, message: "slow down"}
	ollamaErr = providerError{body: `{"error":"slow down"}`, message: "slow down"}
	// Hugging Face inference answers {"error": …} (with estimated_time
	// while a model loads).
	huggingFaceErr = providerError{body: `{"error":"slow down","estimated_time":20.0}`, message: "slow down"}
	// Voyage answers FastAPI's {"detail": …}.
	voyageErr = providerError{body: `{"detail":"slow down"}`, message: "slow down"}
)

const sseType = "text/event-stream"

func everyAPICases() []everyAPICase {
	chat := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	chatStream := `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`
	openaiSSE := "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"yo\"}}]}\n\ndata: [DONE]\n\n"
	openaiCut := "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"yo\"}}]}\n\n"
	gemini := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	geminiSSE := "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"yo\"}]},\"finishReason\":\"STOP\"}]}\r\n\r\n"
	vertex := "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro"
	anthropicCut := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"role\":\"assistant\",\"content\":[]}}\n\n"
	anthropicSSE := anthropicCut + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	anthropicMsg := `{"model":"c","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`
	anthropicMsgStream := `{"model":"c","max_tokens":1,"messages":[{"role":"user","content":"hi"}],"stream":true}`
	vertexClaude := "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514"
	vertexClaudeBody := `{"anthropic_version":"vertex-2023-10-16","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`
	vertexMistral := "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/mistralai/models/mistral-large-2411"
	bedrock := "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
	// Writer sends no [DONE]: its stream ends with the usage chunk after
	// every choice finished.
	// TGI (Hugging Face inference) streams end with the event carrying
	// the whole generated_text.
	tgiCut := "data:{\"index\":1,\"token\":{\"id\":1,\"text\":\"yo\",\"logprob\":-0.1,\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
	writerCut := "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"yo\"},\"message\":{\"content\":\"yo\"},\"finish_reason\":\"stop\"}]}\n\n"
	ollamaNDJSON := "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"yo\"},\"done\":false}\n{\"model\":\"m\",\"done\":true}\n"
	return []everyAPICase{
		{api: apiOpenAIChat, url: "https://api.openai.com/v1/chat/completions", body: chat, model: "m", fail: openaiErr, streamCut: openaiCut,
			streamBody: chatStream, streamResp: openaiSSE, streamType: sseType},
		{api: apiOpenAIResponses, url: "https://api.openai.com/v1/responses", body: `{"model":"gpt-4o","input":"hi"}`, model: "gpt-4o", fail: openaiErr, streamCut: "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"model\":\"gpt-4o\",\"status\":\"in_progress\",\"output\":[]}}\n\n",
			streamBody: `{"model":"gpt-4o","input":"hi","stream":true}`,
			streamResp: "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"model\":\"gpt-4o\",\"status\":\"completed\",\"output\":[]}}\n\n", streamType: sseType},
		{api: apiOpenAIResponsesCompact, url: "https://api.openai.com/v1/responses/compact", body: `{"model":"gpt-4o","input":"hi"}`, model: "gpt-4o", fail: openaiErr},
		{api: apiOpenAIInputTokens, url: "https://api.openai.com/v1/responses/input_tokens", body: `{"model":"gpt-4o","input":"hi"}`, model: "gpt-4o", fail: openaiErr},
		{api: apiOpenAIEmbeddings, url: "https://api.openai.com/v1/embeddings", body: `{"model":"e","input":"hi"}`, model: "e", fail: openaiErr},
		{api: apiOpenAICompletions, url: "https://api.openai.com/v1/completions", body: `{"model":"davinci-002","prompt":"hi"}`, model: "davinci-002", fail: openaiErr, streamCut: "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"yo\"}]}\n\n",
			streamBody: `{"model":"davinci-002","prompt":"hi","stream":true}`,
			streamResp: "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"text\":\"yo\"}]}\n\ndata: [DONE]\n\n", streamType: sseType},
		{api: apiOpenAIImages, url: "https://api.openai.com/v1/images/generations", body: `{"model":"dall-e-3","prompt":"hi"}`, model: "dall-e-3", fail: openaiErr},
		{api: apiOpenAIAudio, url: "https://api.openai.com/v1/audio/speech", body: `{"model":"tts-1","input":"hi","voice":"alloy"}`, model: "tts-1", fail: openaiErr, noJSONAnswer: true},
		{api: apiOpenAIModerations, url: "https://api.openai.com/v1/moderations", body: `{"model":"omni-moderation-latest","input":"hi"}`, model: "omni-moderation-latest", fail: openaiErr},
		{api: apiAnthropicMessages, url: "https://api.anthropic.com/v1/messages", body: anthropicMsg, model: "c", fail: anthropicErr, streamCut: anthropicCut,
			streamBody: anthropicMsgStream, streamResp: anthropicSSE, streamType: sseType},
		{api: apiAnthropicComplete, url: "https://api.anthropic.com/v1/complete", body: `{"model":"c","prompt":"hi"}`, model: "c", fail: anthropicErr, streamCut: "event: completion\ndata: {\"type\":\"completion\",\"completion\":\"yo\",\"stop_reason\":null,\"model\":\"c\"}\n\n",
			streamBody: `{"model":"c","prompt":"hi","stream":true}`,
			streamResp: "event: completion\ndata: {\"type\":\"completion\",\"completion\":\"yo\",\"stop_reason\":\"stop_sequence\",\"model\":\"c\"}\n\n", streamType: sseType},
		{api: apiAnthropicCountTokens, url: "https://api.anthropic.com/v1/messages/count_tokens", body: `{"model":"c","messages":[{"role":"user","content":"hi"}]}`, model: "c", fail: anthropicErr},
		{api: apiGeminiGenerate, url: "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent", body: gemini, model: "gemini-2.0-flash", fail: googleErr,
			streamURL: "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", streamBody: gemini, streamResp: geminiSSE, streamType: sseType},
		{api: apiGeminiCountTokens, url: "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:countTokens", body: gemini, model: "gemini-2.0-flash", fail: googleErr},
		{api: apiGeminiEmbed, url: "https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:embedContent", body: `{"content":{"parts":[{"text":"hi"}]}}`, model: "text-embedding-004", fail: googleErr},
		{api: apiGeminiInteractions, url: "https://generativelanguage.googleapis.com/v1beta/interactions", body: `{"model":"gemini-2.5-flash","input":"hi"}`, model: "gemini-2.5-flash", fail: googleErr, streamCut: "event: interaction.created\ndata: {\"event_type\":\"interaction.created\",\"interaction\":{\"id\":\"i\",\"status\":\"in_progress\"}}\n\n",
			streamBody: `{"model":"gemini-2.5-flash","input":"hi","stream":true}`,
			streamResp: "event: interaction.completed\ndata: {\"event_type\":\"interaction.completed\",\"interaction\":{\"id\":\"i\",\"status\":\"completed\"}}\n\n", streamType: sseType},
		{api: apiVertexGenerate, url: vertex + ":generateContent", body: gemini, model: "gemini-2.5-pro", fail: googleErr,
			streamURL: vertex + ":streamGenerateContent?alt=sse", streamBody: gemini, streamResp: geminiSSE, streamType: sseType},
		{api: apiVertexCountTokens, url: vertex + ":countTokens", body: gemini, model: "gemini-2.5-pro", fail: googleErr},
		{api: apiVertexEmbed, url: "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/text-embedding-005:predict", body: `{"instances":[{"content":"hi"}]}`, model: "text-embedding-005", fail: googleErr},
		{api: apiVertexRawPredict, resultAPI: apiVertexAnthropic, url: vertexClaude + ":rawPredict", body: vertexClaudeBody, model: "claude-sonnet-4@20250514", fail: anthropicErr, streamCut: anthropicCut,
			streamURL: vertexClaude + ":streamRawPredict", streamBody: vertexClaudeBody, streamResp: anthropicSSE, streamType: sseType},
		{api: apiVertexRawPredict, url: vertexMistral + ":rawPredict", body: chat, model: "m", fail: openaiErr, streamCut: openaiCut,
			streamURL: vertexMistral + ":streamRawPredict", streamBody: chatStream, streamResp: openaiSSE, streamType: sseType},
		{api: apiVertexOpenAIChat, url: "https://us-central1-aiplatform.googleapis.com/v1beta1/projects/p/locations/us-central1/endpoints/openapi/chat/completions", fail: openaiErr, streamCut: openaiCut,
			body: `{"model":"google/gemini-2.0-flash","messages":[{"role":"user","content":"hi"}]}`, model: "google/gemini-2.0-flash",
			streamBody: `{"model":"google/gemini-2.0-flash","messages":[{"role":"user","content":"hi"}],"stream":true}`, streamResp: openaiSSE, streamType: sseType},
		{api: apiBedrockConverse, url: bedrock + "amazon.nova-micro-v1%3A0/converse", body: `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`, model: "amazon.nova-micro-v1:0", fail: bedrockErr,
			streamURL: bedrock + "amazon.nova-micro-v1%3A0/converse-stream", streamBody: `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`,
			streamType: "application/vnd.amazon.eventstream"},
		{api: apiBedrockInvoke, url: bedrock + "amazon.titan-text-express-v1/invoke", body: `{"inputText":"hi"}`, model: "amazon.titan-text-express-v1", fail: bedrockErr,
			streamURL: bedrock + "amazon.titan-text-express-v1/invoke-with-response-stream", streamBody: `{"inputText":"hi"}`,
			streamType: "application/vnd.amazon.eventstream"},
		{api: apiBedrockCountTokens, url: bedrock + "anthropic.claude-sonnet-4-20250514-v1%3A0/count-tokens", body: `{"input":{"converse":{"messages":[{"role":"user","content":[{"text":"hi"}]}]}}}`, model: "anthropic.claude-sonnet-4-20250514-v1:0", fail: bedrockErr},
		{api: apiCohereChatV2, url: "https://api.cohere.com/v2/chat", body: `{"model":"command-r","messages":[{"role":"user","content":"hi"}]}`, model: "command-r", fail: cohereErr, streamCut: "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"yo\"}}}}\n\n",
			streamBody: `{"model":"command-r","messages":[{"role":"user","content":"hi"}],"stream":true}`,
			streamResp: "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\"}}\n\n", streamType: sseType},
		{api: apiCohereChatV1, url: "https://api.cohere.com/v1/chat", body: `{"model":"command-r","message":"hi"}`, model: "command-r", fail: providerError{body: `{"message":"slow down"}`, message: "slow down"}, streamCut: "{\"is_finished\":false,\"event_type\":\"text-generation\",\"text\":\"yo\"}\n",
			streamBody: `{"model":"command-r","message":"hi","stream":true}`,
			streamResp: "{\"is_finished\":true,\"event_type\":\"stream-end\",\"finish_reason\":\"COMPLETE\"}\n", streamType: "application/stream+json"},
		{api: apiCohereGenerate, url: "https://api.cohere.com/v1/generate", body: `{"model":"command","prompt":"hi"}`, model: "command", fail: providerError{body: `{"message":"slow down"}`, message: "slow down"}, streamCut: "{\"is_finished\":false,\"text\":\"yo\"}\n",
			streamBody: `{"model":"command","prompt":"hi","stream":true}`,
			streamResp: "{\"is_finished\":true,\"finish_reason\":\"COMPLETE\"}\n", streamType: "application/stream+json"},
		{api: apiCohereEmbed, url: "https://api.cohere.com/v2/embed", body: `{"model":"embed-v4.0","texts":["hi"],"input_type":"search_query"}`, model: "embed-v4.0", fail: cohereErr},
		{api: apiWriterChat, url: "https://api.writer.com/v1/chat", body: chat, model: "m", fail: openaiErr, streamCut: writerCut,
			streamBody: chatStream, streamResp: writerCut + "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n", streamType: sseType},
		{api: apiWriterCompletions, url: "https://api.writer.com/v1/completions", body: `{"model":"palmyra-x4","prompt":"hi"}`, model: "palmyra-x4", fail: openaiErr,
			streamBody: `{"model":"palmyra-x4","prompt":"hi","stream":true}`, streamResp: "data: {\"value\":\"y\"}\n\ndata: {\"value\":\"o\"}\n\n", streamType: sseType},
		{api: apiCohereRerank, url: "https://api.cohere.com/v2/rerank", body: `{"model":"rerank-v3.5","query":"hi","documents":["a","b"]}`, model: "rerank-v3.5", fail: cohereErr},
		{api: apiVoyageRerank, url: "https://api.voyageai.com/v1/rerank", body: `{"model":"rerank-2","query":"hi","documents":["a"]}`, model: "rerank-2", fail: voyageErr},
		{api: apiHuggingFaceInference, url: "https://api-inference.huggingface.co/models/HuggingFaceH4/zephyr-7b-beta", body: `{"inputs":"hi","parameters":{"max_new_tokens":5}}`,
			model: "HuggingFaceH4/zephyr-7b-beta", fail: huggingFaceErr, streamCut: tgiCut, streamBody: `{"inputs":"hi","stream":true}`, streamType: sseType,
			streamResp: tgiCut + "data:{\"index\":2,\"token\":{\"id\":2,\"text\":\"!\",\"special\":false},\"generated_text\":\"yo!\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2}}\n\n"},
		{api: apiOllamaChat, url: "http://localhost:11434/api/chat", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}`, model: "m", fail: ollamaErr, streamCut: "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"yo\"},\"done\":false}\n",
			streamBody: chatStream, streamResp: ollamaNDJSON, streamType: "application/x-ndjson"},
		{api: apiOllamaGenerate, url: "http://localhost:11434/api/generate", body: `{"model":"llama3","prompt":"hi","stream":false}`, model: "llama3", fail: ollamaErr, streamCut: "{\"model\":\"llama3\",\"response\":\"yo\",\"done\":false}\n",
			streamBody: `{"model":"llama3","prompt":"hi"}`, streamResp: "{\"model\":\"llama3\",\"response\":\"yo\",\"done\":false}\n{\"model\":\"llama3\",\"done\":true}\n", streamType: "application/x-ndjson"},
		{api: apiOllamaEmbed, url: "http://localhost:11434/api/embed", body: `{"model":"nomic-embed-text","input":"hi"}`, model: "nomic-embed-text", fail: ollamaErr},
	}
}

// apiNamed returns the built-in API called name.
func apiNamed(t testing.TB, name string) API {
	t.Helper()
	for _, a := range BuiltinAPIs() {
		if a.Name() == name {
			return a
		}
	}
	t.Fatalf("no built-in API %q", name)
	return nil
}

// decodeCase builds c's exchange (status, response body), lets edit change
// it, checks that c's API matches it and decodes it with c's API.
func decodeCase(t *testing.T, reg *Registry, c everyAPICase, url, reqBody string, status int, respBody string, edit func(*httpmsg.Exchange)) *Result {
	t.Helper()
	x := coreExchange(url, reqBody, status, respBody)
	if edit != nil {
		edit(x)
	}
	name, tg := coreMatch(reg, x)
	if name != c.api {
		t.Fatalf("%s matched %q, want %q", url, name, c.api)
	}
	res, err := apiNamed(t, c.api).Decode(tg, x, Env{Registry: reg})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if res.Request == nil {
		t.Fatal("no request")
	}
	return res
}

// forEveryAPI runs check as a subtest for every case of everyAPICases.
func forEveryAPI(t *testing.T, check func(t *testing.T, reg *Registry, c everyAPICase)) {
	reg := coreRegistry(t)
	for _, c := range everyAPICases() {
		t.Run(c.name(), func(t *testing.T) { check(t, reg, c) })
	}
}

// decodeStream decodes c's streamed call answered 200 with respBody (of
// c's stream Content-Type).
func decodeStream(t *testing.T, reg *Registry, c everyAPICase, respBody string) *Result {
	t.Helper()
	return decodeCase(t, reg, c, c.streamEndpoint(), c.streamBody, 200, respBody, func(x *httpmsg.Exchange) {
		x.Response.Header.Set("Content-Type", c.streamType)
	})
}

// outcome is the answer's HTTP outcome, from the ai.response or, for
// embedding APIs, the ai.embedding.
type outcome struct {
	status    int
	success   *bool
	err       *oisp.Error
	streaming *bool
	content   string
	model     *oisp.Model
	provider  *oisp.Provider
}

func outcomeOf(t *testing.T, res *Result) outcome {
	t.Helper()
	switch {
	case res.Response != nil:
		r := res.Response
		o := outcome{status: r.StatusCode, success: r.Success, err: r.Error, streaming: r.Streaming, model: r.Model, provider: r.Provider}
		for _, ch := range r.Choices {
			if ch.Message != nil {
				o.content += ch.Message.Content
			}
		}
		return o
	case res.Embedding != nil:
		e := res.Embedding
		return outcome{status: e.StatusCode, success: e.Success, err: e.Error, model: e.Model, provider: e.Provider}
	}
	t.Fatal("no ai.response or ai.embedding for an exchange with a response")
	return outcome{}
}

func TestInvariantNoResponse(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		res := decodeCase(t, reg, c, c.url, c.body, 200, "", func(x *httpmsg.Exchange) { x.Response = nil })
		if !slices.Contains(res.Notes, noteNoResponse) || !res.Partial {
			t.Errorf("notes %v partial %v: want %s and partial", res.Notes, res.Partial, noteNoResponse)
		}
		if res.Response != nil || res.Embedding != nil {
			t.Errorf("an answer invented: response %s embedding %s", jsonOf(t, res.Response), jsonOf(t, res.Embedding))
		}
	})
}

func TestInvariantFailedStatus(t *testing.T) {
	reg := coreRegistry(t)
	for _, c := range everyAPICases() {
		for _, tc := range []struct {
			name   string
			status int
			body   string
		}{
			{"provider error", 429, c.fail.body},
			{"empty body", 503, ""},
			{"html body", 502, "<html><body>502 Bad Gateway</body></html>"},
			{"json not an error", 500, `{"ok":false}`},
			{"text body", 503, "upstream connect error or disconnect/reset before headers"},
			// 511 bytes of ASCII, then a 3-byte rune across the cut.
			{"long text body", 502, strings.Repeat("x", 511) + "€" + strings.Repeat("y", 100)},
		} {
			t.Run(c.name()+"/"+tc.name, func(t *testing.T) {
				res := decodeCase(t, reg, c, c.url, c.body, tc.status, tc.body, func(x *httpmsg.Exchange) {
					if h := c.fail.header; tc.status == 429 && h[0] != "" {
						x.Response.Header.Set(h[0], h[1])
					}
				})
				o := outcomeOf(t, res)
				if o.status != tc.status || o.success == nil || *o.success || o.err == nil {
					t.Fatalf("status %d success %s error %s: want %d, false and an error", o.status, jsonOf(t, o.success), jsonOf(t, o.err), tc.status)
				}
				if o.err.Type == "" {
					t.Errorf("error %s has no type", jsonOf(t, o.err))
				}
				if tc.status == 429 {
					if c.fail.typ != "" && o.err.Type != c.fail.typ {
						t.Errorf("error type %q, want the provider's %q", o.err.Type, c.fail.typ)
					}
					if o.err.Message != c.fail.message {
						t.Errorf("error message %q, want the provider's %q", o.err.Message, c.fail.message)
					}
				}
				if tc.status != 429 {
					// No provider error to read: every API reports the
					// same generic one.
					want := strings.TrimSpace(tc.body)
					switch {
					case want == "":
						want = http.StatusText(tc.status)
					case len(want) > 512:
						want = strings.Repeat("x", 511)
					}
					if o.err.Type != "http_error" || o.err.Code != strconv.Itoa(tc.status) || o.err.Message != want {
						t.Errorf("error %s, want type http_error, code %d, message %q", jsonOf(t, o.err), tc.status, want)
					}
				}
				if o.content != "" {
					t.Errorf("content %q invented for a failed call", o.content)
				}
				// Providers fail in JSON: a page in its place (a proxy's)
				// is noted, as for a 200. Ollama reads it as NDJSON.
				if tc.status == 502 && !slices.Contains(res.Notes, noteResponseNotJSON) && !slices.Contains(res.Notes, noteStreamBadEvent) {
					t.Errorf("notes %v lack %s", res.Notes, noteResponseNotJSON)
				}
			})
		}
	}
}

func TestInvariantAnswerNotJSON(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		if c.noJSONAnswer {
			t.Skip("the API may answer other than JSON")
		}
		// A proxy's page answers the call, streamed or not.
		calls := [][2]string{{c.url, c.body}}
		if c.streamBody != "" {
			calls = append(calls, [2]string{c.streamEndpoint(), c.streamBody})
		}
		for _, call := range calls {
			res := decodeCase(t, reg, c, call[0], call[1], 200, "<html><body>Access denied by proxy</body></html>", func(x *httpmsg.Exchange) {
				x.Response.Header.Set("Content-Type", "text/html")
			})
			// Ollama answers NDJSON by default: its not-JSON line is a
			// bad stream event.
			if !slices.Contains(res.Notes, noteResponseNotJSON) && !slices.Contains(res.Notes, noteStreamBadEvent) {
				t.Errorf("%s: notes %v lack %s", call[1], res.Notes, noteResponseNotJSON)
			}
			if !res.Partial {
				t.Errorf("%s: not partial", call[1])
			}
			if o := outcomeOf(t, res); o.content != "" {
				t.Errorf("%s: content %q invented", call[1], o.content)
			}
		}
	})
}

func TestInvariantRequestNotJSON(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		// The API matches on the good body (unknown hosts need its
		// shape); the decoder then sees a form-encoded one.
		res := decodeCase(t, reg, c, c.url, c.body, 200, `{}`, func(x *httpmsg.Exchange) {
			x.Request.Body.Data = []byte("model=m&prompt=hi")
		})
		if !slices.Contains(res.Notes, noteRequestNotJSON) || !res.Partial {
			t.Errorf("notes %v partial %v: want %s and partial", res.Notes, res.Partial, noteRequestNotJSON)
		}
		if p := res.Request.Provider; p == nil || p.Name == "" {
			t.Errorf("request provider %s", jsonOf(t, p))
		}
	})
}

// TestInvariantRequestBodyProblems: a request body cut at the cap or
// whose Content-Encoding could not be undone is noted whatever the API,
// and the request event is still made.
func TestInvariantRequestBodyProblems(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		res := decodeCase(t, reg, c, c.url, c.body, 200, `{}`, func(x *httpmsg.Exchange) {
			x.Request.Body.Truncated = true
			x.Request.Body.Data = x.Request.Body.Data[:len(x.Request.Body.Data)/2]
		})
		if !slices.Contains(res.Notes, noteRequestTruncated) || !res.Partial {
			t.Errorf("cut: notes %v partial %v: want %s and partial", res.Notes, res.Partial, noteRequestTruncated)
		}
		// Data holds the raw bytes when decoding failed.
		res = decodeCase(t, reg, c, c.url, c.body, 200, `{}`, func(x *httpmsg.Exchange) {
			x.Request.Body.DecodeError = "gzip: invalid header"
			x.Request.Body.ContentEncoding = "gzip"
			x.Request.Body.Data = []byte("\x1f\x8b\x08\x00garbage")
		})
		if !slices.Contains(res.Notes, noteRequestDecodeError) || !res.Partial {
			t.Errorf("undecodable: notes %v partial %v: want %s and partial", res.Notes, res.Partial, noteRequestDecodeError)
		}
	})
}

// TestInvariantEmptyAnswer: a 200 answer of an empty object carries no
// content and no finish reason, and no API invents a choice for it.
func TestInvariantEmptyAnswer(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		res := decodeCase(t, reg, c, c.url, c.body, 200, `{}`, nil)
		if r := res.Response; r != nil && (len(r.Choices) > 0 || r.FinishReason != "") {
			t.Errorf("choices %s finish_reason %q invented from {}", jsonOf(t, r.Choices), r.FinishReason)
		}
	})
}

func TestInvariantRequestIdentity(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		res := decodeCase(t, reg, c, c.url, c.body, 200, `{}`, nil)
		if want := c.name(); res.API() != want {
			t.Errorf("result API %q, want %q", res.API(), want)
		}
		req := res.Request
		if p := req.Provider; p == nil || p.Name == "" || p.Endpoint == "" {
			t.Errorf("request provider %s: want name and endpoint", jsonOf(t, p))
		}
		if req.RequestType == "" {
			t.Error("no request_type")
		}
		if req.Model == nil || req.Model.ID != c.model {
			t.Errorf("request model %s, want %q", jsonOf(t, req.Model), c.model)
		}
		// An answer that names no model, good or failed, is the
		// requested model's, from the request's provider.
		for _, status := range []int{200, 429} {
			body := `{}`
			if status != 200 {
				body = c.fail.body
			}
			o := outcomeOf(t, decodeCase(t, reg, c, c.url, c.body, status, body, nil))
			if o.model == nil || o.model.ID != c.model {
				t.Errorf("status %d: answer model %s, want %q", status, jsonOf(t, o.model), c.model)
			}
			if o.provider == nil || req.Provider == nil || o.provider.Name != req.Provider.Name {
				t.Errorf("status %d: answer provider %s, request's %s", status, jsonOf(t, o.provider), jsonOf(t, req.Provider))
			}
		}
	})
}

func TestInvariantStreaming(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		if c.streamBody == "" {
			t.Skip("no streaming form")
		}
		res := decodeStream(t, reg, c, c.streamResp)
		if s := res.Request.Streaming; s == nil || !*s {
			t.Errorf("request streaming %s", jsonOf(t, s))
		}
		if s := outcomeOf(t, res).streaming; s == nil || !*s {
			t.Errorf("response streaming %s", jsonOf(t, s))
		}
		// And the same call not streamed says so.
		res = decodeCase(t, reg, c, c.url, c.body, 200, `{}`, nil)
		if s := res.Request.Streaming; s != nil && *s {
			t.Errorf("unstreamed call: request streaming %s", jsonOf(t, s))
		}
		if res.Response != nil {
			if s := res.Response.Streaming; s == nil || *s {
				t.Errorf("unstreamed call: response streaming %s, want false", jsonOf(t, s))
			}
		}
	})
}

func TestInvariantCredentialsNeverOutput(t *testing.T) {
	const secret = "sk-invariant-0123456789abcdefghijklmnopqrstuvwxyz"
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		url := c.url
		if strings.Contains(url, "?") {
			url += "&key=" + secret
		} else {
			url += "?key=" + secret
		}
		for _, status := range []int{200, 401} {
			res := decodeCase(t, reg, c, url, c.body, status, `{}`, func(x *httpmsg.Exchange) {
				for _, h := range []string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key"} {
					v := secret
					if h == "Authorization" {
						v = "Bearer " + secret
					}
					x.Request.Header.Set(h, v)
				}
			})
			out, err := json.Marshal([]any{res.Request, res.Response, res.Embedding, res.ToolResults, res.Notes})
			if err != nil {
				t.Fatal(err)
			}
			// At most the schema's key prefix (8 characters) is kept.
			if strings.Contains(string(out), secret[8:]) {
				t.Errorf("status %d: the credential is in the result: %s", status, out)
			}
			if a := res.Request.Auth; a != nil && len(a.KeyPrefix) > 8 {
				t.Errorf("status %d: key prefix %q longer than 8", status, a.KeyPrefix)
			}
		}
	})
}

func TestInvariantStreamCut(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		if c.streamCut == "" {
			t.Skip("no end marker to miss (see everyAPICase.streamCut)")
		}
		// The transport saw the whole body; the format's end marker
		// never came.
		res := decodeStream(t, reg, c, c.streamCut)
		if !slices.Contains(res.Notes, noteStreamUnterminated) || !res.Partial || res.StreamEnded {
			t.Errorf("cut: notes %v partial %v ended %v: want %s, partial, not ended", res.Notes, res.Partial, res.StreamEnded, noteStreamUnterminated)
		}
		// With its end the same stream is whole.
		res = decodeStream(t, reg, c, c.streamCut+c.streamResp)
		if len(res.Notes) > 0 || res.Partial || !res.StreamEnded {
			t.Errorf("whole: notes %v partial %v ended %v: want none, not partial, ended", res.Notes, res.Partial, res.StreamEnded)
		}
	})
}

func TestInvariantStreamBadEvent(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		if c.streamResp == "" {
			t.Skip("no text stream to spoil")
		}
		bad := "data: <html>\n\n"
		if c.streamType != sseType {
			bad = "<html>\n"
		}
		res := decodeStream(t, reg, c, bad+c.streamResp)
		if !slices.Contains(res.Notes, noteStreamBadEvent) || !res.Partial {
			t.Errorf("notes %v partial %v: want %s and partial", res.Notes, res.Partial, noteStreamBadEvent)
		}
	})
}

// TestInvariantNotesCounted: every note a decoder makes is counted once
// under provider.<note>, and nothing else is counted under provider.
func TestInvariantNotesCounted(t *testing.T) {
	forEveryAPI(t, func(t *testing.T, reg *Registry, c everyAPICase) {
		for _, tc := range []struct {
			name string
			edit func(*httpmsg.Exchange)
		}{
			{"no response", func(x *httpmsg.Exchange) { x.Response = nil }},
			{"request not JSON", func(x *httpmsg.Exchange) { x.Request.Body.Data = []byte("model=m") }},
			{"answer not JSON", func(x *httpmsg.Exchange) { x.Response.Body.Data = []byte("<html>denied</html>") }},
			{"answer cut", func(x *httpmsg.Exchange) {
				x.Response.Body.Truncated, x.Response.Complete = true, false
				x.Response.Body.DecodeError = "gzip: invalid header"
			}},
		} {
			if c.noJSONAnswer && tc.name == "answer not JSON" {
				continue // audio bytes are a good answer
			}
			x := coreExchange(c.url, c.body, 200, `{}`)
			_, tg := coreMatch(reg, x)
			tc.edit(x)
			var counts stats.Counters
			res, err := apiNamed(t, c.api).Decode(tg, x, Env{Registry: reg, Stats: &counts})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if len(res.Notes) == 0 {
				t.Errorf("%s: nothing noted", tc.name)
			}
			want := map[string]int64{}
			for _, n := range res.Notes {
				want["provider."+n] = 1
			}
			got := map[string]int64{}
			for token, n := range counts.Snapshot() {
				if strings.HasPrefix(token, "provider.") {
					got[token] = n
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: provider counters (-notes +counted):\n%s", tc.name, diff)
			}
		}
	})
}

// TestEndStream: whether a stream reached its end marker is recorded
// whatever else happened; an error event fails the answer in band and is
// not also a cut stream; events without the end marker are a cut stream.
func TestEndStream(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         *oisp.Error
		events      int
		ended       bool
		wantCut     bool
		wantFailure bool
	}{
		{"whole", nil, 3, true, false, false},
		{"cut", nil, 3, false, true, false},
		{"no events", nil, 0, false, false, false},
		{"error then end marker", &oisp.Error{Type: "overloaded_error"}, 3, true, false, true},
		{"error, no end marker", &oisp.Error{Type: "overloaded_error"}, 3, false, false, true},
	} {
		res, resp := &Result{}, &oisp.AIResponse{}
		endStream(res, resp, tc.err, tc.events, tc.ended)
		if res.StreamEnded != tc.ended {
			t.Errorf("%s: StreamEnded %v, want %v", tc.name, res.StreamEnded, tc.ended)
		}
		if cut := slices.Contains(res.Notes, noteStreamUnterminated); cut != tc.wantCut {
			t.Errorf("%s: noted cut %v, want %v (notes %v)", tc.name, cut, tc.wantCut, res.Notes)
		}
		failed := resp.Success != nil && !*resp.Success && resp.FinishReason == oisp.FinishError
		if failed != tc.wantFailure {
			t.Errorf("%s: failed in band %v, want %v", tc.name, failed, tc.wantFailure)
		}
	}
}
