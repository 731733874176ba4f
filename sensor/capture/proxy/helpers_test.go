package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/flow/flowtest"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// recorder keeps every flow the proxy hands over.
type recorder = flowtest.Recorder

func newRecorder() *recorder { return flowtest.NewRecorder() }

// world is an upstream CA, a sensor CA, named TLS upstreams and a proxy.
type world struct {
	upstreamCA *ca.CA // trusted by the proxy for upstream servers
	sensorCA   *ca.CA // forged leaves; trusted by clients
	hosts      map[string]string
	proxy      *Proxy
	rec        *recorder
	handler    flow.Handler // when set, used instead of rec
	st         *stats.Counters
	stop       context.CancelFunc
	done       chan error
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{hosts: map[string]string{}, rec: newRecorder(), st: &stats.Counters{}}
	var err error
	if w.upstreamCA, err = ca.Create(t.TempDir(), ca.Options{}); err != nil {
		t.Fatal(err)
	}
	if w.sensorCA, err = ca.Create(t.TempDir(), ca.Options{}); err != nil {
		t.Fatal(err)
	}
	return w
}

// serveTLS starts an upstream HTTPS server for host with h (HTTP/1.1 and
// h2) and registers it for the proxy's resolver.
func (w *world) serveTLS(t testing.TB, host string, h http.Handler) {
	t.Helper()
	leaf, err := w.upstreamCA.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{*leaf}},
		ErrorLog: log.New(io.Discard, "", 0)}
	http2.ConfigureServer(srv, &http2.Server{})
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	w.hosts[host] = ln.Addr().String()
}

// quiet returns a logger that drops everything below Error, for benchmarks.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (w *world) resolve(host string, port int) string {
	if a, ok := w.hosts[host]; ok {
		return a
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// start runs the proxy, intercepting the hosts for which intercept is true.
func (w *world) start(t testing.TB, cfg Config) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener = ln
	cfg.CA = w.sensorCA
	cfg.UpstreamRoots = w.upstreamCA.CertPool()
	if cfg.Resolve == nil {
		cfg.Resolve = w.resolve
	}
	cfg.Stats = w.st
	if cfg.Intercept == nil {
		cfg.Intercept = func(string, int) bool { return true }
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.proxy = p
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	w.done = make(chan error, 1)
	var h flow.Handler = w.rec
	if w.handler != nil {
		h = w.handler
	}
	go func() { w.done <- p.Run(ctx, h) }()
	t.Cleanup(w.shutdown)
}

func (w *world) shutdown() {
	if w.stop == nil {
		return
	}
	w.stop()
	<-w.done
	w.stop = nil
}

func (w *world) proxyURL() *url.URL {
	return &url.URL{Scheme: "http", Host: w.proxy.Addr().String()}
}

// client returns an http.Client using the proxy; proto is "http/1.1" or
// "h2".
func (w *world) client(proto string, keepAlive bool) *http.Client {
	tr := &http.Transport{
		Proxy:             http.ProxyURL(w.proxyURL()),
		TLSClientConfig:   &tls.Config{RootCAs: w.sensorCA.CertPool()},
		DisableKeepAlives: !keepAlive,
	}
	if proto == "h2" {
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// directClient reaches the upstream servers without the proxy.
func (w *world) directClient(proto string, keepAlive bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: w.upstreamCA.CertPool()},
		DisableKeepAlives: !keepAlive,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(port)
			var d net.Dialer
			return d.DialContext(ctx, network, w.resolve(host, p))
		},
	}
	if proto == "h2" {
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}
