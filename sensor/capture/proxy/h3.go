package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/capture/quicrelay"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// h3Listener relays HTTP/3 (QUIC) for intercepted hosts. QUIC cannot go
// through an HTTP proxy, so clients reach it by resolving the host to this
// listener (hosts file, DNS override, curl --connect-to); the SNI names
// the real server. Connections for hosts that are not intercepted are
// refused, which makes clients fall back to TCP.
type h3Listener struct {
	p  *Proxy
	pc net.PacketConn
}

func newH3Listener(p *Proxy, addr string) (*h3Listener, error) {
	if p.cfg.CA == nil {
		return nil, errors.New("proxy: the HTTP/3 listener needs a CA")
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: HTTP/3 listener on %s: %w", addr, err)
	}
	return &h3Listener{p: p, pc: pc}, nil
}

func (l *h3Listener) addr() net.Addr { return l.pc.LocalAddr() }

func (l *h3Listener) close() { l.pc.Close() }

// host is the server a QUIC connection is for: its SNI, or the configured
// default for clients that send none.
func (l *h3Listener) host(hello quicrelay.Hello) string {
	if hello.SNI != "" {
		return hello.SNI
	}
	return strings.ToLower(l.p.cfg.H3DefaultHost)
}

func (l *h3Listener) serve(ctx context.Context, h flow.Handler) {
	p := l.p
	port := p.cfg.H3UpstreamPort
	relay, err := quicrelay.New(quicrelay.Config{
		GetCertificate: p.cfg.CA.GetCertificate,
		DialTimeout:    p.cfg.DialTimeout,
		Logger:         p.cfg.Logger,
		Stats:          p.st,
		Route: func(hello quicrelay.Hello) (quicrelay.Target, error) {
			host := l.host(hello)
			if host == "" {
				return quicrelay.Target{}, errors.New("no SNI: cannot tell which server is meant")
			}
			if p.cfg.Intercept == nil || !p.cfg.Intercept(host, port) {
				return quicrelay.Target{}, fmt.Errorf("%s is not an intercepted host", host)
			}
			addr := net.JoinHostPort(host, strconv.Itoa(port))
			if p.cfg.Resolve != nil {
				addr = p.cfg.Resolve(host, port)
			}
			return quicrelay.Target{Addr: addr, TLS: p.upstreamTLS(host, nil, "quic:"+addr)}, nil
		},
		OnConn: func(ci quicrelay.ConnInfo) quicrelay.Tap {
			info := &flow.Info{
				ID:         "px" + strconv.FormatUint(p.flowSeq.Add(1), 10),
				Transport:  flow.QUIC,
				RemoteHost: l.host(ci.Hello),
				RemotePort: uint16(port),
				SNI:        ci.SNI,
				ALPN:       ci.ALPN,
				TLS:        true,
				Method:     flow.CaptureMITMProxy,
				Started:    ci.Started,
				Process:    flow.Process{UID: -1},
			}
			if ci.Client != nil {
				info.Local = addrPort(ci.Client)
			}
			if ci.Upstream != nil {
				info.Remote = addrPort(ci.Upstream)
			}
			p.st.Count("proxy.flows", 1)
			var attribute func(*flow.Info)
			if !p.cfg.NoProcessLookup {
				attribute = func(info *flow.Info) {
					if pr, ok := p.procs.lookup("udp", info.Local, addrPort(l.addr())); ok {
						info.Process = pr
						p.st.Count("proxy.process_attributed", 1)
					}
				}
			}
			return p.newTap(h, info, p.log, attribute)
		},
	})
	if err != nil {
		p.log.Error("proxy: HTTP/3 relay", "err", err)
		return
	}
	p.log.Info("capture proxy HTTP/3 relay listening", "addr", l.addr().String())
	if err := relay.Serve(ctx, l.pc); err != nil && ctx.Err() == nil {
		p.log.Error("proxy: HTTP/3 relay stopped", "err", err)
	}
}
