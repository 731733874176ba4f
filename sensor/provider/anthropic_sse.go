package provider

import (
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stream"
)

// decodeAnthropicSSE decodes an SSE response body of the Messages or legacy
// completion API.
func decodeAnthropicSSE(x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse) {
	decodeSSEStream(newAnthropicStream(), x, res, resp)
}

// addSSE consumes one SSE event; its name types it when its JSON does not.
func (s *anthropicStream) addSSE(ev *stream.SSEEvent) { s.add(ev.Event, ev.Data, ev.At) }
