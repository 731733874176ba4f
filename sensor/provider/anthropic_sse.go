package provider

import (
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// decodeAnthropicSSE decodes an SSE response body of the Messages or legacy
// completion API.
func decodeAnthropicSSE(x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse) {
	s := newAnthropicStream()
	for _, ev := range sseEvents(&x.Response.Body) {
		s.add(ev.Event, ev.Data, ev.At)
	}
	s.finish(res, resp)
	resp.Streaming = oisp.Ptr(true)
	setTimeToFirstToken(resp, x, s.firstContent)
}
