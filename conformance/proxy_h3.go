package conformance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/oisp/oisp-sensor/sensor/cassette"
)

// GoProxyH3Client drives the recording with quic-go's HTTP/3 client
// through the capture proxy's HTTP/3 listener. QUIC cannot go through an
// HTTP proxy, so the client does what a user's hosts-file or DNS override
// does: it dials the proxy's UDP address for every host and names the
// real host in its SNI, trusting the sensor CA. Each connection uses its
// own UDP socket, as separate client processes would. Every status, body
// and the protocol (HTTP/3.0) are checked against the recording.
type GoProxyH3Client struct{}

// DriveProxy performs every interaction in order.
func (GoProxyH3Client) DriveProxy(ctx context.Context, rig *ProxyRig, rec *cassette.Recording) error {
	h3 := rig.Proxy.H3Addr()
	if h3 == nil {
		return errors.New("the proxy rig has no HTTP/3 listener (ProxyOptions.Transport must be h3)")
	}
	relay, err := net.ResolveUDPAddr("udp", h3.String())
	if err != nil {
		return fmt.Errorf("proxy HTTP/3 address: %w", err)
	}
	var (
		mu      sync.Mutex
		closers []func() error
	)
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: rig.CA.CertPool()},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			udp, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, fmt.Errorf("client UDP socket: %w", err)
			}
			qt := &quic.Transport{Conn: udp}
			mu.Lock()
			closers = append(closers, qt.Close, udp.Close)
			mu.Unlock()
			return qt.Dial(ctx, relay, tlsCfg, cfg)
		},
		DisableCompression: true,
	}
	defer func() {
		// Closing the transport sends CONNECTION_CLOSE on every
		// connection, which the proxy relays and its flows then close.
		tr.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range closers {
			c()
		}
	}()
	client := &http.Client{Transport: tr, Timeout: clientTimeout}
	for i, in := range rec.Interactions {
		if err := proxiedInteraction(ctx, client, in, "HTTP/3.0"); err != nil {
			return fmt.Errorf("interaction %d (%s %s): %w", i+1, in.Request.Method, in.Request.URL, err)
		}
	}
	return nil
}
