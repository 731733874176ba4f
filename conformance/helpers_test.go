package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/net/http2"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/capture/proxy"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// Helpers shared by the suite's tests: the recordings they serve and the
// checks that show a client's comparison with the recording can fail.

// postRecording is a recording of one POST with a JSON request body,
// answered with status, a response of contentType and body.
func postRecording(url, requestBody string, status int, contentType, body string) *cassette.Recording {
	return single(cassette.Interaction{
		Request: cassette.Request{Method: "POST", URL: url,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(requestBody)},
		Response: cassette.Response{Status: status, Header: http.Header{"Content-Type": {contentType}}, Body: []byte(body)},
	})
}

// chatRecording is an OpenAI chat completion of gpt-4o-mini answered with
// status, contentType and body.
func chatRecording(status int, contentType, body string) *cassette.Recording {
	return postRecording("https://api.openai.com/v1/chat/completions",
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, status, contentType, body)
}

// verdict is one recording served to a client that expects another, and
// whether the client, checking what it receives against what it expects,
// must accept it.
type verdict struct {
	name             string
	served, expected *cassette.Recording
	ok               bool
}

// chatVerdicts are the chat completions every client of the chat API must
// judge: the recorded bytes, a different body, a 500 served for a recorded
// 200, the recorded 500, and a 200 served for a recorded 500.
func chatVerdicts() []verdict {
	const completion = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"%s"},"finish_reason":"stop"}]}`
	right := chatRecording(200, "application/json", fmt.Sprintf(completion, "hello"))
	wrongText := chatRecording(200, "application/json", fmt.Sprintf(completion, "HELLO"))
	failure := chatRecording(500, "application/json", `{"error":{"message":"boom","type":"server_error"}}`)
	return []verdict{
		{"same bytes", right, right, true},
		{"a different response body", wrongText, right, false},
		{"a 500 served for a recorded 200", failure, right, false},
		{"recorded failure", failure, failure, true},
		{"a 200 served for a recorded 500", right, failure, false},
	}
}

// checkVerdicts drives each pair, one subtest each, and fails where the
// client rejects what it must accept or accepts what it must reject.
func checkVerdicts(t *testing.T, vs []verdict, drive func(t *testing.T, served, expected *cassette.Recording) error) {
	t.Helper()
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			err := drive(t, v.served, v.expected)
			if v.ok && err != nil {
				t.Errorf("want success: %v", err)
			}
			if !v.ok && err == nil {
				t.Error("passed")
			}
		})
	}
}

// against drives drv over tr with driveAgainst, for checkVerdicts.
func against(tr loopback.Transport, drv loopback.Driver) func(*testing.T, *cassette.Recording, *cassette.Recording) error {
	return func(t *testing.T, served, expected *cassette.Recording) error {
		return driveAgainst(t, tr, drv, served, expected)
	}
}

// appliedAgainst is against for a driver that says which recordings it
// can drive: the recording it expects must be one.
func appliedAgainst(tr loopback.Transport, drv sdkDriver) func(*testing.T, *cassette.Recording, *cassette.Recording) error {
	return func(t *testing.T, served, expected *cassette.Recording) error {
		if !drv.Applies(expected) {
			t.Fatal("driver does not apply to the recording it expects")
		}
		return driveAgainst(t, tr, drv, served, expected)
	}
}

// startTLSUpstream serves h over TLS (HTTP/1.1 and h2) on a loopback port
// until the test ends, with certificates for any name from a CA of its own
// called caName. It returns that CA and the address.
func startTLSUpstream(tb testing.TB, caName string, h http.Handler) (*ca.CA, string) {
	tb.Helper()
	upCA, err := ca.Create(tb.TempDir(), ca.Options{CommonName: caName})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{GetCertificate: upCA.GetCertificate},
		ErrorLog: log.New(io.Discard, "", 0)}
	http2.ConfigureServer(srv, &http2.Server{})
	go srv.ServeTLS(ln, "", "")
	tb.Cleanup(func() { srv.Close() })
	return upCA, ln.Addr().String()
}

// testProxy is the capture proxy in front of a test upstream, with a
// sensor CA of its own.
type testProxy struct {
	sensorCA *ca.CA
	px       *proxy.Proxy
	url      string // the proxy's, for HTTPS_PROXY
	stop     context.CancelFunc
	done     chan error
}

// startTestProxy runs the capture proxy of cfg on a loopback port, handing
// its flows to h, until the test ends or shutdown. The proxy gets a new
// sensor CA, no process lookup and a discarding logger.
func startTestProxy(tb testing.TB, cfg proxy.Config, h flow.Handler) *testProxy {
	tb.Helper()
	p := &testProxy{done: make(chan error, 1)}
	var err error
	if p.sensorCA, err = ca.Create(tb.TempDir(), ca.Options{}); err != nil {
		tb.Fatal(err)
	}
	cfg.Addr, cfg.CA, cfg.NoProcessLookup, cfg.Logger = "127.0.0.1:0", p.sensorCA, true, slog.New(slog.DiscardHandler)
	if p.px, err = proxy.New(cfg); err != nil {
		tb.Fatal(err)
	}
	p.url = "http://" + p.px.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go func() { p.done <- p.px.Run(ctx, h) }()
	tb.Cleanup(p.shutdown)
	return p
}

// shutdown stops the proxy and waits for it; it may be called again.
func (p *testProxy) shutdown() {
	p.stop()
	<-p.done
	p.done <- nil
}

// h1Transport is an HTTP/1.1-only client transport trusting roots, through
// the proxy at proxyURL unless it is "".
func h1Transport(proxyURL string, roots *x509.CertPool) *http.Transport {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	if proxyURL != "" {
		pu, _ := url.Parse(proxyURL)
		tr.Proxy = http.ProxyURL(pu)
	}
	return tr
}
