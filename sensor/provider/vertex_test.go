package provider

import (
	"encoding/json"
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

// Claude on Vertex AI: streamRawPredict with Anthropic Messages bodies, the
// model in the path. The recorded Anthropic exchange is moved onto the
// Vertex path (see testdata/vertex/README.md).
func TestVertexAnthropicRawPredict(t *testing.T) {
	reg := moreRegistry(t)
	rec := moreRecording(t, "testdata/vertex/test_anthropic_tools_streaming_legacy.yaml")
	in := rec.Interactions[0]
	var body map[string]any
	if err := json.Unmarshal(in.Request.Body, &body); err != nil {
		t.Fatal(err)
	}
	delete(body, "model")
	body["anthropic_version"] = "vertex-2023-10-16"
	in.Request.Body, _ = json.Marshal(body)
	in.Request.URL = "https://us-east5-aiplatform.googleapis.com/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet@20240620:streamRawPredict"
	res, _ := moreDecode(t, reg, moreExchange(t, in))
	if res == nil {
		t.Fatal("no decoder")
	}
	checkWant(t, recWant{
		api: apiVertexAnthropic, providerName: "google", providerID: "google_vertex",
		model: "claude-3-5-sonnet@20240620", answeredModel: "claude-3-5-sonnet-20240620",
		streaming: true, status: 200, finish: "tool_calls",
		// Anthropic usage: input 506 (no cache), output 153 from message_delta.
		prompt: iptr(506), completion: iptr(153), total: iptr(659), cached: iptr(0),
		tools: []string{"get_weather", "get_time"}, messages: 1, ttft: true,
	}, res)
	p := res.Request.Provider
	if p.ProjectID != "my-project" || p.Region != "us-east5" {
		t.Errorf("provider %+v", p)
	}
	if len(res.Request.Tools) != 2 {
		t.Errorf("tools %+v", res.Request.Tools)
	}
}

func TestGooglePath(t *testing.T) {
	for _, c := range []struct {
		path                                      string
		ok                                        bool
		project, location, publisher, model, verb string
	}{
		{"/v1beta/models/gemini-2.5-flash:generateContent", true, "", "", "", "gemini-2.5-flash", "generateContent"},
		{"/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash-001:streamGenerateContent", true, "p", "us-central1", "google", "gemini-2.0-flash-001", "streamGenerateContent"},
		{"/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4%4020250514:rawPredict", true, "p", "us-east5", "anthropic", "claude-sonnet-4@20250514", "rawPredict"},
		{"/v1/publishers/google/models/gemini-2.5-pro:generateContent", true, "", "", "google", "gemini-2.5-pro", "generateContent"},
		{"/v1beta/tunedModels/my-tune:generateContent", true, "", "", "", "tunedModels/my-tune", "generateContent"},
		{"/v1/projects/p/locations/l/endpoints/123:predict", true, "p", "l", "", "123", "predict"},
		{"/v1beta/models/gemini-2.5-flash", false, "", "", "", "", ""},
		{"/v1beta/cachedContents", false, "", "", "", "", ""},
		{"/v1beta/models/:generateContent", false, "", "", "", "", ""},
		{"/v1beta/models/gemini-2.5-flash%3AgenerateContent", true, "", "", "", "gemini-2.5-flash", "generateContent"},
		{"/v1/projects/p/locations/l/publishers/google/models/m/x/y:generateContent", false, "", "", "", "", ""},
		{"/v1/projects/p/locations/l/publishers/google/models/m/1/2/3/4/5/6:generateContent", false, "", "", "", "", ""},
		{"/v1beta/models/gemini-2.5-flash%3agenerateContent", true, "", "", "", "gemini-2.5-flash", "generateContent"},
		{"/v1beta/models/gemini-2.5%2Dflash:generateContent", true, "", "", "", "gemini-2.5-flash", "generateContent"},
		{"/model/us.amazon.nova-micro-v1%3A0/converse", false, "", "", "", "", ""},
		{"/v1beta/models/m%3AgenerateContent%2Fx", false, "", "", "", "", ""},
		{"/v1beta/models/m:generateContent%2f", false, "", "", "", "", ""},
		{"/v1beta/models/m%zz:generateContent", true, "", "", "", "m%zz", "generateContent"},
		{"/v1beta/models/m%3", false, "", "", "", "", ""},
	} {
		p, ok := parseGooglePath(c.path)
		if ok != c.ok || (ok && (p.Project != c.project || p.Location != c.location || p.Publisher != c.publisher || p.modelID() != c.model || p.Verb != c.verb)) {
			t.Errorf("parseGooglePath(%q) = %+v, %v", c.path, p, ok)
		}
	}
}

// Partner models other than Claude (Mistral, Llama, …) take OpenAI-style
// chat bodies on rawPredict; the recorded Mistral exchange is moved onto
// the Vertex path.
func TestVertexPartnerRawPredict(t *testing.T) {
	reg := moreRegistry(t)
	rec := moreRecording(t, "testdata/vertex/test_mistral_forwards_penalties.yaml")
	in := rec.Interactions[0]
	in.Request.URL = "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/mistralai/models/mistral-large-2411:rawPredict"
	res, _ := moreDecode(t, reg, moreExchange(t, in))
	if res == nil {
		t.Fatal("no decoder")
	}
	// The body names "mistral-large-latest"; the path's model is what the
	// request was routed to, but the body's is kept when present.
	checkWant(t, recWant{
		api: apiVertexRawPredict, providerName: "google", providerID: "google_vertex",
		model: "mistral-large-latest", answeredModel: "mistral-large-latest",
		status: 200, finish: "stop", prompt: iptr(4), completion: iptr(36), total: iptr(40), cached: iptr(0), messages: 1,
	}, res)
	if p := res.Request.Parameters; p == nil || p.FrequencyPenalty == nil || *p.FrequencyPenalty != 0.25 {
		t.Errorf("parameters %+v", res.Request.Parameters)
	}
}
