package provider

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/spec"
)

// coreExchange builds a POST exchange with JSON bodies.
func coreExchange(url, reqBody string, status int, respBody string) *httpmsg.Exchange {
	r := &coreRecording{Method: "POST", URL: url, ReqBody: reqBody, Status: status, RespBody: respBody}
	return r.exchange()
}

// coreMatch returns the name of the first built-in API matching x.
func coreMatch(reg *Registry, x *httpmsg.Exchange) (string, Target) {
	tg, _ := reg.Lookup(x.Request.Authority, 0)
	for _, a := range BuiltinAPIs() {
		if a.Match(tg, x) {
			return a.Name(), tg
		}
	}
	return "", tg
}

func TestCoreMatch(t *testing.T) {
	reg := coreRegistry(t)
	chatBody := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, method, url, body string
		want                    string
	}{
		{"openai chat", "POST", "https://api.openai.com/v1/chat/completions", chatBody, apiOpenAIChat},
		{"openai chat trailing slash", "POST", "https://api.openai.com/v1/chat/completions/", chatBody, apiOpenAIChat},
		{"openai GET models", "GET", "https://api.openai.com/v1/models", "", ""},
		{"openai GET chat", "GET", "https://api.openai.com/v1/chat/completions", "", ""},
		{"legacy completions", "POST", "https://api.openai.com/v1/completions", `{"model":"davinci-002","prompt":"x"}`, apiOpenAICompletions},
		{"responses", "POST", "https://api.openai.com/v1/responses", `{"model":"gpt-4o","input":"x"}`, apiOpenAIResponses},
		{"responses retrieve", "POST", "https://api.openai.com/v1/responses/resp_1/cancel", ``, ""},
		{"embeddings", "POST", "https://api.openai.com/v1/embeddings", `{"model":"e","input":"x"}`, apiOpenAIEmbeddings},
		{"azure deployment", "POST", "https://r.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2024-02-01", `{"messages":[]}`, apiOpenAIChat},
		{"groq compat", "POST", "https://api.groq.com/openai/v1/chat/completions", chatBody, apiOpenAIChat},
		{"gemini openai compat", "POST", "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions", chatBody, apiOpenAIChat},
		{"anthropic messages", "POST", "https://api.anthropic.com/v1/messages?beta=true", `{"model":"c","max_tokens":1,"messages":[]}`, apiAnthropicMessages},
		{"anthropic count", "POST", "https://api.anthropic.com/v1/messages/count_tokens", `{"model":"c","messages":[]}`, apiAnthropicCountTokens},
		{"anthropic complete", "POST", "https://api.anthropic.com/v1/complete", `{"model":"c","prompt":"x"}`, apiAnthropicComplete},
		{"anthropic batches", "POST", "https://api.anthropic.com/v1/messages/batches", `{}`, ""},
		// Unknown hosts: path and body shape both needed.
		{"unknown host openai shape", "POST", "http://10.0.0.5:8000/v1/chat/completions", chatBody, apiOpenAIChat},
		{"unknown host wrong shape", "POST", "http://10.0.0.5:8000/v1/chat/completions", `{"foo":1}`, ""},
		{"unknown host not JSON", "POST", "http://10.0.0.5:8000/v1/chat/completions", `messages=[]`, ""},
		{"unknown host anthropic shape", "POST", "https://llm.corp.example/v1/messages", `{"model":"c","max_tokens":5,"messages":[]}`, apiAnthropicMessages},
		{"unknown host embeddings", "POST", "http://gw.local/v1/embeddings", `{"model":"e","input":["a"]}`, apiOpenAIEmbeddings},
		{"unknown host other path", "POST", "http://gw.local/v1/things", chatBody, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := coreExchange(tc.url, tc.body, 200, `{}`)
			x.Request.Method = tc.method
			if got, _ := coreMatch(reg, x); got != tc.want {
				t.Errorf("matched %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnknownHostOpenAIShape(t *testing.T) {
	reg := coreRegistry(t)
	x := coreExchange("http://10.0.0.5:8000/v1/chat/completions",
		`{"model":"llama-3-8b","messages":[{"role":"user","content":"hi"}]}`, 200,
		`{"id":"c1","model":"llama-3-8b","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`)
	res := coreDecode(t, reg, x)
	p := res.Request.Provider
	if p.Name != "other" || p.Host != "10.0.0.5" || p.Endpoint != "http://10.0.0.5:8000/v1/chat/completions" {
		t.Errorf("provider = %+v", p)
	}
	if !strings.Contains(strings.Join(res.Notes, ","), noteUnknownHostOpenAI) || res.Partial {
		t.Errorf("notes %v partial %v: want %s and not partial", res.Notes, res.Partial, noteUnknownHostOpenAI)
	}
	if u := res.Response.Usage; u == nil || *u.TotalTokens != 5 {
		t.Errorf("usage %+v: want computed total 5", u)
	}
}

func TestAzureDeploymentModel(t *testing.T) {
	reg := coreRegistry(t)
	x := coreExchange("https://res.openai.azure.com/openai/deployments/my%20gpt4o/chat/completions?api-version=2024-06-01",
		`{"messages":[{"role":"user","content":"hi"}]}`, 200,
		`{"id":"c","model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11}}`)
	res := coreDecode(t, reg, x)
	if got := res.Request.Model.ID; got != "my gpt4o" {
		t.Errorf("request model %q, want the deployment", got)
	}
	m := res.Response.Model
	if m.ID != "gpt-4o-2024-08-06" || m.Requested != "my gpt4o" {
		t.Errorf("response model %+v", m)
	}
	// Priced by the answered model under azure_openai (date stripped).
	if u := res.Response.Usage; u.TotalCostUSD == nil || *u.InputCostUSD != 0.000025 || *u.OutputCostUSD != 0.00001 {
		t.Errorf("cost %+v", u)
	}
	if res.Request.Provider.Name != "azure_openai" {
		t.Errorf("provider %+v", res.Request.Provider)
	}
}

func TestAuthNeverKey(t *testing.T) {
	key := "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
	h := httpmsg.Header{}
	h.Set("Authorization", "Bearer "+key)
	a := authOf(h)
	if a.Type != "api_key" || a.KeyPrefix != "sk-proj-" {
		t.Errorf("auth %+v", a)
	}
	h = httpmsg.Header{}
	h.Set("x-api-key", "sk-ant-api03-"+strings.Repeat("x", 40))
	if a := authOf(h); a.Type != "api_key" || a.KeyPrefix != "sk-ant-a" {
		t.Errorf("auth %+v", a)
	}
	h = httpmsg.Header{}
	h.Set("Authorization", "Bearer sk-ant-oat01-"+strings.Repeat("y", 40))
	if a := authOf(h); a.Type != "oauth" {
		t.Errorf("oauth token: auth %+v", a)
	}
	h = httpmsg.Header{}
	h.Set("api-key", strings.Repeat("f", 32))
	if a := authOf(h); a.Type != "api_key" || len(a.KeyPrefix) > 8 {
		t.Errorf("azure key: auth %+v", a)
	}
	if authOf(nil) != nil {
		t.Error("no credential must give no auth")
	}
	// The whole decoded result never contains the key.
	reg := coreRegistry(t)
	x := coreExchange("https://api.openai.com/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, 401,
		`{"error":{"message":"Incorrect API key provided: sk-proj-****6789.","type":"invalid_request_error","code":"invalid_api_key"}}`)
	x.Request.Header.Set("Authorization", "Bearer "+key)
	res := coreDecode(t, reg, x)
	if strings.Contains(jsonOf(t, res), key[8:20]) {
		t.Error("decoded result contains the credential")
	}
}

// TestUsageArithmetic checks the normalisation of each provider's recorded
// usage: prompt_tokens includes cache reads and writes exactly once.
func TestUsageArithmetic(t *testing.T) {
	n := func(v int) jInt { return jInt{V: v, OK: true} }
	tests := []struct {
		name string
		got  *oisp.Usage
		want string
	}{
		// anthropic/messages_cache.json: input 3, cache read 1111, write 418, output 33.
		{"anthropic cache", anthropicUsage(nil, n(3), n(33), n(1111), n(418)), "1532/33/1565 cached 1111 write 418 reasoning -"},
		// anthropic/messages_stream_tools.json: no cache fields reported.
		{"anthropic plain", anthropicUsage(nil, n(506), n(153), jInt{}, jInt{}), "506/153/659 cached - write - reasoning -"},
		{"anthropic output only", anthropicUsage(nil, jInt{}, n(7), jInt{}, jInt{}), "-/7/7 cached - write - reasoning -"},
		{"anthropic nothing", anthropicUsage(nil, jInt{}, jInt{}, jInt{}, jInt{}), ""},
		// openai/chat_reasoning.json: prompt already includes cached; reasoning part of completion.
		{"openai reasoning", openaiUsage(nil, &openaiUsageBody{PromptTokens: n(7), CompletionTokens: n(87), TotalTokens: n(94),
			CompletionTokensDetails: &openaiReasoningDetails{n(64)}}), "7/87/94 cached - write - reasoning 64"},
		// Responses API names (openai/responses_stream_tool.json) and a missing total.
		{"responses", openaiUsage(nil, &openaiUsageBody{InputTokens: n(255), OutputTokens: n(16)}), "255/16/271 cached - write - reasoning -"},
		// DeepSeek cache hits.
		{"deepseek", openaiUsage(nil, &openaiUsageBody{PromptTokens: n(12), CompletionTokens: n(89), PromptCacheHitTokens: n(8)}), "12/89/101 cached 8 write - reasoning -"},
	}
	for _, tc := range tests {
		got, _ := coreUsageString(tc.got)
		if got != tc.want {
			t.Errorf("%s: usage %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPriceAndLookup(t *testing.T) {
	reg := coreRegistry(t)
	ip := func(v int) *int { return &v }
	tests := []struct {
		provider, model string
		usage           oisp.Usage
		want            string // input+output=total, or unknown
	}{
		// Published example: gpt-4o 1823 prompt tokens at 0.0025/1K.
		{"openai", "gpt-4o", oisp.Usage{PromptTokens: ip(1823), CompletionTokens: ip(0)}, "0.0045575+0=0.0045575"},
		// Cache reads at the cache-read price.
		{"openai", "gpt-4o", oisp.Usage{PromptTokens: ip(2000), CachedTokens: ip(1000), CompletionTokens: ip(100)}, "0.00375+0.001=0.00475"},
		// Date suffix stripped.
		{"openai", "gpt-4o-mini-2024-07-18", oisp.Usage{PromptTokens: ip(1000), CompletionTokens: ip(1000)}, "0.00015+0.0006=0.00075"},
		// Bedrock region prefix: us.anthropic… → anthropic.… under aws_bedrock.
		{"aws_bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0", oisp.Usage{PromptTokens: ip(1000), CompletionTokens: ip(1000)}, "0.003+0.015=0.018"},
		// Vertex '@' dates resolve under google_vertex_anthropic.
		{"google_vertex_anthropic", "claude-sonnet-4@20250514", oisp.Usage{PromptTokens: ip(1000), CompletionTokens: ip(0)}, "0.003+0=0.003"},
		// Same id under another provider: deepseek-chat on an unknown host.
		{"other", "deepseek-chat", oisp.Usage{PromptTokens: ip(1000), CompletionTokens: ip(1000)}, "0.00028+0.00042=0.0007"},
		// Local servers never borrow cloud prices.
		{"ollama", "deepseek-r1", oisp.Usage{PromptTokens: ip(10), CompletionTokens: ip(10)}, "unknown"},
		{"openai", "no-such-model", oisp.Usage{PromptTokens: ip(10), CompletionTokens: ip(10)}, "unknown"},
	}
	for _, tc := range tests {
		u := tc.usage
		reg.Price(&u, tc.provider, tc.model)
		_, got := coreUsageString(&u)
		if got != tc.want {
			t.Errorf("%s/%s: cost %q, want %q", tc.provider, tc.model, got, tc.want)
		}
		if u.Cost == "unknown" && (u.TotalCostUSD != nil || u.InputCostUSD != nil) {
			t.Errorf("%s/%s: unknown cost with numbers", tc.provider, tc.model)
		}
	}
	// No usage: nothing priced, nothing marked.
	var empty oisp.Usage
	if reg.Price(&empty, "openai", "gpt-4o") || empty.Cost != "" {
		t.Errorf("empty usage priced: %+v", empty)
	}
	m := &oisp.Model{ID: "claude-3-5-sonnet-20241022"}
	reg.DescribeModel(m, "anthropic")
	if m.Family != "claude-sonnet" || m.ContextWindow != 200000 || m.MaxOutputTokens != 8192 {
		t.Errorf("describe %+v", m)
	}
	m = &oisp.Model{ID: "gpt-4-0314-unlisted"}
	reg.DescribeModel(m, "openai")
	if m.Family != "gpt-4" {
		t.Errorf("family rule: %+v", m)
	}
}

func TestModelCandidates(t *testing.T) {
	tests := map[string][]string{
		"gpt-4o-2024-08-06": {"gpt-4o-2024-08-06", "gpt-4o"},
		"us.anthropic.claude-3-5-sonnet-20241022-v2:0": {
			"us.anthropic.claude-3-5-sonnet-20241022-v2:0", "anthropic.claude-3-5-sonnet-20241022-v2:0",
			"claude-3-5-sonnet-20241022-v2:0", "us.anthropic.claude-3-5-sonnet-20241022", "anthropic.claude-3-5-sonnet-20241022",
			"claude-3-5-sonnet-20241022", "us.anthropic.claude-3-5-sonnet", "anthropic.claude-3-5-sonnet", "claude-3-5-sonnet"},
		"models/gemini-2.5-pro":    {"models/gemini-2.5-pro", "gemini-2.5-pro"},
		"claude-sonnet-4@20250514": {"claude-sonnet-4@20250514", "claude-sonnet-4-20250514", "claude-sonnet-4"},
		"openai/gpt-4o":            {"openai/gpt-4o", "gpt-4o"},
		"gpt-3.5-turbo-0125":       {"gpt-3.5-turbo-0125", "gpt-3.5-turbo"},
	}
	for id, want := range tests {
		if diff := cmp.Diff(want, modelCandidates(id)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", id, diff)
		}
	}
}

// TestTolerantJSON feeds bodies with the odd encodings real servers send:
// numbers as strings, floats for integers, nulls, wrong types for one field.
func TestTolerantJSON(t *testing.T) {
	reg := coreRegistry(t)
	x := coreExchange("https://api.openai.com/v1/chat/completions",
		`{"model":"gpt-4o","messages":[{"role":"user","content":null},"oops",{"role":"tool","tool_call_id":7,"content":[{"type":"text","text":"42"}]}],
		  "temperature":"0.5","max_tokens":12.0,"stop":"END","stream":"true","tools":{"not":"an array"}}`, 200,
		`{"id":"c","model":"gpt-4o","choices":[{"index":"0","message":{"role":"assistant","content":"ok","tool_calls":[{"id":"t1","function":{"name":"f","arguments":{"a":1}}}]},"finish_reason":"tool_calls"}],
		  "usage":{"prompt_tokens":"10","completion_tokens":2.0,"total_tokens":null}}`)
	res := coreDecode(t, reg, x)
	req := res.Request
	if *req.Parameters.Temperature != 0.5 || *req.Parameters.MaxTokens != 12 || req.Parameters.Stop[0] != "END" || !*req.Streaming {
		t.Errorf("parameters %+v streaming %v", req.Parameters, *req.Streaming)
	}
	if req.MessagesCount != 3 || len(res.ToolResults) != 1 || res.ToolResults[0].CallID != "7" || res.ToolResults[0].Content != "42" {
		t.Errorf("messages %d tool results %+v", req.MessagesCount, res.ToolResults)
	}
	if !strings.Contains(strings.Join(res.Notes, ","), noteRequestTypeMismatch) {
		t.Errorf("notes %v: want %s", res.Notes, noteRequestTypeMismatch)
	}
	resp := res.Response
	if u := resp.Usage; *u.PromptTokens != 10 || *u.CompletionTokens != 2 || *u.TotalTokens != 12 {
		t.Errorf("usage %+v", u)
	}
	if len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Arguments != `{"a":1}` || resp.FinishReason != "tool_calls" {
		t.Errorf("tool calls %+v finish %q", resp.ToolCalls, resp.FinishReason)
	}
}

// TestInStreamErrors: errors inside a 200 stream fail the response.
func TestInStreamErrors(t *testing.T) {
	reg := coreRegistry(t)
	// A real Anthropic stream (anthropic/messages_stream.json) cut after its
	// first delta and ended by an overloaded error event, as the API sends
	// when it fails mid-stream.
	rec := loadCoreRecording(t, "anthropic/messages_stream.json")
	i := strings.Index(rec.RespBody, "event: content_block_stop")
	rec.RespBody = rec.RespBody[:i] + "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	res := coreDecode(t, reg, rec.exchange())
	r := res.Response
	if *r.Success || r.Error == nil || r.Error.Type != "overloaded_error" || r.FinishReason != "error" || r.StatusCode != 200 {
		t.Errorf("response %+v error %+v", r, r.Error)
	}
	if r.Usage == nil || *r.Usage.PromptTokens != 15 {
		t.Errorf("usage from message_start lost: %+v", r.Usage)
	}

	// Responses API error event.
	x := coreExchange("https://api.openai.com/v1/responses", `{"model":"gpt-4o","input":"x","stream":true}`, 200,
		"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"model\":\"gpt-4o-2024-08-06\",\"status\":\"in_progress\",\"output\":[]}}\n\n"+
			"event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\"}\n\n")
	x.Response.Header.Set("Content-Type", "text/event-stream")
	res = coreDecode(t, reg, x)
	r = res.Response
	if *r.Success || r.Error.Code != "server_error" || r.FinishReason != "error" || r.ProviderRequestID != "resp_1" {
		t.Errorf("responses error: %+v %+v", r, r.Error)
	}
}

// TestTruncatedStream: a stream cut mid-way keeps what arrived and says so.
func TestTruncatedStream(t *testing.T) {
	reg := coreRegistry(t)
	rec := loadCoreRecording(t, "anthropic/messages_stream_tools.json")
	i := strings.Index(rec.RespBody, `"partial_json":"ncisco,"`)
	rec.RespBody = rec.RespBody[:i]
	x := rec.exchange()
	x.Response.Complete = false
	res := coreDecode(t, reg, x)
	if !res.Partial || !strings.Contains(strings.Join(res.Notes, ","), noteStreamUnterminated) {
		t.Errorf("partial %v notes %v", res.Partial, res.Notes)
	}
	r := res.Response
	if len(r.ToolCalls) != 1 || r.ToolCalls[0].Name != "get_weather" || !strings.HasPrefix(r.ToolCalls[0].Arguments, `{"location": "`) {
		t.Errorf("tool calls %+v", r.ToolCalls)
	}
}

func TestNoResponse(t *testing.T) {
	reg := coreRegistry(t)
	x := coreExchange("https://api.anthropic.com/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, 200, "")
	x.Response = nil
	res := coreDecode(t, reg, x)
	if res.Response != nil || res.Request.Model.ID != "claude-sonnet-4-5" || !strings.Contains(strings.Join(res.Notes, ","), noteNoResponse) {
		t.Errorf("result %+v", res)
	}
}

func TestAnthropicRequestShapes(t *testing.T) {
	res := &Result{Request: &oisp.AIRequest{}}
	decodeAnthropicRequest([]byte(`{"model":"claude-opus-4-1","max_tokens":100,"stream":true,
		"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Be kind.","cache_control":{"type":"ephemeral"}}],
		"messages":[
		 {"role":"user","content":[{"type":"text","text":"look"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
		 {"role":"assistant","content":[{"type":"thinking","thinking":"hmm"},{"type":"tool_use","id":"toolu_1","name":"calc","input":{"x":1}}]},
		 {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"2"}],"is_error":true}]}],
		"tools":[{"name":"calc","input_schema":{}},{"type":"web_search_20250305","name":"web_search"},{"type":"computer_20250124","name":"computer"},{"type":"bash_20250124","name":"bash"}],
		"tool_choice":{"type":"tool","name":"calc"},"temperature":0.2,"top_p":0.9,"stop_sequences":["\n\nHuman:"]}`), res)
	req := res.Request
	if !req.HasSystemPrompt || req.SystemPromptHash != oisp.Hash("Be brief.\nBe kind.") || req.Messages[0].Role != "system" {
		t.Errorf("system: %+v", req.Messages[0])
	}
	if req.MessagesCount != 4 || req.ImageCount != 1 || !req.HasImages || !*req.Streaming {
		t.Errorf("counts: %d messages %d images streaming %v", req.MessagesCount, req.ImageCount, *req.Streaming)
	}
	want := []string{"calc:function", "web_search:other", "computer:computer_use", "bash:other"}
	var got []string
	for _, tl := range req.Tools {
		got = append(got, tl.Name+":"+tl.Type)
	}
	if diff := cmp.Diff(want, got); diff != "" || req.ToolChoice != "calc" {
		t.Errorf("tools (-want +got): %s tool_choice %q", diff, req.ToolChoice)
	}
	if len(res.ToolResults) != 1 || res.ToolResults[0] != (ToolResult{CallID: "toolu_1", Content: "2", IsError: true}) || req.Messages[3].ToolCallID != "toolu_1" {
		t.Errorf("tool results %+v", res.ToolResults)
	}
	if p := req.Parameters; *p.Temperature != 0.2 || *p.TopP != 0.9 || *p.MaxTokens != 100 || p.Stop[0] != "\n\nHuman:" {
		t.Errorf("parameters %+v", p)
	}
}

func TestLegacyPromptSplit(t *testing.T) {
	msgs := splitHumanAssistant("\n\nHuman: Hello there\n\nAssistant: Hi!\n\nHuman: Tell me more\n\nAssistant:")
	var got []string
	for _, m := range msgs {
		got = append(got, m.Role+":"+m.Content)
	}
	want := []string{"user:Hello there", "assistant:Hi!", "user:Tell me more"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestResponsesRequestItems(t *testing.T) {
	res := &Result{Request: &oisp.AIRequest{}}
	decodeOpenAIResponsesRequest([]byte(`{"model":"gpt-5","instructions":"Be terse.","max_output_tokens":50,
		"input":[{"role":"developer","content":"Rules."},{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"data:"}]},
		{"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"call_1","output":"done"}],
		"tools":[{"type":"function","name":"f"},{"type":"web_search_preview"},{"type":"file_search"}],"tool_choice":"required"}`), res)
	req := res.Request
	var got []string
	for _, m := range req.Messages {
		got = append(got, m.Role+"/"+m.OriginalRole+":"+m.Content)
	}
	want := []string{"system/:Be terse.", "system/developer:Rules.", "user/:hi", "tool/:done"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if req.SystemPromptHash != oisp.Hash("Be terse.\nRules.") || req.ImageCount != 1 || req.ToolChoice != "required" || *req.Parameters.MaxTokens != 50 {
		t.Errorf("request %+v", req)
	}
	if len(res.ToolResults) != 1 || res.ToolResults[0].CallID != "call_1" || res.ToolResults[0].Content != "done" {
		t.Errorf("tool results %+v", res.ToolResults)
	}
	var tools []string
	for _, tl := range req.Tools {
		tools = append(tools, tl.Name+":"+tl.Type)
	}
	if diff := cmp.Diff([]string{"f:function", "web_search_preview:other", "file_search:file_search"}, tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
}

func TestCountArray(t *testing.T) {
	for in, want := range map[string]int{
		`[]`: 0, `[1]`: 1, `[1,2,3]`: 3, ` [ 0.1 , -2e-3 ]`: 2, `[[1,2],[3]]`: 2, `["a,b","c]"]`: 2,
		`[{"a":[1,2]},{}]`: 2, `[1,2`: -1, `{}`: -1, ``: -1,
	} {
		if got := countArray([]byte(in)); got != want {
			t.Errorf("countArray(%q) = %d, want %d", in, got, want)
		}
	}
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func TestOpenAITranscriptionMultipart(t *testing.T) {
	reg := coreRegistry(t)
	body := "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF....WAVE\r\n" +
		"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o-transcribe\r\n--XyZ--\r\n"
	x := coreExchange("https://api.openai.com/v1/audio/transcriptions", body, 200,
		`{"text":"Hello world.","usage":{"type":"tokens","input_tokens":14,"output_tokens":4,"total_tokens":18}}`)
	x.Request.Header.Set("Content-Type", "multipart/form-data; boundary=XyZ")
	x.Response.Header.Set("Content-Type", "application/json")
	res := coreDecode(t, reg, x)
	f := coreFactsOf(res)
	want := coreFacts{API: apiOpenAIAudio, Provider: "openai", RequestModel: "gpt-4o-transcribe", RequestType: "audio",
		Status: 200, Success: true, AnsweredModel: "gpt-4o-transcribe", Content: "Hello world.", Finish: "stop",
		Usage: "14/4/18 cached - write - reasoning -", Cost: "unknown", Latency: 210}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestCoreEventsSchemaValid wraps every decoded request, response and
// embedding of the recorded exchanges (and of the fuzz-shaped tolerance
// cases) in an envelope and validates it against the OISP v0.1 schema in
// branch mode.
func TestCoreEventsSchemaValid(t *testing.T) {
	v, err := spec.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	reg := coreRegistry(t)
	b := oisp.NewBuilder(oisp.BuilderOptions{Host: &oisp.Host{OS: "linux", Arch: "x86_64"}})
	checked := 0
	files, _ := filepath.Glob("testdata/openai/*.json")
	more, _ := filepath.Glob("testdata/anthropic/*.json")
	for _, file := range append(files, more...) {
		res := coreDecode(t, reg, loadCoreRecording(t, strings.TrimPrefix(file, "testdata/")).exchange())
		events := []*oisp.Event{b.New(oisp.TypeAIRequest, coreEpoch, "other", res.Request)}
		if res.Response != nil {
			events = append(events, b.New(oisp.TypeAIResponse, coreEpoch, "other", res.Response))
		}
		if res.Embedding != nil {
			events = append(events, b.New(oisp.TypeAIEmbedding, coreEpoch, "other", res.Embedding))
		}
		for _, ev := range events {
			checked++
			if err := v.ValidateValue(ev); err != nil {
				t.Errorf("%s %s: %v", file, ev.EventType, err)
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d events checked", checked)
	}
	// Control: the validator does reject a value outside an enum.
	bad := b.New(oisp.TypeAIResponse, coreEpoch, "other", &oisp.AIResponse{FinishReason: "end_turn"})
	if v.ValidateValue(bad) == nil {
		t.Fatal("validator accepted finish_reason end_turn")
	}
}

// TestModelLookupMemo: lookups are memoised up to a bound and stay correct
// from many goroutines (run with -race).
func TestModelLookupMemo(t *testing.T) {
	reg := coreRegistry(t)
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- true }()
			for i := 0; i < maxMemo; i++ {
				id := "nonexistent-" + itoa(g) + "-" + itoa(i)
				if _, ok := reg.Model("openai", id); ok {
					t.Errorf("found %s", id)
					return
				}
				if m, ok := reg.Model("openai", "gpt-4o-2024-08-06"); !ok || m.ID != "gpt-4o-2024-08-06" {
					t.Errorf("gpt-4o-2024-08-06: %+v %v", m, ok)
					return
				}
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	if n := reg.models.memoed.Load(); n > maxMemo {
		t.Errorf("memo holds %d entries, bound %d", n, maxMemo)
	}
}

// TestNotesCounted: decode problems reach the stats recorder.
func TestNotesCounted(t *testing.T) {
	reg := coreRegistry(t)
	x := coreExchange("https://api.openai.com/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, 200, `<html>oops</html>`)
	tg, _ := reg.Lookup(x.Request.Authority, 0)
	var c stats.Counters
	res, err := openaiChatAPI{}.Decode(tg, x, Env{Registry: reg, Stats: &c})
	if err != nil || !res.Partial {
		t.Fatalf("err %v partial %v", err, res.Partial)
	}
	if got := c.Get("provider." + noteResponseNotJSON); got != 1 {
		t.Errorf("provider.%s counted %d times, want 1", noteResponseNotJSON, got)
	}
}

// TestAuthSchemeCase: authorization schemes are told apart in any case.
func TestAuthSchemeCase(t *testing.T) {
	for _, scheme := range []string{"bearer", "Bearer", "BEARER", "bEaReR", "Token", "TOKEN", "toKen", "token"} {
		h := httpmsg.Header{}
		h.Set("Authorization", scheme+" sk-proj-abcdefghijklmnop")
		if a := authOf(h); a == nil || a.Type != "api_key" || a.KeyPrefix == "" {
			t.Errorf("%s credentials: auth %+v", scheme, a)
		}
	}
	for _, scheme := range []string{"Digest", "bearerx", "Negotiate"} {
		h := httpmsg.Header{}
		h.Set("Authorization", scheme+" sk-proj-abcdefghijklmnop")
		if a := authOf(h); a == nil || a.Type != "unknown" || a.KeyPrefix != "" {
			t.Errorf("%s credentials: auth %+v", scheme, a)
		}
	}
	h := httpmsg.Header{}
	h.Set("Authorization", "BASIC dXNlcjpwYXNz")
	if a := authOf(h); a == nil || a.Type != "unknown" || a.KeyPrefix != "" {
		t.Errorf("basic credentials: auth %+v", a)
	}
	h.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request")
	if a := authOf(h); a == nil || a.Type != "service_account" {
		t.Errorf("sigv4 credentials: auth %+v", a)
	}
}

// TestEveryAPINotesResponseBodyProblems: whatever the API, a response body
// that was cut at the cap, did not finish, or could not be content-decoded
// is noted on the result (and so marks its events partial).
func TestEveryAPINotesResponseBodyProblems(t *testing.T) {
	reg := coreRegistry(t)
	for _, c := range everyAPICases() {
		x := coreExchange(c.url, c.body, 200, `{}`)
		name, tg := coreMatch(reg, x)
		if name != c.api {
			t.Errorf("%s: matched %q, want %q", c.url, name, c.api)
			continue
		}
		api := apiNamed(t, name)
		x.Response.Body.Truncated = true
		x.Response.Body.DecodeError = "gzip: invalid header"
		x.Response.Complete = false
		res, err := api.Decode(tg, x, Env{Registry: reg})
		if err != nil {
			t.Errorf("%s (%s): %v", c.url, name, err)
			continue
		}
		for _, want := range []string{noteResponseTruncated, noteResponseIncomplete, noteContentDecodeError} {
			if !slices.Contains(res.Notes, want) {
				t.Errorf("%s (%s): notes %v lack %s", c.url, name, res.Notes, want)
			}
		}
		if !res.Partial {
			t.Errorf("%s (%s): not partial", c.url, name)
		}
	}
}
