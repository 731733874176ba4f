package otlp_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// freeAddr returns a loopback address with a port nothing listens on: the
// collector's receiver takes an address to listen on and does not say
// which port it got for :0.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// receiverConfig configures the Collector's OTLP receiver to listen on
// addr (a free loopback port when "") for protocol only, and returns the
// address.
func receiverConfig(t *testing.T, factory receiver.Factory, protocol, addr string) (*otlpreceiver.Config, string) {
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	if addr == "" {
		addr = freeAddr(t)
	}
	if protocol == otlp.GRPC {
		cfg.Protocols.GRPC.GetOrInsertDefault().NetAddr.Endpoint = addr
		cfg.Protocols.HTTP = configoptional.None[otlpreceiver.HTTPConfig]()
	} else {
		cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = addr
		cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	}
	return cfg, addr
}

// TestCollectorReceiver sends agentRun to the OpenTelemetry Collector's
// own OTLP receiver, over each protocol, and checks what its pipeline
// gets (pdata logs) field by field.
func TestCollectorReceiver(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			factory := otlpreceiver.NewFactory()
			cfg, addr := receiverConfig(t, factory, protocol, "")
			got := new(consumertest.LogsSink)
			rcv, err := factory.CreateLogs(context.Background(), receivertest.NewNopSettings(factory.Type()), cfg, got)
			if err != nil {
				t.Fatal(err)
			}
			if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rcv.Shutdown(context.Background()) })

			exp, err := otlp.New(otlp.Config{
				Endpoint: "http://" + addr, Protocol: protocol, HostName: "dev-box", LegacySystem: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			evs := agentRun()
			for _, ev := range evs {
				exp.Record(ev)
			}
			if err := exp.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			var records []plog.LogRecord
			for _, logs := range got.AllLogs() {
				rls := logs.ResourceLogs()
				for i := range rls.Len() {
					rl := rls.At(i)
					if name, _ := rl.Resource().Attributes().Get("service.name"); name.Str() != "oisp-sensor" {
						t.Errorf("resource service.name %q", name.Str())
					}
					sls := rl.ScopeLogs()
					for j := range sls.Len() {
						lrs := sls.At(j).LogRecords()
						for k := range lrs.Len() {
							records = append(records, lrs.At(k))
						}
					}
				}
			}
			if len(records) != len(evs) {
				t.Fatalf("the collector's pipeline got %d records of %d events", len(records), len(evs))
			}
			want := agentRunAttrs()
			for i, ev := range evs {
				r := records[i]
				ts, _ := time.Parse(time.RFC3339Nano, ev.TS)
				if r.EventName() != ev.EventType || r.Timestamp().AsTime() != ts.UTC() {
					t.Errorf("record %d: %q at %v, want %q at %v", i, r.EventName(), r.Timestamp().AsTime(), ev.EventType, ts)
				}
				if d := cmp.Diff(want[i], r.Attributes().AsRaw()); d != "" {
					t.Errorf("record %d (%s) attributes (-want +got):\n%s", i, ev.EventType, d)
				}
			}
			if tid := records[0].TraceID(); tid.String() != "4bf92f3577b34da6a3ce929d0e0e4736" || records[0].SpanID().String() != "00f067aa0ba902b7" {
				t.Errorf("trace context %s/%s", tid, records[0].SpanID())
			}
			if sev := records[4].SeverityNumber(); sev != plog.SeverityNumberError {
				t.Errorf("the failed response has severity %v", sev)
			}
		})
	}
}

// TestCollectorReceiverSpans sends spanRun with spans on to the
// Collector's OTLP receiver (its logs and traces pipelines share one
// receiver, as in a collector configured with both) over each protocol:
// the spans decode, and each call's records share its span's ids.
func TestCollectorReceiverSpans(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			addr := freeAddr(t)
			sinks := startReceiver(t, protocol, addr)
			gotLogs, gotTraces := sinks.logs, sinks.traces

			endpoint := "http://" + addr
			if protocol == otlp.HTTPProtobuf {
				endpoint += "/v1/logs"
			}
			exp, err := otlp.New(otlp.Config{Endpoint: endpoint, Protocol: protocol, Spans: true})
			if err != nil {
				t.Fatal(err)
			}
			evs := spanRun()
			for _, ev := range evs {
				exp.Record(ev)
			}
			if err := exp.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			byEvent := map[string]plog.LogRecord{}
			for _, logs := range gotLogs.AllLogs() {
				for i := range logs.ResourceLogs().Len() {
					sls := logs.ResourceLogs().At(i).ScopeLogs()
					for j := range sls.Len() {
						lrs := sls.At(j).LogRecords()
						for k := range lrs.Len() {
							id, _ := lrs.At(k).Attributes().Get("oisp.event_id")
							byEvent[id.Str()] = lrs.At(k)
						}
					}
				}
			}
			spans := map[string]ptrace.Span{}
			for _, traces := range gotTraces.AllTraces() {
				for i := range traces.ResourceSpans().Len() {
					rs := traces.ResourceSpans().At(i)
					if name, _ := rs.Resource().Attributes().Get("service.name"); name.Str() != "oisp-sensor" {
						t.Errorf("spans' resource service.name %q", name.Str())
					}
					for j := range rs.ScopeSpans().Len() {
						ss := rs.ScopeSpans().At(j).Spans()
						for k := range ss.Len() {
							spans[ss.At(k).Name()] = ss.At(k)
						}
					}
				}
			}
			if len(byEvent) != len(evs) || len(spans) != 3 {
				t.Fatalf("the collector's pipelines got %d records of %d events and %d spans of 3", len(byEvent), len(evs), len(spans))
			}
			for name, events := range map[string][]string{
				"chat gpt-4o":                       {"01REQ", "01RESP"},
				"generate_content gemini-2.0-flash": {"01REQ2", "01FAIL"},
				"gpt-4o-mini":                       {"01ORPH"},
			} {
				s, ok := spans[name]
				if !ok {
					t.Errorf("no span %q", name)
					continue
				}
				if s.Kind() != ptrace.SpanKindClient || s.TraceID().IsEmpty() || s.SpanID().IsEmpty() {
					t.Errorf("span %q: kind %v, ids %s/%s", name, s.Kind(), s.TraceID(), s.SpanID())
				}
				for _, id := range events {
					if r := byEvent[id]; r.TraceID() != s.TraceID() || r.SpanID() != s.SpanID() {
						t.Errorf("record %s has ids %s/%s, span %q %s/%s", id, r.TraceID(), r.SpanID(), name, s.TraceID(), s.SpanID())
					}
				}
			}
			if st := spans["generate_content gemini-2.0-flash"].Status(); st.Code() != ptrace.StatusCodeError || st.Message() != "slow down" {
				t.Errorf("failed call's span status %v %q", st.Code(), st.Message())
			}
		})
	}
}

// receiverSinks are what the pipelines of a Collector's receiver get.
type receiverSinks struct {
	logs    *consumertest.LogsSink
	traces  *consumertest.TracesSink
	metrics *consumertest.MetricsSink
}

// startReceiver starts the Collector's OTLP receiver on addr for protocol
// with a logs, a traces and a metrics pipeline (they share one receiver,
// as in a collector configured with all three), and returns what they get.
func startReceiver(t *testing.T, protocol string, addr string) receiverSinks {
	t.Helper()
	factory := otlpreceiver.NewFactory()
	cfg, _ := receiverConfig(t, factory, protocol, addr)
	got := receiverSinks{new(consumertest.LogsSink), new(consumertest.TracesSink), new(consumertest.MetricsSink)}
	set := receivertest.NewNopSettings(factory.Type())
	logsRcv, err := factory.CreateLogs(context.Background(), set, cfg, got.logs)
	if err != nil {
		t.Fatal(err)
	}
	tracesRcv, err := factory.CreateTraces(context.Background(), set, cfg, got.traces)
	if err != nil {
		t.Fatal(err)
	}
	metricsRcv, err := factory.CreateMetrics(context.Background(), set, cfg, got.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, rcv := range []interface {
		Start(context.Context, component.Host) error
		Shutdown(context.Context) error
	}{logsRcv, tracesRcv, metricsRcv} {
		if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rcv.Shutdown(context.Background()) })
	}
	return got
}

// collectorExports returns what the Collector's metrics pipeline got, each
// consumed batch re-encoded with pdata's own protobuf marshaller and
// decoded as an export request, for metricsDiff.
func collectorExports(t *testing.T, got *consumertest.MetricsSink) func() []*colmetricspb.ExportMetricsServiceRequest {
	return func() []*colmetricspb.ExportMetricsServiceRequest {
		var out []*colmetricspb.ExportMetricsServiceRequest
		var m pmetric.ProtoMarshaler
		for _, md := range got.AllMetrics() {
			b, err := m.MarshalMetrics(md)
			if err != nil {
				t.Fatal(err)
			}
			req := new(colmetricspb.ExportMetricsServiceRequest)
			if err := proto.Unmarshal(b, req); err != nil {
				t.Fatal(err)
			}
			out = append(out, req)
		}
		return out
	}
}

// TestCollectorReceiverMetrics sends metricsRun's metrics to the
// Collector's OTLP receiver over each protocol, and checks what its
// metrics pipeline gets: the pdata histograms, and every point's values.
func TestCollectorReceiverMetrics(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			addr := freeAddr(t)
			got := startReceiver(t, protocol, addr).metrics
			endpoint := "http://" + addr
			if protocol == otlp.HTTPProtobuf {
				endpoint += "/v1/logs"
			}
			exp, err := otlp.New(otlp.Config{Endpoint: endpoint, Protocol: protocol, Metrics: true, MetricsInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			record(exp, metricsRun())
			closeExporter(t, exp)
			all := got.AllMetrics()
			if len(all) != 1 {
				t.Fatalf("the collector's pipeline got %d metric batches, want 1", len(all))
			}
			byName := map[string]pmetric.Metric{}
			rms := all[0].ResourceMetrics()
			for i := range rms.Len() {
				sms := rms.At(i).ScopeMetrics()
				for j := range sms.Len() {
					ms := sms.At(j).Metrics()
					for k := range ms.Len() {
						byName[ms.At(k).Name()] = ms.At(k)
					}
				}
			}
			d := byName[otlp.MetricOperationDuration]
			if d.Type() != pmetric.MetricTypeHistogram || d.Unit() != "s" || d.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
				t.Fatalf("duration metric %v %q %v", d.Type(), d.Unit(), d.Histogram().AggregationTemporality())
			}
			if n := d.Histogram().DataPoints().Len(); n != 5 {
				t.Errorf("%d duration points, want 5", n)
			}
			if u := byName[otlp.MetricTokenUsage].Unit(); u != "{token}" {
				t.Errorf("token usage unit %q", u)
			}
			if all[0].DataPointCount() != len(metricsRunPoints()) {
				t.Errorf("%d data points, want %d", all[0].DataPointCount(), len(metricsRunPoints()))
			}
			if diff, _, _ := metricsDiff(collectorExports(t, got)()[0], metricsRunPoints(), 1); diff != "" {
				t.Errorf("the collector's metrics:\n%s", diff)
			}
		})
	}
}

// TestCollectorReceiverMetricsDown starts the Collector's receiver only
// after a metrics export failed for want of it: the next export brings
// it every value, those of the failed one included.
func TestCollectorReceiverMetricsDown(t *testing.T) {
	for _, protocol := range []string{otlp.HTTPProtobuf, otlp.GRPC} {
		t.Run(protocol, func(t *testing.T) {
			addr := freeAddr(t)
			endpoint := "http://" + addr
			if protocol == otlp.HTTPProtobuf {
				endpoint += "/v1/logs"
			}
			var counts stats.Counters
			// Log records go at Close only, so that their retries do not
			// hold the sender while the collector is down.
			exp, err := otlp.New(otlp.Config{Endpoint: endpoint, Protocol: protocol, Metrics: true, MetricsInterval: 100 * time.Millisecond,
				BatchTimeout: time.Hour, BatchSize: 1000, Stats: &counts})
			if err != nil {
				t.Fatal(err)
			}
			record(exp, metricsRun())
			waitFor(t, "a failed metrics export", func() bool { return counts.Get(otlp.CountMetricsFailed) > 0 })
			record(exp, metricsRun())
			got := startReceiver(t, protocol, addr).metrics
			waitForMetrics(t, collectorExports(t, got), metricsRunPoints(), 2)
			closeExporter(t, exp)
		})
	}
}
