package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	redact "github.com/oisp/oisp-sensor/sensor/secret"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink/kafka"
	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
	"github.com/oisp/oisp-sensor/sensor/sink/web"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// exporterFlags are record's event outputs besides the JSONL file. Each is
// off until its address is given.
type exporterFlags struct {
	kafkaBrokers      []string
	kafkaTopic        string
	kafkaMechanism    string
	kafkaUser         string
	kafkaPasswordFile string
	kafkaTLS          bool
	kafkaCAFile       string

	otlpEndpoint    string
	otlpProtocol    string
	otlpHeaders     []string
	otlpCAFile      string
	otlpCompression string
	otlpSpans       bool
	otlpMetrics     bool
	otlpInterval    time.Duration

	webAddr       string
	webAllowHosts []string
}

// otlpHeadersEnv is OpenTelemetry's variable for exporter headers
// (key=value,…, values URL-encoded): where an API key stays out of ps.
const otlpHeadersEnv = "OTEL_EXPORTER_OTLP_HEADERS"

// kafkaPasswordEnv holds the Kafka SASL password when no file is given:
// never a flag, because command lines show in ps.
const kafkaPasswordEnv = "OISP_KAFKA_PASSWORD"

func (f *exporterFlags) register(fl *pflag.FlagSet) {
	fl.StringSliceVar(&f.kafkaBrokers, "kafka-brokers", nil, "also publish events to Kafka through these `BROKERS` (host:port,...)")
	fl.StringVar(&f.kafkaTopic, "kafka-topic", kafka.DefaultTopic, "Kafka `TOPIC` for events (one record per event, keyed by flow)")
	fl.StringVar(&f.kafkaMechanism, "kafka-sasl-mechanism", "", "Kafka SASL login: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fl.StringVar(&f.kafkaUser, "kafka-sasl-user", "", "Kafka SASL `USER`")
	fl.StringVar(&f.kafkaPasswordFile, "kafka-sasl-password-file", "", "`FILE` holding the Kafka SASL password (else $"+kafkaPasswordEnv+")")
	fl.BoolVar(&f.kafkaTLS, "kafka-tls", false, "connect to the Kafka brokers over TLS (system roots)")
	fl.StringVar(&f.kafkaCAFile, "kafka-ca-file", "", "verify the Kafka brokers against this CA `FILE` (PEM); implies --kafka-tls")

	fl.StringVar(&f.otlpEndpoint, "otlp-endpoint", "", "also send events as OTLP logs to an OpenTelemetry collector at `URL` (http/protobuf: http://HOST:4318/v1/logs; grpc: http://HOST:4317, https for TLS)")
	fl.StringVar(&f.otlpProtocol, "otlp-protocol", otlp.HTTPProtobuf, "OTLP transport: http/protobuf or grpc")
	fl.StringArrayVar(&f.otlpHeaders, "otlp-header", nil, "`KEY=VALUE` header sent with every OTLP export (repeatable; never logged; $"+otlpHeadersEnv+" is read too and keeps keys out of ps)")
	fl.StringVar(&f.otlpCAFile, "otlp-ca-file", "", "verify an https collector against this CA `FILE` (PEM)")
	fl.StringVar(&f.otlpCompression, "otlp-compression", "gzip", "OTLP request compression: gzip or none")
	fl.BoolVar(&f.otlpSpans, "otlp-spans", false, "also send one GenAI client span per AI call (request to response) to the collector's traces endpoint (/v1/traces beside /v1/logs, or TraceService over grpc); the call's log records carry its trace and span ids")
	fl.BoolVar(&f.otlpMetrics, "otlp-metrics", false, "also send GenAI client metrics (gen_ai.client.operation.duration, token.usage, time_to_first_chunk histograms, cumulative) to the collector's metrics endpoint (/v1/metrics beside /v1/logs, or MetricsService over grpc)")
	fl.DurationVar(&f.otlpInterval, "otlp-metrics-interval", otlp.DefaultMetricsInterval, "time between OTLP metric exports (and one at exit)")

	fl.StringVar(&f.webAddr, "web", "", "serve a live dashboard of the events at `ADDR` while recording (e.g. 127.0.0.1:7777); events carry prompts, so keep it on loopback")
	fl.StringArrayVar(&f.webAllowHosts, "web-allow-host", nil, "also answer dashboard requests addressed to host `NAME` (repeatable; IP literals and localhost always are)")
}

// exporter is one running output besides the JSONL file.
type exporter struct {
	name  string
	rec   interface{ Record(*oisp.Event) }
	close func(context.Context) error
}

// openExporters starts the exporters the flags ask for, counting into st.
// On error the ones already started are closed.
func openExporters(f *exporterFlags, st stats.Recorder, log *slog.Logger, status *statusWriter) (exps []exporter, err error) {
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			closeExporters(ctx, exps)
			exps = nil
		}
	}()
	if f.otlpEndpoint == "" && (f.otlpSpans || f.otlpMetrics) {
		// Ignoring them would record with no collector and no word of it.
		return exps, errors.New("--otlp-spans and --otlp-metrics need --otlp-endpoint (the collector's URL)")
	}
	if len(f.kafkaBrokers) > 0 {
		cfg := kafka.Config{
			Brokers: f.kafkaBrokers,
			Topic:   f.kafkaTopic,
			TLS:     f.kafkaTLS,
			CAFile:  f.kafkaCAFile,
			Stats:   st,
			Logger:  log,
		}
		if f.kafkaMechanism == "" && (f.kafkaUser != "" || f.kafkaPasswordFile != "") {
			// Ignoring them would connect without a login.
			return exps, errors.New("--kafka-sasl-user and --kafka-sasl-password-file need --kafka-sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		if f.kafkaMechanism != "" {
			pw, err := kafkaPassword(f.kafkaPasswordFile)
			if err != nil {
				return exps, err
			}
			cfg.SASL = kafka.SASL{Mechanism: f.kafkaMechanism, User: f.kafkaUser, Password: pw}
		}
		e, err := kafka.New(cfg)
		if err != nil {
			return exps, err // "kafka: …"
		}
		exps = append(exps, exporter{name: "kafka", rec: e, close: e.Close})
		status.printf("events also go to Kafka topic %s via %s\n", cfg.Topic, strings.Join(f.kafkaBrokers, ","))
	}
	if f.otlpEndpoint != "" {
		headers, err := otlpHeaders(os.Getenv(otlpHeadersEnv), f.otlpHeaders)
		if err != nil {
			return exps, err
		}
		e, err := otlp.New(otlp.Config{
			Endpoint:        f.otlpEndpoint,
			Protocol:        f.otlpProtocol,
			Headers:         headers,
			CAFile:          f.otlpCAFile,
			Compression:     f.otlpCompression,
			Spans:           f.otlpSpans,
			Metrics:         f.otlpMetrics,
			MetricsInterval: f.otlpInterval,
			ServiceVersion:  session.Version,
			Stats:           st,
			Logger:          log,
		})
		if err != nil {
			return exps, err // "otlp: …"
		}
		exps = append(exps, exporter{name: "otlp", rec: e, close: e.Close})
		signals := "logs"
		if f.otlpSpans {
			signals += ", spans"
		}
		if f.otlpMetrics {
			signals += ", metrics every " + f.otlpInterval.String()
		}
		status.printf("events also go to the OTLP collector at %s (%s: %s)\n", shownEndpoint(f.otlpEndpoint), f.otlpProtocol, signals)
	}
	if f.webAddr != "" {
		srv, err := web.Listen(web.Config{Addr: f.webAddr, AllowedHosts: f.webAllowHosts, Stats: st, Logger: log})
		if err != nil {
			return exps, err
		}
		exps = append(exps, exporter{name: "web", rec: srv, close: srv.Close})
		status.printf("live dashboard at %s\n", srv.URL())
		if ip, err := netip.ParseAddrPort(srv.Addr().String()); err == nil && !ip.Addr().IsLoopback() {
			status.printf("the dashboard is reachable from other machines: it shows every captured prompt and response\n")
		}
	}
	return exps, nil
}

// shownEndpoint is the collector URL as the status output prints it:
// without user info at all (a token given as the user name, with no
// password part, is still a credential) and with secret query values
// redacted.
func shownEndpoint(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = nil
		raw = u.String()
	}
	return redact.RedactURL(raw)
}

// otlpHeaders merges the OpenTelemetry environment variable's headers
// (key=value pairs, comma-separated, URL-encoded) with --otlp-header
// flags, which win.
func otlpHeaders(env string, flags []string) (map[string]string, error) {
	h := map[string]string{}
	for _, kv := range strings.Split(env, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		// Percent-encoding as the OpenTelemetry SDKs read it: a '+' in a
		// base64 credential is a '+', not a space.
		key, errK := url.PathUnescape(strings.TrimSpace(k))
		val, errV := url.PathUnescape(strings.TrimSpace(v))
		if !ok || key == "" || errK != nil || errV != nil {
			// The value may be a key: name the variable, never the text.
			return nil, fmt.Errorf("$%s: an entry is not key=value (URL-encoded)", otlpHeadersEnv)
		}
		h[key] = val
	}
	for i, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			// Without '=' the whole text may be "Authorization: Bearer
			// <token>" (curl's form): never echo it.
			return nil, fmt.Errorf("--otlp-header #%d is not KEY=VALUE (not curl's \"Key: value\"; its text is not shown, it may hold a credential)", i+1)
		}
		h[strings.TrimSpace(k)] = v
	}
	return h, nil
}

// kafkaPassword reads the SASL password from file, else from the
// environment.
func kafkaPassword(file string) (kafka.Password, error) {
	if file == "" {
		pw := os.Getenv(kafkaPasswordEnv)
		if pw == "" {
			return "", fmt.Errorf("--kafka-sasl-mechanism needs a password: --kafka-sasl-password-file FILE or $%s", kafkaPasswordEnv)
		}
		return kafka.Password(pw), nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the Kafka SASL password: %w", err)
	}
	return kafka.Password(strings.TrimRight(string(raw), "\r\n")), nil
}

// closeExporters delivers what the exporters hold until ctx ends and
// closes them; the error says, per exporter, what was lost (each
// exporter's errors start with its name). They close side by side: one
// whose peer is down takes the whole of ctx, and the others must not get
// it only once it has expired.
func closeExporters(ctx context.Context, exps []exporter) error {
	errs := make([]error, len(exps))
	var wg sync.WaitGroup
	for i, e := range exps {
		wg.Go(func() { errs[i] = e.close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// exporterDrain is how long record lets the exporters deliver what they
// hold once capture has stopped.
const exporterDrain = 10 * time.Second
