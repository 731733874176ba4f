package quicrelay

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// tapRecorder keeps chunks per (direction, stream).
type tapRecorder struct {
	mu     sync.Mutex
	info   ConnInfo
	chunks []flow.Chunk
	closed chan flow.CloseInfo
}

func (t *tapRecorder) Chunk(c flow.Chunk) {
	c.Data = append([]byte(nil), c.Data...)
	t.mu.Lock()
	t.chunks = append(t.chunks, c)
	t.mu.Unlock()
}

func (t *tapRecorder) Close(ci flow.CloseInfo) { t.closed <- ci }

func (t *tapRecorder) stream(dir flow.Direction, id int64) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b bytes.Buffer
	fin := false
	for _, c := range t.chunks {
		if c.Dir == dir && c.StreamID == id {
			b.Write(c.Data)
			fin = fin || c.Fin
		}
	}
	return b.Bytes(), fin
}

type env struct {
	clientCA   *ca.CA // what clients trust (the relay's CA)
	upstreamCA *ca.CA // what the relay trusts upstream
	relayAddr  net.Addr
	taps       chan *tapRecorder
}

// startRelay runs a relay routing every SNI to upstream.
func startRelay(t *testing.T, upstream net.Addr, refuse string) *env {
	t.Helper()
	e := &env{taps: make(chan *tapRecorder, 16)}
	var err error
	if e.clientCA, err = ca.Create(t.TempDir(), ca.Options{}); err != nil {
		t.Fatal(err)
	}
	if e.upstreamCA, err = ca.Create(t.TempDir(), ca.Options{}); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{
		GetCertificate: e.clientCA.GetCertificate,
		Route: func(h Hello) (Target, error) {
			if h.SNI == refuse {
				return Target{}, fmt.Errorf("%s is not intercepted", h.SNI)
			}
			return Target{Addr: upstream.String(), TLS: &tls.Config{RootCAs: e.upstreamCA.CertPool()}}, nil
		},
		OnConn: func(ci ConnInfo) Tap {
			tr := &tapRecorder{info: ci, closed: make(chan flow.CloseInfo, 1)}
			e.taps <- tr
			return tr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.relayAddr = pc.LocalAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Serve(ctx, pc); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		pc.Close()
	})
	return e
}

// h3Frames splits an HTTP/3 byte stream into (type, length) pairs and the
// concatenated DATA payload.
func h3Frames(t *testing.T, b []byte) (types []uint64, data []byte) {
	t.Helper()
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		typ, err := quicvarint.Read(r)
		if err != nil {
			t.Fatalf("frame type: %v", err)
		}
		n, err := quicvarint.Read(r)
		if err != nil {
			t.Fatalf("frame length: %v", err)
		}
		if uint64(r.Len()) < n {
			t.Fatalf("frame 0x%x claims %d bytes, %d left", typ, n, r.Len())
		}
		payload := make([]byte, n)
		io.ReadFull(r, payload)
		types = append(types, typ)
		if typ == 0x00 {
			data = append(data, payload...)
		}
	}
	return types, data
}

func TestHTTP3ThroughRelay(t *testing.T) {
	const host = "api.h3.test"
	upPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upPC.Close()
	e := startRelay(t, upPC.LocalAddr(), "")
	leaf, err := e.upstreamCA.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{*leaf}}),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: %d %s\n\n", i, body)
				w.(http.Flusher).Flush()
			}
		}),
	}
	go srv.Serve(upPC)
	defer srv.Close()

	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: e.clientCA.CertPool()},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, e.relayAddr.String(), tlsCfg, cfg)
		},
	}
	defer tr.Close()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	const reqBody = `{"model":"m","stream":true}`
	resp, err := client.Post("https://"+host+"/v1/chat/completions", "application/json", strings.NewReader(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "data: 0 " + reqBody + "\n\ndata: 1 " + reqBody + "\n\ndata: 2 " + reqBody + "\n\n"
	if resp.StatusCode != 200 || string(got) != want || resp.Proto != "HTTP/3.0" {
		t.Fatalf("response %s %q", resp.Proto, got)
	}
	tap := <-e.taps
	// The control streams run beside the request; wait until the relay has
	// carried both SETTINGS before hanging up (a connection close discards
	// stream data that is still in flight).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, _ := tap.stream(flow.ClientToServer, 2)
		s, _ := tap.stream(flow.ServerToClient, 3)
		if len(c) > 2 && len(s) > 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control streams not relayed: %x / %x", c, s)
		}
	}
	tr.Close()
	select {
	case ci := <-tap.closed:
		if ci.Reason != "eof" {
			t.Errorf("close reason %q", ci.Reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not close the connection")
	}
	if tap.info.SNI != host || tap.info.ALPN != "h3" {
		t.Errorf("conn info %+v", tap.info)
	}
	// Request stream 0: HEADERS then DATA carrying the body, then FIN.
	reqBytes, fin := tap.stream(flow.ClientToServer, 0)
	types, data := h3Frames(t, reqBytes)
	if len(types) < 2 || types[0] != 0x01 || string(data) != reqBody || !fin {
		t.Errorf("request stream frames %x, data %q, fin %v", types, data, fin)
	}
	respBytes, fin := tap.stream(flow.ServerToClient, 0)
	types, data = h3Frames(t, respBytes)
	if len(types) < 2 || types[0] != 0x01 || string(data) != want || !fin {
		t.Errorf("response stream frames %x, data %q, fin %v", types, data, fin)
	}
	// Control streams: the client's (id 2) and the server's, which the
	// relay opened toward the client as id 3. Both start with stream type
	// 0x00 and a SETTINGS frame (0x04).
	for _, c := range []struct {
		dir flow.Direction
		id  int64
	}{{flow.ClientToServer, 2}, {flow.ServerToClient, 3}} {
		b, _ := tap.stream(c.dir, c.id)
		if len(b) < 2 || b[0] != 0x00 {
			t.Errorf("stream %d: not a control stream: %x", c.id, b)
			continue
		}
		typs, _ := h3Frames(t, b[1:])
		if len(typs) == 0 || typs[0] != 0x04 {
			t.Errorf("stream %d: first frame %x, want SETTINGS", c.id, typs)
		}
	}
}

// TestStreamsOfEveryKind relays a raw QUIC protocol in which the server
// opens streams too, and checks bytes, FIN, resets and stream-id mapping.
func TestStreamsOfEveryKind(t *testing.T) {
	const host = "raw.quic.test"
	upPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upPC.Close()
	e := startRelay(t, upPC.LocalAddr(), "refused.test")
	leaf, err := e.upstreamCA.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.Listen(upPC, &tls.Config{Certificates: []tls.Certificate{*leaf}, NextProtos: []string{"echo/1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverErr := make(chan error, 1)
	go func() {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			serverErr <- err
			return
		}
		serverErr <- func() error {
			// Server-initiated unidirectional stream.
			u, err := conn.OpenUniStream()
			if err != nil {
				return err
			}
			u.Write([]byte("server says hi"))
			u.Close()
			// Server-initiated bidirectional stream: ping → pong.
			b, err := conn.OpenStream()
			if err != nil {
				return err
			}
			b.Write([]byte("ping"))
			b.Close()
			pong, err := io.ReadAll(b)
			if err != nil || string(pong) != "pong" {
				return fmt.Errorf("server stream got %q %v", pong, err)
			}
			// Client streams: echo upper-cased; the second one is reset.
			for i := 0; i < 2; i++ {
				s, err := conn.AcceptStream(context.Background())
				if err != nil {
					return err
				}
				msg, err := io.ReadAll(s)
				var se *quic.StreamError
				if i == 1 {
					if !errors.As(err, &se) || se.ErrorCode != 42 {
						return fmt.Errorf("reset not relayed: %v", err)
					}
					continue
				}
				if err != nil {
					return err
				}
				s.Write(bytes.ToUpper(msg))
				s.Close()
			}
			cu, err := conn.AcceptUniStream(context.Background())
			if err != nil {
				return err
			}
			msg, _ := io.ReadAll(cu)
			if string(msg) != "client uni" {
				return fmt.Errorf("client uni stream %q", msg)
			}
			return nil
		}()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A refused SNI fails the handshake.
	if _, err := quic.DialAddr(ctx, e.relayAddr.String(), &tls.Config{ServerName: "refused.test",
		RootCAs: e.clientCA.CertPool(), NextProtos: []string{"echo/1"}}, nil); err == nil {
		t.Fatal("refused host was relayed")
	}
	conn, err := quic.DialAddr(ctx, e.relayAddr.String(), &tls.Config{ServerName: host,
		RootCAs: e.clientCA.CertPool(), NextProtos: []string{"other/9", "echo/1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().TLS.NegotiatedProtocol; p != "echo/1" {
		t.Errorf("ALPN %q, want the upstream's choice echo/1", p)
	}
	u, err := conn.AcceptUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := io.ReadAll(u); string(msg) != "server says hi" {
		t.Errorf("server uni stream %q", msg)
	}
	b, err := conn.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := io.ReadAll(b); string(msg) != "ping" {
		t.Errorf("server bidi stream %q", msg)
	}
	b.Write([]byte("pong"))
	b.Close()
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hello relay"))
	s.Close()
	if echo, _ := io.ReadAll(s); string(echo) != "HELLO RELAY" {
		t.Errorf("echo %q", echo)
	}
	s2, _ := conn.OpenStreamSync(ctx)
	s2.Write([]byte("doomed"))
	s2.CancelWrite(42)
	cu, _ := conn.OpenUniStreamSync(ctx)
	cu.Write([]byte("client uni"))
	cu.Close()
	select {
	case err := <-serverErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("server did not finish")
	}
	conn.CloseWithError(0, "done")

	tap := <-e.taps
	<-tap.closed
	ids := map[string]struct {
		dir  flow.Direction
		id   int64
		want string
	}{
		"server uni":        {flow.ServerToClient, int64(u.StreamID()), "server says hi"},
		"server bidi s->c":  {flow.ServerToClient, int64(b.StreamID()), "ping"},
		"server bidi c->s":  {flow.ClientToServer, int64(b.StreamID()), "pong"},
		"client bidi c->s":  {flow.ClientToServer, int64(s.StreamID()), "hello relay"},
		"client bidi s->c":  {flow.ServerToClient, int64(s.StreamID()), "HELLO RELAY"},
		"client uni c->s":   {flow.ClientToServer, int64(cu.StreamID()), "client uni"},
		"client reset, c→s": {flow.ClientToServer, int64(s2.StreamID()), "doomed"},
	}
	for name, c := range ids {
		got, fin := tap.stream(c.dir, c.id)
		if string(got) != c.want && !(name == "client reset, c→s" && len(got) == 0) {
			t.Errorf("%s (stream %d): tapped %q, want %q", name, c.id, got, c.want)
		}
		if fin == (name == "client reset, c→s") {
			t.Errorf("%s: fin %v", name, fin)
		}
	}
	if u.StreamID() != 3 || b.StreamID() != 1 || s.StreamID() != 0 || cu.StreamID() != 2 {
		t.Errorf("client-side ids: uni %d bidi %d client %d client-uni %d", u.StreamID(), b.StreamID(), s.StreamID(), cu.StreamID())
	}
}
