package provider

import (
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stream"
)

// sseEvents splits an SSE response body into events with arrival times.
func sseEvents(b *httpmsg.Body) []stream.SSEEvent {
	return stream.ParseSSE(b.Data, b.Marks)
}

// summarizeStream marks resp as streamed when the request asked for a
// stream: the number of stream events reassembled and, when content
// arrived, the time to first content from the end of the request.
func summarizeStream(req *oisp.AIRequest, resp *oisp.AIResponse, x *httpmsg.Exchange, events int, firstContent time.Time) {
	if req.Streaming == nil || !*req.Streaming {
		return
	}
	resp.Streaming = oisp.Ptr(true)
	resp.StreamEvents = events
	if !firstContent.IsZero() {
		resp.TimeToFirstTokenMS = msBetween(requestDone(x), firstContent)
	}
}
