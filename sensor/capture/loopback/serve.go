package loopback

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/secret"
	"golang.org/x/net/http2"
)

// responder serves recorded responses: each request is answered by the
// first unserved interaction with the same method and path (and query when
// one matches exactly), so requests may arrive in any order.
type responder struct {
	log *slog.Logger

	mu     sync.Mutex
	ints   []cassette.Interaction
	served []bool
}

func newResponder(rec *cassette.Recording, log *slog.Logger) *responder {
	return &responder{log: log, ints: rec.Interactions, served: make([]bool, len(rec.Interactions))}
}

func (r *responder) unserved() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.served {
		if !s {
			n++
		}
	}
	return n
}

func (r *responder) take(req *http.Request) (cassette.Interaction, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	best := -1
	for i, in := range r.ints {
		if r.served[i] || in.Request.Method != req.Method {
			continue
		}
		u, err := parseURL(in.Request.URL)
		if err != nil || u.Path != req.URL.Path && u.EscapedPath() != req.URL.EscapedPath() {
			continue
		}
		if u.RawQuery == req.URL.RawQuery {
			best = i
			break
		}
		if best < 0 {
			best = i
		}
	}
	if best < 0 {
		return cassette.Interaction{}, false
	}
	r.served[best] = true
	return r.ints[best], true
}

func (r *responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	// Read the whole request first, as a real API does.
	_, _ = io.Copy(io.Discard, req.Body)
	in, ok := r.take(req)
	if !ok {
		r.log.Warn("loopback: no recorded response for request", "method", req.Method, "url", secret.RedactURL(req.URL.String()))
		http.Error(w, "no recorded response for "+req.Method+" "+req.URL.Path, http.StatusNotImplemented)
		return
	}
	resp := in.Response
	copyHeaders(w.Header(), resp.Header)
	parts := streamParts(resp.Header, resp.Body)
	if len(parts) <= 1 {
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.Body)))
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	fl, _ := w.(http.Flusher)
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return
		}
		if fl != nil && len(parts) > 1 {
			fl.Flush()
		}
	}
}

// startTCP listens on loopback TCP and serves TLS connections, tapping the
// plaintext of each between the TLS layer and the HTTP server.
func (s *Server) startTCP(t Transport, log *slog.Logger) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("loopback: listen: %w", err)
	}
	s.Addr = ln.Addr().String()
	protos := []string{"http/1.1"}
	if t == H2 {
		protos = []string{"h2"}
	}
	cfg := s.tlsConfig(protos)
	h1 := &http.Server{Handler: s.responder, ErrorLog: nil, ReadHeaderTimeout: 30 * time.Second}
	h1ln := newChanListener(ln.Addr())
	h2 := &http2.Server{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = h1.Serve(h1ln)
	}()
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h1.Shutdown(ctx); err != nil {
			// Connections still active after the grace period are cut.
			return h1.Close()
		}
		return nil
	}, ln.Close)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				h1ln.Close()
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				tc := tls.Server(c, cfg)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := tc.HandshakeContext(ctx)
				cancel()
				if err != nil {
					log.Debug("loopback: TLS handshake failed", "err", err)
					c.Close()
					return
				}
				st := tc.ConnectionState()
				tap := s.taps.open(tc, flow.TCP, st.ServerName, st.NegotiatedProtocol)
				if st.NegotiatedProtocol == "h2" {
					h2.ServeConn(tap, &http2.ServeConnOpts{Handler: s.responder, BaseConfig: h1})
					tap.Close()
					return
				}
				h1ln.push(tap)
			}()
		}
	}()
	return nil
}

// chanListener hands already-accepted connections to an http.Server.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// tapSet numbers flows and delivers their chunks to the handler.
type tapSet struct {
	h    flow.Handler
	next atomic.Int64

	mu    sync.Mutex
	conns map[string]*tapConn
	quic  map[string]*quicTap
}

// tapConn is the server side of a TLS connection, seen in plaintext: what
// the server reads is client→server data, what it writes is
// server→client.
type tapConn struct {
	net.Conn
	set  *tapSet
	id   string
	mu   sync.Mutex // serialises deliveries for this flow
	once sync.Once
	// busy counts Reads and Writes in progress: the HTTP/2 server writes
	// from other goroutines and may return from ServeConn while a write
	// is still delivering, so Close waits for them before ending the flow.
	busy sync.WaitGroup
}

func (ts *tapSet) open(c net.Conn, tr flow.Transport, sni, alpn string) *tapConn {
	id := "loopback-" + strconv.FormatInt(ts.next.Add(1), 10)
	info := &flow.Info{
		ID:         id,
		Transport:  tr,
		Process:    flow.Process{UID: -1},
		RemoteHost: sni,
		SNI:        sni,
		ALPN:       alpn,
		TLS:        true,
		Method:     flow.CaptureTLSBoundary,
		Started:    time.Now(),
	}
	if ra, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		info.Local = ra.AddrPort()
	}
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		info.Remote = la.AddrPort()
		info.RemotePort = la.AddrPort().Port()
	}
	tc := &tapConn{Conn: c, set: ts, id: id}
	ts.mu.Lock()
	if ts.conns == nil {
		ts.conns = map[string]*tapConn{}
	}
	ts.conns[id] = tc
	ts.mu.Unlock()
	ts.h.Open(info)
	return tc
}

func (c *tapConn) deliver(dir flow.Direction, p []byte) {
	if len(p) == 0 {
		return
	}
	data := append([]byte(nil), p...)
	c.mu.Lock()
	c.set.h.Data(c.id, flow.Chunk{Dir: dir, Data: data, At: time.Now()})
	c.mu.Unlock()
}

func (c *tapConn) Read(p []byte) (int, error) {
	c.busy.Add(1)
	defer c.busy.Done()
	n, err := c.Conn.Read(p)
	c.deliver(flow.ClientToServer, p[:n])
	return n, err
}

// Write delivers what the server sends before sending it, so the sensor
// has seen a response's last bytes before the client can act on them: a
// client's next request, even on another connection, is always seen later,
// as it would be by a capture inside the server. A write that then fails
// breaks the connection, which ends the flow.
func (c *tapConn) Write(p []byte) (int, error) {
	c.busy.Add(1)
	defer c.busy.Done()
	c.deliver(flow.ServerToClient, p)
	return c.Conn.Write(p)
}

func (c *tapConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.busy.Wait()
		c.set.mu.Lock()
		delete(c.set.conns, c.id)
		c.set.mu.Unlock()
		c.mu.Lock()
		c.set.h.Close(c.id, flow.CloseInfo{At: time.Now(), Reason: "eof"})
		c.mu.Unlock()
	})
	return err
}

// ConnectionState lets net/http see the TLS state through the tap.
func (c *tapConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// closeConns closes the network connection under every open tap, so the
// server goroutines reading them return; the flows themselves are ended by
// the taps' Close.
func (ts *tapSet) closeConns() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.conns {
		_ = c.Conn.Close()
	}
}

func (ts *tapSet) closeAll() {
	ts.mu.Lock()
	conns := make([]*tapConn, 0, len(ts.conns))
	for _, c := range ts.conns {
		conns = append(conns, c)
	}
	ts.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	ts.mu.Lock()
	quics := make([]*quicTap, 0, len(ts.quic))
	for _, q := range ts.quic {
		quics = append(quics, q)
	}
	ts.mu.Unlock()
	for _, q := range quics {
		q.Close(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
	}
}
