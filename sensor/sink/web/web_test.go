package web_test

import (
	"bufio"
	"bytes"
	"context"
	stdjson "encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink/web"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream"
)

// patience bounds every wait of these tests: generous, since the machine
// is shared, and never an assertion about speed.
const patience = 60 * time.Second

// start serves a new sink on a free loopback port and closes it at the
// end of the test.
func start(t testing.TB, cfg web.Config) (*web.Server, *stats.Counters) {
	t.Helper()
	st := &stats.Counters{}
	cfg.Addr = "127.0.0.1:0"
	cfg.Stats = st
	srv, err := web.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv, st
}

// waitFor polls cond until it holds, failing the test after patience.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sseStream is a real HTTP client of /api/events, parsing the stream as it
// arrives with the sensor's own SSE reader.
type sseStream struct {
	resp   *http.Response
	events chan stream.SSEEvent
	done   chan struct{} // closed when the body ends
	err    error
}

func openStream(t testing.TB, srv *web.Server, query, lastEventID string) *sseStream {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL()+"api/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %s, %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan stream.SSEEvent, 1<<16), done: make(chan struct{})}
	r := stream.NewSSE(func(e stream.SSEEvent) {
		e.Data = bytes.Clone(e.Data)
		s.events <- e
	})
	go func() {
		defer close(s.done)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				r.Feed(buf[:n], time.Now())
			}
			if err != nil {
				r.Close()
				s.err = err
				return
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// next returns the next event of the stream.
func (s *sseStream) next(t testing.TB) stream.SSEEvent {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-s.done:
		select {
		case e := <-s.events:
			return e
		default:
		}
		t.Fatalf("stream ended: %v", s.err)
	case <-time.After(patience):
		t.Fatal("timed out waiting for an event")
	}
	return stream.SSEEvent{}
}

// expectEvents reads events and checks they carry the sequence numbers
// from..to and the ids of evs[from-1..to-1].
func (s *sseStream) expectEvents(t testing.TB, evs []*oisp.Event, from, to int) {
	t.Helper()
	for seq := from; seq <= to; seq++ {
		e := s.next(t)
		if e.Event != "" || e.ID != strconv.Itoa(seq) {
			t.Fatalf("got event %q id %q, want a message with id %d", e.Event, e.ID, seq)
		}
		var got struct {
			EventID string `json:"event_id"`
		}
		if err := stdjson.Unmarshal(e.Data, &got); err != nil {
			t.Fatalf("event %d: %v: %s", seq, err, e.Data)
		}
		if got.EventID != evs[seq-1].EventID {
			t.Fatalf("event %d is %s, want %s", seq, got.EventID, evs[seq-1].EventID)
		}
	}
}

func intp(n int) *int             { return &n }
func int64p(n int64) *int64       { return &n }
func float64p(f float64) *float64 { return &f }
func boolp(b bool) *bool          { return &b }

// interaction makes the events of one AI exchange as the pipeline links
// them: a request, a response naming it as parent, and a tool call caused
// by the response.
func interaction(i int, prompt string) []*oisp.Event {
	reqID := fmt.Sprintf("req_%04d", i)
	proc := &oisp.Process{PID: 4000 + i, Name: "agent", Exe: "/usr/bin/agent"}
	ts := time.Date(2026, 11, 30, 12, 0, 0, i*int(time.Millisecond), time.UTC)
	src := oisp.Source{Collector: "oisp-sensor", CaptureMethod: "test"}
	provider := &oisp.Provider{Name: "openai", ID: "openai"}
	model := &oisp.Model{ID: "gpt-test"}
	req := &oisp.Event{
		OISPVersion: oisp.Version, EventID: fmt.Sprintf("evt_req_%04d", i), EventType: oisp.TypeAIRequest,
		TS: ts.Format(time.RFC3339Nano), Process: proc, Source: src,
		Data: &oisp.AIRequest{RequestID: reqID, Provider: provider, Model: model, RequestType: oisp.RequestChat,
			Messages: []oisp.Message{{Role: "user", Content: prompt}}, MessagesCount: 1},
	}
	resp := &oisp.Event{
		OISPVersion: oisp.Version, EventID: fmt.Sprintf("evt_resp_%04d", i), EventType: oisp.TypeAIResponse,
		TS: ts.Add(250 * time.Millisecond).Format(time.RFC3339Nano), Process: proc, Source: src,
		RelatedEvents: []oisp.Related{{EventID: req.EventID, Relationship: oisp.RelParent}},
		Data: &oisp.AIResponse{RequestID: reqID, Provider: provider, Model: model, StatusCode: 200, Success: boolp(true),
			Choices:   []oisp.Choice{{Message: &oisp.Message{Role: "assistant", Content: "answer to " + prompt}, FinishReason: "tool_calls"}},
			Usage:     &oisp.Usage{PromptTokens: intp(10), CompletionTokens: intp(5), TotalTokens: intp(15), TotalCostUSD: float64p(0.25)},
			LatencyMS: int64p(250), FinishReason: "tool_calls", ToolCallsCount: 1},
	}
	call := &oisp.Event{
		OISPVersion: oisp.Version, EventID: fmt.Sprintf("evt_call_%04d", i), EventType: oisp.TypeToolCall,
		TS: resp.TS, Process: proc, Source: src,
		RelatedEvents: []oisp.Related{{EventID: resp.EventID, Relationship: oisp.RelCausedBy}},
		Data: &oisp.ToolCallEvent{Tool: oisp.ToolInfo{Name: "search"}, CallID: "call_1", RequestID: reqID,
			Arguments: map[string]any{"q": prompt}},
	}
	return []*oisp.Event{req, resp, call}
}

// manyEvents returns n events (whole interactions, cut to n).
func manyEvents(n int, prompt string) []*oisp.Event {
	var evs []*oisp.Event
	for i := 0; len(evs) < n; i++ {
		evs = append(evs, interaction(i, prompt)...)
	}
	return evs[:n]
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := stdjson.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

type recent struct {
	LastSeq uint64 `json:"last_seq"`
	Missed  uint64 `json:"missed"`
	Events  []struct {
		Seq   uint64         `json:"seq"`
		Event map[string]any `json:"event"`
	} `json:"events"`
}

// TestStreamLive: a stream opened before the events receives each one as
// it is recorded, in order, numbered, and the counters say so.
func TestStreamLive(t *testing.T) {
	srv, st := start(t, web.Config{})
	s := openStream(t, srv, "", "")
	waitFor(t, "the stream to register", func() bool { return srv.Snapshot().Clients == 1 })
	evs := manyEvents(90, "hello")
	// Ten events one at a time, then a burst of eighty.
	for i, ev := range evs[:10] {
		srv.Record(ev)
		s.expectEvents(t, evs, i+1, i+1)
	}
	for _, ev := range evs[10:] {
		srv.Record(ev)
	}
	s.expectEvents(t, evs, 11, 90)
	if got := st.Get(web.TokenEvents); got != 90 {
		t.Errorf("%s = %d, want 90", web.TokenEvents, got)
	}
	if got := st.Get(web.TokenClients); got != 1 {
		t.Errorf("%s = %d, want 1", web.TokenClients, got)
	}
	snap := srv.Snapshot()
	// 30 responses of 10+5 tokens at $0.25.
	if snap.PromptTokens != 300 || snap.CompletionTokens != 150 || snap.TotalTokens != 450 || snap.CostUSD != 7.5 {
		t.Errorf("tally %+v", snap)
	}
	if snap.ByType[oisp.TypeAIRequest] != 30 || snap.ByType[oisp.TypeToolCall] != 30 {
		t.Errorf("by type %v", snap.ByType)
	}
}

// TestResumeWithLastEventID: a reconnecting client (Last-Event-ID) gets
// the buffered events after its last one, then the live ones, with no gap
// or repeat; one asking for events the ring evicted is told how many with
// a gap event, and they are counted.
func TestResumeWithLastEventID(t *testing.T) {
	srv, st := start(t, web.Config{RingEvents: 40})
	evs := manyEvents(100, "resume")
	for _, ev := range evs[:30] {
		srv.Record(ev)
	}
	s := openStream(t, srv, "", "20")
	s.expectEvents(t, evs, 21, 30)
	for _, ev := range evs[30:60] {
		srv.Record(ev)
	}
	s.expectEvents(t, evs, 31, 60)
	if got := st.Get(web.TokenMissed); got != 0 {
		t.Errorf("%s = %d before any eviction", web.TokenMissed, got)
	}

	// The ring now holds 21..60; a client last at 5 missed 6..20.
	gap := openStream(t, srv, "", "5")
	e := gap.next(t)
	if e.Event != "gap" || string(e.Data) != `{"missed":15}` {
		t.Fatalf("first event %q %s, want a gap of 15", e.Event, e.Data)
	}
	gap.expectEvents(t, evs, 21, 60)
	if got := st.Get(web.TokenMissed); got != 15 {
		t.Errorf("%s = %d, want 15", web.TokenMissed, got)
	}

	// since=N is the same without a reconnection (not counted as missed);
	// Last-Event-ID wins over it, as a browser reconnecting to the same
	// URL sends both.
	fresh := openStream(t, srv, "?since=0", "")
	if e := fresh.next(t); e.Event != "gap" || string(e.Data) != `{"missed":20}` {
		t.Fatalf("since=0: first event %q %s, want a gap of 20", e.Event, e.Data)
	}
	fresh.expectEvents(t, evs, 21, 60)
	both := openStream(t, srv, "?since=0", "55")
	both.expectEvents(t, evs, 56, 60)
	if got := st.Get(web.TokenMissed); got != 15 {
		t.Errorf("%s = %d after since=0, want still 15", web.TokenMissed, got)
	}
	// Every stream sees the next live event.
	srv.Record(evs[60])
	for _, c := range []*sseStream{s, gap, fresh, both} {
		c.expectEvents(t, evs, 61, 61)
	}
}

// TestRingEviction: the ring keeps the newest events within its count and
// byte budgets, and /api/recent serves them by count and by sequence.
func TestRingEviction(t *testing.T) {
	srv, _ := start(t, web.Config{RingEvents: 50})
	evs := manyEvents(120, "ring")
	for _, ev := range evs {
		srv.Record(ev)
	}
	var all recent
	getJSON(t, srv.URL()+"api/recent", &all)
	if len(all.Events) != 50 || all.Events[0].Seq != 71 || all.Events[49].Seq != 120 || all.LastSeq != 120 || all.Missed != 70 {
		t.Fatalf("recent: %d events %d..%d, last %d, missed %d; want 71..120, 70 missed",
			len(all.Events), all.Events[0].Seq, all.Events[len(all.Events)-1].Seq, all.LastSeq, all.Missed)
	}
	for _, e := range all.Events {
		if e.Event["event_id"] != evs[e.Seq-1].EventID {
			t.Fatalf("seq %d holds %v, want %s", e.Seq, e.Event["event_id"], evs[e.Seq-1].EventID)
		}
	}
	var last5, since recent
	getJSON(t, srv.URL()+"api/recent?n=5", &last5)
	getJSON(t, srv.URL()+"api/recent?since=110", &since)
	if len(last5.Events) != 5 || last5.Events[0].Seq != 116 || len(since.Events) != 10 || since.Events[0].Seq != 111 || since.Missed != 0 {
		t.Fatalf("n=5 gave %d from %d; since=110 gave %d from %d", len(last5.Events), last5.Events[0].Seq, len(since.Events), since.Events[0].Seq)
	}
	snap := srv.Snapshot()
	if snap.RingEvents != 50 || snap.RingEvicted != 70 || snap.RingFirstSeq != 71 || snap.Events != 120 {
		t.Fatalf("snapshot %+v", snap)
	}

	// A byte budget: events of about 10 KiB in a 64 KiB budget.
	big := strings.Repeat("x", 10<<10)
	bsrv, _ := start(t, web.Config{RingBytes: 64 << 10})
	bevs := manyEvents(40, big)
	for _, ev := range bevs {
		bsrv.Record(ev)
	}
	b := bsrv.Snapshot()
	if b.RingBytes > 64<<10 || b.RingEvents < 3 || b.RingEvents > 7 || b.RingFirstSeq != uint64(40-b.RingEvents+1) {
		t.Fatalf("byte budget: ring holds %d events, %d bytes from %d", b.RingEvents, b.RingBytes, b.RingFirstSeq)
	}
	// One event over the whole budget is still kept, alone.
	huge := manyEvents(1, strings.Repeat("y", 100<<10))[0]
	bsrv.Record(huge)
	if b := bsrv.Snapshot(); b.RingEvents != 1 || b.RingFirstSeq != 41 {
		t.Fatalf("over-budget event: ring holds %d from %d", b.RingEvents, b.RingFirstSeq)
	}
}

// TestSlowClientDropped: a client that stops reading is dropped once its
// queue is full (its connection closed, counted), while Record never waits
// and a client that reads receives every event.
func TestSlowClientDropped(t *testing.T) {
	srv, st := start(t, web.Config{ClientQueue: 16})
	fast := openStream(t, srv, "", "")

	// The slow client: a real TCP connection that sends the request, reads
	// the response head and then nothing.
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Addr())
	slow := bufio.NewReader(conn)
	status, err := slow.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("slow client: %q %v", status, err)
	}
	waitFor(t, "both streams to register", func() bool { return srv.Snapshot().Clients == 2 })

	// Big events fill the slow client's socket buffers, then its queue.
	// Each is recorded only once the fast client has read the one before
	// (the test keeps pace with it; Record itself never waits for anyone).
	prompt := strings.Repeat("slow ", 20<<10)
	var evs []*oisp.Event
	for i := 0; st.Get(web.TokenClientDropped) == 0; i++ {
		if i == 5000 {
			t.Fatal("the slow client was never dropped")
		}
		ev := interaction(i, prompt)[0]
		evs = append(evs, ev)
		recorded := make(chan struct{})
		go func() {
			srv.Record(ev)
			close(recorded)
		}()
		select {
		case <-recorded:
		case <-time.After(patience):
			t.Fatalf("Record of event %d did not return: it waits for a client", i+1)
		}
		fast.expectEvents(t, evs, i+1, i+1)
	}
	if got := st.Get(web.TokenClientDropped); got != 1 {
		t.Fatalf("%s = %d, want 1", web.TokenClientDropped, got)
	}
	waitFor(t, "the dropped stream to unregister", func() bool { return srv.Snapshot().Clients == 1 })
	if s := srv.Snapshot(); s.ClientsDropped != 1 {
		t.Errorf("snapshot: %d clients dropped, want 1", s.ClientsDropped)
	}

	// The fast client goes on receiving (a burst shorter than its queue).
	more := manyEvents(len(evs)+10, "after")[len(evs):]
	for _, ev := range more {
		srv.Record(ev)
	}
	evs = append(evs, more...)
	fast.expectEvents(t, evs, len(evs)-9, len(evs))

	// The slow client's connection was closed by the server: reading what
	// it holds ends at EOF (or a reset), not at the deadline.
	conn.SetReadDeadline(time.Now().Add(patience))
	_, err = io.Copy(io.Discard, slow)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the dropped client's connection stayed open: %v", err)
	}
}

// TestCloseEndsStreams: Close ends every stream after what is queued, and
// events recorded afterwards are counted as dropped.
func TestCloseEndsStreams(t *testing.T) {
	st := &stats.Counters{}
	srv, err := web.Listen(web.Config{Addr: "127.0.0.1:0", Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	a := openStream(t, srv, "", "")
	b := openStream(t, srv, "?since=0", "")
	waitFor(t, "the streams to register", func() bool { return srv.Snapshot().Clients == 2 })
	evs := manyEvents(30, "close")
	for _, ev := range evs {
		srv.Record(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*sseStream{a, b} {
		s.expectEvents(t, evs, 1, 30)
		select {
		case <-s.done:
		case <-time.After(patience):
			t.Fatal("a stream is still open after Close")
		}
		if s.err != io.EOF {
			t.Errorf("stream ended with %v, want EOF", s.err)
		}
	}
	srv.Record(evs[0])
	if got := st.Get(web.TokenDropped); got != 1 {
		t.Errorf("%s = %d after a Record past Close, want 1", web.TokenDropped, got)
	}
	if _, err := http.Get(srv.URL()); err == nil {
		t.Error("the server still answers after Close")
	}
}

// TestHeartbeat: an idle stream gets comment lines.
func TestHeartbeat(t *testing.T) {
	srv, _ := start(t, web.Config{Heartbeat: 20 * time.Millisecond})
	resp, err := http.Get(srv.URL() + "api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for beats := 0; beats < 3; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ": heartbeat") {
			beats++
		}
	}
}

// TestForeignHostRefused: a request naming a host that is not this
// machine (DNS rebinding) is refused; IP literals and localhost are not.
func TestForeignHostRefused(t *testing.T) {
	srv, st := start(t, web.Config{AllowedHosts: []string{"sensor.internal"}})
	port := srv.Addr().(*net.TCPAddr).Port
	for host, want := range map[string]int{
		"attacker.example":                       http.StatusMisdirectedRequest,
		"attacker.example:" + strconv.Itoa(port): http.StatusMisdirectedRequest,
		"localhost.attacker.example":             http.StatusMisdirectedRequest,
		"localhost:" + strconv.Itoa(port):        http.StatusOK,
		"127.0.0.1:" + strconv.Itoa(port):        http.StatusOK,
		"[::1]:" + strconv.Itoa(port):            http.StatusOK,
		"sensor.internal":                        http.StatusOK,
	} {
		req, _ := http.NewRequest("GET", srv.URL()+"api/stats", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %s, want %d", host, resp.Status, want)
		}
		if want != http.StatusOK && bytes.Contains(body, []byte("by_type")) {
			t.Errorf("Host %s: refused but answered %s", host, body)
		}
	}
	if got := st.Get(web.TokenRejected); got != 3 {
		t.Errorf("%s = %d, want 3", web.TokenRejected, got)
	}
}

// TestTooManyStreams: streams past MaxClients are refused, not queued.
func TestTooManyStreams(t *testing.T) {
	srv, _ := start(t, web.Config{MaxClients: 2})
	openStream(t, srv, "", "")
	openStream(t, srv, "", "")
	waitFor(t, "two streams", func() bool { return srv.Snapshot().Clients == 2 })
	resp, err := http.Get(srv.URL() + "api/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third stream: %s", resp.Status)
	}
}

// page fetches the dashboard's files as a browser would.
func page(t *testing.T, srv *web.Server) map[string]*http.Response {
	t.Helper()
	out := map[string]*http.Response{}
	for _, p := range []string{"", "app.js", "app.css"} {
		resp, err := http.Get(srv.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /%s: %s", p, resp.Status)
		}
		out[p] = resp
	}
	return out
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPageIsSelfContainedAndStrict: the page loads nothing from elsewhere,
// has no inline script or style, and is served under a
// Content-Security-Policy that allows only its own files.
func TestPageIsSelfContainedAndStrict(t *testing.T) {
	srv, _ := start(t, web.Config{})
	files := page(t, srv)
	csp := files[""].Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q allows more than the page's own files", csp)
	}
	for name, want := range map[string]string{"": "text/html", "app.js": "text/javascript", "app.css": "text/css"} {
		if ct := files[name].Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("/%s: Content-Type %q", name, ct)
		}
		if files[name].Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("/%s: no nosniff", name)
		}
	}
	external := regexp.MustCompile(`(?i)(https?:|wss?:|ftp:)?//[a-z0-9.-]+\.[a-z]|@import|url\(`)
	html := readBody(t, files[""])
	for name, body := range map[string]string{"index.html": html, "app.js": readBody(t, files["app.js"]), "app.css": readBody(t, files["app.css"])} {
		for _, line := range strings.Split(body, "\n") {
			if external.MatchString(line) {
				t.Errorf("%s refers to something outside the sensor: %s", name, line)
			}
		}
	}
	// Every script and stylesheet is the page's own file, none inline.
	if n := strings.Count(html, "<script"); n != 1 || !strings.Contains(html, `<script src="/app.js" defer></script>`) {
		t.Errorf("index.html has %d script elements, want only /app.js", n)
	}
	if strings.Contains(html, "<style") || regexp.MustCompile(`\son[a-z]+=`).MatchString(html) || strings.Contains(html, "style=") {
		t.Error("index.html has inline style or event handlers, which the CSP blocks")
	}
	resp, err := http.Get(srv.URL() + "nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown path: %s", resp.Status)
	}
}

// TestScriptInsertsTextOnly: the page's script has no way of turning a
// string into markup or code.
func TestScriptInsertsTextOnly(t *testing.T) {
	js, err := os.ReadFile(filepath.Join("assets", "app.js"))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\b|new Function|setAttribute|\.src\b|\.href\b|srcdoc|createContextualFragment|DOMParser|setTimeout\(\s*['"]|setInterval\(\s*['"]`)
	for i, line := range strings.Split(string(js), "\n") {
		if m := forbidden.FindString(line); m != "" {
			t.Errorf("app.js:%d uses %s: %s", i+1, m, strings.TrimSpace(line))
		}
	}
	if !strings.Contains(string(js), "createTextNode") {
		t.Error("app.js makes no text nodes: how does it show event text?")
	}
}

// hostile is event text that would run script if it became markup.
const hostile = `<img src=x onerror="alert('xss')"><script>alert(1)</script></td></tr><svg onload=alert(2)>&lt;&amp;"'`

// render runs the page's rendering functions under node with a DOM that
// records any markup insertion, on what /api/recent and /api/stats answer.
func render(t *testing.T, srv *web.Server) renderResult {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the rendering is only checked statically (TestScriptInsertsTextOnly)")
	}
	dir := t.TempDir()
	fetch := func(path, file string) string {
		resp, err := http.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, file)
		if err := os.WriteFile(out, []byte(readBody(t, resp)), 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	app, recentFile, statsFile := fetch("app.js", "app.js"), fetch("api/recent", "recent.json"), fetch("api/stats", "stats.json")
	cmd := exec.Command(nodeBin, filepath.Join("testdata", "render.cjs"), app, recentFile, statsFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node render.cjs: %v\n%s", err, stderr.String())
	}
	var res renderResult
	if err := stdjson.Unmarshal(out, &res); err != nil {
		t.Fatalf("render output: %v: %.500s", err, out)
	}
	if len(res.Violations) > 0 {
		t.Errorf("the page turned strings into markup: %v", res.Violations)
	}
	allowed := []string{"B", "DETAILS", "DIV", "H3", "PRE", "SPAN", "SUMMARY", "TBODY", "TD", "TR"}
	for _, tag := range res.Tags {
		if !slices.Contains(allowed, tag) {
			t.Errorf("the page made a %s element", tag)
		}
	}
	return res
}

type renderResult struct {
	Violations   []string `json:"violations"`
	Tags         []string `json:"tags"`
	Texts        []string `json:"texts"`
	System       int      `json:"system"`
	Interactions []struct {
		Key         string            `json:"key"`
		Request     string            `json:"request"`
		Response    string            `json:"response"`
		ToolCalls   []string          `json:"tool_calls"`
		ToolResults []string          `json:"tool_results"`
		Summary     map[string]string `json:"summary"`
	} `json:"interactions"`
}

// hostileInteraction is an exchange whose every free text is hostile:
// process name, provider, model, prompt, response, error, tool name and
// arguments; and a process.exec whose command line is.
func hostileInteraction() []*oisp.Event {
	evs := interaction(1, hostile)
	for _, ev := range evs {
		ev.Process = &oisp.Process{PID: 7, Name: hostile}
	}
	evs[0].Data.(*oisp.AIRequest).Model = &oisp.Model{ID: hostile}
	evs[0].Data.(*oisp.AIRequest).Provider = &oisp.Provider{Name: "other", ID: hostile}
	resp := evs[1].Data.(*oisp.AIResponse)
	resp.Model = nil
	resp.Error = &oisp.Error{Type: "invalid_request", Message: hostile}
	resp.Success = boolp(false)
	resp.StatusCode = 400
	resp.ToolCalls = []oisp.ToolCall{{Name: hostile, Arguments: hostile}}
	evs[2].Data.(*oisp.ToolCallEvent).Tool.Name = hostile
	exec := &oisp.Event{OISPVersion: oisp.Version, EventID: "evt_exec", EventType: oisp.TypeProcessExec, TS: evs[0].TS,
		Process: &oisp.Process{PID: 8, Name: hostile}, Source: evs[0].Source,
		Data: &oisp.ProcessExec{Exe: "/bin/sh", Args: []string{"sh", "-c", hostile}}}
	return append(evs, exec)
}

// TestPageRendersHostileTextAsText: prompts, responses, tool arguments,
// names and command lines full of markup are shown as text, verbatim.
func TestPageRendersHostileTextAsText(t *testing.T) {
	srv, _ := start(t, web.Config{})
	for _, ev := range hostileInteraction() {
		srv.Record(ev)
	}
	res := render(t, srv)
	if len(res.Interactions) != 1 || res.System != 1 {
		t.Fatalf("rendered %d interactions and %d system events, want 1 and 1", len(res.Interactions), res.System)
	}
	// The hostile text is there as text: in the row (process, model,
	// status), in the messages, the tool call and the raw JSON.
	verbatim := 0
	for _, s := range res.Texts {
		if strings.Contains(s, hostile) {
			verbatim++
		}
	}
	if verbatim < 8 {
		t.Errorf("the hostile text appears verbatim in %d text nodes, want at least 8 (row, messages, tools, raw JSON)", verbatim)
	}
	sum := res.Interactions[0].Summary
	if !strings.Contains(sum["status"], hostile) || !strings.HasPrefix(sum["process"], hostile) || sum["model"] != hostile {
		t.Errorf("summary %v does not show the event's own text", sum)
	}
}

// TestRecordDoesNotRetainEvent: the pipeline reuses an event's memory once
// Record returns; what the dashboard serves must not change with it.
func TestRecordDoesNotRetainEvent(t *testing.T) {
	srv, _ := start(t, web.Config{})
	ev := interaction(1, "original prompt")[0]
	srv.Record(ev)
	ev.EventID = "reused"
	ev.Data.(*oisp.AIRequest).Messages[0].Content = "overwritten"
	var got recent
	getJSON(t, srv.URL()+"api/recent", &got)
	if len(got.Events) != 1 || got.Events[0].Event["event_id"] != "evt_req_0001" ||
		!strings.Contains(fmt.Sprint(got.Events[0].Event["data"]), "original prompt") {
		t.Fatalf("the ring changed with the event after Record: %v", got.Events)
	}
}

// TestCloseCutsStuckStream: a client that reads nothing cannot hold Close
// past its context; Close cuts it and says so.
func TestCloseCutsStuckStream(t *testing.T) {
	srv, err := web.Listen(web.Config{Addr: "127.0.0.1:0", ClientQueue: 1 << 12})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: %s\r\n\r\n", srv.Addr())
	waitFor(t, "the stream to register", func() bool { return srv.Snapshot().Clients == 1 })
	// Enough to fill the socket buffers and then 48 MB more queued (more
	// than both ends' socket buffers hold here, 4 + 32 MB at most), not
	// the queue: the stream's handler is left blocked in a write with
	// events still queued, however it was scheduled.
	prompt := strings.Repeat("stuck ", 40<<10)
	for i := 0; srv.Snapshot().Backlog < 200; i++ {
		if i == 2000 {
			t.Fatal("the stream's writes never blocked")
		}
		srv.Record(interaction(i, prompt)[0])
		time.Sleep(time.Millisecond) // let the handler take what it can write
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- srv.Close(ctx) }()
	select {
	case err := <-closed:
		if err == nil || !strings.Contains(err.Error(), "event streams cut before their queued events were written: 1") {
			t.Fatalf("Close with a stuck stream: %v, want the cut stream reported", err)
		}
	case <-time.After(patience):
		t.Fatal("Close waited on a client that reads nothing")
	}
}
