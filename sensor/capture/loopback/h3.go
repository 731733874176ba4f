package loopback

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/quicrelay"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/quic-go/quic-go/http3"
)

// startQUIC runs an HTTP/3 server on loopback UDP behind a stream-level
// QUIC relay; clients dial the relay, whose taps produce the flows.
func (s *Server) startQUIC(log *slog.Logger) error {
	upPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("loopback: listen udp: %w", err)
	}
	h3 := &http3.Server{
		Handler:   s.responder,
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{GetCertificate: s.CA.GetCertificate}),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = h3.Serve(upPC)
	}()
	s.closers = append(s.closers, upPC.Close, h3.Close)

	relayPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("loopback: listen udp: %w", err)
	}
	s.Addr = relayPC.LocalAddr().String()
	upAddr := upPC.LocalAddr().String()
	relay, err := quicrelay.New(quicrelay.Config{
		GetCertificate: s.CA.GetCertificate,
		Route: func(h quicrelay.Hello) (quicrelay.Target, error) {
			return quicrelay.Target{Addr: upAddr, TLS: &tls.Config{RootCAs: s.CA.CertPool(), ServerName: h.SNI}}, nil
		},
		OnConn: func(ci quicrelay.ConnInfo) quicrelay.Tap {
			return s.taps.openQUIC(ci)
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = relay.Serve(ctx, relayPC)
	}()
	s.closers = append(s.closers, func() error {
		// Let relayed connections finish closing so their taps see every
		// byte, then stop the relay.
		s.taps.waitQUIC(5 * time.Second)
		cancel()
		return relayPC.Close()
	})
	return nil
}

// quicTap turns one relayed QUIC connection into a flow.
type quicTap struct {
	set  *tapSet
	id   string
	mu   sync.Mutex
	done chan struct{}
	once sync.Once
}

func (ts *tapSet) openQUIC(ci quicrelay.ConnInfo) *quicTap {
	id := "loopback-quic-" + strconv.FormatInt(ts.next.Add(1), 10)
	info := &flow.Info{
		ID:         id,
		Transport:  flow.QUIC,
		Process:    flow.Process{UID: -1},
		RemoteHost: ci.SNI,
		SNI:        ci.SNI,
		ALPN:       ci.ALPN,
		TLS:        true,
		Method:     flow.CaptureTLSBoundary,
		Started:    ci.Started,
	}
	if ua, ok := ci.Client.(*net.UDPAddr); ok {
		info.Local = ua.AddrPort()
	}
	if ua, ok := ci.Upstream.(*net.UDPAddr); ok {
		info.Remote = ua.AddrPort()
		info.RemotePort = ua.AddrPort().Port()
	}
	t := &quicTap{set: ts, id: id, done: make(chan struct{})}
	ts.mu.Lock()
	if ts.quic == nil {
		ts.quic = map[string]*quicTap{}
	}
	ts.quic[id] = t
	ts.mu.Unlock()
	ts.h.Open(info)
	return t
}

// Chunk delivers a stream chunk; the relay calls it from one goroutine per
// stream direction, so deliveries are serialised here.
func (t *quicTap) Chunk(c flow.Chunk) {
	c.Data = append([]byte(nil), c.Data...)
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.done:
		return
	default:
	}
	t.set.h.Data(t.id, c)
}

// Close ends the flow.
func (t *quicTap) Close(ci flow.CloseInfo) {
	t.once.Do(func() {
		t.mu.Lock()
		close(t.done)
		t.set.h.Close(t.id, ci)
		t.mu.Unlock()
		t.set.mu.Lock()
		delete(t.set.quic, t.id)
		t.set.mu.Unlock()
	})
}

// waitQUIC waits until every relayed connection has closed, at most d.
func (ts *tapSet) waitQUIC(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ts.mu.Lock()
		n := len(ts.quic)
		ts.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
