package otlp_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// spanRun is agentRun with its calls linked as the pipeline links them
// (each response names its request as parent): the chat call with a trace
// context, the rate-limited call whose request has none, and a response
// whose request was never seen. The embedding follows no request.
func spanRun() []*oisp.Event {
	evs := agentRun()
	req, resp, limited := evs[0], evs[1], evs[4]
	resp.RelatedEvents = []oisp.Related{{EventID: req.EventID, Relationship: oisp.RelParent}}
	req2 := &oisp.Event{OISPVersion: oisp.Version, EventID: "01REQ2", EventType: oisp.TypeAIRequest, TS: "2026-11-30T12:00:01.75Z",
		Source: req.Source, Data: &oisp.AIRequest{RequestID: "req-2", RequestType: oisp.RequestChat,
			Provider: limited.Data.(*oisp.AIResponse).Provider, Model: &oisp.Model{ID: "gemini-2.0-flash"}}}
	limited.RelatedEvents = []oisp.Related{{EventID: req2.EventID, Relationship: oisp.RelParent}}
	orphan := &oisp.Event{OISPVersion: oisp.Version, EventID: "01ORPH", EventType: oisp.TypeAIResponse, TS: "2026-11-30T12:00:04Z",
		Source: req.Source, Data: &oisp.AIResponse{RequestID: "req-4", Model: &oisp.Model{ID: "gpt-4o-mini"}, StatusCode: 200, Success: ptr(true), LatencyMS: ptr(int64(500))}}
	return []*oisp.Event{req, resp, evs[2], evs[3], req2, limited, evs[5], orphan}
}

func unixNano(t *testing.T, ts string) uint64 {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(v.UnixNano())
}

// TestSpans sends spanRun over each protocol with spans on and checks each
// span field by field, and that the calls' log records carry its ids.
func TestSpans(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			col := newCollector(t)
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{Endpoint: col.serve(protocol), Protocol: protocol, HostName: "dev-box",
				LegacySystem: true, Spans: true, Stats: &counts})
			if err != nil {
				t.Fatal(err)
			}
			evs := spanRun()
			records := deliver(t, exp, col, evs)
			spans := col.spans()
			if len(spans) != 3 {
				t.Fatalf("got %d spans, want 3 (two calls and the response without request)", len(spans))
			}
			if n := counts.Get(otlp.CountSpansSent); n != 3 {
				t.Errorf("%s = %d", otlp.CountSpansSent, n)
			}
			if n := counts.Get(otlp.CountSent); n != int64(len(evs)) {
				t.Errorf("%s = %d", otlp.CountSent, n)
			}
			if n := counts.Get(otlp.CountSpansUnpaired); n != 0 {
				t.Errorf("%s = %d", otlp.CountSpansUnpaired, n)
			}
			byName := map[string]*tracepb.Span{}
			for _, s := range spans {
				if s.Kind != tracepb.Span_SPAN_KIND_CLIENT {
					t.Errorf("span %q kind %v", s.Name, s.Kind)
				}
				byName[s.Name] = s
			}
			sameIDs := func(s *tracepb.Span, recs ...int) {
				t.Helper()
				for _, i := range recs {
					r := records[i].record
					if !bytes.Equal(r.TraceId, s.TraceId) || !bytes.Equal(r.SpanId, s.SpanId) {
						t.Errorf("record %d (%s) has ids %x/%x, its span %q %x/%x", i, evs[i].EventID, r.TraceId, r.SpanId, s.Name, s.TraceId, s.SpanId)
					}
				}
			}

			// The chat call: ids from the request's trace context.
			chat := byName["chat gpt-4o"]
			if chat == nil {
				t.Fatalf("no span named \"chat gpt-4o\" in %v", spans)
			}
			if hex.EncodeToString(chat.TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" || hex.EncodeToString(chat.SpanId) != "00f067aa0ba902b7" {
				t.Errorf("chat span ids %x/%x, want the trace context's", chat.TraceId, chat.SpanId)
			}
			sameIDs(chat, 0, 1)
			if chat.StartTimeUnixNano != unixNano(t, evs[0].TS) || chat.EndTimeUnixNano != unixNano(t, evs[1].TS) {
				t.Errorf("chat span from %d to %d, want the request's and the response's times", chat.StartTimeUnixNano, chat.EndTimeUnixNano)
			}
			if chat.Status.GetCode() != tracepb.Status_STATUS_CODE_UNSET {
				t.Errorf("chat span status %v", chat.Status)
			}
			// The span has the data attributes of both records, once each.
			logAttrs := agentRunAttrs()
			want := with(logAttrs[0], logAttrs[1])
			for k := range envelopeAttrs() {
				delete(want, k)
			}
			delete(want, "oisp.event_id")
			delete(want, "oisp.related_events")
			if d := cmp.Diff(want, attrMap(chat.Attributes)); d != "" {
				t.Errorf("chat span attributes (-want +got):\n%s", d)
			}

			// The rate-limited call: ids derived from the request's event
			// id, status ERROR with the provider's message.
			failed := byName["generate_content gemini-2.0-flash"]
			if failed == nil {
				t.Fatalf("no span named \"generate_content gemini-2.0-flash\" in %v", spans)
			}
			sameIDs(failed, 4, 5)
			if len(failed.TraceId) != 16 || len(failed.SpanId) != 8 || bytes.Equal(failed.TraceId, chat.TraceId) {
				t.Errorf("failed span ids %x/%x", failed.TraceId, failed.SpanId)
			}
			if failed.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || failed.Status.GetMessage() != "slow down" {
				t.Errorf("failed span status %v, want ERROR \"slow down\"", failed.Status)
			}
			if failed.StartTimeUnixNano != unixNano(t, evs[4].TS) || failed.EndTimeUnixNano != unixNano(t, evs[5].TS) {
				t.Errorf("failed span from %d to %d", failed.StartTimeUnixNano, failed.EndTimeUnixNano)
			}
			fa := attrMap(failed.Attributes)
			if fa["error.type"] != "rate_limit_error" || fa["gen_ai.operation.name"] != "generate_content" || fa["http.response.status_code"] != int64(429) {
				t.Errorf("failed span attributes %v", fa)
			}

			// The response without its request: its own span, started
			// latency_ms before it.
			orphan := byName["gpt-4o-mini"]
			if orphan == nil {
				t.Fatalf("no span named \"gpt-4o-mini\" in %v", spans)
			}
			sameIDs(orphan, 7)
			end := unixNano(t, evs[7].TS)
			if orphan.EndTimeUnixNano != end || orphan.StartTimeUnixNano != end-uint64(500*time.Millisecond) {
				t.Errorf("orphan span from %d to %d, want 500ms ending at %d", orphan.StartTimeUnixNano, orphan.EndTimeUnixNano, end)
			}

			// Events outside a call keep their own (no) trace context.
			for _, i := range []int{2, 3, 6} {
				if r := records[i].record; len(r.TraceId) != 0 || len(r.SpanId) != 0 {
					t.Errorf("record %d (%s) has ids %x/%x", i, evs[i].EventID, r.TraceId, r.SpanId)
				}
			}
		})
	}
}

// TestSpansOff checks that the default sends no traces and leaves the
// records' trace context as the events give it.
func TestSpansOff(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			col := newCollector(t)
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{Endpoint: col.serve(protocol), Protocol: protocol, Stats: &counts})
			if err != nil {
				t.Fatal(err)
			}
			evs := spanRun()
			records := deliver(t, exp, col, evs)
			if n := len(col.spans()); n != 0 {
				t.Errorf("got %d spans with spans off", n)
			}
			if n := counts.Get(otlp.CountSpansSent); n != 0 {
				t.Errorf("%s = %d", otlp.CountSpansSent, n)
			}
			if r := records[0].record; hex.EncodeToString(r.TraceId) != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("request record trace id %x", r.TraceId)
			}
			for _, i := range []int{1, 4, 5, 7} {
				if r := records[i].record; len(r.TraceId) != 0 || len(r.SpanId) != 0 {
					t.Errorf("record %d (%s) has ids %x/%x with spans off", i, evs[i].EventID, r.TraceId, r.SpanId)
				}
			}
		})
	}
}

// callPair returns request i and its response.
func callPair(i int) (req, resp *oisp.Event) {
	req = &oisp.Event{OISPVersion: oisp.Version, EventID: fmt.Sprintf("req-ev-%d", i), EventType: oisp.TypeAIRequest, TS: "2026-11-30T12:00:00Z",
		Data: &oisp.AIRequest{RequestType: oisp.RequestChat, Model: &oisp.Model{ID: "m"}}}
	resp = &oisp.Event{OISPVersion: oisp.Version, EventID: fmt.Sprintf("resp-ev-%d", i), EventType: oisp.TypeAIResponse, TS: "2026-11-30T12:00:01Z",
		Data:          &oisp.AIResponse{StatusCode: 200},
		RelatedEvents: []oisp.Related{{EventID: req.EventID, Relationship: oisp.RelParent}}}
	return req, resp
}

// TestSpansUnpaired checks the pending table's bounds: requests evicted
// when it is full, expired, or left at Close are counted; a response
// whose request was evicted still gets a span with the ids its request's
// record carried.
func TestSpansUnpaired(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		col := newCollector(t)
		var counts stats.Counters
		exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.HTTPProtobuf), Spans: true, MaxPendingSpans: 2, Stats: &counts})
		if err != nil {
			t.Fatal(err)
		}
		var evs []*oisp.Event
		var resps []*oisp.Event
		for i := range 5 {
			req, resp := callPair(i)
			evs = append(evs, req)
			resps = append(resps, resp)
		}
		// Requests 0-2 are evicted by 3 and 4; the response to 0 comes
		// anyway, those to 3 and 4 find theirs; 1 and 2 never answer.
		evs = append(evs, resps[0], resps[3], resps[4])
		records := deliver(t, exp, col, evs)
		if n := counts.Get(otlp.CountSpansUnpaired); n != 3 {
			t.Errorf("%s = %d, want 3", otlp.CountSpansUnpaired, n)
		}
		spans := col.spans()
		if len(spans) != 3 {
			t.Fatalf("got %d spans, want 3", len(spans))
		}
		// Span of the evicted request 0: no request time, so it starts
		// at its end, and carries the ids of request 0's record.
		var evicted *tracepb.Span
		for _, s := range spans {
			if bytes.Equal(s.TraceId, records[0].record.TraceId) {
				evicted = s
			}
		}
		if evicted == nil || !bytes.Equal(evicted.SpanId, records[0].record.SpanId) || !bytes.Equal(records[5].record.SpanId, evicted.SpanId) {
			t.Fatalf("no span with the ids of evicted request 0's record (%x)", records[0].record.TraceId)
		}
		if evicted.StartTimeUnixNano != evicted.EndTimeUnixNano || evicted.Name != oisp.TypeAIResponse {
			t.Errorf("the evicted call's span %q runs %d..%d", evicted.Name, evicted.StartTimeUnixNano, evicted.EndTimeUnixNano)
		}
		paired := 0
		for _, s := range spans {
			if s.Name == "chat m" && s.EndTimeUnixNano-s.StartTimeUnixNano == uint64(time.Second) {
				paired++
			}
		}
		if paired != 2 {
			t.Errorf("%d spans of paired calls, want 2: %v", paired, spans)
		}
	})
	t.Run("expired", func(t *testing.T) {
		col := newCollector(t)
		var counts stats.Counters
		exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.GRPC), Protocol: otlp.GRPC, Spans: true, MaxSpanWait: time.Millisecond, Stats: &counts})
		if err != nil {
			t.Fatal(err)
		}
		reqA, respA := callPair(0)
		reqB, _ := callPair(1)
		exp.Record(reqA)
		time.Sleep(20 * time.Millisecond) // older than MaxSpanWait: B's arrival expires A
		exp.Record(reqB)
		exp.Record(respA)
		if err := exp.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		// A expired; B was still waiting at Close.
		if n := counts.Get(otlp.CountSpansUnpaired); n != 2 {
			t.Errorf("%s = %d, want 2", otlp.CountSpansUnpaired, n)
		}
		if spans := col.spans(); len(spans) != 1 || spans[0].Name != oisp.TypeAIResponse || spans[0].StartTimeUnixNano != spans[0].EndTimeUnixNano {
			t.Errorf("spans %v, want one, of A's response alone", spans)
		}
	})
}

// TestTracesEndpoint checks where spans go over HTTP: Config.TracesEndpoint
// (a bare URL gets /v1/traces), and that a logs URL not ending in
// /v1/logs with no traces endpoint is refused up front, without echoing
// the URL's credentials.
func TestTracesEndpoint(t *testing.T) {
	col := newCollector(t)
	srv, logsURL := col.serveHTTP(false)
	exp, err := otlp.New(otlp.Config{Endpoint: logsURL, TracesEndpoint: srv.URL, Spans: true})
	if err != nil {
		t.Fatal(err)
	}
	req, resp := callPair(0)
	deliver(t, exp, col, []*oisp.Event{req, resp})
	if spans := col.spans(); len(spans) != 1 || spans[0].Name != "chat m" {
		t.Errorf("spans %v, want one \"chat m\"", spans)
	}

	_, err = otlp.New(otlp.Config{Endpoint: "http://u:hunter2@127.0.0.1:1/ingest?token=s3cret", Spans: true})
	if err == nil || !strings.Contains(err.Error(), "traces endpoint") || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("New with an underivable traces URL: %v", err)
	}
	logsOnly, err := otlp.New(otlp.Config{Endpoint: "http://127.0.0.1:1/ingest"})
	if err != nil {
		t.Fatalf("spans off, any logs path goes: %v", err)
	}
	logsOnly.Close(context.Background())
}

// recordCalls records calls request-response pairs (callPair) from each
// of workers goroutines at once, as the pipeline may, passing each
// response through adjust (when not nil) first.
func recordCalls(exp *otlp.Exporter, workers, calls int, adjust func(resp *oisp.Event)) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				req, resp := callPair(w*calls + i)
				if adjust != nil {
					adjust(resp)
				}
				exp.Record(req)
				exp.Record(resp)
			}
		})
	}
	wg.Wait()
}

// TestSpansConcurrent records calls from several goroutines at once, as
// the pipeline may: every call gets its span, none is left unpaired.
func TestSpansConcurrent(t *testing.T) {
	col := newCollector(t)
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: col.serve(otlp.GRPC), Protocol: otlp.GRPC, Spans: true, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	const workers, calls = 4, 200
	recordCalls(exp, workers, calls, nil)
	if err := exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(col.spans()); n != workers*calls {
		t.Errorf("got %d spans of %d calls", n, workers*calls)
	}
	if sent, unpaired := counts.Get(otlp.CountSpansSent), counts.Get(otlp.CountSpansUnpaired); sent != workers*calls || unpaired != 0 {
		t.Errorf("%s = %d, %s = %d", otlp.CountSpansSent, sent, otlp.CountSpansUnpaired, unpaired)
	}
}
