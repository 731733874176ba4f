package provider

import (
	"testing"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// TestHuggingFaceInference decodes the cases the recordings (all 404s of
// the retired host) do not show: answers as a list and as one object,
// details, TGI streams (a special token, a cut), in-band and loading
// errors, the router's path, and the routes left to other decoders.
func TestHuggingFaceInference(t *testing.T) {
	reg := coreRegistry(t)
	const api = "https://api-inference.huggingface.co/models/HuggingFaceH4/zephyr-7b-beta"
	tok := func(text string, special bool) string {
		s := "false"
		if special {
			s = "true"
		}
		return `data:{"index":1,"token":{"id":1,"text":"` + text + `","logprob":-0.5,"special":` + s + `},"generated_text":null,"details":null}` + "\n\n"
	}
	tests := []struct {
		name, url, req, resp string
		status               int
		sse                  bool
		model, text, finish  string
		tokens               int
		errMsg               string
		ended                bool
	}{
		{name: "list with details", url: api, status: 200,
			req:   `{"inputs":"Hello","parameters":{"max_new_tokens":3,"details":true,"return_full_text":false}}`,
			resp:  `[{"generated_text":" there, friend","details":{"finish_reason":"length","generated_tokens":3,"seed":null,"prefill":[],"tokens":[]}}]`,
			model: "HuggingFaceH4/zephyr-7b-beta", text: " there, friend", finish: "length", tokens: 3},
		{name: "one object", url: "https://router.huggingface.co/hf-inference/models/gpt2", status: 200,
			req: `{"inputs":"Hello"}`, resp: `{"generated_text":"Hello world"}`,
			model: "gpt2", text: "Hello world"},
		{name: "stream", url: api, status: 200, sse: true,
			req:   `{"inputs":"Hi","stream":true}`,
			resp:  tok("Hel", false) + tok("lo", false) + tok("</s>", true) + `data:{"index":3,"token":{"id":2,"text":"</s>","special":true},"generated_text":"Hello","details":{"finish_reason":"eos_token","generated_tokens":3}}` + "\n\n",
			model: "HuggingFaceH4/zephyr-7b-beta", text: "Hello", finish: "stop", tokens: 3, ended: true},
		{name: "stream cut", url: api, status: 200, sse: true,
			req: `{"inputs":"Hi","stream":true}`, resp: tok("Hel", false) + tok("lo", false) + tok("</s>", true),
			model: "HuggingFaceH4/zephyr-7b-beta", text: "Hello"},
		{name: "error event in a stream", url: api, status: 200, sse: true,
			req: `{"inputs":"Hi","stream":true}`, resp: tok("Hel", false) + `data:{"error":"Input validation error","error_type":"validation"}` + "\n\n",
			model: "HuggingFaceH4/zephyr-7b-beta", errMsg: "Input validation error"},
		{name: "model loading", url: api, status: 503,
			req: `{"inputs":"Hi"}`, resp: `{"error":"Model HuggingFaceH4/zephyr-7b-beta is currently loading","estimated_time":20.0}`,
			model: "HuggingFaceH4/zephyr-7b-beta", errMsg: "Model HuggingFaceH4/zephyr-7b-beta is currently loading"},
		{name: "errors list", url: api, status: 400,
			req: `{"inputs":"Hi"}`, resp: `{"error":["Error in inputs: field required"]}`,
			model: "HuggingFaceH4/zephyr-7b-beta", errMsg: `["Error in inputs: field required"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := decodeCase(t, reg, everyAPICase{api: apiHuggingFaceInference}, tc.url, tc.req, tc.status, tc.resp, func(x *httpmsg.Exchange) {
				if tc.sse {
					x.Response.Header.Set("Content-Type", "text/event-stream")
				}
			})
			req, resp := res.Request, res.Response
			if req.Model == nil || req.Model.ID != tc.model || resp.Model == nil || resp.Model.ID != tc.model {
				t.Errorf("models %+v %+v, want %q", req.Model, resp.Model, tc.model)
			}
			if len(req.Messages) != 1 || req.Messages[0].Role != "user" || req.RequestType != "completion" {
				t.Errorf("request %s", jsonOf(t, req))
			}
			if tc.errMsg != "" {
				if *resp.Success || resp.Error == nil || resp.Error.Message != tc.errMsg || len(resp.Choices) != 0 {
					t.Errorf("response %s, want failure %q", jsonOf(t, resp), tc.errMsg)
				}
				return
			}
			if !*resp.Success || len(resp.Choices) != 1 || resp.Choices[0].Message.Content != tc.text || resp.FinishReason != tc.finish {
				t.Errorf("response %s, want %q finished %q", jsonOf(t, resp), tc.text, tc.finish)
			}
			switch {
			case tc.tokens == 0 && resp.Usage != nil:
				t.Errorf("usage %s invented", jsonOf(t, resp.Usage))
			case tc.tokens > 0 && (resp.Usage == nil || resp.Usage.CompletionTokens == nil || *resp.Usage.CompletionTokens != tc.tokens):
				t.Errorf("usage %s, want %d completion tokens", jsonOf(t, resp.Usage), tc.tokens)
			}
			if tc.sse && (res.StreamEnded != tc.ended || res.Partial == tc.ended) {
				t.Errorf("stream ended %v partial %v (notes %v), want ended %v", res.StreamEnded, res.Partial, res.Notes, tc.ended)
			}
		})
	}
	// Routes of the same hosts that are not serverless text generation.
	for url, want := range map[string]string{
		"https://api-inference.huggingface.co/models/HuggingFaceH4/zephyr-7b-beta/v1/chat/completions": apiOpenAIChat,
		"https://router.huggingface.co/v1/chat/completions":                                            apiOpenAIChat,
		"https://router.huggingface.co/hyperbolic/v1/chat/completions":                                 apiOpenAIChat,
		"https://api-inference.huggingface.co/models/":                                                 "",
	} {
		x := coreExchange(url, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 200, `{}`)
		if got, _ := coreMatch(reg, x); got != want {
			t.Errorf("%s matched %q, want %q", url, got, want)
		}
	}
}

func FuzzHuggingFaceInference(f *testing.F) {
	f.Add(`{"inputs":"Hello","parameters":{"max_new_tokens":3}}`, `[{"generated_text":"Hello there","details":{"finish_reason":"length","generated_tokens":3}}]`, uint16(200))
	f.Add(`{"inputs":"Hi","stream":true}`, "data:{\"token\":{\"text\":\"yo\",\"special\":false},\"generated_text\":null}\n\ndata:{\"token\":{\"text\":\"</s>\",\"special\":true},\"generated_text\":\"yo\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2}}\n\n", uint16(200))
	f.Add(`{"inputs":"Hi"}`, `{"error":"Model is currently loading","estimated_time":20.0}`, uint16(503))
	f.Add(`{"inputs":"Hi"}`, `Not Found`, uint16(404))
	f.Fuzz(func(t *testing.T, reqBody, respBody string, status uint16) {
		fuzzDecode(t, huggingFaceInferenceAPI{}, "https://api-inference.huggingface.co/models/HuggingFaceH4/zephyr-7b-beta", reqBody, respBody, status)
	})
}
