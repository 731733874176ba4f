package http1

import (
	"bytes"
	stdgzip "compress/gzip"
	stdzlib "compress/zlib"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

const chatReq = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
const chatResp = `{"id":"chatcmpl-1","choices":[{"message":{"content":"Hello"}}]}`

func gzipped(s string) string {
	var b bytes.Buffer
	w := stdgzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func zlibbed(s string) string {
	var b bytes.Buffer
	w := stdzlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func brotlied(s string) string {
	var b bytes.Buffer
	w := brotli.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func zstded(s string) string {
	var b bytes.Buffer
	w, _ := zstd.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// recorder is a decoder that records what it is fed, standing in for the
// WebSocket or HTTP/2 decoder that takes a flow over.
type recorder struct {
	client, server []byte
	fins           int
	closed         bool
}

func (r *recorder) Feed(c flow.Chunk) {
	if c.Dir == flow.ClientToServer {
		r.client = append(r.client, c.Data...)
	} else {
		r.server = append(r.server, c.Data...)
	}
	if c.Fin {
		r.fins++
	}
}

func (r *recorder) Close(flow.CloseInfo) { r.closed = true }

func TestDecoder(t *testing.T) {
	sse := "data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n"
	type tc struct {
		name   string
		chunks []flow.Chunk
		lim    httpmsg.Limits
		opts   Options
		want   []summary
		counts map[string]int64
		check  func(t *testing.T, r result)
	}
	var rec recorder // for the switch cases; each case using it runs once
	tests := []tc{
		{
			name:   "one exchange with Content-Length bodies",
			chunks: both(post("/v1/chat/completions", chatReq), ok(chatResp)),
			want:   []summary{{0, "POST", "/v1/chat/completions", "api.example.com", chatReq, 200, chatResp, true, false}},
			check: func(t *testing.T, r result) {
				x := r.xs[0]
				if x.Proto != "HTTP/1.1" || x.Request.Scheme != "https" || x.Flow == nil || x.Flow.ID != "f1" {
					t.Errorf("Proto=%q Scheme=%q Flow=%v", x.Proto, x.Request.Scheme, x.Flow)
				}
				if x.Request.Header.Get("Content-Type") != "application/json" || x.Response.Reason != "OK" {
					t.Errorf("header or reason not kept: %v %q", x.Request.Header, x.Response.Reason)
				}
				if !x.Request.Start.Equal(t0) || !x.Response.Start.Equal(t0.Add(time.Millisecond)) || !x.Response.End.Equal(t0.Add(time.Millisecond)) {
					t.Errorf("times: req start %v resp %v..%v", x.Request.Start, x.Response.Start, x.Response.End)
				}
				want := []httpmsg.Mark{{Offset: len(chatResp), At: t0.Add(time.Millisecond)}}
				if diff := cmp.Diff(want, x.Response.Body.Marks); diff != "" {
					t.Errorf("marks (-want +got):\n%s", diff)
				}
				if x.Response.Body.WireLength != int64(len(chatResp)) {
					t.Errorf("WireLength = %d", x.Response.Body.WireLength)
				}
			},
		},
		{
			name: "keep-alive: three exchanges one after another",
			chunks: []flow.Chunk{
				c2s(0, get("/a")), s2c(1, ok("A")),
				c2s(2, get("/b")), s2c(3, ok("BB")),
				c2s(4, post("/c", "{}")), s2c(5, ok("CCC")),
			},
			want: []summary{
				{0, "GET", "/a", "api.example.com", "", 200, "A", true, false},
				{1, "GET", "/b", "api.example.com", "", 200, "BB", true, false},
				{2, "POST", "/c", "api.example.com", "{}", 200, "CCC", true, false},
			},
		},
		{
			name:   "pipelining: three requests before any response pair in order",
			chunks: both(get("/1")+post("/2", "two")+get("/3"), ok("one")+ok("second")+ok("3")),
			want: []summary{
				{0, "GET", "/1", "api.example.com", "", 200, "one", true, false},
				{1, "POST", "/2", "api.example.com", "two", 200, "second", true, false},
				{2, "GET", "/3", "api.example.com", "", 200, "3", true, false},
			},
		},
		{
			name: "chunked request body with chunk extensions",
			chunks: both("POST /v1/embeddings HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"5;name=value\r\nhello\r\n1 ; x=\"y\"\r\n \r\n5\r\nworld\r\n0\r\n\r\n", ok("{}")),
			want: []summary{{0, "POST", "/v1/embeddings", "h", "hello world", 200, "{}", true, false}},
		},
		{
			name: "chunked response with trailers",
			chunks: both(get("/stream"), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Usage\r\n\r\n"+
				"4\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Usage: tokens=12\r\nX-Other: 1\r\n\r\n"),
			want: []summary{{0, "GET", "/stream", "api.example.com", "", 200, "abcdefg", true, false}},
			check: func(t *testing.T, r result) {
				want := http.Header{"X-Usage": {"tokens=12"}, "X-Other": {"1"}}
				if diff := cmp.Diff(want, r.xs[0].Response.Trailer.HTTPHeader()); diff != "" {
					t.Errorf("trailer (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "chunked request with trailers keeps them",
			chunks: both("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n",
				ok("")),
			want: []summary{{0, "POST", "/u", "h", "abc", 200, "", true, false}},
			check: func(t *testing.T, r result) {
				if got := r.xs[0].Request.Trailer.Get("X-Sum"); got != "1" {
					t.Errorf("request trailer X-Sum %q", got)
				}
			},
		},
		{
			name: "Expect: 100-continue: the interim response is skipped",
			chunks: []flow.Chunk{
				c2s(0, "POST /v1/files HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
				s2c(1, "HTTP/1.1 100 Continue\r\n\r\n"),
				c2s(2, "hello"),
				s2c(3, ok("done")),
			},
			want:   []summary{{0, "POST", "/v1/files", "h", "hello", 200, "done", true, false}},
			counts: map[string]int64{TokenInterimResponse: 1},
			check: func(t *testing.T, r result) {
				if got := r.xs[0].Response.Start; !got.Equal(t0.Add(3 * time.Millisecond)) {
					t.Errorf("response start %v; want the final response's", got.Sub(t0))
				}
			},
		},
		{
			name:   "103 Early Hints before the final response",
			chunks: both(get("/"), "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"+ok("x")),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "x", true, false}},
			counts: map[string]int64{TokenInterimResponse: 1},
		},
		{
			name:   "HEAD: the response has no body despite Content-Length",
			chunks: both("HEAD /v1/models HTTP/1.1\r\nHost: h\r\n\r\n"+get("/next"), "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"+ok("next")),
			want: []summary{
				{0, "HEAD", "/v1/models", "h", "", 200, "", true, false},
				{1, "GET", "/next", "api.example.com", "", 200, "next", true, false},
			},
		},
		{
			name:   "204 No Content has no body",
			chunks: both(post("/v1/x", "{}")+get("/n"), "HTTP/1.1 204 No Content\r\n\r\n"+ok("n")),
			want: []summary{
				{0, "POST", "/v1/x", "api.example.com", "{}", 204, "", true, false},
				{1, "GET", "/n", "api.example.com", "", 200, "n", true, false},
			},
		},
		{
			name:   "304 Not Modified has no body even with Content-Length",
			chunks: both(get("/c")+get("/n"), "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"+ok("n")),
			want: []summary{
				{0, "GET", "/c", "api.example.com", "", 304, "", true, false},
				{1, "GET", "/n", "api.example.com", "", 200, "n", true, false},
			},
		},
		{
			name: "close-delimited response ends at the server's Fin",
			chunks: []flow.Chunk{
				c2s(0, get("/sse")),
				s2c(1, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: 1\n\n"),
				s2c(2, "data: 2\n\n"),
				{Dir: flow.ServerToClient, Data: []byte("data: 3\n\n"), At: t0.Add(3 * time.Millisecond), Fin: true},
			},
			want: []summary{{0, "GET", "/sse", "api.example.com", "", 200, "data: 1\n\ndata: 2\n\ndata: 3\n\n", true, false}},
			check: func(t *testing.T, r result) {
				b := r.xs[0].Response.Body
				want := []httpmsg.Mark{{Offset: 9, At: t0.Add(time.Millisecond)}, {Offset: 18, At: t0.Add(2 * time.Millisecond)}, {Offset: 27, At: t0.Add(3 * time.Millisecond)}}
				if diff := cmp.Diff(want, b.Marks); diff != "" {
					t.Errorf("marks (-want +got):\n%s", diff)
				}
				if got := r.xs[0].Response.End; !got.Equal(t0.Add(3 * time.Millisecond)) {
					t.Errorf("End = %v", got.Sub(t0))
				}
			},
		},
		{
			name:   "close-delimited HTTP/1.0 response ends at Close",
			chunks: both("GET /v1/models HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\n"+sse),
			want:   []summary{{0, "GET", "/v1/models", "", "", 200, sse, true, false}},
			check: func(t *testing.T, r result) {
				if r.xs[0].Proto != "HTTP/1.0" {
					t.Errorf("Proto = %q", r.xs[0].Proto)
				}
			},
		},
		{
			name:   "gzip response body is decoded",
			chunks: both(get("/"), ok(gzipped(chatResp), "Content-Encoding: gzip\r\n")),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, chatResp, true, false}},
			check: func(t *testing.T, r result) {
				b := r.xs[0].Response.Body
				if b.ContentEncoding != "gzip" || b.WireLength != int64(len(gzipped(chatResp))) || b.DecodeError != "" {
					t.Errorf("ContentEncoding=%q WireLength=%d DecodeError=%q", b.ContentEncoding, b.WireLength, b.DecodeError)
				}
			},
		},
		{
			name:   "br response body is decoded",
			chunks: both(get("/"), ok(brotlied(chatResp), "Content-Encoding: br\r\n")),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, chatResp, true, false}},
		},
		{
			name:   "zstd chunked response body is decoded",
			chunks: both(get("/"), "HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked(zstded(chatResp), 7, 9)),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, chatResp, true, false}},
		},
		{
			name:   "deflate (zlib) response body is decoded",
			chunks: both(get("/"), ok(zlibbed(chatResp), "Content-Encoding: deflate\r\n")),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, chatResp, true, false}},
		},
		{
			name:   "gzip request body is decoded",
			chunks: both(post("/v1/chat/completions", gzipped(chatReq), "Content-Encoding: gzip\r\n"), ok("{}")),
			want:   []summary{{0, "POST", "/v1/chat/completions", "api.example.com", chatReq, 200, "{}", true, false}},
		},
		{
			name:   "Transfer-Encoding gzip, chunked is removed too",
			chunks: both(get("/"), "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"+chunked(gzipped(chatResp), 10)),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, chatResp, true, false}},
		},
		{
			name:   "unknown content coding keeps the raw body and says why",
			chunks: both(get("/"), ok("raw", "Content-Encoding: lzma\r\n")),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "raw", true, true}},
			counts: map[string]int64{"content.unknown_encoding": 1},
			check: func(t *testing.T, r result) {
				if b := r.xs[0].Response.Body; b.DecodeError == "" || b.ContentEncoding != "" {
					t.Errorf("DecodeError=%q ContentEncoding=%q", b.DecodeError, b.ContentEncoding)
				}
			},
		},
		{
			name: "bare LF line endings everywhere",
			chunks: both("POST /v1/messages HTTP/1.1\nHost: api.anthropic.com\nContent-Length: 2\n\n{}",
				"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n"),
			want: []summary{{0, "POST", "/v1/messages", "api.anthropic.com", "{}", 200, "ok", true, false}},
		},
		{
			name:   "obs-fold continues a header value",
			chunks: both("GET / HTTP/1.1\r\nHost: h\r\nX-Long: part one\r\n  part two\r\n\tpart three\r\n\r\n", ok("")),
			want:   []summary{{0, "GET", "/", "h", "", 200, "", true, false}},
			check: func(t *testing.T, r result) {
				if got := r.xs[0].Request.Header.Get("X-Long"); got != "part one part two part three" {
					t.Errorf("X-Long = %q", got)
				}
			},
		},
		{
			name:   "lowercase and odd field names are canonicalised; bad lines are counted",
			chunks: both("GET / HTTP/1.1\r\nhost: h\r\ncontent-type : a/b\r\nnot a field\r\n\r\n", ok("")),
			want:   []summary{{0, "GET", "/", "h", "", 200, "", true, false}},
			counts: map[string]int64{TokenBadHeaderLine: int64(len("not a field\r\n"))},
			check: func(t *testing.T, r result) {
				if got := r.xs[0].Request.Header.Get("Content-Type"); got != "a/b" {
					t.Errorf("Content-Type = %q", got)
				}
			},
		},
		{
			name:   "empty lines between messages are ignored",
			chunks: both("\r\n\r\n"+get("/a")+"\r\n"+get("/b"), ok("1")+"\r\n"+ok("2")),
			want: []summary{
				{0, "GET", "/a", "api.example.com", "", 200, "1", true, false},
				{1, "GET", "/b", "api.example.com", "", 200, "2", true, false},
			},
		},
		{
			name:   "garbage before a request is skipped and counted",
			chunks: both("\x16\x03\x01\x00\xa5binary junk\r\nmore junk\r\n"+get("/ok"), ok("fine")),
			want:   []summary{{0, "GET", "/ok", "api.example.com", "", 200, "fine", true, false}},
			counts: map[string]int64{TokenBadStartLine: int64(len("\x16\x03\x01\x00\xa5binary junk\r\nmore junk\r\n"))},
		},
		{
			name:   "garbage glued to a request line is cut at the method",
			chunks: both(`{"tail":1}`+post("/v1/x", "{}"), ok("y")),
			want:   []summary{{0, "POST", "/v1/x", "api.example.com", "{}", 200, "y", true, false}},
			counts: map[string]int64{TokenBadStartLine: int64(len(`{"tail":1}`))},
		},
		{
			name:   "garbage before a response is skipped and counted",
			chunks: both(get("/"), "garbage!"+ok("z")),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "z", true, false}},
			counts: map[string]int64{TokenBadStartLine: int64(len("garbage!"))},
		},
		{
			name: "lost bytes inside a Content-Length body keep the framing",
			chunks: []flow.Chunk{
				c2s(0, get("/")+get("/2")),
				s2c(1, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
				{Dir: flow.ServerToClient, Data: []byte("ghij"), At: t0.Add(2 * time.Millisecond), Gap: 3},
				s2c(3, ok("second")),
			},
			want: []summary{
				{0, "GET", "/", "api.example.com", "", 200, "abcghij", false, true},
				{1, "GET", "/2", "api.example.com", "", 200, "second", true, false},
			},
			counts: map[string]int64{TokenLostBytes: 3},
		},
		{
			name: "lost bytes in the middle of headers resynchronise on the next message",
			chunks: []flow.Chunk{
				c2s(0, "POST /v1/a HTTP/1.1\r\nHost: h\r\nContent-Le"),
				{Dir: flow.ClientToServer, Data: []byte("ngth: 2\r\n\r\n{}" + get("/b")), At: t0.Add(1 * time.Millisecond), Gap: 100},
				s2c(2, ok("A")+ok("B")),
			},
			want: []summary{
				{0, "POST", "/v1/a", "h", "", 200, "A", true, true},
				{1, "GET", "/b", "api.example.com", "", 200, "B", true, false},
			},
			counts: map[string]int64{TokenLostBytes: 100, TokenIncomplete: int64(len("POST /v1/a HTTP/1.1\r\nHost: h\r\nContent-Le")),
				TokenResyncAfterGap: int64(len("ngth: 2\r\n\r\n{}"))},
		},
		{
			name: "lost bytes in a close-delimited body mark it incomplete",
			chunks: []flow.Chunk{
				c2s(0, get("/")),
				s2c(1, "HTTP/1.1 200 OK\r\n\r\nab"),
				{Dir: flow.ServerToClient, Data: []byte("yz"), At: t0.Add(2 * time.Millisecond), Gap: 5},
			},
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "abyz", false, true}},
			counts: map[string]int64{TokenLostBytes: 5},
		},
		{
			name:   "a header block over the cap is dropped and counted; framing survives",
			chunks: both("GET /big HTTP/1.1\r\nHost: h\r\nX-Pad: "+strings.Repeat("p", 300)+"\r\nContent-Length: 2\r\nX-More: 1\r\n\r\n{}"+get("/next"), ok("1")+ok("2")),
			lim:    httpmsg.Limits{MaxHeaderBytes: 128},
			want: []summary{
				{0, "GET", "/big", "h", "{}", 200, "1", true, true},
				{1, "GET", "/next", "api.example.com", "", 200, "2", true, false},
			},
			// Everything after the last whole line under the cap is dropped
			// (the Content-Length line is still read for framing).
			counts: map[string]int64{TokenHeaderTooLarge: int64(len("X-Pad: " + strings.Repeat("p", 300) + "\r\nContent-Length: 2\r\nX-More: 1\r\n\r\n"))},
		},
		{
			name:   "a body over the cap is truncated and counted",
			chunks: both(post("/up", strings.Repeat("x", 100)), ok("ok")),
			lim:    httpmsg.Limits{MaxBody: 64},
			want:   []summary{{0, "POST", "/up", "api.example.com", strings.Repeat("x", 64), 200, "ok", true, true}},
			counts: map[string]int64{TokenBodyTruncated: 36},
			check: func(t *testing.T, r result) {
				b := r.xs[0].Request.Body
				if !b.Truncated || b.Dropped != 36 || b.WireLength != 100 {
					t.Errorf("Truncated=%v Dropped=%d WireLength=%d", b.Truncated, b.Dropped, b.WireLength)
				}
			},
		},
		{
			name:   "absolute-form target of a proxy request is kept",
			chunks: both("GET http://api.example.com:8080/v1/models?x=1 HTTP/1.1\r\n\r\n", ok("m")),
			want:   []summary{{0, "GET", "http://api.example.com:8080/v1/models?x=1", "api.example.com:8080", "", 200, "m", true, false}},
		},
		{
			name: "CONNECT 200 turns the flow into a tunnel",
			chunks: []flow.Chunk{
				c2s(0, "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n"),
				s2c(1, "HTTP/1.1 200 Connection Established\r\n\r\n"),
				c2s(2, "\x16\x03\x01 client hello"),
				s2c(3, "\x16\x03\x03 server hello"),
			},
			want:   []summary{{0, "CONNECT", "api.openai.com:443", "api.openai.com:443", "", 200, "", true, false}},
			counts: map[string]int64{TokenTunnelBytes: int64(len("\x16\x03\x01 client hello\x16\x03\x03 server hello"))},
		},
		{
			name:   "a non-2xx answer to CONNECT has a body and HTTP continues",
			chunks: both("CONNECT x:443 HTTP/1.1\r\n\r\n"+get("/after"), "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 6\r\n\r\ndenied"+ok("after")),
			want: []summary{
				{0, "CONNECT", "x:443", "x:443", "", 407, "denied", true, false},
				{1, "GET", "/after", "api.example.com", "", 200, "after", true, false},
			},
		},
		{
			name: "101 Switching Protocols hands the rest of the flow to the Upgrade decoder",
			chunks: []flow.Chunk{
				c2s(0, "GET /v1/realtime HTTP/1.1\r\nHost: api.openai.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
				s2c(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello"),
				c2s(2, "\x81\x85mask!"),
				{Dir: flow.ServerToClient, Data: []byte("\x88\x00"), At: t0.Add(3 * time.Millisecond), Fin: true},
			},
			opts: Options{Upgrade: func(_ httpmsg.Sink, x *httpmsg.Exchange) httpmsg.Decoder {
				if x.Response.Status != 101 {
					return nil
				}
				return &rec
			}},
			want: []summary{{0, "GET", "/v1/realtime", "api.openai.com", "", 101, "", true, false}},
			check: func(t *testing.T, r result) {
				if string(rec.client) != "\x81\x85mask!" || string(rec.server) != "\x81\x05hello\x88\x00" || rec.fins != 1 || !rec.closed {
					t.Errorf("next decoder got client %q server %q fins %d closed %v", rec.client, rec.server, rec.fins, rec.closed)
				}
			},
		},
		{
			name: "101 without a next decoder counts the later bytes",
			chunks: both("GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x80abcd",
				"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x01x"),
			want:   []summary{{0, "GET", "/ws", "", "", 101, "", true, false}},
			counts: map[string]int64{TokenUpgradedBytes: 9},
		},
		{
			name: "an upgrade the server declines leaves the connection on HTTP/1.1",
			chunks: both("GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"+get("/next"),
				ok("no upgrade")+ok("next")),
			want: []summary{
				{0, "GET", "/ws", "", "", 200, "no upgrade", true, false},
				{1, "GET", "/next", "api.example.com", "", 200, "next", true, false},
			},
		},
		{
			name: "a flow opening with the HTTP/2 preface goes to the H2 decoder, server bytes too",
			chunks: []flow.Chunk{
				s2c(0, "\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
				c2s(1, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04"),
				c2s(2, "more frames"),
			},
			opts: Options{H2Preface: func(*flow.Info, httpmsg.Sink, httpmsg.Limits, stats.Recorder) httpmsg.Decoder {
				return &rec
			}},
			counts: map[string]int64{TokenH2Preface: 1},
			check: func(t *testing.T, r result) {
				if string(rec.client) != "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04more frames" || string(rec.server) != "\x00\x00\x00\x04\x00\x00\x00\x00\x00" {
					t.Errorf("next decoder got client %q server %q", rec.client, rec.server)
				}
			},
		},
		{
			name:   "an HTTP/2 preface without an H2 decoder is counted, not parsed",
			chunks: both("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00", "\x00\x00\x00\x04\x00"),
			counts: map[string]int64{TokenH2Preface: 1, TokenH2Bytes: 31},
		},
		{
			name:   "a response with no request seen is delivered as partial",
			chunks: both("", ok("orphan")),
			want:   []summary{{0, "", "", "", "", 200, "orphan", true, true}},
			counts: map[string]int64{TokenOrphanResponse: 1},
		},
		{
			name:   "a request with no response is delivered at Close as partial",
			chunks: both(post("/v1/x", "{}"), ""),
			want:   []summary{{0, "POST", "/v1/x", "api.example.com", "{}", 0, "", false, true}},
		},
		{
			name:   "a response cut mid-body is incomplete",
			chunks: both(get("/"), "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "partial", false, true}},
		},
		{
			name:   "a request cut inside its headers still names its method and target",
			chunks: both(get("/a")+"POST /v1/b HTTP/1.1\r\nHost: x\r\nContent-Ty", ok("a")),
			want: []summary{
				{0, "GET", "/a", "api.example.com", "", 200, "a", true, false},
				{1, "POST", "/v1/b", "x", "", 0, "", false, true},
			},
			counts: map[string]int64{TokenIncomplete: int64(len("POST /v1/b HTTP/1.1\r\nHost: x\r\nContent-Ty"))},
		},
		{
			name:   "an unreadable chunk size abandons the body and resynchronises",
			chunks: both(get("/a")+get("/b"), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\njunk"+ok("b")),
			want: []summary{
				{0, "GET", "/a", "api.example.com", "", 200, "abc", false, true},
				{1, "GET", "/b", "api.example.com", "", 200, "b", true, false},
			},
			counts: map[string]int64{TokenBadChunkSize: 1, TokenResyncAfterError: 4},
		},
		{
			name:   "a chunk without its CRLF is tolerated and counted",
			chunks: both(get("/"), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc3\r\ndef\r\n0\r\n\r\n"),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "abcdef", true, false}},
			counts: map[string]int64{TokenBadChunkEnd: 1},
		},
		{
			name:   "unreadable Content-Length on a response reads to the end",
			chunks: both(get("/"), "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nabcdefgh"),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "abcdefgh", true, true}},
			counts: map[string]int64{TokenBadContentLength: 1},
		},
		{
			name:   "too many requests without responses: the oldest are given up on",
			chunks: both(get("/1")+get("/2")+get("/3")+get("/4"), ""),
			opts:   Options{MaxPending: 2},
			want: []summary{
				{0, "GET", "/1", "api.example.com", "", 0, "", false, true},
				{1, "GET", "/2", "api.example.com", "", 0, "", false, true},
				{2, "GET", "/3", "api.example.com", "", 0, "", false, true},
				{3, "GET", "/4", "api.example.com", "", 0, "", false, true},
			},
			counts: map[string]int64{TokenPendingOverflow: 2},
		},
		{
			name: "lost bytes inside chunk data keep the framing",
			chunks: []flow.Chunk{
				c2s(0, get("/")),
				s2c(1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01234"),
				{Dir: flow.ServerToClient, Data: []byte("89\r\n2\r\nab\r\n0\r\n\r\n"), At: t0.Add(2 * time.Millisecond), Gap: 3},
			},
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "0123489ab", false, true}},
			counts: map[string]int64{TokenLostBytes: 3},
		},
		{
			name: "lost bytes past the end of a body resynchronise",
			chunks: []flow.Chunk{
				c2s(0, get("/a")+get("/b")),
				s2c(1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"),
				{Dir: flow.ServerToClient, Data: []byte("-tail of something-" + ok("b")), At: t0.Add(2 * time.Millisecond), Gap: 50},
			},
			want: []summary{
				{0, "GET", "/a", "api.example.com", "", 200, "ab", false, true},
				{1, "GET", "/b", "api.example.com", "", 200, "b", true, false},
			},
			counts: map[string]int64{TokenLostBytes: 50, TokenResyncAfterGap: int64(len("-tail of something-"))},
		},
		{
			name:   "garbage longer than the resync window is dropped in bounded memory",
			chunks: both(strings.Repeat("binary\x00junk-", 20000)+get("/ok"), ok("fine")),
			want:   []summary{{0, "GET", "/ok", "api.example.com", "", 200, "fine", true, false}},
			counts: map[string]int64{TokenBadStartLine: int64(len(strings.Repeat("binary\x00junk-", 20000)))},
		},
		{
			name: "a response seen before any request bytes is an orphan",
			chunks: []flow.Chunk{
				s2c(0, ok("early")),
				c2s(1, get("/late")),
				s2c(2, ok("late")),
			},
			want: []summary{
				{0, "", "", "", "", 200, "early", true, true},
				{1, "GET", "/late", "api.example.com", "", 200, "late", true, false},
			},
			counts: map[string]int64{TokenOrphanResponse: 1},
		},
		{
			name: "many gaps in one body do not grow the notes without bound",
			chunks: func() []flow.Chunk {
				cs := []flow.Chunk{c2s(0, get("/")), s2c(1, "HTTP/1.1 200 OK\r\n\r\n")}
				for i := range 100 {
					cs = append(cs, flow.Chunk{Dir: flow.ServerToClient, Data: []byte("x"), At: t0.Add(time.Duration(2+i) * time.Millisecond), Gap: 1})
				}
				return cs
			}(),
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, strings.Repeat("x", 100), false, true}},
			counts: map[string]int64{TokenLostBytes: 100},
			check: func(t *testing.T, r result) {
				if n := len(r.xs[0].Notes); n != maxNotes {
					t.Errorf("%d notes; want %d", n, maxNotes)
				}
			},
		},
		{
			name: "data after the server's Fin is counted",
			chunks: []flow.Chunk{
				c2s(0, get("/")),
				{Dir: flow.ServerToClient, Data: []byte(ok("x")), At: t0, Fin: true},
				s2c(1, "late"),
			},
			want:   []summary{{0, "GET", "/", "api.example.com", "", 200, "x", true, false}},
			counts: map[string]int64{TokenAfterFin: 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec = recorder{}
			r := run(tt.chunks, tt.lim, tt.opts)
			if diff := cmp.Diff(tt.want, summarize(r.xs)); diff != "" {
				t.Errorf("exchanges (-want +got):\n%s", diff)
				for _, x := range r.xs {
					t.Logf("exchange %d notes: %q", x.Seq, x.Notes)
				}
			}
			got := r.stats.Snapshot()
			want := tt.counts
			if want == nil {
				want = map[string]int64{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("counters (-want +got):\n%s", diff)
			}
			if tt.check != nil && len(r.xs) >= len(tt.want) {
				tt.check(t, r)
			}
		})
	}
}

// TestGzipStreamKeepsEventTimes follows a gzip-compressed SSE response whose
// server flushes the compressor per event, each event in its own chunk:
// after decoding, every event's bytes still carry their own arrival time.
func TestGzipStreamKeepsEventTimes(t *testing.T) {
	var wire bytes.Buffer
	zw := stdgzip.NewWriter(&wire)
	var events []string
	var cuts []int
	for i := range 5 {
		ev := "data: {\"n\":" + strings.Repeat("1", i+1) + "}\n\n"
		events = append(events, ev)
		zw.Write([]byte(ev))
		zw.Flush()
		cuts = append(cuts, wire.Len())
	}
	zw.Close()
	cuts[len(cuts)-1] = wire.Len()
	body := wire.String()
	chunks := []flow.Chunk{c2s(0, get("/stream")), s2c(1, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")}
	prev := 0
	for i, c := range cuts {
		chunks = append(chunks, s2c(10*(i+1), chunked(body[prev:c])[:len(chunked(body[prev:c]))-5])) // without the last-chunk
		prev = c
	}
	chunks = append(chunks, s2c(100, "0\r\n\r\n"))
	r := run(chunks, httpmsg.Limits{}, Options{})
	if len(r.xs) != 1 || r.xs[0].Partial {
		t.Fatalf("exchanges: %+v", summarize(r.xs))
	}
	b := r.xs[0].Response.Body
	if string(b.Data) != strings.Join(events, "") || b.ContentEncoding != "gzip" {
		t.Fatalf("body %q (encoding %q)", b.Data, b.ContentEncoding)
	}
	off := 0
	for i, ev := range events {
		off += len(ev)
		if got, want := b.TimeAt(off-1), t0.Add(time.Duration(10*(i+1))*time.Millisecond); !got.Equal(want) {
			t.Errorf("event %d ends at %v; want %v", i, got.Sub(t0), want.Sub(t0))
		}
	}
}
