package otlp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor UseCompressor names
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// transport sends one serialised ExportLogsServiceRequest,
// ExportTraceServiceRequest or ExportMetricsServiceRequest, as k says.
type transport interface {
	// export returns the records (spans, data points) the collector
	// rejected in a partial success; an error is a *retryableError when
	// trying again may help.
	export(ctx context.Context, k kind, request []byte) (rejected int64, err error)
	// target names the collector without credentials, for messages.
	target() string
	close()
}

// retryableError is a failure worth retrying, after at least the delay
// the collector asked for (0: the exporter's backoff).
type retryableError struct {
	err   error
	after time.Duration
}

func (r *retryableError) Error() string { return r.err.Error() }
func (r *retryableError) Unwrap() error { return r.err }

// backoff is exponential with full jitter, from 500ms up to 30s.
type backoff struct{ cur time.Duration }

func newBackoff() *backoff { return &backoff{cur: 500 * time.Millisecond} }

func (b *backoff) next() time.Duration {
	d := b.cur/2 + rand.N(b.cur/2+1)
	b.cur = min(b.cur*2, 30*time.Second)
	return d
}

// tlsConfig returns the TLS settings for an https endpoint.
func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("otlp: read the CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("otlp: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// parseEndpoint checks the endpoint URL without echoing it: it may hold
// credentials.
func parseEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("otlp: the endpoint must be an http:// or https:// URL with a host, e.g. http://localhost:4318/v1/logs")
	}
	return u, nil
}

// httpTransport is OTLP/HTTP with protobuf bodies.
type httpTransport struct {
	client  *http.Client
	url     string
	shown   string
	headers http.Header
	gzip    bool
	// tracesURL is where spans go ("" without Config.Spans), metricsURL
	// where metrics go ("" without Config.Metrics).
	tracesURL, tracesShown   string
	metricsURL, metricsShown string
}

func newHTTPTransport(cfg Config) (*httpTransport, error) {
	u, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/logs"
	}
	tc, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	t := &httpTransport{
		client: &http.Client{
			Transport: tr,
			// A redirect would carry the headers (API keys) to wherever it
			// points: answer it as the failure it is for an OTLP endpoint.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		url:     u.String(),
		shown:   redactedURL(u),
		headers: http.Header{},
		gzip:    cfg.Compression == "gzip",
	}
	for k, v := range cfg.Headers {
		t.headers.Set(k, v)
	}
	if cfg.Spans {
		traces, err := signalURL(cfg.TracesEndpoint, u, "traces")
		if err != nil {
			return nil, err
		}
		t.tracesURL, t.tracesShown = traces.String(), redactedURL(traces)
	}
	if cfg.Metrics {
		metrics, err := signalURL(cfg.MetricsEndpoint, u, "metrics")
		if err != nil {
			return nil, err
		}
		t.metricsURL, t.metricsShown = metrics.String(), redactedURL(metrics)
	}
	t.headers.Set("Content-Type", "application/x-protobuf")
	if t.gzip {
		t.headers.Set("Content-Encoding", "gzip")
	}
	return t, nil
}

func (t *httpTransport) target() string { return t.shown }

func (t *httpTransport) close() { t.client.CloseIdleConnections() }

// signalURL is the URL of signal ("traces" or "metrics"): endpoint when
// set (a bare URL gets /v1/<signal>), else the logs URL with its trailing
// /v1/logs replaced by /v1/<signal>.
func signalURL(endpoint string, logs *url.URL, signal string) (*url.URL, error) {
	if endpoint != "" {
		u, err := parseEndpoint(endpoint)
		if err != nil {
			return nil, fmt.Errorf("otlp: %s endpoint: %w", signal, err)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/v1/" + signal
		}
		return u, nil
	}
	path, ok := strings.CutSuffix(logs.Path, "/v1/logs")
	if !ok {
		return nil, fmt.Errorf("otlp: the logs endpoint does not end in /v1/logs, so the %s URL cannot be derived from it: set the %s endpoint", signal, signal)
	}
	u := *logs
	u.Path = path + "/v1/" + signal
	u.RawPath = ""
	return &u, nil
}

func (t *httpTransport) export(ctx context.Context, k kind, body []byte) (int64, error) {
	target, shown := t.url, t.shown
	switch k {
	case span:
		target, shown = t.tracesURL, t.tracesShown
	case metric:
		target, shown = t.metricsURL, t.metricsShown
	}
	if t.gzip {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(body)
		if err := zw.Close(); err != nil {
			return 0, fmt.Errorf("gzip the request: %w", err)
		}
		body = zb.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build the request to %s: %w", shown, unwrapURLError(err))
	}
	req.Header = t.headers.Clone()
	resp, err := t.client.Do(req)
	if err != nil {
		// A *url.Error repeats the URL, with any token in it: say it
		// without.
		return 0, &retryableError{err: fmt.Errorf("POST %s: %w", shown, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return rejectedIn(k, respBody), nil
	}
	err = fmt.Errorf("POST %s: %s%s", shown, resp.Status, statusMessage(respBody))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return 0, &retryableError{err: err, after: retryAfter(resp.Header.Get("Retry-After"))}
	}
	return 0, err
}

// rejectedIn returns the records, spans or data points a successful
// export response reports rejected.
func rejectedIn(k kind, body []byte) int64 {
	if len(body) == 0 {
		return 0
	}
	switch k {
	case span:
		var out coltracepb.ExportTraceServiceResponse
		if proto.Unmarshal(body, &out) == nil && out.PartialSuccess != nil {
			return out.PartialSuccess.RejectedSpans
		}
		return 0
	case metric:
		var out colmetricspb.ExportMetricsServiceResponse
		if proto.Unmarshal(body, &out) == nil && out.PartialSuccess != nil {
			return out.PartialSuccess.RejectedDataPoints
		}
		return 0
	}
	var out collogspb.ExportLogsServiceResponse
	if proto.Unmarshal(body, &out) == nil && out.PartialSuccess != nil {
		return out.PartialSuccess.RejectedLogRecords
	}
	return 0
}

// unwrapURLError returns the cause inside a *url.Error.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// statusMessage returns ": message" from a google.rpc.Status body, the
// form OTLP/HTTP collectors answer failures in.
func statusMessage(body []byte) string {
	var st spb.Status
	if len(body) == 0 || proto.Unmarshal(body, &st) != nil || st.Message == "" {
		return ""
	}
	return ": " + st.Message
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// grpcTransport is OTLP/gRPC.
type grpcTransport struct {
	conn  *grpc.ClientConn
	shown string
	md    metadata.MD
	opts  []grpc.CallOption
}

// The Export RPCs of LogsService, TraceService and MetricsService.
const (
	exportMethod        = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
	exportTracesMethod  = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	exportMetricsMethod = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
)

func newGRPCTransport(cfg Config) (*grpcTransport, error) {
	u, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "4317")
	}
	creds := insecure.NewCredentials()
	if u.Scheme == "https" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient("dns:///"+host, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("otlp: set up gRPC to %s: %w", host, err)
	}
	t := &grpcTransport{conn: conn, shown: u.Scheme + "://" + host, md: metadata.MD{}}
	for k, v := range cfg.Headers {
		t.md.Set(k, v)
	}
	t.opts = []grpc.CallOption{grpc.ForceCodec(rawCodec{})}
	if cfg.Compression == "gzip" {
		t.opts = append(t.opts, grpc.UseCompressor("gzip"))
	}
	return t, nil
}

func (t *grpcTransport) target() string { return t.shown }

func (t *grpcTransport) close() { t.conn.Close() }

func (t *grpcTransport) export(ctx context.Context, k kind, body []byte) (int64, error) {
	ctx = metadata.NewOutgoingContext(ctx, t.md)
	method := exportMethod
	switch k {
	case span:
		method = exportTracesMethod
	case metric:
		method = exportMetricsMethod
	}
	// The reply is decoded by rejectedIn, as over HTTP.
	var out rawReply
	err := t.conn.Invoke(ctx, method, rawRequest(body), &out, t.opts...)
	if err == nil {
		return rejectedIn(k, out), nil
	}
	st := status.Convert(err)
	err = fmt.Errorf("gRPC Export to %s: %s: %s", t.shown, st.Code(), st.Message())
	var after time.Duration
	hasRetryInfo := false
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.RetryDelay != nil {
			after, hasRetryInfo = ri.RetryDelay.AsDuration(), true
		}
	}
	switch st.Code() {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.DataLoss:
		return 0, &retryableError{err: err, after: after}
	case codes.ResourceExhausted:
		// Retryable only when the collector says when to come back.
		if hasRetryInfo {
			return 0, &retryableError{err: err, after: after}
		}
	}
	return 0, err
}

// rawRequest is an already serialised export request.
type rawRequest []byte

// rawReply receives a serialised export response.
type rawReply []byte

// rawCodec sends a rawRequest as it is and decodes replies as protobuf.
// The content subtype stays "proto": the bytes on the wire are exactly a
// protobuf message.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(rawRequest); ok {
		return r, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("otlp: cannot encode %T", v)
	}
	return proto.Marshal(m)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if r, ok := v.(*rawReply); ok {
		*r = append((*r)[:0], data...)
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("otlp: cannot decode into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func (rawCodec) Name() string { return "proto" }
