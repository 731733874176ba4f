package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// This file holds the real clients the suite drives a replay server with,
// each a loopback.Driver: curl over HTTP/1.1 and HTTP/2; the official Go
// SDKs are in clients_sdk*.go (openai-go, anthropic-sdk-go, genai, ollama,
// bedrockruntime), clients_vertex*.go (genai's Vertex AI backend, Claude on
// Vertex AI through anthropic-sdk-go's vertex option),
// clients_gapic.go (the generated Gemini REST client), clients_cohere.go
// and clients_multi.go (each interaction through its own SDK). Each sends
// every recorded request and checks what it received against the
// recording, so a path fails when the replayed bytes are not what a real
// client accepts.

// discardFlows is a flow.Handler that drops everything: a replay server run
// only for what its client sees.
type discardFlows struct{}

func (discardFlows) Open(*flow.Info)              {}
func (discardFlows) Data(string, flow.Chunk)      {}
func (discardFlows) Close(string, flow.CloseInfo) {}

// clientTimeout bounds one client run against the loopback server.
const clientTimeout = 2 * time.Minute

// connectionHeaders are request headers a client must not copy from a
// recording: they describe the recorded connection, not the message, or the
// client sets them itself.
var connectionHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Content-Length": true, "Host": true,
	"Http2-Settings": true, "Expect": true,
}

// recordedHeaders returns a recorded request's headers without connection
// headers and pseudo-headers, in canonical form.
func recordedHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if connectionHeaders[ck] || strings.HasPrefix(k, ":") {
			continue
		}
		out[ck] = append(out[ck], vs...)
	}
	return out
}

// httpsURL returns a recorded URL with https: the replay server speaks TLS
// even for a recorded plain-http endpoint (a local Ollama).
func httpsURL(raw string) string {
	if rest, ok := strings.CutPrefix(raw, "http://"); ok {
		return "https://" + rest
	}
	return raw
}

// Curl drives the recording with the curl command line tool, one transfer
// per interaction in a single invocation (so connections are reused as a
// script would reuse them), with the recorded host name for SNI and Host
// and the connection redirected to the loopback server.
type Curl struct {
	// HTTP2 uses --http2 (ALPN h2); otherwise --http1.1.
	HTTP2 bool
	// Proxy, when set, sends every transfer through this proxy URL
	// (--proxy) trusting ProxyCAFile, instead of connecting straight to
	// the server.
	Proxy, ProxyCAFile string
}

// CurlMissing returns a reason to skip when curl is not installed.
func CurlMissing() string {
	if _, err := exec.LookPath("curl"); err != nil {
		return "curl is not installed"
	}
	return ""
}

// Drive runs curl and checks each transfer's status, protocol version and
// received body bytes against the recording.
func (c Curl) Drive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording) error {
	return c.drive(ctx, srv, rec, func(ctx context.Context, argv []string, dir string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("curl: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return stdout.Bytes(), nil
	})
}

// drive writes one curl config for every interaction, has run execute curl
// with it (in dir, where the response bodies land), and checks the
// transfers curl reports.
func (c Curl) drive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording, run func(ctx context.Context, argv []string, dir string) ([]byte, error)) error {
	bin, err := exec.LookPath("curl")
	if err != nil {
		return fmt.Errorf("curl: %w", err)
	}
	if len(rec.Interactions) == 0 {
		return nil
	}
	dir, err := os.MkdirTemp("", "oisp-curl-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_, port, err := net.SplitHostPort(srv.Addr)
	if err != nil {
		return err
	}
	wantVersion := "1.1"
	if c.HTTP2 {
		wantVersion = "2"
	}
	// The config file keeps header values (placeholder credentials
	// included) out of the process arguments.
	var cfg bytes.Buffer
	for i, in := range rec.Interactions {
		if i > 0 {
			cfg.WriteString("next\n")
		}
		if err := c.writeTransfer(&cfg, dir, i, port, srv.CAFile, in); err != nil {
			return err
		}
	}
	cfgPath := filepath.Join(dir, "curl.config")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	out, err := run(ctx, []string{bin, "--config", cfgPath}, dir)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(rec.Interactions) {
		return fmt.Errorf("curl reported %d transfers, want %d:\n%s", len(lines), len(rec.Interactions), out)
	}
	var errs []error
	for i, in := range rec.Interactions {
		if err := checkCurlTransfer(lines[i], wantVersion, filepath.Join(dir, "response-"+strconv.Itoa(i)), in); err != nil {
			errs = append(errs, fmt.Errorf("interaction %d (%s %s): %w", i+1, in.Request.Method, in.Request.URL, err))
		}
	}
	return errors.Join(errs...)
}

func (c Curl) writeTransfer(cfg *bytes.Buffer, dir string, i int, port, caFile string, in cassette.Interaction) error {
	req := in.Request
	opt := func(name, value string) { fmt.Fprintf(cfg, "%s = %s\n", name, curlQuote(value)) }
	flag := func(name string) { fmt.Fprintf(cfg, "%s\n", name) }
	flag("silent")
	flag("show-error")
	if c.HTTP2 {
		flag("http2")
	} else {
		flag("http1.1")
	}
	if c.Proxy != "" {
		opt("proxy", c.Proxy)
		opt("cacert", c.ProxyCAFile)
	} else {
		opt("cacert", caFile)
		// Any recorded host and port goes to the loopback server; curl
		// still sends the recorded host as SNI and :authority/Host.
		opt("connect-to", "::127.0.0.1:"+port)
	}
	opt("max-time", strconv.Itoa(int(clientTimeout/time.Second)))
	opt("url", httpsURL(req.URL))
	opt("output", filepath.Join(dir, "response-"+strconv.Itoa(i)))
	opt("write-out", `%{http_code} %{http_version}\n`)
	switch req.Method {
	case http.MethodHead:
		flag("head")
	case http.MethodGet:
	default:
		opt("request", req.Method)
	}
	h := recordedHeaders(req.Header)
	for k, vs := range h {
		for _, v := range vs {
			if v == "" {
				opt("header", k+";") // curl's syntax for an empty value
			} else {
				opt("header", k+": "+v)
			}
		}
	}
	// Suppress what curl would add on its own that the recorded client did
	// not send.
	for _, k := range []string{"User-Agent", "Accept"} {
		if _, ok := h[k]; !ok {
			opt("header", k+":")
		}
	}
	opt("header", "Expect:")
	if len(req.Body) > 0 {
		bodyPath := filepath.Join(dir, "request-"+strconv.Itoa(i))
		if err := os.WriteFile(bodyPath, req.Body, 0o600); err != nil {
			return err
		}
		opt("data-binary", "@"+bodyPath)
		if _, ok := h["Content-Type"]; !ok {
			opt("header", "Content-Type:")
		}
	}
	return nil
}

func checkCurlTransfer(line, wantVersion, bodyPath string, in cassette.Interaction) error {
	f := strings.Fields(line)
	if len(f) != 2 {
		return fmt.Errorf("unexpected curl write-out %q", line)
	}
	want := in.Response.Status
	if want == 0 {
		want = http.StatusOK
	}
	if f[0] != strconv.Itoa(want) {
		return fmt.Errorf("curl got status %s, recorded %d", f[0], want)
	}
	if f[1] != wantVersion {
		return fmt.Errorf("curl spoke HTTP/%s, want HTTP/%s", f[1], wantVersion)
	}
	if in.Request.Method == http.MethodHead {
		return nil
	}
	got, err := os.ReadFile(bodyPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !bytes.Equal(got, in.Response.Body) {
		return fmt.Errorf("curl received %d body bytes that differ from the recorded %d (first difference at %d)",
			len(got), len(in.Response.Body), firstDifference(got, in.Response.Body))
	}
	return nil
}

func firstDifference(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// curlQuote quotes a value for a curl config file.
func curlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\v':
			b.WriteString(`\v`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
