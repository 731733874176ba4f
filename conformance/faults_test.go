package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/capture/proxy"
	"github.com/oisp/oisp-sensor/sensor/capture/socket"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
)

// The fault tests break one part of the capture path at a time with real
// components — a TLS upstream, the capture proxy, the extension socket —
// and check that the sensor says what it lost and loses nothing else.

const faultModel = "gpt-4o-mini"

func sseChunk(i int, content string) string {
	return fmt.Sprintf(`data: {"id":"chatcmpl-f","object":"chat.completion.chunk","created":1,"model":%q,"choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`+"\n\n", faultModel, content)
}

const sseEnd = `data: {"id":"chatcmpl-f","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"

// faultUpstream is api.openai.com as a real TLS server (HTTP/1.1 and h2)
// whose streaming behaviour each test controls.
type faultUpstream struct {
	ca   *ca.CA
	addr string
	// release, when set, holds a stream after its first chunks until it
	// is closed.
	mu      sync.Mutex
	release chan struct{}
}

func newFaultUpstream(t *testing.T) *faultUpstream {
	t.Helper()
	u := &faultUpstream{}
	u.ca, u.addr = startTLSUpstream(t, "fault upstream CA", u)
	return u
}

// ServeHTTP streams ten SSE chunks (?chunks=N: N). ?fault=reset sends three
// and then resets the TCP connection; ?fault=hold sends three and waits for
// release.
func (u *faultUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	chunks := 10
	if n, err := strconv.Atoi(r.URL.Query().Get("chunks")); err == nil && n > 0 {
		chunks = n
	}
	for i := range chunks {
		io.WriteString(w, sseChunk(i, fmt.Sprintf("t%d ", i)))
		fl.Flush()
		if i == 2 {
			switch {
			case r.URL.Query().Get("fault") == "reset":
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					panic(err)
				}
				// RST instead of FIN: the upstream vanishes mid-stream.
				if tc, ok := conn.(*tls.Conn); ok {
					tc.NetConn().(*net.TCPConn).SetLinger(0)
				}
				conn.Close()
				return
			case r.URL.Query().Get("fault") == "hold":
				u.mu.Lock()
				ch := u.release
				u.mu.Unlock()
				select {
				case <-ch:
				case <-r.Context().Done():
					return
				}
			}
		}
		if chunks <= 10 {
			time.Sleep(time.Millisecond)
		}
	}
	io.WriteString(w, sseEnd)
}

// startFaultProxy runs a capture proxy that sends api.openai.com to the
// fault upstream.
func startFaultProxy(t *testing.T, up *faultUpstream, h flow.Handler) *testProxy {
	t.Helper()
	return startTestProxy(t, proxy.Config{
		Intercept:     func(host string, _ int) bool { return host == "api.openai.com" },
		UpstreamRoots: up.ca.CertPool(),
		Resolve:       func(string, int) string { return up.addr },
	}, h)
}

// client is an HTTP/1.1 client configured with the proxy and the sensor CA.
func (f *testProxy) client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: h1Transport(f.url, f.sensorCA.CertPool())}
}

const faultRequest = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"count"}]}`

func post(ctx context.Context, c *http.Client, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.openai.com"+path, strings.NewReader(faultRequest))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.Do(req)
}

// exchange makes one complete streamed exchange through the proxy on a
// fresh client connection.
func (f *testProxy) exchange(t *testing.T) {
	t.Helper()
	c := f.client()
	defer c.CloseIdleConnections()
	resp, err := post(context.Background(), c, "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("read response: %v", err)
	}
}

// newSession is a session writing to memory.
func newSession(t *testing.T) (*session.Session, *sink.Memory) {
	t.Helper()
	mem := &sink.Memory{}
	s, err := session.New(session.Options{Out: mem})
	if err != nil {
		t.Fatal(err)
	}
	return s, mem
}

// aiResponses returns the ai.response events.
func aiResponses(evs []*oisp.Event) []*oisp.Event {
	var out []*oisp.Event
	for _, ev := range evs {
		if ev.EventType == "ai.response" {
			out = append(out, ev)
		}
	}
	return out
}

func countType(evs []*oisp.Event, typ string) int {
	n := 0
	for _, ev := range evs {
		if ev.EventType == typ {
			n++
		}
	}
	return n
}

// stopAndFlush stops the proxy and closes what the session still holds.
func stopAndFlush(f *testProxy, s *session.Session) {
	f.shutdown()
	s.Pipeline.Flush(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
}

// TestFaultUpstreamResetMidStream: the provider's connection is reset after
// three SSE chunks. The client sees the failure; the sensor still emits the
// request and a response marked partial, and the proxy keeps serving.
func TestFaultUpstreamResetMidStream(t *testing.T) {
	up := newFaultUpstream(t)
	s, mem := newSession(t)
	f := startFaultProxy(t, up, s.Pipeline)
	c := f.client()
	resp, err := post(context.Background(), c, "/v1/chat/completions?fault=reset")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("the client saw no failure from a reset upstream")
	}
	// The proxy still works for the next request.
	resp, err = post(context.Background(), c, "/v1/chat/completions")
	if err != nil {
		t.Fatalf("request after the reset: %v", err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	c.CloseIdleConnections()
	stopAndFlush(f, s)

	evs := mem.Events()
	if n := countType(evs, "ai.request"); n != 2 {
		t.Fatalf("%d ai.request events, want 2", n)
	}
	rs := aiResponses(evs)
	if len(rs) != 2 {
		t.Fatalf("%d ai.response events, want 2", len(rs))
	}
	var partial, full int
	for _, r := range rs {
		switch r.Confidence.Completeness {
		case oisp.CompletePartial:
			partial++
		case oisp.CompleteFull:
			full++
		}
	}
	if partial != 1 || full != 1 {
		for _, r := range rs {
			t.Logf("response: %+v", r.Confidence)
		}
		t.Errorf("%d partial and %d full responses, want 1 and 1", partial, full)
	}
}

// TestFaultClientDisconnectsMidStream: the client reads two chunks of a
// stream and hangs up. The proxy closes the upstream side, the sensor
// emits the request and a partial response, and a new client is served.
func TestFaultClientDisconnectsMidStream(t *testing.T) {
	up := newFaultUpstream(t)
	up.release = make(chan struct{})
	defer close(up.release)
	s, mem := newSession(t)
	f := startFaultProxy(t, up, s.Pipeline)
	c := f.client()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := post(ctx, c, "/v1/chat/completions?fault=hold")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	for range 2 {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	cancel() // the client goes away mid-stream
	resp.Body.Close()
	c.CloseIdleConnections()

	c2 := f.client()
	resp, err = post(context.Background(), c2, "/v1/chat/completions")
	if err != nil {
		t.Fatalf("request after a client hung up: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte("[DONE]")) {
		t.Errorf("second client got %q", body)
	}
	c2.CloseIdleConnections()
	stopAndFlush(f, s)

	evs := mem.Events()
	rs := aiResponses(evs)
	if countType(evs, "ai.request") != 2 || len(rs) != 2 {
		t.Fatalf("events %d requests, %d responses; want 2 and 2", countType(evs, "ai.request"), len(rs))
	}
	partial := 0
	for _, r := range rs {
		if r.Confidence.Completeness == oisp.CompletePartial {
			partial++
		}
	}
	if partial != 1 {
		t.Errorf("%d partial responses, want 1 (the abandoned stream)", partial)
	}
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sensorRun is one run of `record --socket`: a session fed by a socket
// server.
type sensorRun struct {
	s    *session.Session
	mem  *sink.Memory
	stop context.CancelFunc
	done chan error
}

func startSensor(t *testing.T, path string) *sensorRun {
	t.Helper()
	s, mem := newSession(t)
	srv, err := socket.Listen(socket.ServerConfig{Path: path, Stats: s.Stats, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &sensorRun{s: s, mem: mem, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx, srv) }()
	return r
}

func (r *sensorRun) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	if err := <-r.done; err != nil {
		t.Errorf("sensor run: %v", err)
	}
}

// TestFaultSensorRestart: `oisp-sensor record` restarts while an
// extension-mode proxy is connected and a stream is in flight. The proxy
// keeps forwarding, queues what it can, drops and counts what does not fit,
// reconnects to the new sensor, resumes the open flow there, and says what
// was lost; the new sensor accounts for every lost byte.
func TestFaultSensorRestart(t *testing.T) {
	dir, err := os.MkdirTemp("", "oisp-fault-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	up := newFaultUpstream(t)
	up.release = make(chan struct{})

	first := startSensor(t, path)
	logs := &logBuffer{}
	client := socket.NewClient(socket.ClientConfig{
		Path: path, Name: "fault test proxy",
		// Room for a whole ordinary exchange however slowly the sensor
		// reads, but not for the long response made while it is away.
		QueueBytes: 16 << 10,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	cctx, stopClient := context.WithCancel(context.Background())
	clientDone := make(chan error, 1)
	go func() { clientDone <- client.Run(cctx) }()
	handed := &closeCounter{Handler: client}
	f := startFaultProxy(t, up, handed)
	waitUntil(t, "the proxy to connect", func() bool { return client.Stats().Connected })

	// 1: a complete exchange reaches the first sensor.
	f.exchange(t)
	waitUntil(t, "the first sensor to close exchange 1's flow", func() bool { return first.s.Stats.Get("flows.closed") >= 1 })
	afterFirst := first.s.Stats.Get("socket.data_bytes")
	// 2: a stream starts and is held mid-way.
	held := f.client()
	resp2, err := post(context.Background(), held, "/v1/chat/completions?fault=hold")
	if err != nil {
		t.Fatal(err)
	}
	// The held stream's request must have reached the first sensor before
	// it stops: the proxy hands flows over asynchronously, so seeing the
	// flow open is not enough.
	waitUntil(t, "the first sensor to see the held stream's request", func() bool {
		st := first.s.Stats
		return st.Get("flows.opened") >= 2 && st.Get("socket.data_bytes") >= afterFirst+int64(len(faultRequest))
	})
	if err := client.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The sensor stops.
	first.shutdown(t)
	waitUntil(t, "the proxy to notice", func() bool { return !client.Stats().Connected })

	// 3: a whole exchange while no sensor listens: more than the queue
	// holds. The client is not slowed or broken.
	c3 := f.client()
	resp3, err := post(context.Background(), c3, "/v1/chat/completions?chunks=400")
	if err != nil {
		t.Fatalf("request while the sensor is down: %v", err)
	}
	body3, _ := io.ReadAll(resp3.Body)
	resp3.Body.Close()
	c3.CloseIdleConnections()
	if !bytes.Contains(body3, []byte("[DONE]")) {
		t.Fatalf("client got %q while the sensor was down", body3)
	}
	// The proxy hands a flow's bytes to the client asynchronously: the
	// loss is final once it has handed over the flow's close.
	waitUntil(t, "the proxy to hand over exchange 3 whole", func() bool { return handed.closed.Load() >= 2 })
	lost := client.Stats()
	if lost.DroppedBytes == 0 {
		t.Fatalf("nothing dropped while the sensor was down: %+v", lost)
	}

	// The sensor comes back; the proxy reconnects and the held stream
	// finishes on the new sensor.
	second := startSensor(t, path)
	waitUntil(t, "the proxy to reconnect", func() bool { s := client.Stats(); return s.Connected && s.Connects == 2 })
	close(up.release)
	body2, err := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if err != nil || !bytes.Contains(body2, []byte("[DONE]")) {
		t.Fatalf("held stream: %v %q", err, body2)
	}
	held.CloseIdleConnections()
	// 4: a complete exchange on the new sensor.
	f.exchange(t)

	f.shutdown()
	if err := client.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new sensor to close every flow", func() bool {
		st := second.s.Stats
		return st.Get("flows.opened") >= 3 && st.Get("flows.closed") >= st.Get("flows.opened")
	})
	stopClient()
	<-clientDone
	second.shutdown(t)

	// The first sensor: exchange 1 whole, the held stream's request.
	ev1 := first.mem.Events()
	if countType(ev1, "ai.request") != 2 || len(aiResponses(ev1)) < 1 || aiResponses(ev1)[0].Confidence.Completeness != oisp.CompleteFull {
		t.Errorf("first sensor events: %d requests, %d responses", countType(ev1, "ai.request"), len(aiResponses(ev1)))
	}
	// The proxy said what it lost, in numbers.
	out := logs.String()
	if !strings.Contains(out, "reconnected; data was lost") || !strings.Contains(out, fmt.Sprintf("dropped_bytes=%d", lost.DroppedBytes)) {
		t.Errorf("the proxy did not report its loss (%d bytes):\n%s", lost.DroppedBytes, out)
	}
	// The new sensor knows every byte that was lost: the flow made while
	// it was away reports its drops in FLOW_CLOSE, and the resumed stream
	// continues after a gap.
	st := second.s.Stats
	final := client.Stats()
	if got := st.Get("socket.client_dropped_bytes"); got != final.DroppedBytes {
		t.Errorf("new sensor counted %d dropped bytes, the proxy dropped %d", got, final.DroppedBytes)
	}
	if st.Get("socket.gap_bytes") == 0 || st.Get("bytes.lost_by_source") == 0 {
		t.Errorf("resumed flow without a gap: %v", st.Snapshot())
	}
	t.Logf("proxy log:\n%s\nnew sensor counters: %v", out, st.Snapshot())
	// Exchange 4 is whole on the new sensor.
	ev2 := second.mem.Events()
	if completeResponses(ev2) < 1 {
		t.Errorf("no complete response on the new sensor: %d events", len(ev2))
	}
}

// closeCounter counts the flows a capture source has closed.
type closeCounter struct {
	flow.Handler
	closed atomic.Int64
}

func (c *closeCounter) Close(id string, ci flow.CloseInfo) {
	c.Handler.Close(id, ci)
	c.closed.Add(1)
}

// completeResponses counts the ai.response events that are whole.
func completeResponses(evs []*oisp.Event) int {
	n := 0
	for _, r := range aiResponses(evs) {
		if r.Confidence.Completeness == oisp.CompleteFull {
			n++
		}
	}
	return n
}

// TestFaultSocketGarbage: one peer writes garbage to the extension socket
// (after a valid HELLO, an oversize frame; another, bytes that are no
// protocol at all). Only those connections are closed, with the reason;
// a well-behaved proxy connected at the same time loses nothing.
func TestFaultSocketGarbage(t *testing.T) {
	dir, err := os.MkdirTemp("", "oisp-fault-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	sensor := startSensor(t, path)
	client := socket.NewClient(socket.ClientConfig{Path: path, Logger: slog.New(slog.DiscardHandler)})
	cctx, stopClient := context.WithCancel(context.Background())
	clientDone := make(chan error, 1)
	go func() { clientDone <- client.Run(cctx) }()
	up := newFaultUpstream(t)
	f := startFaultProxy(t, up, client)
	waitUntil(t, "the proxy to connect", func() bool { return client.Stats().Connected })

	// Peer 1: a valid HELLO, then a frame longer than the server allows.
	bad, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	hello, _ := socket.AppendFrame(nil, &socket.Hello{Version: socket.Version, MaxFrame: socket.MinMaxFrame, Name: "garbage"})
	bad.Write(hello)
	fr := socket.NewFrameReader(bufio.NewReader(bad))
	if f, err := fr.Next(); err != nil {
		t.Fatalf("no HELLO from the sensor: %v", err)
	} else if _, ok := f.(*socket.Hello); !ok {
		t.Fatalf("sensor sent %s", f.Type())
	}
	bad.Write([]byte{0x7f, 0xff, 0xff, 0xff, 0x03})
	bad.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr.Max = socket.MaxMaxFrame
	var goodbye *socket.Goodbye
	for {
		f, err := fr.Next()
		if err != nil {
			break
		}
		if g, ok := f.(*socket.Goodbye); ok {
			goodbye = g
		}
	}
	if goodbye == nil || goodbye.Code != socket.CodeFrameTooLarge {
		t.Errorf("oversize frame answered with %+v, want GOODBYE frame_too_large", goodbye)
	}
	// Peer 2: not the protocol at all.
	junk, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	junk.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	junk.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(junk); err != nil {
		t.Errorf("junk peer: %v, want the sensor to close the connection", err)
	}
	junk.Close()

	// The proxy's connection is untouched: a request made now arrives.
	f.exchange(t)
	f.shutdown()
	client.Flush(context.Background())
	waitUntil(t, "the flow to arrive", func() bool { return sensor.s.Stats.Get("flows.closed") >= 1 })
	stopClient()
	<-clientDone
	sensor.shutdown(t)
	st := sensor.s.Stats
	if st.Get("socket.protocol_error") != 2 {
		t.Errorf("protocol errors counted %d, want 2: %v", st.Get("socket.protocol_error"), st.Snapshot())
	}
	if s := client.Stats(); s.Connects != 1 || s.DroppedBytes != 0 {
		t.Errorf("the good client was disturbed: %+v", s)
	}
	evs := sensor.mem.Events()
	rs := aiResponses(evs)
	if countType(evs, "ai.request") != 1 || len(rs) != 1 || rs[0].Confidence.Completeness != oisp.CompleteFull {
		t.Errorf("good client's events: %d requests, %d responses", countType(evs, "ai.request"), len(rs))
	}
}
