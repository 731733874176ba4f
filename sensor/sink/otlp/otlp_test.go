package otlp_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/google/go-cmp/cmp"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

func ptr[T any](v T) *T { return &v }

// agentRun is a realistic sequence: a chat request that offers a tool,
// the answer that calls it, the tool call, the process the tool runs, a
// rate-limited retry on another provider.
func agentRun() []*oisp.Event {
	host := &oisp.Host{Hostname: "dev-box", DeviceID: "dev-1", OS: "linux", Arch: "x86_64"}
	proc := &oisp.Process{PID: 4242, PPID: 1, Exe: "/usr/bin/python3", Name: "python3", Cmdline: "python3 agent.py", CmdlineArgs: []string{"python3", "agent.py"}, Cwd: "/home/u"}
	conf := &oisp.Confidence{Level: oisp.LevelHigh, Completeness: oisp.CompleteFull, Reasons: []string{"tls_plaintext"}, RedactionApplied: ptr(true)}
	src := oisp.Source{Collector: oisp.Collector, CollectorVersion: "0.3.0", CaptureMethod: "ebpf_tls", CapturePoint: "userspace"}
	openai := &oisp.Provider{Name: "openai", ID: "openai", Endpoint: "https://api.openai.com/v1/chat/completions", Host: "api.openai.com"}
	ev := func(typ, id, ts string, data any) *oisp.Event {
		return &oisp.Event{OISPVersion: oisp.Version, EventID: id, EventType: typ, TS: ts, TSMono: 77, Host: host,
			Actor: &oisp.Actor{UID: ptr(1000), User: "u"}, Process: proc, Source: src, Confidence: conf,
			Data: data, Attrs: &oisp.Attrs{FlowID: "flow-9"}}
	}
	req := ev(oisp.TypeAIRequest, "01REQ", "2026-11-30T12:00:00.123456Z", &oisp.AIRequest{
		RequestID: "req-1", ConversationID: "conv_1f2e", Provider: openai, Model: &oisp.Model{ID: "gpt-4o"}, RequestType: oisp.RequestChat,
		Streaming: ptr(true), Messages: []oisp.Message{{Role: "user", Content: "weather in Paris?"}}, MessagesCount: 1,
		Tools: []oisp.ToolDefinition{{Name: "get_weather", Type: "function"}}, ToolsCount: 1,
		Parameters: &oisp.Parameters{Temperature: ptr(0.2), TopP: ptr(0.9), MaxTokens: ptr(256), FrequencyPenalty: ptr(0.5), PresencePenalty: ptr(0.25), Stop: []string{"END", "STOP"}},
	})
	req.TraceContext = &oisp.TraceContext{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"}
	resp := ev(oisp.TypeAIResponse, "01RESP", "2026-11-30T12:00:01.5Z", &oisp.AIResponse{
		RequestID: "req-1", ProviderRequestID: "chatcmpl-abc", Provider: openai,
		Model: &oisp.Model{ID: "gpt-4o-2024-08-06", Requested: "gpt-4o"}, StatusCode: 200, Success: ptr(true),
		Choices:   []oisp.Choice{{Index: 0, FinishReason: oisp.FinishToolCalls, RawFinishReason: "tool_calls"}, {Index: 1, FinishReason: oisp.FinishStop}},
		ToolCalls: []oisp.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}, ToolCallsCount: 1,
		Usage:     &oisp.Usage{PromptTokens: ptr(1200), CompletionTokens: ptr(30), TotalTokens: ptr(1230), CachedTokens: ptr(1000), CacheCreationTokens: ptr(50), ReasoningTokens: ptr(0)},
		LatencyMS: ptr(int64(1377)), TimeToFirstTokenMS: ptr(int64(250)), Streaming: ptr(true),
	})
	resp.RelatedEvents = []oisp.Related{{EventID: "01REQ", Relationship: oisp.RelCausedBy}}
	call := ev(oisp.TypeToolCall, "01CALL", "2026-11-30T12:00:01.6Z", &oisp.ToolCallEvent{
		Tool: oisp.ToolInfo{Name: "get_weather", Type: "function", Description: "Weather by city"}, CallID: "call_1",
		Arguments: map[string]any{"city": "Paris"}, RequestID: "req-1",
	})
	// Arguments are bytes, not text: the collector must still get UTF-8.
	exec := ev(oisp.TypeProcessExec, "01EXEC", "2026-11-30T12:00:01.7Z", &oisp.ProcessExec{Exe: "/usr/bin/curl", Args: []string{"curl", "wttr.in/Paris", "bad\xff\xfeutf8"}, Cwd: "/tmp/\xc3"})
	exec.Host = &oisp.Host{Hostname: "other-box"}
	limited := ev(oisp.TypeAIResponse, "01FAIL", "2026-11-30T12:00:02Z", &oisp.AIResponse{
		RequestID: "req-2", Provider: &oisp.Provider{Name: "google", ID: "google_vertex", Endpoint: "https://us-central1-aiplatform.googleapis.com:8443/v1/x"},
		Model: &oisp.Model{ID: "gemini-2.0-flash"}, StatusCode: 429, Success: ptr(false),
		Error: &oisp.Error{Type: "rate_limit_error", Message: "slow down", Code: "429"},
	})
	embed := ev(oisp.TypeAIEmbedding, "01EMB", "2026-11-30T12:00:03Z", &oisp.AIEmbedding{
		RequestID: "req-3", Provider: &oisp.Provider{Name: "mistral", Host: "api.mistral.ai:443"}, Model: &oisp.Model{ID: "mistral-embed"},
		InputCount: 2, TotalTokens: ptr(17), StatusCode: 200, Success: ptr(true),
	})
	return []*oisp.Event{req, resp, call, exec, limited, embed}
}

// envelopeAttrs are the attributes every agentRun event carries.
func envelopeAttrs() map[string]any {
	return map[string]any{
		"oisp.version": "0.1", "oisp.ts_mono": int64(77),
		"oisp.source.collector": "oisp-sensor", "oisp.source.collector_version": "0.3.0",
		"oisp.source.capture_method": "ebpf_tls", "oisp.source.capture_point": "userspace",
		"oisp.confidence.level": "high", "oisp.confidence.completeness": "full",
		"oisp.confidence.reasons": []any{"tls_plaintext"}, "oisp.confidence.redaction_applied": true,
		"host.id": "dev-1", "process.user.id": int64(1000), "process.user.name": "u",
		"process.pid": int64(4242), "process.parent_pid": int64(1), "process.executable.path": "/usr/bin/python3",
		"process.executable.name": "python3", "process.command_line": "python3 agent.py",
		"process.command_args": []any{"python3", "agent.py"}, "process.working_directory": "/home/u",
		"oisp.flow.id": "flow-9",
	}
}

func with(base map[string]any, kv map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range kv {
		out[k] = v
	}
	return out
}

// agentRunAttrs are the attributes of agentRun's records, exported with
// HostName "dev-box" and LegacySystem.
func agentRunAttrs() []map[string]any {
	env := envelopeAttrs()
	openaiReq := map[string]any{
		"gen_ai.provider.name": "openai", "gen_ai.system": "openai",
		"server.address": "api.openai.com", "server.port": int64(443), "oisp.request_id": "req-1",
	}
	want := []map[string]any{
		with(env, with(openaiReq, map[string]any{
			"oisp.event_id": "01REQ", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
			"oisp.conversation_id":  "conv_1f2e",
			"gen_ai.request.stream": true, "gen_ai.request.temperature": 0.2, "gen_ai.request.top_p": 0.9,
			"gen_ai.request.max_tokens": int64(256), "gen_ai.request.frequency_penalty": 0.5,
			"gen_ai.request.presence_penalty": 0.25, "gen_ai.request.stop_sequences": []any{"END", "STOP"},
		})),
		with(env, with(openaiReq, map[string]any{
			"oisp.event_id": "01RESP", "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.request.model": "gpt-4o",
			"gen_ai.response.id": "chatcmpl-abc", "gen_ai.response.finish_reasons": []any{"tool_calls", "stop"},
			"gen_ai.usage.input_tokens": int64(1200), "gen_ai.usage.output_tokens": int64(30),
			"gen_ai.usage.cache_read.input_tokens": int64(1000), "gen_ai.usage.cache_creation.input_tokens": int64(50),
			"gen_ai.usage.reasoning.output_tokens": int64(0), "gen_ai.response.time_to_first_chunk": 0.25,
			"gen_ai.request.stream": true, "http.response.status_code": int64(200),
			"oisp.related_events": []any{"caused_by:01REQ"},
		})),
		with(env, map[string]any{
			"oisp.event_id": "01CALL", "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
			"gen_ai.tool.call.id": "call_1", "gen_ai.tool.type": "function", "gen_ai.tool.description": "Weather by city",
			"oisp.request_id": "req-1",
		}),
		with(env, map[string]any{
			"oisp.event_id": "01EXEC", "host.name": "other-box",
			"process.executable.path": "/usr/bin/curl", "process.command_args": []any{"curl", "wttr.in/Paris", "bad\ufffdutf8"},
			"process.working_directory": "/tmp/\ufffd",
		}),
		with(env, map[string]any{
			"oisp.event_id": "01FAIL", "oisp.request_id": "req-2", "gen_ai.provider.name": "gcp.vertex_ai",
			"gen_ai.system": "gcp.vertex_ai", "server.address": "us-central1-aiplatform.googleapis.com",
			"server.port": int64(8443), "gen_ai.response.model": "gemini-2.0-flash",
			"http.response.status_code": int64(429), "error.type": "rate_limit_error",
		}),
		with(env, map[string]any{
			"oisp.event_id": "01EMB", "oisp.request_id": "req-3", "gen_ai.operation.name": "embeddings",
			"gen_ai.provider.name": "mistral_ai", "gen_ai.system": "mistral_ai", "server.address": "api.mistral.ai",
			"server.port": int64(443), "gen_ai.request.model": "mistral-embed", "gen_ai.usage.input_tokens": int64(17),
			"http.response.status_code": int64(200),
		}),
	}
	delete(want[3], "host.id") // exec's own host has no device id
	return want
}

// deliver records evs, closes the exporter and returns what the collector
// received: one record per event.
func deliver(t *testing.T, exp *otlp.Exporter, col *collector, evs []*oisp.Event) []received {
	t.Helper()
	for _, ev := range evs {
		exp.Record(ev)
	}
	if err := exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := col.records()
	if len(got) != len(evs) {
		t.Fatalf("collector got %d records of %d events", len(got), len(evs))
	}
	return got
}

// TestMapping sends agentRun over each protocol to a real receiver and
// checks every field of every record.
func TestMapping(t *testing.T) {
	for _, tc := range []struct {
		name, protocol, compression string
	}{
		{"http", otlp.HTTPProtobuf, ""},
		{"http-gzip", otlp.HTTPProtobuf, "gzip"},
		{"http-none", otlp.HTTPProtobuf, "none"},
		{"grpc", otlp.GRPC, ""},
		{"grpc-gzip", otlp.GRPC, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := newCollector(t)
			endpoint := col.serve(tc.protocol)
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{
				Endpoint: endpoint, Protocol: tc.protocol, Compression: tc.compression,
				Headers: map[string]string{"X-Api-Key": "k1"}, HostName: "dev-box", ServiceVersion: "0.3.0",
				ResourceAttributes: map[string]string{"deployment.environment.name": "test"},
				LegacySystem:       true, Stats: &counts,
			})
			if err != nil {
				t.Fatal(err)
			}
			evs := agentRun()
			before := time.Now()
			got := deliver(t, exp, col, evs)
			if n := counts.Get(otlp.CountSent); n != int64(len(evs)) {
				t.Errorf("%s = %d, want %d", otlp.CountSent, n, len(evs))
			}
			if h := col.headers[0].Get("X-Api-Key"); h != "k1" {
				t.Errorf("the collector got header X-Api-Key %q", h)
			}
			if tc.protocol == otlp.HTTPProtobuf {
				want := ""
				if tc.compression == "gzip" {
					want = "gzip"
				}
				if got := col.headers[0].Get("Content-Encoding"); got != want {
					t.Errorf("Content-Encoding %q, want %q", got, want)
				}
			}

			wantResource := map[string]any{
				"service.name": "oisp-sensor", "service.version": "0.3.0", "host.name": "dev-box",
				"os.type": runtime.GOOS, "host.arch": runtime.GOARCH, "telemetry.sdk.name": "oisp-sensor",
				"telemetry.sdk.language": "go", "deployment.environment.name": "test",
			}
			if d := cmp.Diff(wantResource, attrMap(got[0].resource.Attributes)); d != "" {
				t.Errorf("resource (-want +got):\n%s", d)
			}
			if got[0].scope.Name != "github.com/oisp/oisp-sensor/sensor/sink/otlp" {
				t.Errorf("scope %q", got[0].scope.Name)
			}

			want := agentRunAttrs()
			for i, ev := range evs {
				r := got[i].record
				if r.EventName != ev.EventType {
					t.Errorf("record %d: event name %q, want %q", i, r.EventName, ev.EventType)
				}
				ts, _ := time.Parse(time.RFC3339Nano, ev.TS)
				if r.TimeUnixNano != uint64(ts.UnixNano()) {
					t.Errorf("record %d: time %d, want %d (%s)", i, r.TimeUnixNano, ts.UnixNano(), ev.TS)
				}
				if obs := time.Unix(0, int64(r.ObservedTimeUnixNano)); obs.Before(before.Add(-time.Second)) || obs.After(time.Now().Add(time.Second)) {
					t.Errorf("record %d: observed time %v is not the time of Record", i, obs)
				}
				body, _ := json.Marshal(ev.Data)
				if s := r.Body.GetStringValue(); s != string(body) {
					t.Errorf("record %d: body\n got %s\nwant %s", i, s, body)
				}
				wantSev, wantText := int32(9), "INFO"
				if ev.EventID == "01FAIL" {
					wantSev, wantText = 17, "ERROR"
				}
				if int32(r.SeverityNumber) != wantSev || r.SeverityText != wantText {
					t.Errorf("record %d: severity %v %q, want %d %q", i, r.SeverityNumber, r.SeverityText, wantSev, wantText)
				}
				if d := cmp.Diff(want[i], attrMap(r.Attributes)); d != "" {
					t.Errorf("record %d (%s) attributes (-want +got):\n%s", i, ev.EventType, d)
				}
			}
			if tid := got[0].record.TraceId; len(tid) != 16 || tid[0] != 0x4b || tid[15] != 0x36 {
				t.Errorf("trace id %x", tid)
			}
			if sid := got[0].record.SpanId; len(sid) != 8 || sid[0] != 0x00 || sid[7] != 0xb7 {
				t.Errorf("span id %x", sid)
			}
			if len(got[1].record.TraceId) != 0 {
				t.Errorf("an event without trace context got trace id %x", got[1].record.TraceId)
			}
		})
	}
}

// replayFixtures runs the first n fixtures through the sensor.
func replayFixtures(t testing.TB, n int) []*oisp.Event {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "..", "fixtures", "*", "*", "cassette.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var evs []*oisp.Event
	for _, path := range paths[:min(n, len(paths))] {
		rec, err := cassette.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := session.Replay(context.Background(), rec, replay.Options{IDPrefix: filepath.Base(filepath.Dir(path))})
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, got...)
	}
	return evs
}

// TestFixtures replays every fixture through the sensor into the exporter
// and checks that the collector got each event, whole, in order, with the
// token counts and models of its data.
func TestFixtures(t *testing.T) {
	evs := replayFixtures(t, 1<<20)
	col := newCollector(t)
	_, endpoint := col.serveHTTP(false)
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: endpoint, MaxQueue: len(evs), Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	got := deliver(t, exp, col, evs)
	checked := 0
	for i, ev := range evs {
		r := got[i].record
		a := attrMap(r.Attributes)
		body, _ := json.Marshal(ev.Data)
		if r.EventName != ev.EventType || a["oisp.event_id"] != ev.EventID || r.Body.GetStringValue() != string(body) {
			t.Fatalf("record %d is not event %s (%s)", i, ev.EventID, ev.EventType)
		}
		d, ok := ev.Data.(*oisp.AIResponse)
		if !ok {
			continue
		}
		checked++
		if d.Model != nil && d.Model.ID != "" && a["gen_ai.response.model"] != d.Model.ID {
			t.Errorf("%s: gen_ai.response.model %v, data %q", ev.EventID, a["gen_ai.response.model"], d.Model.ID)
		}
		if u := d.Usage; u != nil && u.PromptTokens != nil && a["gen_ai.usage.input_tokens"] != int64(*u.PromptTokens) {
			t.Errorf("%s: gen_ai.usage.input_tokens %v, data %d", ev.EventID, a["gen_ai.usage.input_tokens"], *u.PromptTokens)
		}
		if u := d.Usage; u != nil && u.CompletionTokens != nil && a["gen_ai.usage.output_tokens"] != int64(*u.CompletionTokens) {
			t.Errorf("%s: gen_ai.usage.output_tokens %v, data %d", ev.EventID, a["gen_ai.usage.output_tokens"], *u.CompletionTokens)
		}
		if d.Provider != nil && a["gen_ai.provider.name"] == nil {
			t.Errorf("%s: no gen_ai.provider.name for provider %+v", ev.EventID, *d.Provider)
		}
		if d.StatusCode >= 400 && a["error.type"] == nil {
			t.Errorf("%s: status %d without error.type", ev.EventID, d.StatusCode)
		}
	}
	if checked == 0 {
		t.Fatal("the fixtures gave no ai.response")
	}
	if counts.Get(otlp.CountSent) != int64(len(evs)) || counts.Get(otlp.CountDropped) != 0 {
		t.Errorf("counters %v", counts.Snapshot())
	}
	t.Logf("%d events, %d ai.response checked", len(evs), checked)
}

// TestBatching: a full batch goes at once, a partial one after the batch
// timeout, and Close sends the rest.
func TestBatching(t *testing.T) {
	col := newCollector(t)
	_, endpoint := col.serveHTTP(false)
	exp, err := otlp.New(otlp.Config{Endpoint: endpoint, BatchSize: 10, BatchTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ev := agentRun()[0]
	for range 25 {
		exp.Record(ev)
	}
	waitFor(t, "two full batches", func() bool { return len(col.batchSizes()) == 2 })
	if err := exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{10, 10, 5}, col.batchSizes()); d != "" {
		t.Errorf("batch sizes (-want +got):\n%s", d)
	}

	col = newCollector(t)
	_, endpoint = col.serveHTTP(false)
	exp, err = otlp.New(otlp.Config{Endpoint: endpoint, BatchSize: 100, BatchTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close(context.Background())
	for range 3 {
		exp.Record(ev)
	}
	waitFor(t, "the partial batch after the batch timeout", func() bool { return len(col.records()) == 3 })
}

// TestRetryAfter: the collector answers busy twice with a delay to wait;
// the exporter waits at least that long, retries and delivers everything.
func TestRetryAfter(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			busy := reply{status: http.StatusServiceUnavailable, retryAfter: time.Second}
			col := newCollector(t, busy, reply{status: http.StatusTooManyRequests, retryAfter: time.Second})
			endpoint := col.serve(protocol)
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{Endpoint: endpoint, Protocol: protocol, BatchSize: 5, Stats: &counts})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for _, ev := range agentRun()[:5] {
				exp.Record(ev)
			}
			waitFor(t, "the batch after two retries", func() bool { return len(col.records()) == 5 })
			// Two waits of at least the second the collector asked for: the
			// backoff alone would start at 250-500ms.
			if elapsed := time.Since(start); elapsed < 2*time.Second {
				t.Errorf("delivered after %v: the Retry-After of 1s was not honoured twice", elapsed)
			}
			if err := exp.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{otlp.CountSent: 5, otlp.CountErrors: 2, otlp.CountRetries: 2}
			if d := cmp.Diff(want, counts.Snapshot()); d != "" {
				t.Errorf("counters (-want +got):\n%s", d)
			}
		})
	}
}

// TestRefusedAndPartial: a refusal that retrying cannot fix drops the batch
// at once; a partial success counts the rejected records.
func TestRefusedAndPartial(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			col := newCollector(t, reply{status: http.StatusBadRequest}, reply{rejected: 2})
			endpoint := col.serve(protocol)
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{Endpoint: endpoint, Protocol: protocol, BatchSize: 3, Stats: &counts})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range agentRun() {
				exp.Record(ev)
			}
			if err := exp.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{otlp.CountSent: 1, otlp.CountErrors: 1, otlp.CountDropped: 5, otlp.CountRejected: 2}
			if d := cmp.Diff(want, counts.Snapshot()); d != "" {
				t.Errorf("counters (-want +got):\n%s", d)
			}
			if n := col.callCount(); n != 2 {
				t.Errorf("%d export calls, want 2 (no retry of a refusal)", n)
			}
		})
	}
}

// deadEndpoint returns a URL on which nothing listens.
func deadEndpoint(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return "http://" + addr
}

// recordAll calls Record for every event on another goroutine and fails if
// the calls do not all return: Record must never wait for the collector.
func recordAll(t *testing.T, exp *otlp.Exporter, ev *oisp.Event, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			exp.Record(ev)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Record blocked on a collector that does not answer")
	}
}

// TestCollectorDown: with the collector down or hung, Record keeps
// returning, the queue stays bounded (the rest is dropped and counted) and
// Close gives up at its deadline, saying what was lost.
func TestCollectorDown(t *testing.T) {
	for _, tc := range []struct{ name, protocol string }{
		{"down-http", otlp.HTTPProtobuf}, {"down-grpc", otlp.GRPC}, {"hung-http", otlp.HTTPProtobuf}, {"hung-grpc", otlp.GRPC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := deadEndpoint(t)
			if strings.HasPrefix(tc.name, "hung") {
				col := newCollector(t, reply{hang: true}, reply{hang: true}, reply{hang: true})
				endpoint = col.serve(tc.protocol)
			}
			var counts stats.Counters
			var mu sync.Mutex
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
			exp, err := otlp.New(otlp.Config{Endpoint: endpoint, Protocol: tc.protocol, BatchSize: 4, MaxQueue: 16, Timeout: time.Hour, Stats: &counts, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			const n = 5000
			recordAll(t, exp, agentRun()[1], n)
			if counts.Get(otlp.CountDropped) < n-16-4 {
				t.Errorf("%d dropped of %d with a queue of 16 and a batch of 4", counts.Get(otlp.CountDropped), n)
			}
			mu.Lock()
			full := strings.Count(logs.String(), "queue full")
			mu.Unlock()
			if full != 1 {
				t.Errorf("the full queue was logged %d times, want once", full)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			closed := make(chan error, 1)
			go func() { closed <- exp.Close(ctx) }()
			select {
			case err = <-closed:
			case <-time.After(time.Minute):
				t.Fatal("Close did not return after its deadline")
			}
			if err == nil || !strings.Contains(err.Error(), "not delivered") || !strings.Contains(err.Error(), "deadline") {
				t.Errorf("Close: %v", err)
			}
			if sent, dropped := counts.Get(otlp.CountSent), counts.Get(otlp.CountDropped); sent != 0 || dropped != n {
				t.Errorf("sent %d, dropped %d of %d", sent, dropped, n)
			}
			// After Close, Record still returns and counts.
			exp.Record(agentRun()[0])
			if counts.Get(otlp.CountDropped) != n+1 {
				t.Errorf("a Record after Close was not counted as dropped")
			}
		})
	}
}

// TestSecretsNeverLogged: the API key header reaches the collector, but
// neither it nor credentials in the URL appear in logs or errors, over
// failures of every kind.
func TestSecretsNeverLogged(t *testing.T) {
	const key, user, pass, token = "Bearer hdr-s3cret", "usr-s3cret", "pwd-s3cret", "qry-s3cret"
	secrets := []string{key, "hdr-s3cret", user, pass, token}
	withCreds := func(endpoint string) string {
		return strings.Replace(endpoint, "http://", "http://"+user+":"+pass+"@", 1) + "?token=" + token
	}
	for _, tc := range []struct {
		name     string
		protocol string
		script   []reply
		down     bool
	}{
		{"http-busy-then-refused", otlp.HTTPProtobuf, []reply{{status: 503}, {status: 400}, {status: 503}, {}}, false},
		{"http-down", otlp.HTTPProtobuf, nil, true},
		{"grpc-busy-then-refused", otlp.GRPC, []reply{{status: 503}, {status: 400}, {status: 503}, {}}, false},
		{"grpc-down", otlp.GRPC, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := newCollector(t, tc.script...)
			endpoint := deadEndpoint(t)
			if !tc.down {
				endpoint = col.serve(tc.protocol)
			}
			var logs bytes.Buffer
			var mu sync.Mutex
			logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var counts stats.Counters
			exp, err := otlp.New(otlp.Config{
				Endpoint: withCreds(endpoint), Protocol: tc.protocol, Headers: map[string]string{"Authorization": key},
				BatchSize: 2, Logger: logger, Stats: &counts,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range agentRun() {
				exp.Record(ev)
			}
			waitFor(t, "two failed exports", func() bool { return counts.Get(otlp.CountErrors) >= 2 })
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			closeErr := exp.Close(ctx)
			mu.Lock()
			out := logs.String()
			mu.Unlock()
			if !strings.Contains(out, "otlp:") {
				t.Fatalf("no failure was logged:\n%s", out)
			}
			if closeErr != nil {
				out += "\n" + closeErr.Error()
			}
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("secret %q appears in logs or the Close error:\n%s", s, out)
				}
			}
			if !tc.down {
				waitFor(t, "the delivered batch", func() bool { return len(col.records()) > 0 })
				if h := col.headers[0].Get("Authorization"); h != key {
					t.Errorf("the collector got Authorization %q", h)
				}
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestTLS: an https collector whose certificate a CA file vouches for is
// trusted; without the CA file the export fails as a TLS error.
func TestTLS(t *testing.T) {
	col := newCollector(t)
	srv, endpoint := col.serveHTTP(true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	exp, err := otlp.New(otlp.Config{Endpoint: endpoint, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	exp.Record(agentRun()[0])
	if err := exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.records()) != 1 {
		t.Fatalf("%d records over TLS", len(col.records()))
	}

	var counts stats.Counters
	exp, err = otlp.New(otlp.Config{Endpoint: endpoint, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	exp.Record(agentRun()[0])
	waitFor(t, "the failed TLS export", func() bool { return counts.Get(otlp.CountErrors) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := exp.Close(ctx); err == nil {
		t.Error("an untrusted certificate was accepted")
	}
}

// TestConfigErrors: a bad endpoint or protocol fails New with advice and
// without echoing the endpoint.
func TestConfigErrors(t *testing.T) {
	for _, cfg := range []otlp.Config{
		{Endpoint: "localhost:4318?token=qry-s3cret"},
		{Endpoint: "ftp://u:pwd-s3cret@h/"},
		{Protocol: "thrift"},
		{Compression: "zstd"},
		{Endpoint: "http://h:4318", CAFile: filepath.Join(t.TempDir(), "none.pem")},
	} {
		_, err := otlp.New(cfg)
		if err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
	if _, err := otlp.New(otlp.Config{Endpoint: "http://127.0.0.1:1"}); err != nil {
		t.Errorf("New does not need a collector up: %v", err)
	} else if errors.Is(err, context.Canceled) {
		t.Error("unreachable")
	}
}

// TestNoRedirect: a collector URL that redirects does not get the API key
// sent on to where it points; the batch fails as refused.
func TestNoRedirect(t *testing.T) {
	col := newCollector(t)
	_, target := col.serveHTTP(false)
	redirector := httptest.NewServer(http.RedirectHandler(target, http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)
	var counts stats.Counters
	exp, err := otlp.New(otlp.Config{Endpoint: redirector.URL, Headers: map[string]string{"X-Api-Key": "k1"}, Stats: &counts})
	if err != nil {
		t.Fatal(err)
	}
	exp.Record(agentRun()[0])
	if err := exp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := col.callCount(); n != 0 {
		t.Errorf("the redirect was followed: %d requests reached its target", n)
	}
	want := map[string]int64{otlp.CountErrors: 1, otlp.CountDropped: 1}
	if d := cmp.Diff(want, counts.Snapshot()); d != "" {
		t.Errorf("counters (-want +got):\n%s", d)
	}
}
