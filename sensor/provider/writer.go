package provider

import (
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stream"
)

// Writer (api.writer.com) POST /v1/chat: OpenAI chat completions under
// another path. Its stream chunks carry each piece twice, as the choice's
// delta and again as a message holding only that piece (not the text so
// far); the chat decoder reads the delta of a chunk and the message of a
// whole answer, so the text is read once. The stream sends no [DONE]: it
// ends with the usage chunk (the SDK always asks for it) after the last
// choice finished.
//
// Its /v1/completions answers whole bodies in the OpenAI legacy shape
// ({"choices":[{"text":…}]}), but streams {"value":"…"} chunks with no end
// marker and no finish reason: such a stream is whole when its body ended
// (the transport saw the end of the response).

// API names of the Writer decoders.
const (
	apiWriterChat        = "writer.chat"
	apiWriterCompletions = "writer.completions"
)

type writerChatAPI struct{}

func (writerChatAPI) Name() string { return apiWriterChat }

func (writerChatAPI) Match(t Target, x *httpmsg.Exchange) bool {
	return t.ProviderID == "writer" && isPost(x) && strings.HasSuffix(trimPath(x), "/v1/chat")
}

func (writerChatAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	stream := newOpenAIChatStream()
	stream.endsAtUsage = true
	return decodeOpenAIChatExchange(apiWriterChat, oisp.RequestChat, t, x, env, stream), nil
}

type writerCompletionsAPI struct{}

func (writerCompletionsAPI) Name() string { return apiWriterCompletions }

func (writerCompletionsAPI) Match(t Target, x *httpmsg.Exchange) bool {
	return t.ProviderID == "writer" && isPost(x) && strings.HasSuffix(trimPath(x), "/v1/completions")
}

func (writerCompletionsAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	stream := &writerValueStream{ended: x.Response != nil && x.Response.Complete}
	return decodeOpenAIChatExchange(apiWriterCompletions, oisp.RequestCompletion, t, x, env, stream), nil
}

// writerValueStream reassembles a streamed Writer completion.
type writerValueStream struct {
	text        textBuf
	events, bad int
	ended       bool // the body ended: the format has no end marker
	contentClock
}

func (s *writerValueStream) addSSE(ev *stream.SSEEvent) {
	var chunk struct {
		Value jStr `json:"value"`
	}
	if _, err := decodeLoose(ev.Data, &chunk); err != nil {
		s.bad++
		return
	}
	s.events++
	if chunk.Value != "" {
		s.text.WriteString(string(chunk.Value))
		s.content(ev.At)
	}
}

func (s *writerValueStream) finish(res *Result, resp *oisp.AIResponse) {
	resp.StreamEvents = s.events
	noteBadEvents(res, s.bad)
	endStream(res, resp, nil, s.events, s.ended)
	resp.Choices = oneChoice(s.text.String(), "", "")
}
