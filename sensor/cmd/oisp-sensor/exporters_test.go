package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink/kafka"
	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
)

// recordThroughProxy runs record with the capture proxy and extra flags,
// replays a streamed chat completion through it, stops it and returns the
// JSONL output's lines and the status output.
func recordThroughProxy(t *testing.T, extra ...string) (lines [][]byte, status string) {
	t.Helper()
	return recordThroughProxyWith(t, nil, extra...)
}

// recordThroughProxyWith is recordThroughProxy calling started with the
// running command before any traffic.
func recordThroughProxyWith(t *testing.T, started func(*command), extra ...string) (lines [][]byte, status string) {
	t.Helper()
	srv, rec := upstream(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H2)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out := filepath.Join(dir, "events.jsonl")
	args := append([]string{"record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off",
		"--ca-dir", caDir, "--upstream-ca", srv.CAFile, "--resolve", "api.openai.com:443:" + srv.Addr,
		"--output", out, "--summary-every", "0"}, extra...)
	cmd := start(t, args...)
	addr := waitFor(t, cmd.stderr, proxyLine, cmd.done)
	if started != nil {
		started(cmd)
	}
	replayThrough(t, proxiedClient(t, addr, caDir), rec, secret)
	// Both events are decoded once the exchange is: wait for them before
	// stopping, so that the exporters are fed before they drain.
	deadline := time.Now().Add(30 * time.Second)
	for {
		raw, _ := os.ReadFile(out)
		if bytes.Count(raw, []byte("\n")) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, cmd.stderr.String())
	}
	readEvents(t, out) // validates every line
	raw, _ := os.ReadFile(out)
	return bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")), cmd.stderr.String()
}

// TestRecordKafka: with --kafka-brokers every event record writes to its
// file is also published, byte for byte, to a Kafka broker (franz-go's
// in-process kfake cluster, read back with a consumer), keyed by flow,
// and the summary counts them.
func TestRecordKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "ai-events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	broker := c.ListenAddrs()[0]
	lines, status := recordThroughProxy(t, "--kafka-brokers", broker, "--kafka-topic", "ai-events")
	for _, want := range []string{"events also go to Kafka topic ai-events via " + broker, "kafka: 2 sent, 0 dropped"} {
		if !strings.Contains(status, want) {
			t.Errorf("status output lacks %q:\n%s", want, status)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("ai-events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < len(lines) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != len(lines) {
		t.Fatalf("%d records on the topic, %d events in the file", len(got), len(lines))
	}
	flowKey := regexp.MustCompile(`"flow.id":"([^"]+)"`)
	for i, r := range got {
		if !bytes.Equal(r.Value, lines[i]) {
			t.Errorf("record %d differs from the file's line:\n%s\n%s", i, r.Value, lines[i])
		}
		if m := flowKey.FindSubmatch(lines[i]); m == nil || string(r.Key) != string(m[1]) {
			t.Errorf("record %d key %q, want the event's flow id", i, r.Key)
		}
	}
	if strings.Contains(status, secret) {
		t.Error("the API key reached the status output")
	}
}

// TestRecordKafkaNeedsPassword: a SASL login without a password is refused
// before anything starts, naming where the password goes.
func TestRecordKafkaNeedsPassword(t *testing.T) {
	t.Setenv(kafkaPasswordEnv, "")
	cmd := start(t, "record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off", "-o", filepath.Join(t.TempDir(), "e.jsonl"),
		"--kafka-brokers", "127.0.0.1:9", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "sensor")
	select {
	case code := <-cmd.done:
		cmd.done <- code
		if code != 1 || !strings.Contains(cmd.stderr.String(), kafkaPasswordEnv) {
			t.Errorf("exit %d, stderr:\n%s", code, cmd.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("record did not refuse")
	}
}

// otlpCollector is an OTLP/HTTP logs endpoint decoding requests with the
// official OTLP types, keeping the records' event names and the headers.
type otlpCollector struct {
	mu      sync.Mutex
	names   []string
	bodies  []string
	traces  [][]byte // trace id of each record
	spans   []string // name and trace id of each span
	metrics []string // name, unit and total count of each histogram
	headers http.Header
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []byte
	switch r.URL.Path {
	case "/v1/logs":
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, "bad logs export", http.StatusBadRequest)
			return
		}
		c.headers = r.Header.Clone()
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					c.names = append(c.names, lr.EventName)
					c.bodies = append(c.bodies, lr.Body.GetStringValue())
					c.traces = append(c.traces, lr.TraceId)
				}
			}
		}
		out, _ = proto.Marshal(&collogspb.ExportLogsServiceResponse{})
	case "/v1/traces":
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, "bad traces export", http.StatusBadRequest)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					c.spans = append(c.spans, fmt.Sprintf("%s %x %s", sp.Name, sp.TraceId, sp.Kind))
				}
			}
		}
		out, _ = proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	case "/v1/metrics":
		var req colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			http.Error(w, "bad metrics export", http.StatusBadRequest)
			return
		}
		// Cumulative: the last export holds every value.
		c.metrics = c.metrics[:0]
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					var n uint64
					for _, dp := range m.GetHistogram().GetDataPoints() {
						n += dp.Count
					}
					c.metrics = append(c.metrics, fmt.Sprintf("%s %s %d", m.Name, m.Unit, n))
				}
			}
		}
		out, _ = proto.Marshal(&colmetricspb.ExportMetricsServiceResponse{})
	default:
		http.Error(w, "no such path", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// TestRecordOTLP: with --otlp-endpoint every event also reaches an OTLP
// collector as a log record named by its event type, with the headers of
// $OTEL_EXPORTER_OTLP_HEADERS and --otlp-header, which never show in the
// status output.
func TestRecordOTLP(t *testing.T) {
	const apiKey = "otlp-key-0123456789abcdef"
	col := &otlpCollector{}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	t.Setenv(otlpHeadersEnv, "x-api-key="+apiKey+",x-team=ai%20platform")
	lines, status := recordThroughProxy(t, "--otlp-endpoint", srv.URL+"/v1/logs", "--otlp-header", "x-tenant=lab", "--otlp-spans", "--otlp-metrics")
	for _, want := range []string{"events also go to the OTLP collector at " + srv.URL + "/v1/logs (http/protobuf: logs, spans, metrics every 30s)", "otlp: 2 sent, 0 dropped"} {
		if !strings.Contains(status, want) {
			t.Errorf("status output lacks %q:\n%s", want, status)
		}
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if got := strings.Join(col.names, ","); got != "ai.request,ai.response" || len(lines) != 2 {
		t.Fatalf("collector got %s for %d events", got, len(lines))
	}
	for i, b := range col.bodies {
		if !bytes.Contains(lines[i], []byte(`"data":`+b)) {
			t.Errorf("record %d body is not the event's data:\n%s\n%s", i, b, lines[i])
		}
	}
	// --otlp-spans: the call is one client span, sharing its trace id
	// with the call's two records.
	if len(col.spans) != 1 || len(col.traces) != 2 || !bytes.Equal(col.traces[0], col.traces[1]) ||
		col.spans[0] != fmt.Sprintf("chat gpt-3.5-turbo %x SPAN_KIND_CLIENT", col.traces[0]) {
		t.Errorf("spans %q, record trace ids %x", col.spans, col.traces)
	}
	// --otlp-metrics: the streamed call's duration, time to first chunk and its input and output tokens,
	// sent at exit (the interval is longer than the run).
	sort.Strings(col.metrics)
	if got, want := strings.Join(col.metrics, "; "), "gen_ai.client.operation.duration s 1; gen_ai.client.operation.time_to_first_chunk s 1; gen_ai.client.token.usage {token} 2"; got != want {
		t.Errorf("metrics %q, want %q", got, want)
	}
	for k, want := range map[string]string{"X-Api-Key": apiKey, "X-Team": "ai platform", "X-Tenant": "lab"} {
		if got := col.headers.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if strings.Contains(status, apiKey) {
		t.Error("the collector's API key reached the status output")
	}
}

// TestRecordWeb: with --web the dashboard serves, on its event stream,
// every event record writes to its file, byte for byte, and its page.
func TestRecordWeb(t *testing.T) {
	dashLine := regexp.MustCompile(`live dashboard at (\S+)`)
	var (
		got     [][]byte
		gotDone = make(chan struct{})
		page    string
	)
	lines, status := recordThroughProxyWith(t, func(cmd *command) {
		base := waitFor(t, cmd.stderr, dashLine, cmd.done)
		resp, err := http.Get(base)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = string(raw)
		stream, err := http.Get(base + "api/events")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer close(gotDone)
			defer stream.Body.Close()
			sc := bufio.NewScanner(stream.Body)
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				if data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: ")); ok && bytes.HasPrefix(data, []byte("{")) {
					got = append(got, bytes.Clone(data))
				}
			}
		}()
	}, "--web", "127.0.0.1:0")
	select {
	case <-gotDone: // record's exit ends the stream
	case <-time.After(20 * time.Second):
		t.Fatal("the event stream did not end when record stopped")
	}
	if !strings.Contains(page, "<html") {
		t.Errorf("dashboard page:\n%.300s", page)
	}
	if len(got) != len(lines) {
		t.Fatalf("%d events on the stream, %d in the file\n%s", len(got), len(lines), status)
	}
	for i := range got {
		if !bytes.Equal(got[i], lines[i]) {
			t.Errorf("stream event %d differs from the file's line:\n%s\n%s", i, got[i], lines[i])
		}
	}
	if !strings.Contains(status, "web: 2 sent, 0 dropped") {
		t.Errorf("status output lacks the dashboard's count:\n%s", status)
	}
}

// TestOTLPHeaderErrorHidesValue: a header written curl-style
// ("Authorization: Bearer …", no '=') is refused without echoing the
// token it carries.
func TestOTLPHeaderErrorHidesValue(t *testing.T) {
	const token = "sk-live-4f9a1c"
	_, err := otlpHeaders("", []string{"Authorization: Bearer " + token})
	if err == nil {
		t.Fatal("a header without '=' was accepted")
	}
	if strings.Contains(err.Error(), token) {
		t.Fatalf("the error echoes the token: %v", err)
	}
}

// TestCloseExportersShareTheDrain: a Kafka broker that is down holds its
// exporter's Close for the whole drain; the OTLP collector, which is up
// (if slow to answer), must still get what its exporter holds within that
// drain, not an already expired one after Kafka gave up.
func TestCloseExportersShareTheDrain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadBroker := ln.Addr().String()
	ln.Close() // nothing listens there: the broker is down
	ke, err := kafka.New(kafka.Config{Brokers: []string{deadBroker}})
	if err != nil {
		t.Fatal(err)
	}
	col := &otlpCollector{}
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // a collector that takes a moment
		col.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	t.Cleanup(srv.Close)
	// The batch waits for Close: only the drain can deliver it.
	oe, err := otlp.New(otlp.Config{Endpoint: srv.URL + "/v1/logs", BatchTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	exps := []exporter{{name: "kafka", rec: ke, close: ke.Close}, {name: "otlp", rec: oe, close: oe.Close}}
	const events = 20
	for i := range events {
		ev := &oisp.Event{OISPVersion: oisp.Version, EventID: fmt.Sprintf("01EV%02d", i), EventType: oisp.TypeAIRequest,
			TS: "2026-11-30T12:00:00Z", Data: &oisp.AIRequest{Model: &oisp.Model{ID: "gpt-4o"}}}
		for _, e := range exps {
			e.rec.Record(ev)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = closeExporters(ctx, exps)
	if err == nil || !strings.Contains(err.Error(), "kafka:") {
		t.Errorf("closing with the broker down: %v, want the Kafka loss reported", err)
	}
	if err != nil && strings.Contains(err.Error(), "otlp:") {
		t.Errorf("the OTLP exporter lost events although its collector was up: %v", err)
	}
	col.mu.Lock()
	got := len(col.names)
	col.mu.Unlock()
	if got != events {
		t.Errorf("the collector got %d of %d events", got, events)
	}
}

// TestRecordFailingSourceClosesExporters: when a capture source cannot
// start after the exporters have, record closes them: the dashboard's
// port is free again once record has returned.
func TestRecordFailingSourceClosesExporters(t *testing.T) {
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	webAddr := free.Addr().String()
	free.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"record", "--web", webAddr, "--proxy", taken.Addr().String(), "--no-socket",
		"--ebpf", "off", "--ca-dir", dir, "-o", filepath.Join(dir, "events.jsonl")}, strings.NewReader(""), &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "capture proxy") {
		t.Fatalf("exit %d, stderr %q; want the capture proxy's failure", code, stderr.String())
	}
	again, err := net.Listen("tcp", webAddr)
	if err != nil {
		t.Fatalf("the dashboard still holds %s after record returned: %v", webAddr, err)
	}
	again.Close()
}

// TestOTLPHeadersEnvKeepsPlus: $OTEL_EXPORTER_OTLP_HEADERS values are
// percent-encoded (as the OpenTelemetry SDKs read them), not form-encoded:
// a '+' in a base64 credential stays a '+', not a space.
func TestOTLPHeadersEnvKeepsPlus(t *testing.T) {
	h, err := otlpHeaders("authorization=Basic dXNlcjpw+YXNz==,x-team=ai%20platform", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h["authorization"], "Basic dXNlcjpw+YXNz=="; got != want {
		t.Errorf("authorization = %q, want %q", got, want)
	}
	if got, want := h["x-team"], "ai platform"; got != want {
		t.Errorf("x-team = %q, want %q", got, want)
	}
}

// TestOTLPStatusHidesUserinfoToken: a collector URL carrying a token as
// its user name (no password part) does not show the token in the status
// output.
func TestOTLPStatusHidesUserinfoToken(t *testing.T) {
	const token = "sk-collector-7d1e2f"
	srv := httptest.NewServer(&otlpCollector{})
	t.Cleanup(srv.Close)
	var out bytes.Buffer
	f := &exporterFlags{otlpEndpoint: strings.Replace(srv.URL, "://", "://"+token+"@", 1) + "/v1/logs", otlpProtocol: otlp.HTTPProtobuf}
	exps, err := openExporters(f, nil, nil, &statusWriter{w: &out})
	if err != nil {
		t.Fatal(err)
	}
	closeExporters(context.Background(), exps)
	if !strings.Contains(out.String(), "OTLP collector at") {
		t.Fatalf("status %q does not name the collector", out.String())
	}
	if strings.Contains(out.String(), token) {
		t.Errorf("the status output shows the token: %q", out.String())
	}
}

// TestKafkaUserWithoutMechanism: --kafka-sasl-user (or a password file)
// without --kafka-sasl-mechanism is refused rather than ignored, which
// would connect with no login and leave the user reading broker refusals.
func TestKafkaUserWithoutMechanism(t *testing.T) {
	for _, f := range []*exporterFlags{
		{kafkaBrokers: []string{"127.0.0.1:9092"}, kafkaTopic: "t", kafkaUser: "bob"},
		{kafkaBrokers: []string{"127.0.0.1:9092"}, kafkaTopic: "t", kafkaPasswordFile: filepath.Join(t.TempDir(), "pw")},
	} {
		exps, err := openExporters(f, nil, nil, &statusWriter{w: io.Discard})
		if err == nil {
			closeExporters(context.Background(), exps)
			t.Errorf("user %q, password file %q without a mechanism: accepted", f.kafkaUser, f.kafkaPasswordFile)
		} else if !strings.Contains(err.Error(), "--kafka-sasl-mechanism") {
			t.Errorf("error %q does not say which flag is missing", err)
		}
	}
}
