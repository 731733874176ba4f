package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

func responsesRequest(body string) string {
	return strings.Replace(httpRequest(body), "/v1/chat/completions", "/v1/responses", 1)
}

func responsesTurn(input, previous, conversation string) string {
	extra := ""
	if previous != "" {
		extra += fmt.Sprintf(`,"previous_response_id":%q`, previous)
	}
	if conversation != "" {
		extra += `,"conversation":` + conversation
	}
	return responsesRequest(fmt.Sprintf(`{"model":"gpt-4.1","input":[{"role":"user","content":%q}]%s}`, input, extra))
}

func responsesAnswer(id, text string) string {
	return httpResponse(fmt.Sprintf(`{"id":%q,"object":"response","model":"gpt-4.1","status":"completed","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":%q}]}],"usage":{"input_tokens":5,"output_tokens":2}}`, id, text))
}

func conversationsOf(t *testing.T, mem *memory) []string {
	t.Helper()
	var out []string
	for _, ev := range mem.ofType(oisp.TypeAIRequest) {
		out = append(out, ev.Data.(*oisp.AIRequest).ConversationID)
	}
	for i, ev := range mem.ofType(oisp.TypeAIResponse) {
		if got := ev.Data.(*oisp.AIResponse).ConversationID; got != out[i] {
			t.Errorf("response %d in conversation %q, its request in %q", i, got, out[i])
		}
	}
	return out
}

// TestContinuedResponsesShareTheConversation: a Responses API turn that
// continues the previous response by id sends only the new message; it
// belongs to the conversation of the response it continues, on any
// connection, instead of starting one per turn.
func TestContinuedResponsesShareTheConversation(t *testing.T) {
	p, mem := newTestPipeline(t, ContentFull)
	runFlow(p, "f1", 42,
		[2]string{responsesTurn("What is 2+2?", "", ""), responsesAnswer("resp_1", "4")},
		[2]string{responsesTurn("And 3+3?", "resp_1", ""), responsesAnswer("resp_2", "6")})
	// The next turn on a new connection.
	runFlow(p, "f2", 42, [2]string{responsesTurn("And 4+4?", "resp_2", ""), responsesAnswer("resp_3", "8")})
	// A new conversation in the same process.
	runFlow(p, "f3", 42, [2]string{responsesTurn("Name a colour.", "", ""), responsesAnswer("resp_9", "Red")})
	conv := conversationsOf(t, mem)
	if len(conv) != 4 {
		t.Fatalf("%d requests, want 4", len(conv))
	}
	if conv[0] == "" || conv[1] != conv[0] || conv[2] != conv[0] {
		t.Errorf("a chain of continued responses split into conversations %q", conv[:3])
	}
	if conv[3] == conv[0] {
		t.Errorf("an unrelated request joined the chain's conversation %q", conv[3])
	}
	if n := p.Stats().Get("ai.continues_unseen"); n != 0 {
		t.Errorf("ai.continues_unseen = %d, want 0: every continued response was seen", n)
	}
	validateAll(t, mem.events)
}

// TestContinuesWithoutTheResponse: turns that continue state the sensor
// never saw (a provider-held conversation, or a chain begun before
// capture) still share one conversation per state id and process.
func TestContinuesWithoutTheResponse(t *testing.T) {
	p, mem := newTestPipeline(t, ContentFull)
	runFlow(p, "f1", 42,
		[2]string{responsesTurn("one", "", `"conv_abc"`), responsesAnswer("resp_1", "1")},
		[2]string{responsesTurn("two", "", `{"id":"conv_abc"}`), responsesAnswer("resp_2", "2")},
		// A chain begun before capture: its first turn seen continues an
		// unseen response, the next continues that turn's.
		[2]string{responsesTurn("three", "resp_before", ""), responsesAnswer("resp_3", "3")},
		[2]string{responsesTurn("four", "resp_3", ""), responsesAnswer("resp_4", "4")})
	// Another process naming the same conversation (ids the provider
	// gave another client) is kept apart only by its pid.
	runFlow(p, "f2", 43, [2]string{responsesTurn("five", "", `"conv_abc"`), responsesAnswer("resp_5", "5")})
	conv := conversationsOf(t, mem)
	if len(conv) != 5 {
		t.Fatalf("%d requests, want 5", len(conv))
	}
	if conv[0] == "" || conv[1] != conv[0] {
		t.Errorf("the turns of a provider-held conversation (id as a string and as an object) split: %q", conv[:2])
	}
	if conv[2] == conv[0] || conv[3] != conv[2] {
		t.Errorf("a chain begun before capture: %q, want its two turns together and apart from the first conversation", conv[:4])
	}
	if conv[4] == conv[0] {
		t.Errorf("another process's request joined this process's conversation %q", conv[4])
	}
	if n := p.Stats().Get("ai.continues_unseen"); n != 4 {
		t.Errorf("ai.continues_unseen = %d, want 4 (three conv_abc turns and resp_before)", n)
	}
}

// TestFailedResponseIsNotContinued: an answer that failed leaves nothing
// to continue, and its id (a header's request id) joins no conversation.
func TestFailedResponseIsNotContinued(t *testing.T) {
	p, mem := newTestPipeline(t, ContentFull)
	failed := strings.Replace(httpResponse(`{"error":{"type":"server_error","message":"boom"}}`), "200 OK", "500 Internal Server Error", 1)
	runFlow(p, "f1", 42,
		[2]string{responsesTurn("one", "", ""), failed},
		[2]string{responsesTurn("two", "req_abc", ""), responsesAnswer("resp_2", "2")})
	conv := conversationsOf(t, mem)
	if len(conv) != 2 || conv[1] == conv[0] {
		t.Errorf("conversations %q: a turn continuing a failed answer's header id joined its conversation", conv)
	}
}

// TestChainsKeepNoHugeID: an answer naming an absurdly long id is not
// remembered, so the table's memory stays bounded by its entry count.
func TestChainsKeepNoHugeID(t *testing.T) {
	c := newChains(4)
	c.remember(nil, strings.Repeat("r", maxChainID+1), "conv_x")
	c.remember(nil, "resp_ok", "conv_y")
	if c.ids.Len() != 1 {
		t.Errorf("%d entries, want only the ordinary id", c.ids.Len())
	}
}
