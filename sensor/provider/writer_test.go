package provider

import (
	"slices"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// TestWriterChatStreamEnd checks when a Writer stream, which sends no
// [DONE], counts as ended: at its usage chunk, and only once every choice
// has finished; and that the piece each chunk carries twice (delta and
// message) is read once.
func TestWriterChatStreamEnd(t *testing.T) {
	reg := coreRegistry(t)
	chunk := func(index int, text, finish string) string {
		fr := "null"
		if finish != "" {
			fr = `"` + finish + `"`
		}
		return `data: {"id":"w","object":"chat.completion.chunk","choices":[{"index":` + string(rune('0'+index)) +
			`,"finish_reason":` + fr + `,"message":{"content":"` + text + `","role":"assistant"},"delta":{"content":"` + text + `","role":"assistant"}}],"model":"palmyra-x4"}` + "\n\n"
	}
	usage := `data: {"id":"w","object":"chat.completion.chunk","choices":[],"model":"palmyra-x4","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}` + "\n\n"
	tests := []struct {
		name, body string
		ended      bool
		texts      []string
	}{
		{"usage after the finish", chunk(0, "Hel", "") + chunk(0, "lo", "stop") + usage, true, []string{"Hello"}},
		{"cut before the usage", chunk(0, "Hel", "") + chunk(0, "lo", "stop"), false, []string{"Hello"}},
		{"usage before the finish", chunk(0, "Hel", "") + usage, false, []string{"Hel"}},
		{"one of two choices unfinished", chunk(0, "a", "stop") + chunk(1, "b", "") + usage, false, []string{"a", "b"}},
		{"both choices finished", chunk(0, "a", "stop") + chunk(1, "b", "length") + usage, true, []string{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := coreExchange("https://api.writer.com/v1/chat", `{"model":"palmyra-x4","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`, 200, tc.body)
			x.Response.Header.Set("Content-Type", "text/event-stream")
			name, tg := coreMatch(reg, x)
			if name != apiWriterChat {
				t.Fatalf("matched %q, want %q", name, apiWriterChat)
			}
			res, err := writerChatAPI{}.Decode(tg, x, Env{Registry: reg})
			if err != nil {
				t.Fatal(err)
			}
			if res.StreamEnded != tc.ended {
				t.Errorf("StreamEnded = %v, want %v (notes %v)", res.StreamEnded, tc.ended, res.Notes)
			}
			if tc.ended == res.Partial {
				t.Errorf("Partial = %v for ended %v (notes %v)", res.Partial, tc.ended, res.Notes)
			}
			var texts []string
			for _, c := range res.Response.Choices {
				texts = append(texts, c.Message.Content)
			}
			if len(texts) != len(tc.texts) {
				t.Fatalf("texts %q, want %q", texts, tc.texts)
			}
			for i := range texts {
				if texts[i] != tc.texts[i] {
					t.Errorf("choice %d text %q, want %q", i, texts[i], tc.texts[i])
				}
			}
		})
	}
	// Cohere's /v1/chat is not Writer's.
	x := coreExchange("https://api.cohere.com/v1/chat", `{"model":"command-r","message":"hi"}`, 200, `{"text":"yo"}`)
	if name, _ := coreMatch(reg, x); name != apiCohereChatV1 {
		t.Errorf("cohere /v1/chat matched %q", name)
	}
}

// TestWriterCompletionsStream checks Writer's streamed completions
// ({"value": …} chunks, no end marker): the text is the values joined,
// and the stream is whole when its body ended, cut when it did not.
func TestWriterCompletionsStream(t *testing.T) {
	reg := coreRegistry(t)
	body := "data: {\"value\":\"Sure\"}\n\ndata: {\"value\":\", here\"}\n\ndata: not json\n\ndata: {\"value\":\"!\"}\n\n"
	for _, complete := range []bool{true, false} {
		res := decodeCase(t, reg, everyAPICase{api: apiWriterCompletions}, "https://api.writer.com/v1/completions",
			`{"model":"palmyra-x4","prompt":"Tell me a joke","stream":true}`, 200, body, func(x *httpmsg.Exchange) {
				x.Response.Header.Set("Content-Type", "text/event-stream")
				x.Response.Complete = complete
			})
		resp := res.Response
		if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "Sure, here!" || resp.StreamEvents != 3 {
			t.Errorf("complete %v: choices %s, %d events", complete, jsonOf(t, resp.Choices), resp.StreamEvents)
		}
		if res.StreamEnded != complete || !slices.Contains(res.Notes, noteStreamBadEvent) ||
			slices.Contains(res.Notes, noteStreamUnterminated) == complete {
			t.Errorf("complete %v: ended %v, notes %v", complete, res.StreamEnded, res.Notes)
		}
	}
}
