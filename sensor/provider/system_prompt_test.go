package provider

import (
	"testing"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// TestSystemPromptHash holds the decoders that set the system prompt once
// every message is in (taking the system message's hash) to the prompt's
// own hash, with and without other messages of the same text.
func TestSystemPromptHash(t *testing.T) {
	for _, c := range []struct {
		name   string
		decode func([]byte, *Result)
		body   string
		system string
	}{
		{"anthropic", func(b []byte, r *Result) { decodeAnthropicRequest(b, r) },
			`{"model":"m","system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Be kind."}],"messages":[{"role":"user","content":"Be brief.\nBe kind."},{"role":"assistant","content":"ok"}]}`,
			"Be brief.\nBe kind."},
		{"anthropic legacy", func(b []byte, r *Result) { decodeAnthropicRequest(b, r) },
			`{"model":"m","system":"Rules.","prompt":"\n\nHuman: hi\n\nAssistant:"}`, "Rules."},
		{"gemini", decodeGeminiRequest,
			`{"systemInstruction":{"parts":[{"text":"Be terse."}]},"contents":[{"role":"user","parts":[{"text":"hi"}]},{"role":"model","parts":[{"text":"Be terse."}]}]}`,
			"Be terse."},
		{"gemini string", decodeGeminiRequest, `{"system_instruction":"Plain.","contents":{"parts":[{"text":"q"}]}}`, "Plain."},
		{"gemini interactions", func(b []byte, r *Result) { decodeInteractionsRequest(b, r) },
			`{"model":"gemini-2.5-flash","system_instruction":"Be exact.","input":"Be exact."}`, "Be exact."},
	} {
		res := &Result{Request: &oisp.AIRequest{}}
		c.decode([]byte(c.body), res)
		req := res.Request
		if !req.HasSystemPrompt || req.SystemPromptHash != oisp.Hash(c.system) || len(req.Messages) < 2 ||
			req.Messages[0].Role != "system" || req.Messages[0].ContentHash != req.SystemPromptHash {
			t.Errorf("%s: system prompt %v %q, messages %+v", c.name, req.HasSystemPrompt, req.SystemPromptHash, req.Messages)
		}
		for i, m := range req.Messages {
			if m.Content != "" && m.ContentHash != oisp.Hash(m.Content) {
				t.Errorf("%s: message %d hash %q, want %q", c.name, i, m.ContentHash, oisp.Hash(m.Content))
			}
		}
	}
}
