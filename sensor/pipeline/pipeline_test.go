package pipeline

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/spec"
)

type memory struct{ events []*oisp.Event }

func (m *memory) Record(ev *oisp.Event) { m.events = append(m.events, ev) }

func (m *memory) ofType(t string) []*oisp.Event {
	var out []*oisp.Event
	for _, ev := range m.events {
		if ev.EventType == t {
			out = append(out, ev)
		}
	}
	return out
}

func newTestPipeline(t *testing.T, content ContentMode) (*Pipeline, *memory) {
	t.Helper()
	mem := &memory{}
	return newPipelineTo(t, content, mem), mem
}

// newPipelineTo builds a pipeline with the embedded registry that records
// into out.
func newPipelineTo(tb testing.TB, content ContentMode, out Recorder) *Pipeline {
	tb.Helper()
	reg, err := provider.LoadRegistry(provider.RegistryOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return New(Config{
		Registry: reg,
		Builder:  oisp.NewBuilder(oisp.BuilderOptions{Host: &oisp.Host{OS: "linux", Arch: "x86_64"}}),
		Out:      out,
		Content:  content,
	})
}

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func httpRequest(body string) string {
	return "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer sk-proj-secretsecretsecretsecret\r\nContent-Type: application/json\r\nContent-Length: " +
		fmt.Sprint(len(body)) + "\r\n\r\n" + body
}

func httpResponse(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: req_abc\r\nContent-Length: " +
		fmt.Sprint(len(body)) + "\r\n\r\n" + body
}

// runFlow feeds one keep-alive flow of request/response pairs.
func runFlow(p *Pipeline, id string, pid int, pairs ...[2]string) {
	info := &flow.Info{ID: id, Transport: flow.TCP, TLS: true, SNI: "api.openai.com", ALPN: "http/1.1",
		Process: flow.Process{PID: pid, UID: 1000, Exe: "/usr/bin/agent", Name: "agent"},
		Method:  flow.CaptureEBPFUprobe, Remote: netip.MustParseAddrPort("192.0.2.1:443"), Started: t0}
	p.Open(info)
	at := t0
	for _, pr := range pairs {
		at = at.Add(10 * time.Millisecond)
		p.Data(id, flow.Chunk{Dir: flow.ClientToServer, Data: []byte(pr[0]), At: at})
		at = at.Add(200 * time.Millisecond)
		p.Data(id, flow.Chunk{Dir: flow.ServerToClient, Data: []byte(pr[1]), At: at})
	}
	p.Close(id, flow.CloseInfo{At: at.Add(time.Millisecond), Reason: "eof"})
}

const (
	step1Req  = `{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Weather in Paris?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}`
	step1Resp = `{"id":"chatcmpl-1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":50,"completion_tokens":10,"total_tokens":60}}`
	step2Req  = `{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Weather in Paris?"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"18C, sunny"}]}`
	step2Resp = `{"id":"chatcmpl-2","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"18C and sunny."},"finish_reason":"stop"}],"usage":{"prompt_tokens":70,"completion_tokens":5,"total_tokens":75}}`
)

func TestAgentLoopLinksToolCallsAndResults(t *testing.T) {
	p, mem := newTestPipeline(t, ContentFull)
	runFlow(p, "f1", 42,
		[2]string{httpRequest(step1Req), httpResponse(step1Resp)},
		[2]string{httpRequest(step2Req), httpResponse(step2Resp)},
		// a third step resends the same tool result: no second tool_result
		[2]string{httpRequest(step2Req), httpResponse(step2Resp)},
	)
	reqs, resps := mem.ofType(oisp.TypeAIRequest), mem.ofType(oisp.TypeAIResponse)
	calls, results := mem.ofType(oisp.TypeToolCall), mem.ofType(oisp.TypeToolResult)
	if len(reqs) != 3 || len(resps) != 3 || len(calls) != 1 || len(results) != 1 {
		t.Fatalf("got %d requests, %d responses, %d tool calls, %d tool results; want 3, 3, 1, 1",
			len(reqs), len(resps), len(calls), len(results))
	}
	call := calls[0].Data.(*oisp.ToolCallEvent)
	if call.Tool.Name != "get_weather" || call.CallID != "call_1" || call.Arguments["city"] != "Paris" {
		t.Errorf("tool call = %+v", call)
	}
	res := results[0].Data.(*oisp.ToolResultEvent)
	if res.CallID != "call_1" || res.Result != "18C, sunny" || res.Tool == nil || res.Tool.Name != "get_weather" {
		t.Errorf("tool result = %+v", res)
	}
	if !related(results[0], calls[0].EventID, oisp.RelParent) {
		t.Errorf("tool result not linked to its call: %+v", results[0].RelatedEvents)
	}
	if !related(calls[0], resps[0].EventID, oisp.RelCausedBy) || !related(resps[0], reqs[0].EventID, oisp.RelParent) {
		t.Error("call→response→request links missing")
	}
	r0, r1 := reqs[0].Data.(*oisp.AIRequest), reqs[1].Data.(*oisp.AIRequest)
	if r0.ConversationID == "" || r0.ConversationID != r1.ConversationID {
		t.Errorf("steps of one loop must share a conversation id: %q vs %q", r0.ConversationID, r1.ConversationID)
	}
	if resps[0].Data.(*oisp.AIResponse).RequestID != r0.RequestID {
		t.Error("response does not carry its request's request_id")
	}
	lat := resps[0].Data.(*oisp.AIResponse).LatencyMS
	if lat == nil || *lat != 200 {
		t.Errorf("latency = %v, want 200 ms from capture timestamps", lat)
	}
	for _, ev := range mem.events {
		if ev.Process == nil || ev.Process.PID != 42 || ev.Confidence.ProcessAttribution != "direct" {
			t.Errorf("%s: process attribution missing: %+v", ev.EventType, ev.Process)
		}
	}
	validateAll(t, mem.events)
	noSecrets(t, mem.events, "secretsecret")
}

func TestToolResultsAreScopedToTheProcess(t *testing.T) {
	p, mem := newTestPipeline(t, ContentFull)
	runFlow(p, "a", 1, [2]string{httpRequest(step1Req), httpResponse(step1Resp)})
	// another process sends a result for a call id it never saw made
	runFlow(p, "b", 2, [2]string{httpRequest(step2Req), httpResponse(step2Resp)})
	results := mem.ofType(oisp.TypeToolResult)
	if len(results) != 1 {
		t.Fatalf("got %d tool results", len(results))
	}
	for _, r := range results[0].RelatedEvents {
		if r.Relationship == oisp.RelParent {
			t.Errorf("a result from pid 2 was linked to pid 1's call")
		}
	}
	if p.Stats().Get("agent.tool_results_unlinked") != 1 {
		t.Errorf("unlinked results not counted: %v", p.Stats().Snapshot())
	}
}

func TestMetadataModeCarriesNoText(t *testing.T) {
	p, mem := newTestPipeline(t, ContentMetadata)
	runFlow(p, "f", 7,
		[2]string{httpRequest(step1Req), httpResponse(step1Resp)},
		[2]string{httpRequest(step2Req), httpResponse(step2Resp)})
	validateAll(t, mem.events)
	// The texts carry spaces or quotes, which no id or hash can hold
	// (a ULID once held "18C").
	for _, ev := range mem.events {
		b, _ := json.Marshal(ev)
		for _, text := range []string{"Weather in Paris", "You are terse", "18C, sunny", "18C and sunny", "Paris\""} {
			if strings.Contains(string(b), text) {
				t.Errorf("%s carries %q in metadata mode: %s", ev.EventType, text, b)
			}
		}
	}
	req := mem.ofType(oisp.TypeAIRequest)[0].Data.(*oisp.AIRequest)
	if req.Messages[1].ContentLength != len("Weather in Paris?") || req.Messages[1].ContentHash != oisp.Hash("Weather in Paris?") {
		t.Errorf("metadata message = %+v", req.Messages[1])
	}
	call := mem.ofType(oisp.TypeToolCall)[0].Data.(*oisp.ToolCallEvent)
	if call.ArgumentsHash != oisp.Hash(`{"city":"Paris"}`) {
		t.Errorf("tool call hash = %q", call.ArgumentsHash)
	}
}

func TestTruncatedResponseIsPartial(t *testing.T) {
	p, mem := newTestPipeline(t, ContentFull)
	resp := httpResponse(step2Resp)
	info := &flow.Info{ID: "x", TLS: true, SNI: "api.openai.com", Started: t0}
	p.Open(info)
	p.Data("x", flow.Chunk{Dir: flow.ClientToServer, Data: []byte(httpRequest(step2Req)), At: t0})
	p.Data("x", flow.Chunk{Dir: flow.ServerToClient, Data: []byte(resp[:len(resp)-20]), At: t0.Add(time.Second)})
	p.Close("x", flow.CloseInfo{At: t0.Add(2 * time.Second), Reason: "reset"})
	resps := mem.ofType(oisp.TypeAIResponse)
	if len(resps) != 1 {
		t.Fatalf("got %d responses", len(resps))
	}
	if resps[0].Confidence.Completeness != oisp.CompletePartial {
		t.Errorf("completeness = %s, want partial", resps[0].Confidence.Completeness)
	}
	validateAll(t, mem.events)
}

func TestSystemEventsAreValidOISP(t *testing.T) {
	p, mem := newTestPipeline(t, ContentFull)
	proc := flow.Process{PID: 10, PPID: 1, UID: 0, Exe: "/bin/sh", Name: "sh"}
	for _, se := range []flow.SystemEvent{
		{Kind: flow.SysExec, At: t0, Process: proc, Exe: "/bin/sh", Args: []string{"sh", "-c", "true"}, Cwd: "/"},
		{Kind: flow.SysConnect, At: t0, Process: proc, Remote: netip.MustParseAddrPort("[2001:db8::1]:443"), Success: false, Error: "ECONNREFUSED"},
		{Kind: flow.SysFileOpen, At: t0, Process: proc, Path: "/tmp/x", Flags: []string{"write", "create", "truncate"}},
		{Kind: flow.SysFileWrite, At: t0, Process: proc, Path: "/tmp/x", BytesWritten: 12, Created: true},
		{Kind: flow.SysExit, At: t0, Process: proc, ExitCode: 0, Signal: 9, Runtime: 1500 * time.Millisecond},
	} {
		p.System(se)
	}
	if len(mem.events) != 5 {
		t.Fatalf("got %d events", len(mem.events))
	}
	validateAll(t, mem.events)
	exit := mem.events[4].Data.(*oisp.ProcessExit)
	if exit.TerminationType != "signaled" || *exit.RuntimeMS != 1500 {
		t.Errorf("exit = %+v", exit)
	}
	conn := mem.events[1].Data.(*oisp.NetworkConnect)
	if conn.Dest.IP != "2001:db8::1" || *conn.Dest.Port != 443 || *conn.Success {
		t.Errorf("connect = %+v", conn)
	}
}

func related(ev *oisp.Event, id, rel string) bool {
	for _, r := range ev.RelatedEvents {
		if r.EventID == id && r.Relationship == rel {
			return true
		}
	}
	return false
}

func validateAll(t *testing.T, events []*oisp.Event) {
	t.Helper()
	v, err := spec.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range events {
		if err := v.ValidateValue(ev); err != nil {
			t.Errorf("event %d (%s) invalid: %v", i, ev.EventType, err)
		}
	}
}

func noSecrets(t *testing.T, events []*oisp.Event, secret string) {
	t.Helper()
	for _, ev := range events {
		b, _ := json.Marshal(ev)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s leaks a credential: %s", ev.EventType, b)
		}
	}
}

// TestProviderExchangeNotDecodedIsCounted: a call to a provider's host
// that is no AI call the sensor decodes emits nothing but is counted, so
// an endpoint the sensor does not know yet shows in the counters.
func TestProviderExchangeNotDecodedIsCounted(t *testing.T) {
	p, mem := newTestPipeline(t, ContentFull)
	list := "GET /v1/files?purpose=batch&api_key=sk-hidden HTTP/1.1\r\nHost: api.openai.com\r\n\r\n"
	runFlow(p, "f1", 42, [2]string{list, httpResponse(`{"object":"list","data":[]}`)},
		[2]string{httpRequest(step2Req), httpResponse(step2Resp)})
	if n := p.Stats().Get("http.provider_exchanges_not_decoded"); n != 1 {
		t.Errorf("http.provider_exchanges_not_decoded = %d, want 1", n)
	}
	if n := len(mem.ofType(oisp.TypeAIRequest)); n != 1 {
		t.Errorf("%d ai.request events, want only the chat call's", n)
	}
	if got := pathOnly("/v1/files?purpose=batch&api_key=sk-hidden"); got != "/v1/files" {
		t.Errorf("pathOnly = %q: the query (which may carry a key) must go", got)
	}
}
