package provider

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
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
			messages: 1, cost: "priced",
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
		fuzzDecodeVariant(t, reg, urls, "text/event-stream", req, resp, variant)
	})
}

// interactionsExchange builds an Interactions API exchange from a recorded
// response body (testdata/gemini/interactions) and a request written after
// the test that recorded it. Chunk files (one SSE data payload per line)
// become an SSE body.
func interactionsExchange(t *testing.T, reqBody, file string) *httpmsg.Exchange {
	t.Helper()
	raw, err := os.ReadFile("testdata/gemini/interactions/" + file)
	if err != nil {
		t.Fatal(err)
	}
	ct := "application/json"
	if strings.HasSuffix(file, ".chunks.txt") {
		var sse bytes.Buffer
		for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
			fmt.Fprintf(&sse, "data: %s\r\n\r\n", line)
		}
		raw, ct = sse.Bytes(), "text/event-stream"
	}
	return moreExchange(t, cassette.Interaction{
		Request:  cassette.Request{Method: "POST", URL: "https://generativelanguage.googleapis.com/v1beta/interactions", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(reqBody)},
		Response: cassette.Response{Status: 200, Header: http.Header{"Content-Type": {ct}}, Body: raw},
	})
}

func TestGeminiInteractions(t *testing.T) {
	const tools = `"tools":[{"type":"function","name":"getWeather","description":"Get the weather for a location","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}]`
	reg := moreRegistry(t)
	for _, c := range []struct {
		req, file string
		want      recWant
		text      string
	}{
		{`{"model":"gemini-2.5-flash","input":"Hello, how are you?"}`, "basic.json", recWant{
			api: apiGeminiInteractions, providerName: "google", model: "gemini-2.5-flash", answeredModel: "gemini-2.5-flash",
			status: 200, finish: "stop", prompt: iptr(7), completion: iptr(51), total: iptr(58), cached: iptr(0), reasoning: iptr(32),
			messages: 1, cost: "priced",
		}, "Hello! I'm doing well, thank you for asking.\n\nHow are you today?"},
		{`{"model":"gemini-2.5-flash","stream":true,"input":[{"role":"user","content":[{"type":"text","text":"What is the weather in San Francisco?"}]}],` + tools + `}`,
			"tool-call-step1.chunks.txt", recWant{
				api: apiGeminiInteractions, providerName: "google", model: "gemini-2.5-flash", answeredModel: "gemini-2.5-flash",
				streaming: true, status: 200, finish: "tool_calls", prompt: iptr(53), completion: iptr(80), total: iptr(133), cached: iptr(0), reasoning: iptr(65),
				tools: []string{"getWeather"}, messages: 1, ttft: true,
			}, ""},
		{`{"model":"gemini-2.5-flash","stream":true,"input":[` +
			`{"role":"user","content":[{"type":"text","text":"What is the weather in San Francisco?"}]},` +
			`{"role":"model","content":[{"type":"function_call","id":"61nzpsv4","name":"getWeather","arguments":{"location":"San Francisco"}}]},` +
			`{"role":"user","content":[{"type":"function_result","call_id":"61nzpsv4","name":"getWeather","result":{"weather":"sunny","temperature":27}}]}],` + tools + `}`,
			"tool-call-step2.chunks.txt", recWant{
				api: apiGeminiInteractions, providerName: "google", model: "gemini-2.5-flash", answeredModel: "gemini-2.5-flash",
				streaming: true, status: 200, finish: "stop", prompt: iptr(161), completion: iptr(19), total: iptr(180), cached: iptr(0), reasoning: iptr(0),
				toolResults: 1, messages: 3, ttft: true,
			}, "The weather in San Francisco right now is sunny with a temperature of 27 degrees Celsius."},
	} {
		t.Run(c.file, func(t *testing.T) {
			res, _ := moreDecode(t, reg, interactionsExchange(t, c.req, c.file))
			if res == nil {
				t.Fatal("no decoder")
			}
			checkWant(t, c.want, res)
			if got := res.Response.Choices[0].Message.Content; got != c.text {
				t.Errorf("answer %q; want %q", got, c.text)
			}
			if len(res.ToolResults) > 0 && (res.ToolResults[0].CallID != "61nzpsv4" || res.ToolResults[0].Name != "getWeather") {
				t.Errorf("tool result %+v", res.ToolResults[0])
			}
			if len(res.Request.Tools) > 0 && res.Request.Tools[0].Name != "getWeather" {
				t.Errorf("tools %+v", res.Request.Tools)
			}
			for _, tc := range res.Response.ToolCalls {
				if tc.ID != "61nzpsv4" || tc.Arguments != `{"location":"San Francisco"}` {
					t.Errorf("streamed call %+v", tc)
				}
			}
		})
	}
}

// A gateway on an unknown host speaking the Gemini API is decoded by path
// shape, with its real host and a note that lowers confidence.
func TestGeminiUnknownHost(t *testing.T) {
	reg := moreRegistry(t)
	rec := moreRecording(t, "testdata/gemini/test_google_model_stream.yaml")
	in := rec.Interactions[0]
	in.Request.URL = strings.Replace(in.Request.URL, "generativelanguage.googleapis.com", "llm-gateway.internal:8443", 1)
	res, tg := moreDecode(t, reg, moreExchange(t, in))
	if tg.Known || res == nil || res.API() != apiGeminiGenerate {
		t.Fatalf("target %+v result %v", tg, res)
	}
	if res.Request.Provider.Name != "other" || res.Request.Provider.Host != "llm-gateway.internal" || !slices.Contains(res.Notes, noteUnknownHostGoogle) {
		t.Errorf("provider %+v notes %v", res.Request.Provider, res.Notes)
	}
	if *res.Response.Usage.PromptTokens != 13 {
		t.Errorf("usage %+v", res.Response.Usage)
	}
}

// TestPathSegments holds pathSegments to strings.Split, with room to spare,
// just enough and too little.
func TestPathSegments(t *testing.T) {
	for _, s := range []string{
		"", "/", "//", "a", "a/", "/a", "v1beta/models/gemini-2.5-flash",
		"v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash",
		"1/2/3/4/5/6/7/8/9", "1/2/3/4/5/6/7/8/9/10", "1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20",
	} {
		want := strings.Split(s, "/")
		for _, room := range []int{0, 1, 9, 32} {
			if got := pathSegments(make([]string, 0, room), s); !slices.Equal(got, want) {
				t.Fatalf("pathSegments(%q) with room %d = %q; want %q", s, room, got, want)
			}
		}
	}
}

// FuzzGooglePath holds parseGooglePath to the same parse of the path
// always unescaped first: the escaped paths it refuses before unescaping
// are paths the parse refuses.
func FuzzGooglePath(f *testing.F) {
	for _, s := range []string{
		"/v1beta/models/gemini-2.5-flash%3AgenerateContent",
		"/v1beta/models/gemini-2.5-flash%3agenerateContent",
		"/model/us.amazon.nova-micro-v1%3A0/converse",
		"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fmi1dadi0g15f/converse",
		"/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4%4020250514:rawPredict",
		"/v1beta/models/m%3AgenerateContent%2Fx", "/v1beta/models/m%zz:generateContent", "%3", "%", "%3A",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got, gotOK := parseGooglePath(path)
		unescaped := path
		if dec, err := url.PathUnescape(path); err == nil {
			unescaped = dec
		}
		if strings.IndexByte(unescaped, '%') >= 0 {
			return // the reference would unescape it again
		}
		want, wantOK := parseGooglePath(unescaped)
		if gotOK != wantOK || (gotOK && got != want) {
			t.Fatalf("parseGooglePath(%q) = %+v, %v; unescaped first: %+v, %v", path, got, gotOK, want, wantOK)
		}
	})
}

// TestGeminiMatchByTarget holds geminiAPI.Match, which consults the target
// before parsing the path, to the same decision made from the parsed path
// first, for every Gemini and Vertex instance over paths and targets.
func TestGeminiMatchByTarget(t *testing.T) {
	apis := append(newGeminiAPIs()[:3], newVertexAPIs()[:2]...)
	paths := []string{
		"/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
		"/v1beta/models/gemini-2.5-flash:countTokens", "/v1beta/models/text-embedding-004:embedContent",
		"/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent",
		"/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude:rawPredict",
		"/v1/projects/p/locations/l/endpoints/123:generateContent", "/v1/chat/completions",
		"/model/us.amazon.nova-micro-v1%3A0/converse",
	}
	targets := []Target{
		{ProviderID: "google", Known: true}, {ProviderID: "google_vertex", Known: true},
		{ProviderID: "openai", Known: true}, {ProviderID: "other"}, {},
	}
	reference := func(a *geminiAPI, tg Target, x *httpmsg.Exchange) bool {
		p, ok := parseGooglePath(x.Request.Path())
		if !ok || !a.verbs[p.Verb] {
			return false
		}
		if a.vertex {
			return tg.ProviderID == "google_vertex" && (p.Publisher == "" || p.Publisher == "google")
		}
		switch tg.ProviderID {
		case "google":
			return true
		case "google_vertex":
			return false
		}
		return !tg.Known && p.Model != ""
	}
	for _, api := range apis {
		a := api.(*geminiAPI)
		for _, path := range paths {
			for _, tg := range targets {
				x := &httpmsg.Exchange{Request: httpmsg.Request{Method: "POST", Target: path}}
				if got, want := a.Match(tg, x), reference(a, tg, x); got != want {
					t.Errorf("%s.Match(%+v, %s) = %v; want %v", a.name, tg, path, got, want)
				}
			}
		}
	}
}
