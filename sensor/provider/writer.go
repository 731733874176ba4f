package provider

import (
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Writer (api.writer.com) POST /v1/chat: OpenAI chat completions under
// another path. Its stream chunks carry each piece twice, as the choice's
// delta and again as a message holding only that piece (not the text so
// far); the chat decoder reads the delta of a chunk and the message of a
// whole answer, so the text is read once. The stream sends no [DONE]: it
// ends with the usage chunk (the SDK always asks for it) after the last
// choice finished.

const apiWriterChat = "writer.chat"

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
