package provider

import (
	"time"
	"unsafe"

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

// textBuf accumulates streamed text as strings.Builder does, but may be
// copied: the accumulators of a stream's choices, blocks and tool calls
// live in arrays that grow by copying, and a later delta of an earlier one
// writes through the copy, where a strings.Builder panics. The copy left
// behind is never used again, and bytes are only ever appended, so a
// string taken from the buffer never changes.
type textBuf struct{ b []byte }

func (t *textBuf) WriteString(s string) { t.b = append(t.b, s...) }

func (t *textBuf) Write(p []byte) { t.b = append(t.b, p...) }

// String returns the text so far, without a copy.
func (t *textBuf) String() string { return unsafe.String(unsafe.SliceData(t.b), len(t.b)) }
