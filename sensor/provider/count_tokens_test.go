package provider

import (
	"encoding/base64"
	"slices"
	"testing"
)

// TestCountTokensAPIs decodes the token-counting endpoints that have no
// fixture for the case: both Bedrock input forms, a broken invokeModel
// body, and an answer without a count.
func TestCountTokensAPIs(t *testing.T) {
	reg := coreRegistry(t)
	bedrock := "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-sonnet-4-20250514-v1%3A0/count-tokens"
	invoke := base64.StdEncoding.EncodeToString([]byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"How many?"}]}`))
	tests := []struct {
		name, api, url, req, resp string
		status                    int
		messages                  []string // role: content
		tokens                    int      // 0: no usage
		note                      string
	}{
		{name: "bedrock converse", api: apiBedrockCountTokens, url: bedrock, status: 200,
			req:  `{"input":{"converse":{"system":[{"text":"Be brief."}],"messages":[{"role":"user","content":[{"text":"How many?"}]}]}}}`,
			resp: `{"inputTokens":21}`, messages: []string{"system: Be brief.", "user: How many?"}, tokens: 21},
		{name: "bedrock invokeModel", api: apiBedrockCountTokens, url: bedrock, status: 200,
			req:  `{"input":{"invokeModel":{"body":"` + invoke + `"}}}`,
			resp: `{"inputTokens":18}`, messages: []string{"system: Be brief.", "user: How many?"}, tokens: 18},
		{name: "bedrock invokeModel not base64", api: apiBedrockCountTokens, url: bedrock, status: 200,
			req:  `{"input":{"invokeModel":{"body":"{not base64}"}}}`,
			resp: `{"inputTokens":18}`, tokens: 18, note: noteRequestNotJSON},
		{name: "bedrock answer without a count", api: apiBedrockCountTokens, url: bedrock, status: 200,
			req:  `{"input":{"converse":{"messages":[{"role":"user","content":[{"text":"hi"}]}]}}}`,
			resp: `{}`, messages: []string{"user: hi"}},
		{name: "openai with instructions", api: apiOpenAIInputTokens, url: "https://api.openai.com/v1/responses/input_tokens", status: 200,
			req:  `{"model":"gpt-4.1-mini","instructions":"Be brief.","input":"How many?"}`,
			resp: `{"object":"response.input_tokens","input_tokens":12}`, messages: []string{"system: Be brief.", "user: How many?"}, tokens: 12},
		{name: "openai error in a 200", api: apiOpenAIInputTokens, url: "https://api.openai.com/v1/responses/input_tokens", status: 200,
			req:  `{"model":"gpt-4.1-mini","input":"hi"}`,
			resp: `{"error":{"type":"server_error","message":"try again"}}`, messages: []string{"user: hi"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := decodeCase(t, reg, everyAPICase{api: tc.api}, tc.url, tc.req, tc.status, tc.resp, nil)
			req := res.Request
			if req.RequestType != "other" || req.Streaming == nil || *req.Streaming {
				t.Errorf("request_type %q streaming %v, want other and false", req.RequestType, req.Streaming)
			}
			var got []string
			for _, m := range req.Messages {
				got = append(got, m.Role+": "+m.Content)
			}
			if !slices.Equal(got, tc.messages) {
				t.Errorf("messages %q, want %q", got, tc.messages)
			}
			resp := res.Response
			if req.Model == nil || resp.Model == nil || resp.Model.ID != req.Model.ID {
				t.Errorf("response model %+v, want the request's %+v", resp.Model, req.Model)
			}
			switch {
			case tc.tokens == 0 && resp.Usage != nil:
				t.Errorf("usage %+v invented", resp.Usage)
			case tc.tokens > 0 && (resp.Usage == nil || *resp.Usage.PromptTokens != tc.tokens || *resp.Usage.TotalTokens != tc.tokens || resp.Usage.CompletionTokens != nil):
				t.Errorf("usage %+v, want %d prompt tokens", resp.Usage, tc.tokens)
			}
			if req.EstimatedTokens != tc.tokens {
				t.Errorf("estimated_tokens %d, want %d", req.EstimatedTokens, tc.tokens)
			}
			if resp.Usage != nil && (resp.Usage.TotalCostUSD != nil || resp.Usage.Cost != "") {
				t.Errorf("counting priced: %+v", resp.Usage)
			}
			wantFail := tc.name == "openai error in a 200"
			if *resp.Success == wantFail || (resp.Error != nil) != wantFail {
				t.Errorf("success %v error %+v", *resp.Success, resp.Error)
			}
			if tc.note != "" && !slices.Contains(res.Notes, tc.note) {
				t.Errorf("notes %v lack %s", res.Notes, tc.note)
			}
			if tc.api == apiBedrockCountTokens && req.Provider.Region != "us-west-2" {
				t.Errorf("region %q", req.Provider.Region)
			}
		})
	}
}
