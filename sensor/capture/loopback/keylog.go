package loopback

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// ClientOptions configure a client transport for a replay server
// (Server.ClientTransport).
type ClientOptions struct {
	// KeyLog receives the client's TLS secrets in the SSLKEYLOGFILE
	// format. Both ends of a TLS connection hold the same secrets, so it
	// decrypts the server's records too.
	KeyLog io.Writer
	// Pcap records the encrypted TCP traffic, for an independent
	// dissector (tshark) to read with KeyLog.
	Pcap *PcapNG
	// Compression lets the transport ask for gzip when a request names no
	// Accept-Encoding and decode a gzip response, as Go's default
	// transport does for the SDKs that use it. Off, bodies arrive as
	// recorded.
	Compression bool
}

// ClientTransport is RoundTripper with options: a transport forced to the
// server's protocol that dials the server whatever host a request names.
func (s *Server) ClientTransport(o ClientOptions) (http.RoundTripper, func(), error) {
	var protos []string
	switch s.Transport {
	case H1:
		protos = []string{"http/1.1"}
	case H2:
		protos = []string{"h2"}
	case H3:
		return s.h3ClientTransport(o)
	default:
		return nil, nil, fmt.Errorf("loopback: unknown transport %q", s.Transport)
	}
	dialer := &net.Dialer{}
	conns := &connSet{}
	dialTLS := func(ctx context.Context, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		raw, err := dialer.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return nil, err
		}
		c := raw
		if o.Pcap != nil {
			if c, err = o.Pcap.Conn(raw); err != nil {
				raw.Close()
				return nil, err
			}
		}
		cfg := s.ClientTLS(host, protos)
		cfg.KeyLogWriter = o.KeyLog
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("loopback: TLS handshake: %w", err)
		}
		if got := tc.ConnectionState().NegotiatedProtocol; got != protos[0] {
			tc.Close()
			return nil, fmt.Errorf("loopback: server negotiated %q, want %q", got, protos[0])
		}
		conns.add(tc)
		return tc, nil
	}
	if s.Transport == H2 {
		tr := &http2.Transport{
			DialTLSContext: func(ctx context.Context, _, addr string, _ *tls.Config) (net.Conn, error) {
				return dialTLS(ctx, addr)
			},
			DisableCompression: !o.Compression,
		}
		return tr, func() { tr.CloseIdleConnections(); conns.closeAll() }, nil
	}
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialTLS(ctx, addr)
		},
		TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableCompression: !o.Compression,
	}
	return tr, func() { tr.CloseIdleConnections(); conns.closeAll() }, nil
}

// connSet remembers the connections a client transport dialed so closing
// the transport closes all of them. CloseIdleConnections alone is not
// enough: x/net/http2 forgets a finished stream asynchronously, so a
// connection whose last response was read to the end may still count as
// busy, stay open, and keep the server waiting for it forever.
type connSet struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (cs *connSet) add(c net.Conn) {
	cs.mu.Lock()
	cs.conns = append(cs.conns, c)
	cs.mu.Unlock()
}

func (cs *connSet) closeAll() {
	cs.mu.Lock()
	conns := cs.conns
	cs.conns = nil
	cs.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

var errNoCapture = errors.New("loopback: no wire capture configured")

// CapturingGoClient is GoClient over ClientTransport: the same requests,
// with the TLS key log and the encrypted traffic recorded.
type CapturingGoClient struct {
	Capture ClientOptions
}

// Drive performs every interaction in order.
func (g CapturingGoClient) Drive(ctx context.Context, srv *Server, rec *cassette.Recording) error {
	if g.Capture.KeyLog == nil && g.Capture.Pcap == nil {
		return errNoCapture
	}
	return driveGo(ctx, srv, rec, g.Capture)
}

// h3ClientTransport is an HTTP/3 client that dials the server's QUIC relay
// whatever host a request names, each connection from its own loopback UDP
// socket (wrapped by the packet capture when asked). Separate sockets keep
// connections to different host names apart in a capture: Wireshark 4.0
// fails to decrypt a second QUIC connection that shares the first one's
// address pair.
func (s *Server) h3ClientTransport(o ClientOptions) (http.RoundTripper, func(), error) {
	relay, err := net.ResolveUDPAddr("udp", s.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("loopback: relay address: %w", err)
	}
	var mu sync.Mutex
	var closers []func() error
	dial := func(ctx context.Context, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("loopback: client UDP socket: %w", err)
		}
		pc := udp
		if o.Pcap != nil {
			if pc, err = o.Pcap.PacketConn(udp); err != nil {
				udp.Close()
				return nil, err
			}
		}
		qt := &quic.Transport{Conn: pc}
		mu.Lock()
		closers = append(closers, qt.Close, udp.Close)
		mu.Unlock()
		return qt.Dial(ctx, relay, tlsCfg, cfg)
	}
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.CA.CertPool(), KeyLogWriter: o.KeyLog},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return dial(ctx, tlsCfg, cfg)
		},
		DisableCompression: !o.Compression,
	}
	closeAll := func() {
		tr.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range closers {
			_ = c()
		}
		closers = nil
	}
	return tr, closeAll, nil
}
