package web_test

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/sensor/sink/web"
)

// replayFixtures runs recorded exchanges through a real session whose
// output is rec (and host activity, as eBPF capture reports it), as the
// sensor does while it records.
func replayFixtures(tb testing.TB, rec interface {
	Record(ev *oisp.Event)
}, names ...string) {
	tb.Helper()
	s, err := session.New(session.Options{Out: rec})
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range names {
		r, err := cassette.ReadFile(filepath.Join("..", "..", "..", "fixtures", name, "cassette.yaml"))
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.Run(context.Background(), replay.New(r, replay.Options{IDPrefix: filepath.Base(name)})); err != nil {
			tb.Fatal(err)
		}
	}
	proc := flow.Process{PID: 10, PPID: 1, UID: 1000, Exe: "/usr/bin/python3", Name: "python3", Cmdline: []string{"python3", "agent.py"}}
	for _, se := range []flow.SystemEvent{
		{Kind: flow.SysExec, At: time.Unix(1e9, 0), Process: proc, Exe: "/usr/bin/python3", Args: []string{"python3", "agent.py", hostile}, Cwd: "/home/u"},
		{Kind: flow.SysConnect, At: time.Unix(1e9, 0), Process: proc, Remote: netip.MustParseAddrPort("[2001:db8::1]:443"), Success: true},
		{Kind: flow.SysFileWrite, At: time.Unix(1e9, 0), Process: proc, Path: "/tmp/" + hostile, BytesWritten: 12, Created: true},
	} {
		s.Pipeline.System(se)
	}
}

// fixtures are recordings with streaming, tool calls and tool results on
// two providers' APIs.
var fixtures = []string{
	"anthropic/pai-anthropic-memory-tool",
	"openai/lcg-testopenaifunctionsagentwithhttprr",
	"openai/lcg-testclient-createchatcompletionstream",
	"anthropic/lcg-testclient-createmessagestream",
}

// TestFixturesThroughDashboard: real events from replayed recordings reach
// a live stream exactly as the JSONL output writes them, and the page
// pairs every request with its response and nests each tool call and
// result under the exchange it belongs to.
func TestFixturesThroughDashboard(t *testing.T) {
	srv, _ := start(t, web.Config{})
	live := openStream(t, srv, "", "")
	waitFor(t, "the stream to register", func() bool { return srv.Snapshot().Clients == 1 })
	var jsonl bytes.Buffer
	file := sink.NewJSONL(&jsonl, 0)
	replayFixtures(t, sink.Tee{file, srv}, fixtures...)
	if err := file.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(jsonl.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) < 15 {
		t.Fatalf("only %d events from the fixtures", len(lines))
	}
	for i, line := range lines {
		e := live.next(t)
		if !bytes.Equal(e.Data, line) {
			t.Fatalf("stream event %d differs from the JSONL line:\n got %s\nwant %s", i+1, e.Data, line)
		}
	}

	// What the page should make of them: one exchange per request_id.
	type exchange struct {
		req, resp      string
		calls, results []string
	}
	want := map[string]*exchange{}
	system := 0
	for _, line := range lines {
		var ev struct {
			EventID   string `json:"event_id"`
			EventType string `json:"event_type"`
			Data      struct {
				RequestID string `json:"request_id"`
			} `json:"data"`
		}
		if err := stdjson.Unmarshal(line, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Data.RequestID == "" {
			system++
			continue
		}
		x := want[ev.Data.RequestID]
		if x == nil {
			x = &exchange{}
			want[ev.Data.RequestID] = x
		}
		switch ev.EventType {
		case "ai.request":
			x.req = ev.EventID
		case "ai.response":
			x.resp = ev.EventID
		case "agent.tool_call":
			x.calls = append(x.calls, ev.EventID)
		case "agent.tool_result":
			x.results = append(x.results, ev.EventID)
		}
	}
	res := render(t, srv)
	if res.System != system || len(res.Interactions) != len(want) {
		t.Fatalf("page shows %d exchanges and %d system events, want %d and %d", len(res.Interactions), res.System, len(want), system)
	}
	calls, results := 0, 0
	for _, it := range res.Interactions {
		x := want[it.Key]
		if x == nil {
			t.Fatalf("page made an exchange %q no request_id names", it.Key)
		}
		if it.Request != x.req || it.Response != x.resp || !slices.Equal(it.ToolCalls, x.calls) || !slices.Equal(it.ToolResults, x.results) {
			t.Errorf("exchange %s: page has %s/%s calls %v results %v; want %s/%s %v %v",
				it.Key, it.Request, it.Response, it.ToolCalls, it.ToolResults, x.req, x.resp, x.calls, x.results)
		}
		if it.Request == "" || it.Response == "" || it.Summary["status"] == "pending" || it.Summary["model"] == "" || it.Summary["provider"] == "" {
			t.Errorf("exchange %s is incomplete on the page: %v", it.Key, it.Summary)
		}
		calls += len(it.ToolCalls)
		results += len(it.ToolResults)
	}
	if calls == 0 || results == 0 {
		t.Errorf("the fixtures gave %d tool calls and %d results on the page; they have both", calls, results)
	}
}
