package pipeline

import (
	"net/netip"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// TestCommandLineCredentialsRedacted: a key on a process's command line
// (curl -H "Authorization: …", an --api-key option) reaches no event: not
// the process object of its AI events, not its process.exec.
func TestCommandLineCredentialsRedacted(t *testing.T) {
	const key = "sk-proj-cmdlinesecret0123456789abcdef"
	p, mem := newTestPipeline(t, ContentFull)
	argv := []string{"curl", "-H", "Authorization: Bearer " + key, "--data-binary", "@body.json", "https://api.openai.com/v1/chat/completions"}
	proc := flow.Process{PID: 42, PPID: 1, UID: 1000, Exe: "/usr/bin/curl", Name: "curl", Cmdline: argv}
	p.System(flow.SystemEvent{Kind: flow.SysExec, At: t0, Process: proc, Exe: "/usr/bin/curl", Args: argv, Cwd: "/"})
	info := &flow.Info{ID: "c", Transport: flow.TCP, TLS: true, SNI: "api.openai.com", ALPN: "http/1.1",
		Process: proc, Method: flow.CaptureEBPFUprobe, Remote: netip.MustParseAddrPort("192.0.2.1:443"), Started: t0}
	p.Open(info)
	p.Data("c", flow.Chunk{Dir: flow.ClientToServer, Data: []byte(httpRequest(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)), At: t0})
	p.Data("c", flow.Chunk{Dir: flow.ServerToClient, Data: []byte(httpResponse(`{"id":"x","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}]}`)), At: t0})
	p.Close("c", flow.CloseInfo{At: t0, Reason: "eof"})
	if len(mem.ofType("ai.request")) != 1 || len(mem.ofType("process.exec")) != 1 {
		t.Fatalf("events: %d", len(mem.events))
	}
	noSecrets(t, mem.events, key)
	validateAll(t, mem.events)
	req := mem.ofType("ai.request")[0]
	if got := req.Process.Cmdline; got != "curl -H Authorization: Bearer REDACTED --data-binary @body.json https://api.openai.com/v1/chat/completions" {
		t.Errorf("cmdline %q", got)
	}
}
