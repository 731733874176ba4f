package loopback

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"

	"golang.org/x/net/http2"
)

func parseURL(raw string) (*url.URL, error) { return url.Parse(raw) }

// RoundTripper returns an HTTP client transport forced to the server's
// protocol that dials the server whatever host a request names, offering
// that host as SNI.
func (s *Server) RoundTripper() (http.RoundTripper, func(), error) {
	dialer := &net.Dialer{}
	switch s.Transport {
	case H2:
		tr := &http2.Transport{
			DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
				host, _, _ := net.SplitHostPort(addr)
				c, err := dialer.DialContext(ctx, "tcp", s.Addr)
				if err != nil {
					return nil, err
				}
				tc := tls.Client(c, s.ClientTLS(host, []string{"h2"}))
				if err := tc.HandshakeContext(ctx); err != nil {
					c.Close()
					return nil, err
				}
				return tc, nil
			},
			DisableCompression: true,
		}
		return tr, tr.CloseIdleConnections, nil
	case H3:
		return s.h3RoundTripper()
	default:
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp", s.Addr)
			},
			TLSClientConfig:    &tls.Config{RootCAs: s.CA.CertPool(), NextProtos: []string{"http/1.1"}},
			ForceAttemptHTTP2:  false,
			TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{},
			DisableCompression: true,
		}
		return tr, tr.CloseIdleConnections, nil
	}
}
