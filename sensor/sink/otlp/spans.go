package otlp

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Counter tokens of GenAI spans (Config.Spans).
const (
	// CountSpansSent counts spans the collector accepted.
	CountSpansSent = "sink.otlp.spans_sent"
	// CountSpansDropped counts spans that will never reach the collector,
	// for the reasons CountDropped counts events.
	CountSpansDropped = "sink.otlp.spans_dropped"
	// CountSpansUnpaired counts requests whose response never came within
	// the pending table's bounds (evicted when it was full, expired, or
	// still waiting at Close): they produce no span.
	CountSpansUnpaired = "sink.otlp.spans_unpaired"
)

// Defaults of the pending-request table.
const (
	DefaultMaxPendingSpans = 10000
	DefaultMaxSpanWait     = 10 * time.Minute
)

// spanIDs are the binary trace and span ids of one GenAI span.
type spanIDs struct {
	trace [16]byte
	span  [8]byte
}

// idsFor returns the ids of the span of the call whose request event is
// requestEventID: the event's trace context where it has one, else a
// hash of the request's event id, so that the request's record, the
// response's record and the span agree without sharing state.
func idsFor(tc *oisp.TraceContext, requestEventID string) spanIDs {
	var ids spanIDs
	var buf [96]byte
	sum := sha256.Sum256(append(append(buf[:0], "oisp-genai-span\x00"...), requestEventID...))
	copy(ids.trace[:], sum[:16])
	copy(ids.span[:], sum[16:24])
	if tc != nil {
		var trace [16]byte
		var span [8]byte
		if len(tc.TraceID) == 32 {
			if _, err := hex.Decode(trace[:], []byte(tc.TraceID)); err == nil && trace != [16]byte{} {
				ids.trace = trace
			}
		}
		if len(tc.SpanID) == 16 {
			if _, err := hex.Decode(span[:], []byte(tc.SpanID)); err == nil && span != [8]byte{} {
				ids.span = span
			}
		}
	}
	return ids
}

// pendingCall is a request waiting for its response: what its span needs
// of it, copied out of the event.
type pendingCall struct {
	eventID string
	ids     spanIDs
	// start is the request's time (Unix ns; 0 when unknown).
	start int64
	name  string
	// attrs are the request's data attributes, serialised as Span
	// attributes.
	attrs []byte
	added time.Time
	// What the metrics of the call take from its request: its
	// gen_ai.operation.name, gen_ai.request.model and provider, and
	// the provider's endpoint and host they were derived from.
	operation, model, provider, serverAddress string
	serverPort                                int
	endpoint, host                            string
}

// pendingTable holds requests by event id until their response arrives,
// bounded in number and age; the oldest go first.
type pendingTable struct {
	mu     sync.Mutex
	byID   map[string]*list.Element
	order  list.List // of *pendingCall, oldest first
	max    int
	maxAge time.Duration
}

func newPendingTable(max int, maxAge time.Duration) *pendingTable {
	return &pendingTable{byID: map[string]*list.Element{}, max: max, maxAge: maxAge}
}

// put adds p, evicting expired requests and, when full, the oldest. It
// returns how many it evicted.
func (t *pendingTable) put(p *pendingCall) (evicted int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	evicted = t.expireLocked(p.added)
	if old, ok := t.byID[p.eventID]; ok {
		// The same request seen twice: the newer one stands.
		t.order.Remove(old)
		delete(t.byID, p.eventID)
	}
	for t.order.Len() >= t.max {
		t.removeLocked(t.order.Front())
		evicted++
	}
	t.byID[p.eventID] = t.order.PushBack(p)
	return evicted
}

// take removes and returns the request with the event id, or nil.
func (t *pendingTable) take(eventID string) *pendingCall {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.byID[eventID]
	if !ok {
		return nil
	}
	t.removeLocked(el)
	return el.Value.(*pendingCall)
}

// expireLocked removes the requests older than maxAge at now.
func (t *pendingTable) expireLocked(now time.Time) (n int) {
	for el := t.order.Front(); el != nil && now.Sub(el.Value.(*pendingCall).added) > t.maxAge; el = t.order.Front() {
		t.removeLocked(el)
		n++
	}
	return n
}

func (t *pendingTable) removeLocked(el *list.Element) {
	t.order.Remove(el)
	delete(t.byID, el.Value.(*pendingCall).eventID)
}

// clear empties the table and returns how many requests it held.
func (t *pendingTable) clear() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.order.Len()
	t.order.Init()
	clear(t.byID)
	return n
}

// Span field numbers.
const (
	fieldSpanTraceID    = 1
	fieldSpanSpanID     = 2
	fieldSpanName       = 5
	fieldSpanKind       = 6
	fieldSpanStart      = 7
	fieldSpanEnd        = 8
	fieldSpanAttributes = 9
	fieldSpanStatus     = 15
	spanKindClient      = 3 // Span.SpanKind SPAN_KIND_CLIENT
	statusFieldMessage  = 2 // Status.message
	statusFieldCode     = 3 // Status.code
	statusCodeError     = 2 // Status.StatusCode STATUS_CODE_ERROR
)

// spanName is "{gen_ai.operation.name} {gen_ai.request.model}", or what
// of it is known.
func spanName(op, model string) string {
	switch {
	case op == "":
		return model
	case model == "":
		return op
	}
	return op + " " + model
}

// pendingOf copies what the span (when spans is set) and the metrics of
// request ev need.
func (e *encoder) pendingOf(ev *oisp.Event, d *oisp.AIRequest, ids spanIDs, added time.Time, spans bool) *pendingCall {
	p := &pendingCall{eventID: ev.EventID, ids: ids, start: eventTime(ev), added: added}
	model := ""
	if d.Model != nil {
		model = d.Model.ID
	}
	op := operationName(d.RequestType, d.Provider)
	var provider, server, endpoint, host string
	if d.Provider != nil {
		provider = providerName(d.Provider)
		server, p.serverPort = serverOf(d.Provider)
		endpoint, host = d.Provider.Endpoint, d.Provider.Host
	}
	// The strings may share the event's pooled memory: copy them, all in
	// one allocation.
	var all strings.Builder
	all.Grow(len(model) + len(provider) + len(server) + len(endpoint) + len(host))
	for _, s := range [...]string{model, provider, server, endpoint, host} {
		all.WriteString(s)
	}
	copied := all.String()
	next := func(s string) string {
		out := copied[:len(s)]
		copied = copied[len(s):]
		return out
	}
	p.operation = op
	p.model, p.provider, p.serverAddress, p.endpoint, p.host = next(model), next(provider), next(server), next(endpoint), next(host)
	if spans {
		p.name = spanName(op, p.model)
		a := attrs{b: make([]byte, 0, 512), field: fieldSpanAttributes}
		e.data(&a, ev)
		p.attrs = a.b
	}
	return p
}

// eventTime is the event's time in Unix ns, 0 when it has none.
func eventTime(ev *oisp.Event) int64 {
	ts, err := time.Parse(time.RFC3339Nano, ev.TS)
	if err != nil || ts.UnixNano() <= 0 {
		return 0
	}
	return ts.UnixNano()
}

// span appends the serialised Span of the call that response (an
// ai.response or ai.embedding event) completes; req is its request, nil
// when it was not seen. The attributes are the response's data
// attributes, then the request's that the response did not set.
func (e *encoder) span(dst []byte, ids spanIDs, req *pendingCall, ev *oisp.Event) []byte {
	end := eventTime(ev)
	start := end
	var op, model, reqModel string
	var latency *int64
	var perr *oisp.Error
	var code int
	switch d := ev.Data.(type) {
	case *oisp.AIResponse:
		latency, perr, code = d.LatencyMS, d.Error, d.StatusCode
		if d.Model != nil {
			model, reqModel = d.Model.ID, d.Model.Requested
		}
	case *oisp.AIEmbedding:
		op = operationName(oisp.RequestEmbedding, d.Provider)
		latency, perr, code = d.LatencyMS, d.Error, d.StatusCode
		if d.Model != nil {
			model = d.Model.ID
		}
	}
	// Without its request the operation is unknown (but for
	// embeddings): the span is named after the model, else the event.
	name := nonEmpty(spanName(op, nonEmpty(reqModel, model)), ev.EventType)
	if req != nil {
		name = req.name
		if req.start != 0 {
			start = req.start
		}
	} else if latency != nil && end != 0 {
		start = end - *latency*int64(time.Millisecond)
	}

	dst = protowire.AppendTag(dst, fieldSpanTraceID, protowire.BytesType)
	dst = protowire.AppendBytes(dst, ids.trace[:])
	dst = protowire.AppendTag(dst, fieldSpanSpanID, protowire.BytesType)
	dst = protowire.AppendBytes(dst, ids.span[:])
	dst = appendString(dst, fieldSpanName, name)
	dst = protowire.AppendTag(dst, fieldSpanKind, protowire.VarintType)
	dst = protowire.AppendVarint(dst, spanKindClient)
	if start != 0 {
		dst = protowire.AppendTag(dst, fieldSpanStart, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, uint64(start))
	}
	if end != 0 {
		dst = protowire.AppendTag(dst, fieldSpanEnd, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, uint64(end))
	}
	a := attrs{b: dst, field: fieldSpanAttributes}
	own := len(dst)
	failed := e.data(&a, ev)
	dst = a.b
	if req != nil {
		// Appending leaves respAttrs, a view of what dst held, as it was.
		respAttrs := dst[own:]
		eachAttr(req.attrs, func(key, field []byte) {
			if !hasAttr(respAttrs, key) {
				dst = append(dst, field...)
			}
		})
	}
	if failed {
		msg := ""
		switch {
		case perr != nil && perr.Message != "":
			msg = perr.Message
		case perr != nil:
			msg = nonEmpty(perr.Type, perr.Code)
		case code >= 400:
			msg = "HTTP " + strconv.Itoa(code)
		}
		msg = validUTF8(msg)
		size := protowire.SizeTag(statusFieldCode) + protowire.SizeVarint(statusCodeError)
		if msg != "" {
			size += protowire.SizeTag(statusFieldMessage) + protowire.SizeBytes(len(msg))
		}
		dst = protowire.AppendTag(dst, fieldSpanStatus, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(size))
		dst = appendString(dst, statusFieldMessage, msg)
		dst = protowire.AppendTag(dst, statusFieldCode, protowire.VarintType)
		dst = protowire.AppendVarint(dst, statusCodeError)
	}
	return dst
}

// eachAttr calls fn with the key and the whole field (tag, length and
// KeyValue) of each attribute in b, a run of attributes attrs wrote
// (the key is each KeyValue's first field).
func eachAttr(b []byte, fn func(key, field []byte)) {
	for len(b) > 0 {
		_, _, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		kv, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return
		}
		field := b[:n+m]
		b = b[n+m:]
		_, _, k := protowire.ConsumeTag(kv)
		if k < 0 {
			return
		}
		key, _ := protowire.ConsumeBytes(kv[k:])
		fn(key, field)
	}
}

// hasAttr reports whether the attributes in b include key.
func hasAttr(b, key []byte) bool {
	found := false
	eachAttr(b, func(k, _ []byte) { found = found || bytes.Equal(k, key) })
	return found
}

// parentRequest returns the event id of the ai.request ev answers, if its
// related events name one.
func parentRequest(ev *oisp.Event) string {
	for _, r := range ev.RelatedEvents {
		if r.Relationship == oisp.RelParent {
			return r.EventID
		}
	}
	return ""
}
