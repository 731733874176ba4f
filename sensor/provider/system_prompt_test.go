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

// TestMessageRoom holds the assistant messages made in a messageRoom (the
// hash written into the room's bytes) to hashedMessage's, for every way
// they are made: alone, as a single choice, and rooms reused in turn.
func TestMessageRoom(t *testing.T) {
	contents := []string{"", "x", "a longer answer with\nlines and ünïcode", string(make([]byte, 10000))}
	var rooms [2]messageRoom
	var kept []*oisp.Message
	for i, c := range contents {
		want := hashedMessage("assistant", c, 0)
		if got := assistantMessage(c); *got != want {
			t.Errorf("assistantMessage(%.20q) = %+v; want %+v", c, *got, want)
		}
		choices := oneChoice(c, "stop", "end_turn")
		if len(choices) != 1 || *choices[0].Message != want || choices[0].FinishReason != "stop" || choices[0].RawFinishReason != "end_turn" {
			t.Errorf("oneChoice(%.20q) = %+v", c, choices)
		}
		if got := rooms[i%2].assistant(c); *got != want {
			t.Errorf("room %d: %+v; want %+v", i%2, *got, want)
		}
		kept = append(kept, choices[0].Message)
	}
	for i, m := range kept {
		if want := hashedMessage("assistant", contents[i], 0); *m != want {
			t.Errorf("message %d changed after later ones: %+v; want %+v", i, *m, want)
		}
	}
}
