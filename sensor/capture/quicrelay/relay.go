// Package quicrelay owns a stream-level QUIC relay: it terminates QUIC from
// clients with a certificate it is given, dials the real server offering
// the client's ALPN list, and relays every stream (bidirectional and
// unidirectional, opened by either side) byte for byte, with a tap that
// sees each stream's bytes as flow chunks (Transport QUIC).
//
// Stream ids are kept aligned: for every stream a peer opens, the relay
// opens one toward the other peer in the same order, so the ids on both
// hops are equal and every chunk carries the id the client application
// used. The relay never parses HTTP/3; decoders do that from the chunks.
package quicrelay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Tap receives what the relay forwards. Calls come concurrently from one
// goroutine per stream direction and must not block; c.Data is valid only
// during the call. Close is called once, after the last Chunk.
type Tap interface {
	Chunk(c flow.Chunk)
	Close(ci flow.CloseInfo)
}

// Hello is what the relay knows when a client's handshake starts.
type Hello struct {
	SNI    string
	ALPN   []string // offered by the client
	Client net.Addr
}

// Target says where to relay a connection.
type Target struct {
	// Addr is the UDP address of the real server.
	Addr string
	// TLS is the upstream TLS configuration (ServerName, roots or
	// VerifyConnection). NextProtos is replaced by the client's offer.
	TLS *tls.Config
}

// ConnInfo describes a relayed connection once both handshakes are done.
type ConnInfo struct {
	Hello
	ALPN     string // negotiated, identical on both hops
	Upstream net.Addr
	Started  time.Time
}

// Config configures a Relay.
type Config struct {
	// GetCertificate supplies the certificate shown to clients.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Route decides where a client's connection goes; an error refuses
	// the connection (the client sees a handshake failure).
	Route func(Hello) (Target, error)
	// OnConn returns the tap for a relayed connection; nil means no tap.
	OnConn func(ConnInfo) Tap
	// QUIC is used (cloned) for both hops; nil means quic-go defaults.
	QUIC        *quic.Config
	DialTimeout time.Duration
	Logger      *slog.Logger
	Stats       stats.Recorder
}

// Relay is a QUIC relay. Serve it on one or more packet connections.
type Relay struct {
	cfg Config
	log *slog.Logger
	st  stats.Recorder
}

// New returns a relay.
func New(cfg Config) (*Relay, error) {
	if cfg.GetCertificate == nil || cfg.Route == nil {
		return nil, errors.New("quicrelay: GetCertificate and Route are required")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stats == nil {
		cfg.Stats = stats.Discard{}
	}
	return &Relay{cfg: cfg, log: cfg.Logger.With("component", "quicrelay"), st: cfg.Stats}, nil
}

type ctxKey struct{}

// pending carries the upstream connection from the client's handshake
// (where it is dialled, to mirror ALPN) to the accepted connection.
type pending struct {
	connCtx  context.Context
	mu       sync.Mutex
	hello    Hello
	upstream *quic.Conn
	claimed  bool
}

func (r *Relay) quicConfig(keepAlive bool) *quic.Config {
	var c *quic.Config
	if r.cfg.QUIC != nil {
		c = r.cfg.QUIC.Clone()
	} else {
		c = &quic.Config{}
	}
	c.EnableDatagrams = true
	if keepAlive && c.KeepAlivePeriod == 0 {
		// The client's keep-alives end at the relay; keep the upstream hop
		// alive on our own while the client connection lives.
		c.KeepAlivePeriod = 10 * time.Second
	}
	return c
}

// Serve accepts QUIC connections on pc until ctx ends. Upstream
// connections use their own UDP socket.
func (r *Relay) Serve(ctx context.Context, pc net.PacketConn) error {
	upUDP, err := net.ListenUDP("udp", nil)
	if err != nil {
		return fmt.Errorf("quicrelay: upstream socket: %w", err)
	}
	upTr := &quic.Transport{Conn: upUDP}
	defer upTr.Close()
	tr := &quic.Transport{
		Conn: pc,
		ConnContext: func(ctx context.Context, _ *quic.ClientInfo) (context.Context, error) {
			p := &pending{connCtx: ctx}
			// This context ends with the connection. If the client's
			// handshake fails after the upstream was dialled, nobody accepts
			// the connection: close the upstream then.
			context.AfterFunc(ctx, func() {
				p.mu.Lock()
				defer p.mu.Unlock()
				if !p.claimed && p.upstream != nil {
					r.st.Count("quicrelay.client_handshake_failed", 1)
					p.upstream.CloseWithError(0, "")
				}
			})
			return context.WithValue(ctx, ctxKey{}, p), nil
		},
	}
	defer tr.Close()
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			return r.clientHello(chi, upTr)
		},
	}
	ln, err := tr.Listen(tlsConf, r.quicConfig(false))
	if err != nil {
		return fmt.Errorf("quicrelay: listen: %w", err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("quicrelay: accept: %w", err)
		}
		p, _ := conn.Context().Value(ctxKey{}).(*pending)
		if p == nil {
			conn.CloseWithError(0, "")
			continue
		}
		p.mu.Lock()
		p.claimed = true
		up := p.upstream
		hello := p.hello
		p.mu.Unlock()
		if up == nil {
			conn.CloseWithError(0, "")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.relayConn(ctx, conn, up, hello)
		}()
	}
}

// clientHello runs inside the client's handshake: it routes the
// connection, dials upstream with the client's ALPN offer, and answers the
// client with the protocol the server picked.
func (r *Relay) clientHello(chi *tls.ClientHelloInfo, upTr *quic.Transport) (*tls.Config, error) {
	p, _ := chi.Context().Value(ctxKey{}).(*pending)
	if p == nil {
		return nil, errors.New("quicrelay: connection without relay state")
	}
	hello := Hello{SNI: chi.ServerName, ALPN: chi.SupportedProtos}
	if chi.Conn != nil {
		hello.Client = chi.Conn.RemoteAddr()
	}
	target, err := r.cfg.Route(hello)
	if err != nil {
		r.st.Count("quicrelay.refused", 1)
		r.log.Info("quicrelay: refusing connection", "sni", hello.SNI, "reason", err)
		return nil, err
	}
	upConf := &tls.Config{}
	if target.TLS != nil {
		upConf = target.TLS.Clone()
	}
	upConf.NextProtos = chi.SupportedProtos
	if upConf.ServerName == "" {
		upConf.ServerName = hello.SNI
	}
	addr, err := net.ResolveUDPAddr("udp", target.Addr)
	if err != nil {
		r.st.Count("quicrelay.upstream_failed", 1)
		r.log.Warn("quicrelay: cannot resolve upstream", "sni", hello.SNI, "addr", target.Addr, "err", err)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(chi.Context(), r.cfg.DialTimeout)
	defer cancel()
	up, err := upTr.Dial(ctx, addr, upConf, r.quicConfig(true))
	if err != nil {
		r.st.Count("quicrelay.upstream_failed", 1)
		r.log.Warn("quicrelay: upstream QUIC handshake failed", "sni", hello.SNI, "addr", target.Addr, "err", err)
		return nil, fmt.Errorf("upstream: %w", err)
	}
	p.mu.Lock()
	p.upstream, p.hello = up, hello
	gone := p.connCtx.Err() != nil
	p.mu.Unlock()
	if gone {
		up.CloseWithError(0, "")
		return nil, errors.New("quicrelay: client went away during the upstream handshake")
	}
	cert, err := r.cfg.GetCertificate(chi)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*cert}}
	if proto := up.ConnectionState().TLS.NegotiatedProtocol; proto != "" {
		conf.NextProtos = []string{proto}
	}
	return conf, nil
}

// noTap is used when OnConn returns nil.
type noTap struct{}

func (noTap) Chunk(flow.Chunk)     {}
func (noTap) Close(flow.CloseInfo) {}

func (r *Relay) relayConn(ctx context.Context, client, up *quic.Conn, hello Hello) {
	r.st.Count("quicrelay.connections", 1)
	info := ConnInfo{Hello: hello, ALPN: client.ConnectionState().TLS.NegotiatedProtocol,
		Upstream: up.RemoteAddr(), Started: time.Now()}
	info.Client = client.RemoteAddr()
	var tap Tap = noTap{}
	if r.cfg.OnConn != nil {
		if t := r.cfg.OnConn(info); t != nil {
			tap = t
		}
	}
	var wg sync.WaitGroup
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	// Every stream one side opens is opened on the other side too; the
	// stream ids are the client hop's, as the client sees them.
	bidi := func(cs, us *quic.Stream) {
		id := int64(cs.StreamID())
		run(func() { r.pipe(cs, us, tap, flow.ClientToServer, id) })
		run(func() { r.pipe(us, cs, tap, flow.ServerToClient, id) })
	}
	refuseBidi := func(s *quic.Stream) {
		s.CancelRead(0)
		s.CancelWrite(0)
	}
	refuseUni := func(s *quic.ReceiveStream) { s.CancelRead(0) }
	run(func() {
		bridge(streamCtx, client.AcceptStream, up.OpenStreamSync, refuseBidi, bidi)
	})
	run(func() {
		bridge(streamCtx, up.AcceptStream, client.OpenStreamSync, refuseBidi, func(us, cs *quic.Stream) { bidi(cs, us) })
	})
	run(func() {
		bridge(streamCtx, client.AcceptUniStream, up.OpenUniStreamSync, refuseUni, func(cs *quic.ReceiveStream, us *quic.SendStream) {
			run(func() { r.pipe(cs, us, tap, flow.ClientToServer, int64(cs.StreamID())) })
		})
	})
	run(func() {
		bridge(streamCtx, up.AcceptUniStream, client.OpenUniStreamSync, refuseUni, func(us *quic.ReceiveStream, cs *quic.SendStream) {
			run(func() { r.pipe(us, cs, tap, flow.ServerToClient, int64(cs.StreamID())) })
		})
	})
	run(func() { relayDatagrams(streamCtx, client, up) })
	run(func() { relayDatagrams(streamCtx, up, client) })

	var cause error
	select {
	case <-client.Context().Done():
		cause = context.Cause(client.Context())
		closeLike(up, cause)
	case <-up.Context().Done():
		cause = context.Cause(up.Context())
		closeLike(client, cause)
	case <-ctx.Done():
		cause = ctx.Err()
		client.CloseWithError(0, "relay stopping")
		up.CloseWithError(0, "relay stopping")
	}
	cancel()
	wg.Wait()
	r.log.Debug("quicrelay: connection closed", "sni", hello.SNI, "cause", cause)
	tap.Close(flow.CloseInfo{At: time.Now(), Reason: closeReason(cause)})
}

// closeLike closes c the way its peer connection was closed, so an
// application error code (H3_NO_ERROR, …) reaches the other side.
func closeLike(c *quic.Conn, cause error) {
	var appErr *quic.ApplicationError
	if errors.As(cause, &appErr) {
		c.CloseWithError(appErr.ErrorCode, appErr.ErrorMessage)
		return
	}
	c.CloseWithError(0, "")
}

func closeReason(cause error) string {
	var (
		appErr  *quic.ApplicationError
		idleErr *quic.IdleTimeoutError
	)
	switch {
	case errors.As(cause, &appErr):
		// 0x100 is H3_NO_ERROR.
		if appErr.ErrorCode == 0 || appErr.ErrorCode == 0x100 {
			return "eof"
		}
		return "reset"
	case errors.As(cause, &idleErr):
		return "timeout"
	case errors.Is(cause, context.Canceled):
		return "source_closed"
	}
	return "error"
}

// bridge accepts streams on one connection and opens a counterpart for
// each on the other, until accepting fails (the connection is done). A
// stream whose counterpart cannot be opened is refused and bridging stops.
func bridge[A, O any](ctx context.Context, accept func(context.Context) (A, error), open func(context.Context) (O, error), refuse func(A), relay func(A, O)) {
	for {
		a, err := accept(ctx)
		if err != nil {
			return
		}
		o, err := open(ctx)
		if err != nil {
			refuse(a)
			return
		}
		relay(a, o)
	}
}

type recvStream interface {
	Read([]byte) (int, error)
	CancelRead(quic.StreamErrorCode)
}

type sendStream interface {
	Write([]byte) (int, error)
	Close() error
	CancelWrite(quic.StreamErrorCode)
}

// pipe relays one stream direction, teeing into the tap before each write,
// and carries FIN and resets across.
func (r *Relay) pipe(src recvStream, dst sendStream, tap Tap, dir flow.Direction, id int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			// Tap before forwarding (a copy into a queue, never a wait):
			// once forwarded, the peer's answer can reach the other
			// direction's tap first, and the decoder would see a response
			// before its request.
			tap.Chunk(flow.Chunk{Dir: dir, Data: buf[:n], At: time.Now(), StreamID: id})
			if _, werr := dst.Write(buf[:n]); werr != nil {
				// STOP_SENDING from the receiver travels back to the sender.
				var se *quic.StreamError
				if errors.As(werr, &se) && se.Remote {
					src.CancelRead(se.ErrorCode)
				}
				return
			}
		}
		if errors.Is(err, io.EOF) {
			tap.Chunk(flow.Chunk{Dir: dir, Fin: true, At: time.Now(), StreamID: id})
			dst.Close()
			return
		}
		if err != nil {
			// A reset stream is reset on the other hop with the same code. A
			// connection error is left alone: relayConn closes the other
			// connection with the original error, and resetting its streams
			// first (HTTP/3 control streams!) would make the peer close it
			// with an error of its own.
			var se *quic.StreamError
			if errors.As(err, &se) {
				r.st.Count("quicrelay.stream_reset", 1)
				dst.CancelWrite(se.ErrorCode)
			}
			return
		}
	}
}

func relayDatagrams(ctx context.Context, from, to *quic.Conn) {
	if !from.ConnectionState().SupportsDatagrams.Remote || !to.ConnectionState().SupportsDatagrams.Remote {
		return
	}
	for {
		b, err := from.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		to.SendDatagram(b)
	}
}
