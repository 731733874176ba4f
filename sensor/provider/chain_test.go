package provider

import "testing"

// TestChain: what each request continues and what its answer can be
// continued by, for the APIs whose requests build on provider-held state.
func TestChain(t *testing.T) {
	reg := coreRegistry(t)
	const (
		responses = "https://api.openai.com/v1/responses"
		compact   = "https://api.openai.com/v1/responses/compact"
		answer    = `{"id":"resp_2","object":"response","model":"gpt-4.1","status":"completed","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"6"}]}]}`
		compacted = `{"id":"resp_c","object":"response.compaction","output":[{"type":"message","role":"user","content":[{"type":"input_text","text":"What is 2+2?"}]},{"type":"compaction","id":"cmp_1","encrypted_content":"gAAA"}],"usage":{"input_tokens":156,"output_tokens":190,"total_tokens":346}}`
	)
	for _, c := range []struct {
		name, url, req       string
		status               int
		resp                 string
		continues, continued string
	}{
		{"first turn", responses, `{"model":"gpt-4.1","input":"hi"}`, 200, answer, "", "resp_2"},
		{"previous response", responses, `{"model":"gpt-4.1","input":"and?","previous_response_id":"resp_1"}`, 200, answer, "resp_1", "resp_2"},
		{"conversation id", responses, `{"model":"gpt-4.1","input":"and?","conversation":"conv_9","previous_response_id":"resp_1"}`, 200, answer, "conv_9", "resp_2"},
		{"conversation object", responses, `{"model":"gpt-4.1","input":"and?","conversation":{"id":"conv_9"}}`, 200, answer, "conv_9", "resp_2"},
		{"compacted history", responses, `{"model":"gpt-4.1","input":[{"type":"compaction","id":"cmp_1","encrypted_content":"gAAA"},{"role":"user","content":"And 4+4?"}]}`, 200, answer, "cmp_1", "resp_2"},
		{"compaction", compact, `{"model":"gpt-4.1","previous_response_id":"resp_2"}`, 200, compacted, "resp_2", "cmp_1"},
		{"failed compaction", compact, `{"model":"gpt-4.1","input":"x"}`, 400, `{"error":{"type":"invalid_request_error","message":"no"}}`, "", ""},
		{"interaction", "https://generativelanguage.googleapis.com/v1beta/interactions", `{"model":"gemini-3-flash-preview","input":"and?","previous_interaction_id":"int_1"}`, 200,
			`{"id":"int_2","model":"gemini-3-flash-preview","status":"completed","outputs":[{"type":"text","text":"ok"}]}`, "int_1", "int_2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := coreExchange(c.url, c.req, c.status, c.resp)
			name, tg := coreMatch(reg, x)
			res, err := apiNamed(t, name).Decode(tg, x, Env{Registry: reg})
			if err != nil {
				t.Fatal(err)
			}
			if res.Chain == nil {
				t.Fatalf("%s: no chain", name)
			}
			if res.Chain.Continues != c.continues || res.Chain.ContinuedBy != c.continued {
				t.Errorf("%s: continues %q, continued by %q; want %q, %q", name, res.Chain.Continues, res.Chain.ContinuedBy, c.continues, c.continued)
			}
			if name == apiOpenAIResponsesCompact && c.status == 200 {
				r := res.Response
				if len(r.Choices) != 0 || r.Usage == nil || r.Usage.PromptTokens == nil || *r.Usage.PromptTokens != 156 || r.FinishReason != "stop" {
					t.Errorf("compaction answer: choices %v usage %+v finish %q; want no choice (the output echoes the user), 156 input tokens, stop",
						r.Choices, r.Usage, r.FinishReason)
				}
			}
		})
	}
	x := coreExchange("https://api.openai.com/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 200, `{"id":"chatcmpl-1","choices":[]}`)
	name, tg := coreMatch(reg, x)
	if res, _ := apiNamed(t, name).Decode(tg, x, Env{Registry: reg}); res.Chain != nil {
		t.Errorf("chat completions has a chain %+v: the provider keeps no state for it", res.Chain)
	}
}
