package websocket_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/klauspost/compress/flate"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http1"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/websocket"
)

// ---------------------------------------------------------------- a real WebSocket connection, in memory

// pipeListener serves http.Server over net.Pipe: a real HTTP/1.1 server
// and a real WebSocket implementation, without sockets.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "realtime.test:80" }

// wire records the bytes of the client's side of a connection as flow
// chunks: writes go client→server, reads come server→client.
type wire struct {
	net.Conn
	mu     sync.Mutex
	chunks []flow.Chunk
	clock  time.Time
}

func (w *wire) add(dir flow.Direction, b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = w.clock.Add(time.Millisecond)
	w.chunks = append(w.chunks, flow.Chunk{Dir: dir, Data: bytes.Clone(b), At: w.clock})
}

func (w *wire) Write(b []byte) (int, error) {
	w.add(flow.ClientToServer, b)
	return w.Conn.Write(b)
}

func (w *wire) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if n > 0 {
		w.add(flow.ServerToClient, b[:n])
	}
	return n, err
}

// transcript returns the messages of a recorded realtime session:
// client-sent and server-sent texts in order.
func transcript(t testing.TB) (sent, received [][]byte) {
	t.Helper()
	tr, err := cassette.ReadWebSocketTranscript("testdata/test_tool_call_round.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range tr.Messages {
		switch {
		case m.Exchange != nil || m.Close:
		case m.Sent:
			sent = append(sent, m.Data)
		default:
			received = append(received, m.Data)
		}
	}
	return sent, received
}

// session runs a WebSocket session through coder/websocket over an
// in-memory pipe: the client sends clientMsgs (each split into pieces
// frames when fragment is set), the server sends serverMsgs. It returns
// the recorded client-side wire.
func session(t *testing.T, mode cws.CompressionMode, clientMsgs, serverMsgs [][]byte, fragment bool) *wire {
	t.Helper()
	ln := newPipeListener()
	srvDone := make(chan error, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := cws.Accept(w, r, &cws.AcceptOptions{CompressionMode: mode, InsecureSkipVerify: true})
		if err != nil {
			srvDone <- err
			return
		}
		c.SetReadLimit(-1)
		ctx := context.Background()
		writeErr := make(chan error, 1)
		go func() {
			for _, m := range serverMsgs {
				if err := c.Write(ctx, cws.MessageText, m); err != nil {
					writeErr <- err
					return
				}
			}
			writeErr <- nil
		}()
		for i := 0; i < len(clientMsgs); i++ {
			if _, _, err := c.Read(ctx); err != nil {
				srvDone <- fmt.Errorf("server read %d: %w", i, err)
				return
			}
		}
		if err := <-writeErr; err != nil {
			srvDone <- err
			return
		}
		// Wait for the client's close, answer it.
		_, _, err = c.Read(ctx)
		if cws.CloseStatus(err) != cws.StatusNormalClosure {
			srvDone <- fmt.Errorf("server: expected the client's close, got %v", err)
			return
		}
		srvDone <- nil
	})}
	go srv.Serve(ln) //nolint:errcheck // ends when the listener closes
	defer srv.Close()
	rec := &wire{clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, s := net.Pipe()
		select {
		case ln.conns <- s:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		rec.Conn = c
		return rec, nil
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := cws.Dial(ctx, "ws://realtime.test/v1/realtime?model=gpt-realtime", &cws.DialOptions{HTTPClient: client, CompressionMode: mode})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(-1)
	readErr := make(chan error, 1)
	go func() {
		for i := range serverMsgs {
			_, got, err := c.Read(ctx)
			if err != nil {
				readErr <- fmt.Errorf("client read %d: %w", i, err)
				return
			}
			if !bytes.Equal(got, serverMsgs[i]) {
				readErr <- fmt.Errorf("client read %d: message differs", i)
				return
			}
		}
		readErr <- nil
		// Keep reading: control frames (the pong to our ping, the close
		// handshake) are processed inside Read.
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	for i, m := range clientMsgs {
		if i == 1 {
			if err := c.Ping(ctx); err != nil { // a control frame between data frames
				t.Fatal(err)
			}
		}
		if !fragment {
			if err := c.Write(ctx, cws.MessageText, m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := c.Writer(ctx, cws.MessageText)
		if err != nil {
			t.Fatal(err)
		}
		for rest := m; len(rest) > 0; {
			n := min(len(rest), 1+len(m)/3)
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	// Close after the server is done reading, so that it sees our close.
	go c.Close(cws.StatusNormalClosure, "done") //nolint:errcheck // the server's answer ends it
	if err := <-srvDone; err != nil {
		t.Fatal(err)
	}
	c.CloseNow() //nolint:errcheck // already closed
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec
}

// collect gathers what the upgrade hook's decoder delivers.
type collect struct {
	up       *httpmsg.Exchange
	messages []websocket.Message
	summary  *websocket.Summary
}

func (c *collect) Message(up *httpmsg.Exchange, m websocket.Message) {
	c.up = up
	c.messages = append(c.messages, m)
}

func (c *collect) Closed(up *httpmsg.Exchange, s websocket.Summary) { c.summary = &s }

// decodeWire feeds recorded chunks through the HTTP/1.1 decoder, whose
// upgrade hook hands the connection to a websocket decoder.
func decodeWire(t *testing.T, chunks []flow.Chunk, rec stats.Recorder, opt websocket.Options) (*collect, []*httpmsg.Exchange) {
	t.Helper()
	var exchanges []*httpmsg.Exchange
	got := &collect{}
	info := &flow.Info{ID: "ws", RemoteHost: "realtime.test", RemotePort: 80}
	d := http1.NewWithOptions(info, httpmsg.SinkFunc(func(x *httpmsg.Exchange) { exchanges = append(exchanges, x) }),
		httpmsg.DefaultLimits(), rec, http1.Options{Upgrade: func(_ httpmsg.Sink, x *httpmsg.Exchange) httpmsg.Decoder {
			if !websocket.IsUpgrade(x) {
				t.Errorf("upgrade hook called for a non-WebSocket exchange %d", x.Response.Status)
				return nil
			}
			return websocket.NewDecoder(x, got, rec, opt)
		}})
	for _, c := range chunks {
		d.Feed(c)
	}
	d.Close(flow.CloseInfo{Reason: "eof"})
	return got, exchanges
}

func checkMessages(t *testing.T, got []websocket.Message, dir flow.Direction, want [][]byte, compressed bool) {
	t.Helper()
	var mine []websocket.Message
	for _, m := range got {
		if m.Dir == dir {
			mine = append(mine, m)
		}
	}
	if len(mine) != len(want) {
		t.Fatalf("%s: %d messages; want %d", dir, len(mine), len(want))
	}
	sawCompressed := false
	for i, m := range mine {
		if m.Err != "" || m.Truncated || m.Opcode != websocket.OpText {
			t.Errorf("%s message %d: err %q truncated %v opcode %v", dir, i, m.Err, m.Truncated, m.Opcode)
		}
		if !bytes.Equal(m.Data, want[i]) {
			t.Errorf("%s message %d differs:\n got %.120q\nwant %.120q", dir, i, m.Data, want[i])
		}
		if m.End.Before(m.Start) || m.Start.IsZero() {
			t.Errorf("%s message %d: times %v..%v", dir, i, m.Start, m.End)
		}
		sawCompressed = sawCompressed || m.Compressed
	}
	if sawCompressed != compressed {
		t.Errorf("%s: compressed messages seen = %v; want %v", dir, sawCompressed, compressed)
	}
}

// A realtime session's messages, sent by a real WebSocket implementation
// in each permessage-deflate mode, come out of the HTTP/1.1 decoder's
// upgrade hook byte for byte: masking, fragmentation, an interleaved ping
// and context takeover included.
func TestRealConnection(t *testing.T) {
	sent, received := transcript(t)
	for _, c := range []struct {
		name     string
		mode     cws.CompressionMode
		fragment bool
		ext      string
	}{
		{"plain", cws.CompressionDisabled, false, ""},
		{"plain-fragmented", cws.CompressionDisabled, true, ""},
		{"deflate-context-takeover", cws.CompressionContextTakeover, false, "permessage-deflate"},
		{"deflate-context-takeover-fragmented", cws.CompressionContextTakeover, true, "permessage-deflate"},
		{"deflate-no-context-takeover", cws.CompressionNoContextTakeover, false, "client_no_context_takeover"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := session(t, c.mode, sent, received, c.fragment)
			var counters stats.Counters
			got, xs := decodeWire(t, w.chunks, &counters, websocket.Options{})
			if len(xs) != 1 || !websocket.IsUpgrade(xs[0]) {
				t.Fatalf("exchanges: %d, want the one upgrade", len(xs))
			}
			if got.up != xs[0] || xs[0].Request.Path() != "/v1/realtime" {
				t.Errorf("messages not tied to the upgrade exchange")
			}
			if ext := xs[0].Response.Header.Get("Sec-Websocket-Extensions"); !strings.Contains(ext, c.ext) {
				t.Errorf("negotiated %q; want %q", ext, c.ext)
			}
			compressed := c.mode != cws.CompressionDisabled
			checkMessages(t, got.messages, flow.ClientToServer, sent, compressed)
			checkMessages(t, got.messages, flow.ServerToClient, received, compressed)
			if got.summary == nil || got.summary.ClientClose == nil || got.summary.ClientClose.Code != 1000 ||
				got.summary.ClientClose.Reason != "done" || got.summary.ServerClose == nil {
				t.Errorf("close frames: %+v", got.summary)
			}
			if got.summary.Messages != len(sent)+len(received) {
				t.Errorf("summary counts %d messages", got.summary.Messages)
			}
			for _, tok := range []string{websocket.TokenBadFrame, websocket.TokenDroppedBytes, websocket.TokenMaskViolation,
				websocket.TokenInflateError, websocket.TokenContextLost, websocket.TokenTruncated} {
				if v := counters.Get(tok); v != 0 {
					t.Errorf("%s = %d on a clean connection", tok, v)
				}
			}
			if counters.Get(websocket.TokenControlFrames) < 3 { // ping, pong, two closes
				t.Errorf("control frames = %d", counters.Get(websocket.TokenControlFrames))
			}
			// Byte by byte gives the same messages.
			var one []flow.Chunk
			for _, ch := range w.chunks {
				for i := range ch.Data {
					one = append(one, flow.Chunk{Dir: ch.Dir, Data: ch.Data[i : i+1], At: ch.At})
				}
			}
			again, _ := decodeWire(t, one, stats.Discard{}, websocket.Options{})
			if len(again.messages) != len(got.messages) {
				t.Fatalf("byte by byte: %d messages; want %d", len(again.messages), len(got.messages))
			}
			for i := range got.messages {
				if !bytes.Equal(again.messages[i].Data, got.messages[i].Data) {
					t.Fatalf("byte by byte: message %d differs", i)
				}
			}
		})
	}
}

// ---------------------------------------------------------------- frames built by hand

// frame builds one frame; mask nil means unmasked.
func frame(fin bool, rsv1 bool, op websocket.Opcode, mask []byte, payload []byte) []byte {
	return testutil.WebSocketFrame(fin, rsv1, byte(op), mask, payload)
}

func decodeDir(t *testing.T, dir flow.Direction, ext websocket.Extensions, opt websocket.Options, data []byte, rec stats.Recorder) ([]websocket.Message, *websocket.Conn) {
	t.Helper()
	var got []websocket.Message
	c := websocket.NewConn(ext, func(m websocket.Message) { got = append(got, m) }, rec, opt)
	c.Feed(flow.Chunk{Dir: dir, Data: data})
	c.Close(flow.CloseInfo{})
	return got, c
}

func TestLengthsAndControlFrames(t *testing.T) {
	key := []byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte("x"), 70000) // 64-bit length
	mid := bytes.Repeat([]byte("y"), 300)   // 16-bit length
	var in []byte
	in = append(in, frame(false, false, websocket.OpText, key, []byte("hel"))...)
	in = append(in, frame(true, false, websocket.OpPing, key, []byte("p"))...) // between fragments
	in = append(in, frame(true, false, websocket.OpContinuation, key, []byte("lo"))...)
	in = append(in, frame(true, false, websocket.OpBinary, key, mid)...)
	in = append(in, frame(true, false, websocket.OpText, key, big)...)
	in = append(in, frame(true, false, websocket.OpText, key, nil)...)
	in = append(in, frame(true, false, websocket.OpClose, key, append([]byte{0x03, 0xe8}, "bye"...))...)
	var counters stats.Counters
	got, c := decodeDir(t, flow.ClientToServer, websocket.Extensions{}, websocket.Options{}, in, &counters)
	want := []struct {
		op     websocket.Opcode
		data   []byte
		frames int
	}{{websocket.OpText, []byte("hello"), 2}, {websocket.OpBinary, mid, 1}, {websocket.OpText, big, 1}, {websocket.OpText, nil, 1}}
	if len(got) != len(want) {
		t.Fatalf("%d messages; want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Opcode != w.op || !bytes.Equal(got[i].Data, w.data) || got[i].Frames != w.frames {
			t.Errorf("message %d: %v %d bytes %d frames", i, got[i].Opcode, len(got[i].Data), got[i].Frames)
		}
	}
	cf, _ := c.CloseFrames()
	if cf == nil || cf.Code != 1000 || cf.Reason != "bye" {
		t.Errorf("close frame %+v", cf)
	}
	if counters.Get(websocket.TokenControlFrames) != 2 || counters.Get(websocket.TokenBadFrame) != 0 || counters.Get(websocket.TokenMaskViolation) != 0 {
		t.Errorf("counters %v", counters.Snapshot())
	}
	// The server side must not mask: the same bytes from the server are
	// decoded all the same but counted.
	var sc stats.Counters
	got, _ = decodeDir(t, flow.ServerToClient, websocket.Extensions{}, websocket.Options{}, in, &sc)
	if len(got) != 4 || sc.Get(websocket.TokenMaskViolation) != 7 {
		t.Errorf("server-side masked frames: %d messages, counters %v", len(got), sc.Snapshot())
	}
}

func TestProtocolErrors(t *testing.T) {
	ok := frame(true, false, websocket.OpText, nil, []byte("ok"))
	for _, c := range []struct {
		name     string
		in       []byte
		messages int
		bad      int64
		stopped  bool
	}{
		{"reserved opcode stops the direction", append(frame(true, false, 3, nil, []byte("??")), ok...), 0, 1, true},
		{"64-bit length with the high bit", append([]byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, ok...), 0, 1, true},
		{"continuation without a message is skipped", append(frame(true, false, websocket.OpContinuation, nil, []byte("zz")), ok...), 1, 1, false},
		{"fragmented control frame is skipped", append(frame(false, false, websocket.OpPing, nil, []byte("p")), ok...), 1, 1, false},
		{"control frame over 125 bytes is skipped", append(frame(true, false, websocket.OpPong, nil, bytes.Repeat([]byte("p"), 200)), ok...), 1, 1, false},
		{"RSV1 without permessage-deflate", frame(true, true, websocket.OpText, nil, []byte("ok")), 1, 1, false},
		{"new message before the last one ended", append(frame(false, false, websocket.OpText, nil, []byte("a")), ok...), 1, 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var counters stats.Counters
			got, conn := decodeDir(t, flow.ServerToClient, websocket.Extensions{}, websocket.Options{}, c.in, &counters)
			if len(got) != c.messages || counters.Get(websocket.TokenBadFrame) != c.bad {
				t.Errorf("%d messages, counters %v", len(got), counters.Snapshot())
			}
			if (conn.Err(flow.ServerToClient) != nil) != c.stopped {
				t.Errorf("err = %v; want stopped %v", conn.Err(flow.ServerToClient), c.stopped)
			}
			if c.stopped && counters.Get(websocket.TokenDroppedBytes) == 0 {
				t.Errorf("bytes after the error not counted: %v", counters.Snapshot())
			}
		})
	}
}

func TestGapAndTruncation(t *testing.T) {
	m := frame(true, false, websocket.OpText, nil, []byte("hello world"))
	var counters stats.Counters
	var got []websocket.Message
	c := websocket.NewConn(websocket.Extensions{}, func(x websocket.Message) { got = append(got, x) }, &counters, websocket.Options{})
	c.Feed(flow.Chunk{Dir: flow.ServerToClient, Data: m})
	c.Feed(flow.Chunk{Dir: flow.ServerToClient, Data: m[:5]})
	c.Feed(flow.Chunk{Dir: flow.ClientToServer, Data: frame(true, false, websocket.OpText, []byte{9, 9, 9, 9}, []byte("abc"))[:4]})
	c.Feed(flow.Chunk{Dir: flow.ServerToClient, Gap: 7, Data: m})
	c.Close(flow.CloseInfo{})
	if len(got) != 1 || string(got[0].Data) != "hello world" {
		t.Fatalf("messages %+v", got)
	}
	if c.Err(flow.ServerToClient) == nil || c.Err(flow.ClientToServer) != nil {
		t.Errorf("a gap must stop its direction only")
	}
	// Dropped: the 3 payload bytes of the frame cut by the gap, then the
	// whole frame after it (frames cannot be found again).
	if counters.Get(websocket.TokenLostBytes) != 7 || counters.Get(websocket.TokenDroppedBytes) != 3+int64(len(m)) {
		t.Errorf("counters %v", counters.Snapshot())
	}
	if counters.Get(websocket.TokenTruncated) != 4 { // the client's header, cut after 4 of its 6 bytes
		t.Errorf("truncated = %d; counters %v", counters.Get(websocket.TokenTruncated), counters.Snapshot())
	}
}

// compress deflates data the way a permessage-deflate sender does: a sync
// flush, its 00 00 ff ff tail stripped.
func compress(t testing.TB, w *flate.Writer, buf *bytes.Buffer, data []byte) []byte {
	t.Helper()
	buf.Reset()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(buf.Bytes())
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatal("no sync flush tail")
	}
	return out[:len(out)-4]
}

func TestDeflateContextTakeover(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	msgs := [][]byte{
		[]byte(`{"type":"response.output_text.delta","delta":"The weather in Paris is sunny"}`),
		[]byte(`{"type":"response.output_text.delta","delta":"The weather in Paris is sunny"}`), // all back-references
		[]byte(`{"type":"response.done"}`),
	}
	var in []byte
	for _, m := range msgs {
		c := compress(t, w, &buf, m)
		in = append(in, frame(true, true, websocket.OpText, nil, c)...)
	}
	var counters stats.Counters
	got, _ := decodeDir(t, flow.ServerToClient, websocket.Extensions{Deflate: true}, websocket.Options{}, in, &counters)
	if len(got) != 3 {
		t.Fatalf("%d messages", len(got))
	}
	for i := range msgs {
		if !bytes.Equal(got[i].Data, msgs[i]) || !got[i].Compressed {
			t.Errorf("message %d = %q (err %q)", i, got[i].Data, got[i].Err)
		}
	}
	// Decoding the second message without the first one's window cannot
	// work: that is what "no context takeover" would wrongly assume.
	got, _ = decodeDir(t, flow.ServerToClient, websocket.Extensions{Deflate: true, ServerNoContextTakeover: true}, websocket.Options{}, in, &counters)
	if bytes.Equal(got[1].Data, msgs[1]) {
		t.Errorf("the second message decoded without the shared window")
	}
}

// A decompression bomb: 32 MiB of zeros compress to a few KiB. The inflated
// size stops at the cap; later messages of the direction, which depend on
// the lost window, are reported undecodable instead of guessed.
func TestDecompressionBomb(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	bomb := compress(t, w, &buf, make([]byte, 32<<20))
	if len(bomb) > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed", len(bomb))
	}
	next := compress(t, w, &buf, []byte(`{"type":"after"}`))
	in := append(frame(true, true, websocket.OpText, nil, bomb), frame(true, true, websocket.OpText, nil, next)...)
	var counters stats.Counters
	const max = 1 << 20
	got, _ := decodeDir(t, flow.ServerToClient, websocket.Extensions{Deflate: true}, websocket.Options{MaxMessage: max}, in, &counters)
	if len(got) != 2 || len(got[0].Data) != max || !got[0].Truncated {
		t.Fatalf("bomb: %d messages, first %d bytes truncated %v", len(got), len(got[0].Data), got[0].Truncated)
	}
	if got[1].Err == "" || got[1].Data != nil || counters.Get(websocket.TokenInflateCap) != 1 || counters.Get(websocket.TokenContextLost) != 1 {
		t.Errorf("after the bomb: %+v, counters %v", got[1], counters.Snapshot())
	}
	// Without context takeover the next message is independent.
	w2, _ := flate.NewWriter(&buf, flate.BestSpeed)
	bomb = compress(t, w2, &buf, make([]byte, 8<<20))
	w2.Reset(&buf)
	next = compress(t, w2, &buf, []byte(`{"type":"after"}`))
	in = append(frame(true, true, websocket.OpText, nil, bomb), frame(true, true, websocket.OpText, nil, next)...)
	got, _ = decodeDir(t, flow.ServerToClient, websocket.Extensions{Deflate: true, ServerNoContextTakeover: true}, websocket.Options{MaxMessage: max}, in, stats.Discard{})
	if len(got) != 2 || string(got[1].Data) != `{"type":"after"}` {
		t.Errorf("no context takeover: second message %q err %q", got[1].Data, got[1].Err)
	}
}

func TestCorruptDeflate(t *testing.T) {
	var counters stats.Counters
	got, _ := decodeDir(t, flow.ServerToClient, websocket.Extensions{Deflate: true}, websocket.Options{},
		frame(true, true, websocket.OpText, nil, []byte{0xff, 0xff, 0xff, 0xff, 0x12}), &counters)
	if len(got) != 1 || got[0].Err == "" || counters.Get(websocket.TokenInflateError) != 1 {
		t.Errorf("corrupt deflate: %+v counters %v", got, counters.Snapshot())
	}
}

func TestParseExtensions(t *testing.T) {
	var h httpmsg.Header
	h.Add("Sec-WebSocket-Extensions", `x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover; server_max_window_bits="10"`)
	e := websocket.ParseExtensions(h)
	if !e.Deflate || !e.ClientNoContextTakeover || e.ServerNoContextTakeover || e.ServerMaxWindowBits != 10 {
		t.Errorf("%+v", e)
	}
	if websocket.ParseExtensions(nil).Deflate {
		t.Error("deflate without the header")
	}
}

func TestIsUpgrade(t *testing.T) {
	req, _ := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /v1/realtime HTTP/1.1\r\nHost: api.openai.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")))
	x := &httpmsg.Exchange{Request: httpmsg.Request{Method: "GET", Header: httpmsg.HeaderOf(req.Header)}, Response: &httpmsg.Response{Status: 101}}
	if !websocket.IsUpgrade(x) {
		t.Error("101 websocket not recognised")
	}
	x.Response.Status = 200
	if websocket.IsUpgrade(x) {
		t.Error("200 taken for an upgrade")
	}
}

// ---------------------------------------------------------------- fuzzing and benchmarks

func FuzzConn(f *testing.F) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	f.Add(frame(true, false, websocket.OpText, []byte{1, 2, 3, 4}, []byte(`{"type":"session.update"}`)), true, uint8(3))
	f.Add(frame(true, true, websocket.OpText, nil, compress(f, w, &buf, []byte(`{"type":"response.done","response":{}}`))), false, uint8(1))
	f.Add(append(frame(false, false, websocket.OpText, nil, []byte("a")), frame(true, false, websocket.OpContinuation, nil, []byte("b"))...), false, uint8(2))
	f.Add([]byte{0x81, 127, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, false, uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, client bool, step uint8) {
		dir := flow.ServerToClient
		if client {
			dir = flow.ClientToServer
		}
		var whole, pieces []websocket.Message
		c := websocket.NewConn(websocket.Extensions{Deflate: true}, func(m websocket.Message) { whole = append(whole, m) }, stats.Discard{}, websocket.Options{MaxMessage: 1 << 16})
		c.Feed(flow.Chunk{Dir: dir, Data: bytes.Clone(data)})
		c.Close(flow.CloseInfo{})
		c2 := websocket.NewConn(websocket.Extensions{Deflate: true}, func(m websocket.Message) { pieces = append(pieces, m) }, stats.Discard{}, websocket.Options{MaxMessage: 1 << 16})
		n := int(step%32) + 1
		for rest := bytes.Clone(data); len(rest) > 0; {
			k := min(n, len(rest))
			c2.Feed(flow.Chunk{Dir: dir, Data: rest[:k]})
			rest = rest[k:]
		}
		c2.Close(flow.CloseInfo{})
		if len(whole) != len(pieces) {
			t.Fatalf("whole %d messages, pieces %d", len(whole), len(pieces))
		}
		for i := range whole {
			if !bytes.Equal(whole[i].Data, pieces[i].Data) || len(whole[i].Data) > 1<<16 {
				t.Fatalf("message %d differs or exceeds the cap", i)
			}
		}
	})
}

// BenchmarkConn measures the WebSocket path per byte: masked client
// frames and unmasked server frames of a recorded realtime session, plain
// and with permessage-deflate.
func BenchmarkConn(b *testing.B) {
	sent, received := transcript(b)
	for _, deflate := range []bool{false, true} {
		var in []flow.Chunk
		var total int64
		var buf bytes.Buffer
		cw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		sw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		for i := 0; i < len(sent) || i < len(received); i++ {
			if i < len(sent) {
				p := sent[i]
				if deflate {
					p = compress(b, cw, &buf, p)
				}
				in = append(in, flow.Chunk{Dir: flow.ClientToServer, Data: frame(true, deflate, websocket.OpText, []byte{7, 8, 9, 10}, p)})
				total += int64(len(sent[i]))
			}
			if i < len(received) {
				p := received[i]
				if deflate {
					p = compress(b, sw, &buf, p)
				}
				in = append(in, flow.Chunk{Dir: flow.ServerToClient, Data: frame(true, deflate, websocket.OpText, nil, p)})
				total += int64(len(received[i]))
			}
		}
		b.Run(fmt.Sprintf("deflate=%v", deflate), func(b *testing.B) {
			b.SetBytes(total) // message bytes delivered
			b.ReportAllocs()
			for b.Loop() {
				c := websocket.NewConn(websocket.Extensions{Deflate: deflate}, func(websocket.Message) {}, stats.Discard{}, websocket.Options{})
				for _, ch := range in {
					ch.Data = bytes.Clone(ch.Data) // the decoder unmasks in its own buffer, but keep inputs pristine
					c.Feed(ch)
				}
				c.Close(flow.CloseInfo{})
			}
		})
	}
}
