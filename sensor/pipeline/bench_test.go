package pipeline

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// discard is a Recorder that keeps nothing.
type discard struct{ n int }

func (d *discard) Record(*oisp.Event) { d.n++ }

// BenchmarkKeepAliveExchange is the pipeline's cost per exchange on a
// long-lived HTTP/1.1 flow (what the eBPF capture of a keep-alive client
// feeds it): a 1 KiB chat request and a small JSON response per op, each
// arriving as one chunk, events built and discarded.
func BenchmarkKeepAliveExchange(b *testing.B) {
	out := &discard{}
	p := newPipelineTo(b, ContentFull, out)
	head := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"`
	reqBody := head + strings.Repeat("x", 1024-len(head)-4) + `"}]}`
	req := []byte(httpRequest(reqBody))
	resp := []byte(httpResponse(`{"id":"chatcmpl-1","object":"chat.completion","created":1755523983,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":13,"completion_tokens":7,"total_tokens":20},"service_tier":"default","system_fingerprint":null}`))
	info := &flow.Info{ID: "ka", Transport: flow.TCP, TLS: true, SNI: "api.openai.com", ALPN: "http/1.1",
		Process: flow.Process{PID: 42, UID: 1000, Exe: "/usr/bin/agent", Name: "agent"},
		Method:  flow.CaptureEBPFUprobe, Remote: netip.MustParseAddrPort("192.0.2.1:443"), Started: t0}
	p.Open(info)
	at := t0
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		at = at.Add(time.Millisecond)
		p.Data("ka", flow.Chunk{Dir: flow.ClientToServer, Data: req, At: at})
		p.Data("ka", flow.Chunk{Dir: flow.ServerToClient, Data: resp, At: at.Add(time.Millisecond)})
	}
	b.StopTimer()
	p.Close("ka", flow.CloseInfo{At: at.Add(time.Second), Reason: "eof"})
	if out.n != 2*b.N {
		b.Fatalf("%d events for %d exchanges, want 2 each", out.n, b.N)
	}
}
