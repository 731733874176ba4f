package pipeline

import "github.com/oisp/oisp-sensor/sensor/oisp"

// redactRequest replaces message text with its length and hash.
func redactRequest(r *oisp.AIRequest) {
	msgs := make([]oisp.Message, len(r.Messages))
	for i, m := range r.Messages {
		msgs[i] = metadataOnly(m)
	}
	r.Messages = msgs
}

// redactResponse replaces choice text and tool arguments with hashes. It
// copies slices so the caller's tool calls keep their arguments.
func redactResponse(r *oisp.AIResponse) {
	choices := make([]oisp.Choice, len(r.Choices))
	for i, c := range r.Choices {
		if c.Message != nil {
			m := metadataOnly(*c.Message)
			c.Message = &m
		}
		choices[i] = c
	}
	r.Choices = choices
	calls := make([]oisp.ToolCall, len(r.ToolCalls))
	for i, c := range r.ToolCalls {
		if c.ArgumentsHash == "" && c.Arguments != "" {
			c.ArgumentsHash = oisp.Hash(c.Arguments)
		}
		c.Arguments = ""
		calls[i] = c
	}
	r.ToolCalls = calls
	if r.Thinking != nil {
		t := *r.Thinking
		if t.Content != "" {
			t.ContentLength = len(t.Content)
			t.ContentHash = oisp.Hash(t.Content)
			t.Content = ""
		}
		r.Thinking = &t
	}
}

func metadataOnly(m oisp.Message) oisp.Message {
	if m.Content != "" {
		m.ContentLength = len(m.Content)
		m.ContentHash = oisp.Hash(m.Content)
		m.Content = ""
	}
	return m
}
