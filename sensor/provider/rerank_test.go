package provider

import (
	"testing"
)

// TestRerank decodes the rerank cases the fixtures do not show: errors in
// both providers' formats, documents given as objects, Cohere's token
// counts beside its search units, and a request without documents.
func TestRerank(t *testing.T) {
	reg := coreRegistry(t)
	cohere, voyage := "https://api.cohere.com/v1/rerank", "https://api.voyageai.com/v1/rerank"
	tests := []struct {
		name, url, api, req, resp string
		status                    int
		inputs                    int
		query, model, errMsg      string
		tokens                    int // 0: no usage
	}{
		{name: "cohere documents as objects", url: cohere, api: apiCohereRerank, status: 200,
			req:    `{"model":"rerank-english-v3.0","query":"capital?","documents":[{"text":"a"},{"text":"b"},{"text":"c"}],"rank_fields":["text"]}`,
			resp:   `{"id":"r1","results":[{"index":2,"relevance_score":0.9}],"meta":{"billed_units":{"search_units":1},"tokens":{"input_tokens":40}}}`,
			inputs: 3, query: "capital?", model: "rerank-english-v3.0", tokens: 40},
		{name: "cohere search units only", url: "https://api.cohere.ai/v2/rerank", api: apiCohereRerank, status: 200,
			req:    `{"model":"rerank-v3.5","query":"q","documents":["a"]}`,
			resp:   `{"id":"r2","results":[{"index":0,"relevance_score":0.5}],"meta":{"billed_units":{"search_units":1}}}`,
			inputs: 1, query: "q", model: "rerank-v3.5"},
		{name: "cohere error", url: cohere, api: apiCohereRerank, status: 400,
			req:   `{"model":"rerank-english-v3.0","query":"q","documents":[]}`,
			resp:  `{"id":"e","message":"invalid request: list of documents must not be empty"}`,
			query: "q", model: "rerank-english-v3.0", errMsg: "invalid request: list of documents must not be empty"},
		{name: "voyage error", url: voyage, api: apiVoyageRerank, status: 400,
			req:    `{"model":"nonexistent","query":"q","documents":["a","b"]}`,
			resp:   `{"detail":"Model nonexistent is not supported."}`,
			inputs: 2, query: "q", model: "nonexistent", errMsg: "Model nonexistent is not supported."},
		{name: "voyage validation error list", url: voyage, api: apiVoyageRerank, status: 422,
			req:    `{"model":"rerank-2","documents":["a"]}`,
			resp:   `{"detail":[{"loc":["body","query"],"msg":"field required"}]}`,
			inputs: 1, model: "rerank-2", errMsg: `[{"loc":["body","query"],"msg":"field required"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := decodeCase(t, reg, everyAPICase{api: tc.api}, tc.url, tc.req, tc.status, tc.resp, nil)
			req, resp := res.Request, res.Response
			if req.RequestType != "other" || req.Endpoint != tc.api || req.InputCount != tc.inputs {
				t.Errorf("request_type %q endpoint %q input_count %d, want other, %s, %d", req.RequestType, req.Endpoint, req.InputCount, tc.api, tc.inputs)
			}
			switch {
			case tc.query == "" && len(req.Messages) != 0:
				t.Errorf("messages %+v without a query", req.Messages)
			case tc.query != "" && (len(req.Messages) != 1 || req.Messages[0].Role != "user" || req.Messages[0].Content != tc.query):
				t.Errorf("messages %+v, want the query %q as the user's", req.Messages, tc.query)
			}
			if resp.Model == nil || resp.Model.ID != tc.model {
				t.Errorf("response model %+v, want %q", resp.Model, tc.model)
			}
			if tc.errMsg != "" {
				if *resp.Success || resp.Error == nil || resp.Error.Message != tc.errMsg {
					t.Errorf("success %v error %+v, want failure %q", *resp.Success, resp.Error, tc.errMsg)
				}
				return
			}
			if !*resp.Success || resp.Error != nil || res.Partial {
				t.Errorf("success %v error %+v notes %v", *resp.Success, resp.Error, res.Notes)
			}
			switch {
			case tc.tokens == 0 && resp.Usage != nil:
				t.Errorf("usage %+v from search units", resp.Usage)
			case tc.tokens > 0 && (resp.Usage == nil || *resp.Usage.PromptTokens != tc.tokens || resp.Usage.CompletionTokens != nil && *resp.Usage.CompletionTokens != 0):
				t.Errorf("usage %+v, want %d input tokens", resp.Usage, tc.tokens)
			}
		})
	}
}

func FuzzRerank(f *testing.F) {
	f.Add(`{"model":"rerank-english-v3.0","query":"q","documents":["a",{"text":"b"}],"top_n":1}`,
		`{"id":"r","results":[{"index":1,"relevance_score":0.9}],"meta":{"billed_units":{"search_units":1}}}`, uint16(200))
	f.Add(`{"model":"rerank-2-lite","query":"q","documents":["a"],"top_k":1}`,
		`{"object":"list","data":[{"relevance_score":0.7,"index":0}],"model":"rerank-2-lite","usage":{"total_tokens":9}}`, uint16(200))
	f.Add(`{"model":"x","query":"q","documents":["a"]}`, `{"detail":[{"msg":"bad"}]}`, uint16(422))
	f.Fuzz(func(t *testing.T, reqBody, respBody string, status uint16) {
		for _, a := range newRerankAPIs() {
			fuzzDecode(t, a, "https://api.cohere.com/v2/rerank", reqBody, respBody, status)
		}
	})
}
