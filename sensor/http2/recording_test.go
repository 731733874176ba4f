package http2_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

var update = flag.Bool("update", false, "rewrite testdata/*.bin from live HTTP/2 connections")

// Recording format (testdata/*.bin and fuzz inputs): a sequence of records
//
//	ctl(1) length(2, big endian) data(length)
//
// where ctl bit 0 is the direction (0 client→server, 1 server→client), bit 1
// marks the end of that direction (Fin) and bit 2 a gap of `length` lost
// bytes (no data follows). Each record is one captured write.
const (
	ctlServer = 1 << 0
	ctlFin    = 1 << 1
	ctlGap    = 1 << 2
)

type record struct {
	Dir  flow.Direction
	Data []byte
	Fin  bool
	Gap  int64
}

func encodeRecording(recs []record) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		data := r.Data
		for first := true; first || len(data) > 0; first = false {
			n := min(len(data), 0xffff)
			ctl := byte(0)
			if r.Dir == flow.ServerToClient {
				ctl |= ctlServer
			}
			if r.Fin && n == len(data) {
				ctl |= ctlFin
			}
			if r.Gap > 0 && first {
				b.WriteByte(ctl&ctlServer | ctlGap)
				b.Write(binary.BigEndian.AppendUint16(nil, uint16(min(r.Gap, 0xffff))))
			}
			b.WriteByte(ctl)
			b.Write(binary.BigEndian.AppendUint16(nil, uint16(n)))
			b.Write(data[:n])
			data = data[n:]
		}
	}
	return b.Bytes()
}

// decodeRecording parses a recording; a malformed tail (fuzz input) is
// returned as a last data record.
func decodeRecording(b []byte) []record {
	var recs []record
	for len(b) >= 3 {
		ctl := b[0]
		n := int(binary.BigEndian.Uint16(b[1:3]))
		b = b[3:]
		r := record{Dir: flow.ClientToServer}
		if ctl&ctlServer != 0 {
			r.Dir = flow.ServerToClient
		}
		if ctl&ctlGap != 0 {
			r.Gap = int64(n)
			recs = append(recs, r)
			continue
		}
		n = min(n, len(b))
		r.Data, b = b[:n], b[n:]
		r.Fin = ctl&ctlFin != 0
		recs = append(recs, r)
	}
	return recs
}

func readRecording(t testing.TB, name string) []record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read recording: %v", err)
	}
	return decodeRecording(b)
}

// tap records every Write of one side of a net.Pipe, in the order writes
// happen across both sides.
type tap struct {
	mu   sync.Mutex
	recs []record
}

type tappedConn struct {
	net.Conn
	t   *tap
	dir flow.Direction
}

func (c *tappedConn) Write(p []byte) (int, error) {
	c.t.mu.Lock()
	// Recorded before the peer can read it, so causality holds in the log.
	c.t.recs = append(c.t.recs, record{Dir: c.dir, Data: bytes.Clone(p)})
	c.t.mu.Unlock()
	return c.Conn.Write(p)
}

func (t *tap) records() []record {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]record(nil), t.recs...)
}

// liveConn runs a real x/net/http2 server and client over an in-memory
// pipe (no sockets) and records both directions.
type liveConn struct {
	tap    *tap
	cc     *http2.ClientConn
	closed chan struct{}
	cli    net.Conn
}

func newLiveConn(t testing.TB, h http.Handler, tweak func(*http2.Transport, *http2.Server)) *liveConn {
	t.Helper()
	cliEnd, srvEnd := net.Pipe()
	tp := &tap{}
	srv := &http2.Server{}
	tr := &http2.Transport{DisableCompression: true}
	if tweak != nil {
		tweak(tr, srv)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		srv.ServeConn(&tappedConn{Conn: srvEnd, t: tp, dir: flow.ServerToClient}, &http2.ServeConnOpts{Handler: h})
	}()
	cc, err := tr.NewClientConn(&tappedConn{Conn: cliEnd, t: tp, dir: flow.ClientToServer})
	if err != nil {
		t.Fatalf("client conn: %v", err)
	}
	return &liveConn{tap: tp, cc: cc, closed: closed, cli: cliEnd}
}

func (l *liveConn) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := l.cc.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// finish closes the connection and returns the recording.
func (l *liveConn) finish(t testing.TB) []record {
	t.Helper()
	// Let in-flight control frames (WINDOW_UPDATE, SETTINGS ACK) land.
	time.Sleep(20 * time.Millisecond)
	_ = l.cc.Close()
	_ = l.cli.Close()
	select {
	case <-l.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("server did not stop")
	}
	return l.tap.records()
}

// chatBody is a realistic ~2 KiB chat completion request.
func chatBody() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o-mini","stream":true,"temperature":0.2,"messages":[`)
	b.WriteString(`{"role":"system","content":"You are a careful assistant that answers briefly."}`)
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, `,{"role":"user","content":"Question %d: summarise the design of an incremental HTTP/2 decoder in one short paragraph, please."}`, i)
	}
	b.WriteString(`],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`)
	return []byte(b.String())
}

// sseEvents is a realistic ~8 KiB server-sent event stream, one event per
// write.
func sseEvents() [][]byte {
	var ev [][]byte
	words := strings.Fields("An incremental decoder consumes chunks as they arrive and emits exchanges when streams end without blocking")
	for i := 0; i < 60; i++ {
		ev = append(ev, fmt.Appendf(nil, "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s \"}}]}\n\n", words[i%len(words)]))
	}
	ev = append(ev, []byte("data: {\"id\":\"chatcmpl-9x\",\"choices\":[],\"usage\":{\"prompt_tokens\":412,\"completion_tokens\":60,\"total_tokens\":472}}\n\ndata: [DONE]\n\n"))
	return ev
}

func joinEvents(ev [][]byte) []byte { return bytes.Join(ev, nil) }

// chatHandler answers like an LLM API: SSE for /v1/chat/completions, gzip
// JSON for /v1/models, trailers for /v1/usage, echo for the rest.
func chatHandler(t testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("handler read: %v", err)
			return
		}
		switch r.URL.Path {
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("X-Request-Id", "req_"+r.Header.Get("X-Seq"))
			w.WriteHeader(200)
			for _, e := range sseEvents() {
				_, _ = w.Write(e)
				w.(http.Flusher).Flush()
			}
		case "/v1/models":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = zw.Write(modelsJSON())
			_ = zw.Close()
		case "/v1/usage":
			w.Header().Set("Trailer", "X-Usage-Tokens")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true}`))
			w.Header().Set("X-Usage-Tokens", "472")
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(201)
			_, _ = w.Write(body)
		}
	})
}

func modelsJSON() []byte {
	var b strings.Builder
	b.WriteString(`{"object":"list","data":[`)
	for i := 0; i < 40; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"model-%d","object":"model","owned_by":"example"}`, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func newRequest(t testing.TB, method, path string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, "https://api.example.test"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk-test-not-a-real-key")
	req.Header.Set("User-Agent", "oisp-test/1.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = int64(len(body))
	}
	return req
}

// recordChat runs the standard scenario: sequential chat, models, usage and
// echo requests, then a few concurrent chats on the same connection.
func recordChat(t testing.TB) []record {
	t.Helper()
	l := newLiveConn(t, chatHandler(t), nil)
	for i, p := range []string{"/v1/chat/completions", "/v1/models", "/v1/usage", "/v1/files"} {
		method, body := "POST", chatBody()
		if p == "/v1/models" {
			method, body = "GET", nil
		}
		req := newRequest(t, method, p, body)
		req.Header.Set("X-Seq", fmt.Sprint(i))
		if _, _, err := l.do(req); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := newRequest(t, "POST", fmt.Sprintf("/v1/chat/completions?n=%d", i), chatBody())
			req.Header.Set("X-Seq", fmt.Sprint(10+i))
			if _, _, err := l.do(req); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return l.finish(t)
}

func writeRecording(t testing.TB, name string, recs []record) {
	t.Helper()
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), encodeRecording(recs), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateRecordings rewrites the committed recordings with -update.
func TestUpdateRecordings(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata")
	}
	writeRecording(t, "chat.bin", recordChat(t))
	writeRecording(t, "cancel.bin", recordCancel(t))
}

// slowSSE streams the events with a pause between them, so a client can
// cancel half-way.
func slowSSE() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for _, e := range sseEvents()[:20] {
			if r.Context().Err() != nil {
				return
			}
			_, _ = w.Write(e)
			w.(http.Flusher).Flush()
			time.Sleep(3 * time.Millisecond)
		}
	})
}

// recordCancel runs three concurrent streaming requests on one connection;
// the client gives up on the second after three events (the transport
// sends RST_STREAM CANCEL), then one more request follows.
func recordCancel(t testing.TB) []record {
	t.Helper()
	l := newLiveConn(t, slowSSE(), nil)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := newRequest(t, "POST", fmt.Sprintf("/v1/chat/completions?c=%d", i), chatBody()).WithContext(ctx)
			resp, err := l.cc.RoundTrip(req)
			if err != nil {
				t.Errorf("round trip %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			if i != 1 {
				_, _ = io.Copy(io.Discard, resp.Body)
				return
			}
			buf := make([]byte, 3*len(sseEvents()[0]))
			_, _ = io.ReadFull(resp.Body, buf)
			cancel()
		}()
		time.Sleep(2 * time.Millisecond) // stream ids in request order
	}
	wg.Wait()
	if _, _, err := l.do(newRequest(t, "GET", "/v1/after-cancel", nil)); err != nil {
		t.Fatal(err)
	}
	return l.finish(t)
}
