package provider

import (
	"strings"
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
	resp.StreamEvents = events
	markStreamed(resp, x, firstContent)
}

// contentClock remembers when a stream's first content arrived, where its
// time to first token ends. Every stream reassembler embeds one, so that
// the rule is written once: the first arrival counts, and a zero time
// never does (a whole body merged as one chunk has no arrival time, and a
// later chunk's time must not be lost to it).
type contentClock struct{ firstContent time.Time }

// content records at as the first content's arrival unless one is
// recorded already.
func (c *contentClock) content(at time.Time) {
	if c.firstContent.IsZero() && !at.IsZero() {
		c.firstContent = at
	}
}

// firstContentAt returns when the first content arrived (zero: none did).
func (c *contentClock) firstContentAt() time.Time { return c.firstContent }

// markStreamed marks resp as a streamed answer, with its time to first
// token when content arrived.
func markStreamed(resp *oisp.AIResponse, x *httpmsg.Exchange, firstContent time.Time) {
	resp.Streaming = oisp.Ptr(true)
	setTimeToFirstToken(resp, x, firstContent)
}

// sseStream is a stream reassembler fed an SSE body one event at a time
// (OpenAI chat and Responses, Anthropic Messages).
type sseStream interface {
	addSSE(ev *stream.SSEEvent)
	finish(res *Result, resp *oisp.AIResponse)
	firstContentAt() time.Time
}

// decodeSSEStream runs s over the exchange's SSE response body and marks
// the answer streamed: what every SSE decoder of a stream reassembler does
// around the reassembly.
func decodeSSEStream(s sseStream, x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse) {
	events := sseEvents(&x.Response.Body)
	for i := range events {
		s.addSSE(&events[i])
	}
	s.finish(res, resp)
	markStreamed(resp, x, s.firstContentAt())
}

// setTimeToFirstToken sets resp's time to first token, from the end of the
// request to a stream's first content; a stream without content has none.
func setTimeToFirstToken(resp *oisp.AIResponse, x *httpmsg.Exchange, firstContent time.Time) {
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

// eventType is a stream event's type: its JSON "type", or its SSE event
// name when the JSON has none (Anthropic Messages and OpenAI Responses
// events carry both, and either may be left out).
func eventType(jsonType jStr, sseName string) string {
	if jsonType != "" {
		return string(jsonType)
	}
	return sseName
}

// noteBadEvents notes that n events of a stream did not decode: the answer
// is made of the others.
func noteBadEvents(res *Result, n int) {
	if n > 0 {
		res.note(noteStreamBadEvent)
	}
}

// nameAnswer sets the response's provider request id and model when the
// answer named them (an unnamed one keeps what the headers gave).
func nameAnswer(resp *oisp.AIResponse, id, model string) {
	if id != "" {
		resp.ProviderRequestID = id
	}
	if model != "" {
		resp.Model = &oisp.Model{ID: model}
	}
}

// endStream settles how a reassembled stream ended: whether its end
// marker arrived (an error event does not change that); an error event
// fails the answer (in band); else a stream whose events never reached its
// end marker is noted as cut.
func endStream(res *Result, resp *oisp.AIResponse, err *oisp.Error, events int, ended bool) {
	res.StreamEnded = ended
	if err != nil {
		setFailure(resp, err, true)
		return
	}
	if events > 0 && !ended {
		res.note(noteStreamUnterminated)
	}
}

// setArguments replaces a tool call's arguments and their hash.
func setArguments(tc *oisp.ToolCall, args string) {
	tc.Arguments = args
	tc.ArgumentsHash = oisp.Hash(args)
}

// streamedArgs gathers the arguments of a stream's tool calls that arrive
// in pieces keyed by a stream index (Bedrock ConverseStream content
// blocks, Cohere v2 tool-call deltas, Gemini Interactions steps): a call
// starts at an index, the pieces of that index are appended in order, and
// at the end the whole arguments replace the call's. The positions are
// of the caller's calls: a caller that drops calls resets its streamedArgs.
type streamedArgs struct {
	callAt map[int]int              // stream index → position of the call
	pieces map[int]*strings.Builder // stream index → its arguments so far
}

// start makes calls[pos] the call of stream index idx.
func (s *streamedArgs) start(idx, pos int) {
	if s.callAt == nil {
		s.callAt, s.pieces = map[int]int{}, map[int]*strings.Builder{}
	}
	s.callAt[idx] = pos
	s.pieces[idx] = &strings.Builder{}
}

// write appends a piece of the arguments of stream index idx; a piece of
// an index no call started at is dropped.
func (s *streamedArgs) write(idx int, piece string) {
	if b, ok := s.pieces[idx]; ok {
		b.WriteString(piece)
	}
}

// fill sets the arguments (and their hash) of every call that received
// pieces; a call without any keeps what it started with, and a position
// past calls (calls dropped without a reset) is skipped, never a panic.
func (s *streamedArgs) fill(calls []oisp.ToolCall) {
	for idx, pos := range s.callAt {
		if args := s.pieces[idx].String(); args != "" && pos < len(calls) {
			setArguments(&calls[pos], args)
		}
	}
}
