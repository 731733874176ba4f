package provider

import (
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stream"
)

// sseEvents splits an SSE response body into events with arrival times.
func sseEvents(b *httpmsg.Body) []stream.SSEEvent {
	return stream.ParseSSE(b.Data, b.Marks)
}
