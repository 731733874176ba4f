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
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
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

// receiverConfig configures the Collector's OTLP receiver to listen on a
// free loopback port for protocol only, and returns the address.
func receiverConfig(t *testing.T, factory receiver.Factory, protocol string) (*otlpreceiver.Config, string) {
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	addr := freeAddr(t)
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
			cfg, addr := receiverConfig(t, factory, protocol)
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
			factory := otlpreceiver.NewFactory()
			cfg, addr := receiverConfig(t, factory, protocol)
			gotLogs, gotTraces := new(consumertest.LogsSink), new(consumertest.TracesSink)
			set := receivertest.NewNopSettings(factory.Type())
			logsRcv, err := factory.CreateLogs(context.Background(), set, cfg, gotLogs)
			if err != nil {
				t.Fatal(err)
			}
			tracesRcv, err := factory.CreateTraces(context.Background(), set, cfg, gotTraces)
			if err != nil {
				t.Fatal(err)
			}
			for _, rcv := range []interface {
				Start(context.Context, component.Host) error
				Shutdown(context.Context) error
			}{logsRcv, tracesRcv} {
				if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { rcv.Shutdown(context.Background()) })
			}

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
