package conformance

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/capture/proxy"
	"github.com/oisp/oisp-sensor/sensor/capture/socket"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
)

// This file holds the capture-proxy paths: the real-wire replay server is
// the upstream "provider", the capture proxy (package proxy) sits in front
// of it, and real clients reach the provider only through the proxy, with
// the standard proxy settings and the sensor's CA, as a user's programs do
// under `oisp-sensor record --proxy`. The proxy's flows go into a session
// directly (in-process) or over the extension socket (proxy → socket.Client
// → a real Unix socket → socket.Server → session), which is
// `oisp-sensor proxy --emit` feeding `oisp-sensor record`.

// ProxyOptions configure a ProxyRig.
type ProxyOptions struct {
	// Transport is the replay server's protocol (h1 or h2); clients get
	// what it negotiates through the proxy's ALPN mirroring. With h3 the
	// proxy also opens its HTTP/3 (QUIC) listener, which relays to the
	// replay server's QUIC address.
	Transport loopback.Transport
	// ViaSocket sends the proxy's flows over the extension socket.
	ViaSocket bool
	// Handler, when set, receives the proxy's flows instead of a session
	// (benchmarks that measure the proxy alone).
	Handler flow.Handler
	// QueueBytes bounds the proxy's per-flow queue (0: the default).
	QueueBytes int
	Logger     *slog.Logger
}

// ProxyRig is a replay server behind a running capture proxy whose flows
// become events.
type ProxyRig struct {
	Upstream *loopback.Server
	// CA is the sensor's CA, which clients must trust; CAFile is its PEM.
	CA     *ca.CA
	CAFile string
	// URL is the proxy URL clients are given (HTTPS_PROXY).
	URL     string
	Proxy   *proxy.Proxy
	Session *session.Session
	// Client is the extension-socket client (ViaSocket only).
	Client *socket.Client

	events   *sink.Memory
	tmp      string
	stopPx   context.CancelFunc
	pxDone   chan error
	stopRest func() error
}

// StartProxyRig serves rec from a replay server and starts a capture proxy
// in front of it. The proxy decrypts the provider registry's hosts and the
// recording's own hosts (what --intercept-host does for a user), and
// connects every intercepted host to the replay server.
func StartProxyRig(rec *cassette.Recording, opt ProxyOptions) (*ProxyRig, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Transport == "" {
		opt.Transport = loopback.H2
	}
	up, err := loopback.Start(rec, opt.Transport, discardFlows{}, opt.Logger)
	if err != nil {
		return nil, err
	}
	r := &ProxyRig{Upstream: up, events: &sink.Memory{}}
	ok := false
	defer func() {
		if !ok {
			r.abort()
		}
	}()
	// The socket path must fit sun_path (104 bytes on macOS).
	if r.tmp, err = os.MkdirTemp("", "oisp-px-"); err != nil {
		return nil, err
	}
	if r.CA, err = ca.Create(filepath.Join(r.tmp, "ca"), ca.Options{CommonName: "oisp-sensor conformance CA"}); err != nil {
		return nil, err
	}
	r.CAFile = r.CA.CertPath()
	if r.Session, err = session.New(session.Options{Out: r.events, Logger: opt.Logger}); err != nil {
		return nil, err
	}
	recorded := map[string]bool{}
	for _, in := range rec.Interactions {
		if u, err := url.Parse(in.Request.URL); err == nil {
			recorded[strings.ToLower(u.Hostname())] = true
		}
	}
	reg := r.Session.Registry
	var h3Addr, h3Default string
	if opt.Transport == loopback.H3 {
		h3Addr = "127.0.0.1:0"
		// A client that dials an IP literal sends no SNI; the listener
		// relays such connections to the recording's IP-literal host
		// (what a user pointing a client at the listener by address
		// configures).
		for host := range recorded {
			if _, err := netip.ParseAddr(host); err == nil && (h3Default == "" || host < h3Default) {
				h3Default = host
			}
		}
	}
	r.Proxy, err = proxy.New(proxy.Config{
		Addr:            "127.0.0.1:0",
		H3Addr:          h3Addr,
		H3DefaultHost:   h3Default,
		CA:              r.CA,
		Intercept:       func(host string, port int) bool { return reg.Intercept(host, port) || recorded[host] },
		UpstreamRoots:   up.CA.CertPool(),
		Resolve:         func(string, int) string { return up.Addr },
		QueueBytes:      opt.QueueBytes,
		NoProcessLookup: true,
		Stats:           r.Session.Stats,
		Logger:          opt.Logger,
	})
	if err != nil {
		return nil, err
	}
	r.URL = "http://" + r.Proxy.Addr().String()

	var h flow.Handler = r.Session.Pipeline
	if opt.Handler != nil {
		h = opt.Handler
		r.stopRest = func() error { return nil }
	} else if opt.ViaSocket {
		if h, err = r.startSocket(opt.Logger); err != nil {
			return nil, err
		}
	} else {
		r.stopRest = func() error {
			r.Session.Pipeline.Flush(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
			return nil
		}
	}
	pctx, cancel := context.WithCancel(context.Background())
	r.stopPx = cancel
	r.pxDone = make(chan error, 1)
	go func() { r.pxDone <- r.Proxy.Run(pctx, h) }()
	ok = true
	return r, nil
}

// startSocket runs socket.Server → session and returns the socket.Client
// the proxy hands its flows to.
func (r *ProxyRig) startSocket(log *slog.Logger) (flow.Handler, error) {
	path := filepath.Join(r.tmp, "s.sock")
	srv, err := socket.Listen(socket.ServerConfig{Path: path, Stats: r.Session.Stats, Logger: log})
	if err != nil {
		return nil, err
	}
	sctx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- r.Session.Run(sctx, srv) }()
	r.Client = socket.NewClient(socket.ClientConfig{Path: path, Name: "conformance proxy", Logger: log})
	cctx, stopClient := context.WithCancel(context.Background())
	clientDone := make(chan error, 1)
	go func() { clientDone <- r.Client.Run(cctx) }()
	r.stopRest = func() error {
		// Everything the proxy handed over is written to the socket, and
		// then read and closed by the server, before anything stops.
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := r.Client.Flush(fctx)
		if err == nil {
			err = r.waitClosed(fctx)
		}
		stopClient()
		<-clientDone
		stopSrv()
		return errors.Join(err, <-srvDone)
	}
	return r.Client, nil
}

// waitClosed waits until the session has closed every flow the proxy
// made.
func (r *ProxyRig) waitClosed(ctx context.Context) error {
	st := r.Session.Stats
	for {
		made := st.Get("proxy.flows")
		if st.Get("flows.closed") >= made && st.Get("flows.opened") >= made {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the sensor closed %d of the proxy's %d flows", st.Get("flows.closed"), made)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Stop stops the proxy (its open flows close after their queued bytes are
// delivered), waits for every flow to reach the session, and returns the
// events.
func (r *ProxyRig) Stop() ([]*oisp.Event, error) {
	r.stopPx()
	err := <-r.pxDone
	err = errors.Join(err, r.stopRest())
	r.Upstream.Close()
	os.RemoveAll(r.tmp)
	return r.events.Events(), err
}

func (r *ProxyRig) abort() {
	if r.Proxy != nil && r.stopPx == nil {
		// Not running: New's listener is closed by a Run that ends at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r.Proxy.Run(ctx, discardFlows{})
	}
	r.Upstream.Close()
	if r.tmp != "" {
		os.RemoveAll(r.tmp)
	}
}

// ProxyDriver performs a recording's requests through a rig's proxy.
type ProxyDriver interface {
	DriveProxy(ctx context.Context, rig *ProxyRig, rec *cassette.Recording) error
}

// GoProxyClient drives the recording with Go's net/http client configured
// as HTTPS_PROXY would configure it (Transport.Proxy) and trusting the
// sensor CA; it checks every status and body against the recording, so a
// proxy that changes a byte fails.
type GoProxyClient struct {
	// HTTP2 lets the client offer h2 (ALPN h2, http/1.1), as Go's default
	// transport does; otherwise it offers only http/1.1.
	HTTP2 bool
}

// Transport returns the client transport for rig.
func (c GoProxyClient) Transport(rig *ProxyRig) *http.Transport {
	pu, _ := url.Parse(rig.URL)
	tr := &http.Transport{
		Proxy:               http.ProxyURL(pu),
		TLSClientConfig:     &tls.Config{RootCAs: rig.CA.CertPool()},
		ForceAttemptHTTP2:   c.HTTP2,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
	}
	if !c.HTTP2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return tr
}

// DriveProxy performs every interaction in order.
func (c GoProxyClient) DriveProxy(ctx context.Context, rig *ProxyRig, rec *cassette.Recording) error {
	tr := c.Transport(rig)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: clientTimeout}
	wantProto := "HTTP/1.1"
	if c.HTTP2 && rig.Upstream.Transport == loopback.H2 {
		wantProto = "HTTP/2.0"
	}
	for i, in := range rec.Interactions {
		if err := proxiedInteraction(ctx, client, in, wantProto); err != nil {
			return fmt.Errorf("interaction %d (%s %s): %w", i+1, in.Request.Method, in.Request.URL, err)
		}
	}
	return nil
}

func proxiedInteraction(ctx context.Context, client *http.Client, in cassette.Interaction, wantProto string) error {
	var body io.Reader
	if len(in.Request.Body) > 0 {
		body = bytes.NewReader(in.Request.Body)
	}
	req, err := http.NewRequestWithContext(ctx, in.Request.Method, httpsURL(in.Request.URL), body)
	if err != nil {
		return err
	}
	req.Header = recordedHeaders(in.Request.Header)
	if req.Header.Get("Accept-Encoding") == "" {
		// The recorded exchange decides the encoding, not Go's transport.
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the response through the proxy: %w", err)
	}
	want := in.Response.Status
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		return fmt.Errorf("status %d through the proxy, recorded %d", resp.StatusCode, want)
	}
	if resp.Proto != wantProto {
		return fmt.Errorf("client spoke %s through the proxy, want %s", resp.Proto, wantProto)
	}
	if in.Request.Method != http.MethodHead && !bytes.Equal(got, in.Response.Body) {
		return fmt.Errorf("received %d body bytes that differ from the recorded %d (first difference at %d)",
			len(got), len(in.Response.Body), firstDifference(got, in.Response.Body))
	}
	return nil
}

// CurlProxy drives the recording with curl --proxy and --cacert (the
// sensor CA), one invocation for the whole recording.
type CurlProxy struct{ HTTP2 bool }

// DriveProxy runs curl through the rig's proxy.
func (c CurlProxy) DriveProxy(ctx context.Context, rig *ProxyRig, rec *cassette.Recording) error {
	return Curl{HTTP2: c.HTTP2, Proxy: rig.URL, ProxyCAFile: rig.CAFile}.Drive(ctx, rig.Upstream, rec)
}

// SDKProxy drives the recording through an official Go SDK (openai-go,
// anthropic-sdk-go) whose HTTP client is Go's default transport
// configuration with a proxy and the sensor CA.
type SDKProxy struct {
	Anthropic bool
}

// Applies reports whether the SDK can re-issue every request of rec.
func (s SDKProxy) Applies(rec *cassette.Recording) bool {
	if s.Anthropic {
		return AnthropicSDK{}.Applies(rec)
	}
	return OpenAISDK{}.Applies(rec)
}

// DriveProxy re-issues every interaction through the SDK.
func (s SDKProxy) DriveProxy(ctx context.Context, rig *ProxyRig, rec *cassette.Recording) error {
	pu, _ := url.Parse(rig.URL)
	tr := &http.Transport{
		Proxy:             http.ProxyURL(pu),
		TLSClientConfig:   &tls.Config{RootCAs: rig.CA.CertPool()},
		ForceAttemptHTTP2: true,
		DialContext:       (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	}
	defer tr.CloseIdleConnections()
	eps := openAIEndpoints
	if s.Anthropic {
		eps = anthropicEndpoints
	}
	return sdkDriveClient(ctx, &http.Client{Transport: tr, Timeout: clientTimeout}, rec, eps)
}

// RunThroughProxy replays rec through a proxy rig with drv and returns the
// events.
func RunThroughProxy(ctx context.Context, rec *cassette.Recording, opt ProxyOptions, drv ProxyDriver) ([]*oisp.Event, error) {
	rig, err := StartProxyRig(rec, opt)
	if err != nil {
		return nil, err
	}
	derr := drv.DriveProxy(ctx, rig, rec)
	evs, serr := rig.Stop()
	if derr != nil {
		return nil, derr
	}
	return evs, serr
}
