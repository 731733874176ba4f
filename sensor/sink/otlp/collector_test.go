package otlp_test

import (
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // the collector accepts gzip, as a real one does
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
)

// reply is what the collector answers one export with.
type reply struct {
	// status is the HTTP status (0: 200); the gRPC server maps it to a code.
	status     int
	retryAfter time.Duration
	rejected   int64
	// hang holds the request until the test ends or the client gives up.
	hang bool
}

// collector is an OTLP logs, traces and metrics receiver over real HTTP
// and gRPC servers: it decodes every request with the official OTLP types
// and keeps it. The script answers log exports only, metricsScript metric
// exports; trace exports succeed.
type collector struct {
	collogspb.UnimplementedLogsServiceServer
	t        *testing.T
	mu       sync.Mutex
	requests []*collogspb.ExportLogsServiceRequest
	traces   []*coltracepb.ExportTraceServiceRequest
	metrics  []*colmetricspb.ExportMetricsServiceRequest
	// metricsScript answers the metric exports in turn (status, rejected
	// and hang); past its end, 200.
	metricsScript []reply
	metricsCalls  int
	headers       []http.Header
	arrived       []time.Time
	// script answers the requests in turn; past its end, 200.
	script []reply
	calls  int
	// stopped releases hanging handlers when the test ends.
	stopped chan struct{}
}

func newCollector(t *testing.T, script ...reply) *collector {
	c := &collector{t: t, script: script, stopped: make(chan struct{})}
	t.Cleanup(func() { close(c.stopped) })
	return c
}

// next returns the reply for the next request.
func (c *collector) next() reply {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= len(c.script) {
		return c.script[c.calls-1]
	}
	return reply{}
}

// keep stores an accepted request.
func (c *collector) keep(req *collogspb.ExportLogsServiceRequest, h http.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, req)
	c.headers = append(c.headers, h)
	c.arrived = append(c.arrived, time.Now())
}

// serveHTTP starts an OTLP/HTTP receiver on 127.0.0.1:0 and returns its
// logs URL.
func (c *collector) serveHTTP(tls bool) (*httptest.Server, string) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		var req collogspb.ExportLogsServiceRequest
		if !c.decode(w, r, &req) {
			return
		}
		rep := c.next()
		if rep.hang {
			select {
			case <-r.Context().Done():
			case <-c.stopped:
			}
			return
		}
		if rep.status != 0 && rep.status != http.StatusOK {
			if rep.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(rep.retryAfter/time.Second)))
			}
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(rep.status)
			return
		}
		c.keep(&req, r.Header.Clone())
		resp := &collogspb.ExportLogsServiceResponse{}
		if rep.rejected > 0 {
			resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: rep.rejected, ErrorMessage: "rejected"}
		}
		out, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		var req coltracepb.ExportTraceServiceRequest
		if !c.decode(w, r, &req) {
			return
		}
		c.keepTraces(&req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		var req colmetricspb.ExportMetricsServiceRequest
		if !c.decode(w, r, &req) {
			return
		}
		rep := c.keepMetrics(&req)
		if rep.hang {
			select {
			case <-r.Context().Done():
			case <-c.stopped:
			}
			return
		}
		if rep.status != 0 && rep.status != http.StatusOK {
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(rep.status)
			return
		}
		resp := &colmetricspb.ExportMetricsServiceResponse{}
		if rep.rejected > 0 {
			resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{RejectedDataPoints: rep.rejected}
		}
		out, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(mux)
	} else {
		srv = httptest.NewServer(mux)
	}
	c.t.Cleanup(srv.Close)
	return srv, srv.URL + "/v1/logs"
}

// decode reads an OTLP/HTTP request body (gzipped or not) into req,
// answering 400 when it is not a protobuf req.
func (c *collector) decode(w http.ResponseWriter, r *http.Request, req proto.Message) bool {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return false
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return false
	}
	if err := proto.Unmarshal(raw, req); err != nil {
		c.t.Errorf("collector: the request does not decode as %s: %v", req.ProtoReflect().Descriptor().Name(), err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// serveGRPC starts an OTLP/gRPC receiver on 127.0.0.1:0 and returns its
// endpoint URL.
func (c *collector) serveGRPC() string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	srv := grpc.NewServer()
	collogspb.RegisterLogsServiceServer(srv, c)
	coltracepb.RegisterTraceServiceServer(srv, traceService{c: c})
	colmetricspb.RegisterMetricsServiceServer(srv, metricsService{c: c})
	go srv.Serve(lis)
	c.t.Cleanup(srv.Stop)
	return "http://" + lis.Addr().String()
}

// serve starts the receiver of protocol and returns its endpoint URL.
func (c *collector) serve(protocol string) string {
	if protocol == otlp.GRPC {
		return c.serveGRPC()
	}
	_, endpoint := c.serveHTTP(false)
	return endpoint
}

// Export is the LogsService RPC.
func (c *collector) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	rep := c.next()
	if rep.hang {
		select {
		case <-ctx.Done():
		case <-c.stopped:
		}
		return nil, status.Error(codes.Unavailable, "hung")
	}
	switch rep.status {
	case 0, http.StatusOK:
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		st := status.New(codes.Unavailable, "busy")
		if rep.retryAfter > 0 {
			st, _ = st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(rep.retryAfter)})
		}
		return nil, st.Err()
	default:
		return nil, status.Error(codes.InvalidArgument, "refused")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	h := http.Header{}
	for k, vs := range md {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	c.keep(req, h)
	resp := &collogspb.ExportLogsServiceResponse{}
	if rep.rejected > 0 {
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: rep.rejected}
	}
	return resp, nil
}

// keepTraces stores an accepted trace export.
func (c *collector) keepTraces(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.traces = append(c.traces, req)
}

// traceService is the collector's TraceService.
type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	c *collector
}

func (s traceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.c.keepTraces(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// metricsService is the collector's MetricsService.
type metricsService struct {
	colmetricspb.UnimplementedMetricsServiceServer
	c *collector
}

func (s metricsService) Export(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	rep := s.c.keepMetrics(req)
	if rep.hang {
		select {
		case <-ctx.Done():
		case <-s.c.stopped:
		}
		return nil, status.Error(codes.Unavailable, "hung")
	}
	switch rep.status {
	case 0, http.StatusOK:
	case http.StatusServiceUnavailable:
		return nil, status.Error(codes.Unavailable, "busy")
	default:
		return nil, status.Error(codes.InvalidArgument, "refused")
	}
	resp := &colmetricspb.ExportMetricsServiceResponse{}
	if rep.rejected > 0 {
		resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{RejectedDataPoints: rep.rejected}
	}
	return resp, nil
}

// keepMetrics answers a metric export from metricsScript, keeping the
// request when the answer is a success.
func (c *collector) keepMetrics(req *colmetricspb.ExportMetricsServiceRequest) reply {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.metricsCalls++
	var rep reply
	if c.metricsCalls <= len(c.metricsScript) {
		rep = c.metricsScript[c.metricsCalls-1]
	}
	if !rep.hang && (rep.status == 0 || rep.status == http.StatusOK) {
		c.metrics = append(c.metrics, req)
	}
	return rep
}

// metricExports returns the metric exports accepted so far, in order.
func (c *collector) metricExports() []*colmetricspb.ExportMetricsServiceRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*colmetricspb.ExportMetricsServiceRequest(nil), c.metrics...)
}

// metricCalls returns the number of metric exports received, accepted
// or not.
func (c *collector) metricCalls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metricsCalls
}

// spans returns every span received, in order, checking the resource
// each came under.
func (c *collector) spans() []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, req := range c.traces {
		for _, rs := range req.ResourceSpans {
			if name := attrMap(rs.Resource.GetAttributes())["service.name"]; name != "oisp-sensor" {
				c.t.Errorf("spans' resource service.name %v", name)
			}
			for _, ss := range rs.ScopeSpans {
				out = append(out, ss.Spans...)
			}
		}
	}
	return out
}

// received is one record as the collector got it.
type received struct {
	resource *resourcepb.Resource
	scope    *commonpb.InstrumentationScope
	record   *logspb.LogRecord
}

// records returns every record received, in order.
func (c *collector) records() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []received
	for _, req := range c.requests {
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					out = append(out, received{rl.Resource, sl.Scope, r})
				}
			}
		}
	}
	return out
}

// batchSizes returns the number of records in each request.
func (c *collector) batchSizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for _, req := range c.requests {
		n := 0
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				n += len(sl.LogRecords)
			}
		}
		out = append(out, n)
	}
	return out
}

func (c *collector) callCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// value turns an AnyValue into plain Go values for comparison.
func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_ArrayValue:
		out := []any{}
		for _, e := range x.ArrayValue.Values {
			out = append(out, value(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attrMap(x.KvlistValue.Values)
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	}
	return nil
}

// attrMap turns attributes into a map, failing on a repeated key.
func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	out := map[string]any{}
	for _, kv := range kvs {
		if _, dup := out[kv.Key]; dup {
			out["DUPLICATE "+kv.Key] = true
		}
		out[kv.Key] = value(kv.Value)
	}
	return out
}

// waitFor polls cond for up to a minute: the sender runs on its own time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
