package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// TestHTTP3Listener: an HTTP/3 client pointed at the proxy's UDP listener
// reaches the real HTTP/3 server named by its SNI, and the exchange arrives
// as a QUIC flow with per-stream chunks. A host that is not intercepted is
// refused (clients then fall back to TCP).
func TestHTTP3Listener(t *testing.T) {
	const host = "api.h3.test"
	w := newWorld(t)
	upPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upPC.Close()
	leaf, _ := w.upstreamCA.Leaf(host)
	srv := &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{*leaf}}),
		Handler:   http.HandlerFunc(echoChat),
	}
	go srv.Serve(upPC)
	defer srv.Close()
	w.hosts[host] = upPC.LocalAddr().String()
	w.start(t, Config{H3Addr: "127.0.0.1:0", Intercept: func(h string, port int) bool { return h == host && port == 443 }})
	if w.proxy.H3Addr() == nil {
		t.Fatal("no HTTP/3 listener")
	}
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: w.sensorCA.CertPool()},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, w.proxy.H3Addr().String(), tlsCfg, cfg)
		},
	}
	defer tr.Close()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Post("https://"+host+"/v1/responses", "application/json", strings.NewReader(`{"input":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/3.0" || !strings.Contains(string(body), `"got":"{\"input\":\"hi\"}"`) {
		t.Fatalf("%s %q", resp.Proto, body)
	}
	// Wait for the control streams before hanging up (see quicrelay tests).
	w.rec.WaitFor(t, "request and control streams", func() bool {
		for _, id := range w.rec.Order {
			var c2, s3 int
			for _, ch := range w.rec.Chunks[id] {
				if ch.Dir == flow.ClientToServer && ch.StreamID == 2 {
					c2 += len(ch.Data)
				}
				if ch.Dir == flow.ServerToClient && ch.StreamID == 3 {
					s3 += len(ch.Data)
				}
			}
			return c2 > 2 && s3 > 2
		}
		return false
	})
	tr.Close()
	id := w.rec.WaitClosed(t, 1)[0]
	info := w.rec.Infos[id]
	if info.Transport != flow.QUIC || info.ALPN != "h3" || info.SNI != host || info.RemotePort != 443 ||
		!info.TLS || info.Method != flow.CaptureMITMProxy || info.Remote.String() != w.hosts[host] {
		t.Errorf("flow info %+v", info)
	}
	req := w.rec.Bytes(id, flow.ClientToServer, 0)
	if len(req) < 2 || req[0] != 0x01 || !bytes.Contains(req, []byte(`{"input":"hi"}`)) {
		t.Errorf("request stream %x", req)
	}
	if !w.rec.Fin(id, flow.ClientToServer) || !w.rec.Fin(id, flow.ServerToClient) {
		t.Error("FIN missing on the request stream")
	}

	// Not intercepted: the handshake is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = quic.DialAddr(ctx, w.proxy.H3Addr().String(),
		&tls.Config{ServerName: "other.test", RootCAs: w.sensorCA.CertPool(), NextProtos: []string{"h3"}}, nil)
	if err == nil {
		t.Fatal("non-intercepted host relayed over QUIC")
	}
	if n := w.st.Get("quicrelay.refused"); n != 1 {
		t.Errorf("quicrelay.refused = %d", n)
	}
}

// TestHTTP3ListenerWithoutSNI: a client pointed at the listener by IP
// address sends no SNI; with H3DefaultHost set it is relayed to that host
// and captured under it.
func TestHTTP3ListenerWithoutSNI(t *testing.T) {
	const host = "127.0.0.1"
	w := newWorld(t)
	upPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upPC.Close()
	srv := &http3.Server{
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{GetCertificate: w.upstreamCA.GetCertificate}),
		Handler:   http.HandlerFunc(echoChat),
	}
	go srv.Serve(upPC)
	defer srv.Close()
	w.hosts[host] = upPC.LocalAddr().String()
	w.start(t, Config{H3Addr: "127.0.0.1:0", H3DefaultHost: host, Logger: quiet(), NoProcessLookup: true,
		Intercept: func(h string, port int) bool { return h == host && port == 443 }})
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: w.sensorCA.CertPool()},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			if tlsCfg.ServerName != host {
				t.Errorf("client TLS ServerName %q", tlsCfg.ServerName)
			}
			return quic.DialAddr(ctx, w.proxy.H3Addr().String(), tlsCfg, cfg)
		},
	}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Post("https://"+host+"/v1/responses", "application/json", strings.NewReader(`{"input":"ip"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/3.0" || !strings.Contains(string(body), `"got":"{\"input\":\"ip\"}"`) {
		t.Fatalf("%s %q", resp.Proto, body)
	}
	tr.Close()
	id := w.rec.WaitClosed(t, 1)[0]
	info := w.rec.Infos[id]
	if info.RemoteHost != host || info.SNI != "" || info.ALPN != "h3" || info.Remote.String() != w.hosts[host] {
		t.Errorf("flow info %+v", info)
	}
	if !bytes.Contains(w.rec.Bytes(id, flow.ClientToServer, 0), []byte(`{"input":"ip"}`)) {
		t.Error("request body not captured")
	}
}
