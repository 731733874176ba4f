package http2_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http1"
	h2 "github.com/oisp/oisp-sensor/sensor/http2"
	h3 "github.com/oisp/oisp-sensor/sensor/http3"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// benchExchanges is how many chat exchanges (≈2 KiB JSON request, ≈8 KiB
// SSE response flushed per event) one benchmark connection carries.
const benchExchanges = 16

// sseHandler streams the chat events, flushing after each, as LLM APIs do.
func sseHandler(t testing.TB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			t.Errorf("handler: %v", err)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		for _, e := range sseEvents() {
			_, _ = w.Write(e)
			w.(http.Flusher).Flush()
		}
	})
}

// recordHTTP2Bench records benchExchanges chat exchanges on one real
// x/net/http2 connection.
func recordHTTP2Bench(t testing.TB) []record {
	l := newLiveConn(t, sseHandler(t), nil)
	for i := 0; i < benchExchanges; i++ {
		if _, _, err := l.do(newRequest(t, "POST", "/v1/chat/completions", chatBody())); err != nil {
			t.Fatal(err)
		}
	}
	return l.finish(t)
}

// oneConnListener hands one connection to http.Server.
type oneConnListener struct {
	conn net.Conn
	once sync.Once
	done chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// recordHTTP1Bench records the same exchanges over one real net/http
// HTTP/1.1 keep-alive connection (chunked SSE responses).
func recordHTTP1Bench(t testing.TB) []record {
	cliEnd, srvEnd := net.Pipe()
	tp := &tap{}
	ln := &oneConnListener{conn: &tappedConn{Conn: srvEnd, t: tp, dir: flow.ServerToClient}, done: make(chan struct{})}
	srv := &http.Server{Handler: sseHandler(t)}
	go func() { _ = srv.Serve(ln) }()
	dialed := false
	tr := &http.Transport{
		DisableCompression: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			if dialed {
				return nil, fmt.Errorf("second dial")
			}
			dialed = true
			return &tappedConn{Conn: cliEnd, t: tp, dir: flow.ClientToServer}, nil
		},
	}
	client := &http.Client{Transport: tr}
	for i := 0; i < benchExchanges; i++ {
		req := newRequest(t, "POST", "/v1/chat/completions", chatBody())
		req.URL.Scheme = "http" // the pipe carries plaintext, as a TLS capture yields
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	time.Sleep(10 * time.Millisecond)
	tr.CloseIdleConnections()
	close(ln.done)
	_ = srv.Close()
	return tp.records()
}

// h3Frame writes one HTTP/3 frame (RFC 9114 §7.1).
func h3Frame(t uint64, payload []byte) []byte {
	b := quicvarint.Append(nil, t)
	b = quicvarint.Append(b, uint64(len(payload)))
	return append(b, payload...)
}

func qpackSection(t testing.TB, kv ...string) []byte {
	var b bytes.Buffer
	enc := qpack.NewEncoder(&b)
	for i := 0; i+1 < len(kv); i += 2 {
		if err := enc.WriteField(qpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// recordHTTP3Bench encodes the same exchanges as HTTP/3 the way quic-go
// writes them: static-table QPACK sections, one DATA frame per write, one
// chunk per QUIC stream read.
func recordHTTP3Bench(t testing.TB) []flow.Chunk {
	var chunks []flow.Chunk
	at := epoch
	add := func(id int64, dir flow.Direction, data []byte, fin bool) {
		at = at.Add(time.Millisecond)
		chunks = append(chunks, flow.Chunk{StreamID: id, Dir: dir, Data: data, Fin: fin, At: at})
	}
	settings := h3Frame(0x4, []byte{0x06, 0x80, 0x01, 0x00, 0x00})
	add(2, flow.ClientToServer, append([]byte{0x00}, settings...), false)
	add(3, flow.ServerToClient, append([]byte{0x00}, settings...), false)
	body := chatBody()
	for i := 0; i < benchExchanges; i++ {
		id := int64(4 * i)
		add(id, flow.ClientToServer, h3Frame(0x1, qpackSection(t, ":method", "POST", ":scheme", "https", ":authority", "api.example.test",
			":path", "/v1/chat/completions", "authorization", "Bearer sk-test-not-a-real-key", "user-agent", "oisp-test/1.0",
			"content-type", "application/json", "content-length", fmt.Sprint(len(body)))), false)
		add(id, flow.ClientToServer, h3Frame(0x0, body), true)
		add(id, flow.ServerToClient, h3Frame(0x1, qpackSection(t, ":status", "200", "content-type", "text/event-stream",
			"cache-control", "no-cache", "date", "Sun, 01 Mar 2026 12:00:00 GMT")), false)
		for _, e := range sseEvents() {
			add(id, flow.ServerToClient, h3Frame(0x0, e), false)
		}
		add(id, flow.ServerToClient, nil, true)
	}
	return chunks
}

type newDecoder func(*flow.Info, httpmsg.Sink, httpmsg.Limits, stats.Recorder) httpmsg.Decoder

// decodeRun returns a function that decodes the recording once and returns
// how many complete exchanges came out, and the recording's wire size.
func decodeRun(recs []record, mk newDecoder) (func() int, int) {
	return decodeChunksRun(chunksOf(recs), mk)
}

func decodeChunksRun(chunks []flow.Chunk, mk newDecoder) (func() int, int) {
	wire := 0
	for _, c := range chunks {
		wire += len(c.Data)
	}
	info := &flow.Info{ID: "bench", TLS: true}
	return func() int {
		n := 0
		d := mk(info, httpmsg.SinkFunc(func(x *httpmsg.Exchange) {
			if !x.Partial {
				n++
			}
		}), httpmsg.Limits{}, stats.Discard{})
		for _, c := range chunks {
			d.Feed(c)
		}
		d.Close(flow.CloseInfo{Reason: "eof"})
		return n
	}, wire
}

func newHTTP1(i *flow.Info, s httpmsg.Sink, l httpmsg.Limits, r stats.Recorder) httpmsg.Decoder {
	return http1.New(i, s, l, r)
}

func newHTTP3(i *flow.Info, s httpmsg.Sink, l httpmsg.Limits, r stats.Recorder) httpmsg.Decoder {
	return h3.New(i, s, l, r)
}

func newHTTP2(i *flow.Info, s httpmsg.Sink, l httpmsg.Limits, r stats.Recorder) httpmsg.Decoder {
	return h2.New(i, s, l, r)
}

func benchDecode(b *testing.B, chunks []flow.Chunk, mk newDecoder) {
	run, wire := decodeChunksRun(chunks, mk)
	if n := run(); n != benchExchanges {
		b.Fatalf("decoded %d complete exchanges; want %d", n, benchExchanges)
	}
	b.SetBytes(int64(wire))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	perExchange := float64(b.N * benchExchanges)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/perExchange, "ns/exchange")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/perExchange, "allocs/exchange")
	b.ReportMetric(float64(wire)/benchExchanges, "wire-B/exchange")
}

// BenchmarkDecode decodes the same realistic exchanges as HTTP/1.1 (via
// sensor/http1), HTTP/2 and HTTP/3 (via sensor/http3), side by side.
func BenchmarkDecode(b *testing.B) {
	h1 := recordHTTP1Bench(b)
	h2recs := recordHTTP2Bench(b)
	h3chunks := recordHTTP3Bench(b)
	b.Run("http1.1", func(b *testing.B) { benchDecode(b, chunksOf(h1), newHTTP1) })
	b.Run("http2", func(b *testing.B) { benchDecode(b, chunksOf(h2recs), newHTTP2) })
	b.Run("http3", func(b *testing.B) { benchDecode(b, h3chunks, newHTTP3) })
}

// BenchmarkDecodeRatio alternates HTTP/1.1, HTTP/2 and HTTP/3 decoding of
// the same exchanges inside one loop, so load from other processes hits
// all alike, and reports the cost ratios (target: HTTP/2 within 1.5× of
// HTTP/1.1).
func BenchmarkDecodeRatio(b *testing.B) {
	run1, _ := decodeRun(recordHTTP1Bench(b), newHTTP1)
	run2, _ := decodeRun(recordHTTP2Bench(b), newHTTP2)
	run3, _ := decodeChunksRun(recordHTTP3Bench(b), newHTTP3)
	if run1() != benchExchanges || run2() != benchExchanges || run3() != benchExchanges {
		b.Fatal("corpus does not decode completely")
	}
	var t1, t2, t3 time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := time.Now()
		run1()
		m := time.Now()
		run2()
		m2 := time.Now()
		run3()
		t3 += time.Since(m2)
		t2 += m2.Sub(m)
		t1 += m.Sub(s)
	}
	n := float64(b.N * benchExchanges)
	b.ReportMetric(float64(t1.Nanoseconds())/n, "h1-ns/exchange")
	b.ReportMetric(float64(t2.Nanoseconds())/n, "h2-ns/exchange")
	b.ReportMetric(float64(t3.Nanoseconds())/n, "h3-ns/exchange")
	b.ReportMetric(float64(t2)/float64(t1), "h2/h1")
	b.ReportMetric(float64(t3)/float64(t1), "h3/h1")
}
