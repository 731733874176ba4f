package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink/kafka"
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
}

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
	if len(f.kafkaBrokers) > 0 {
		cfg := kafka.Config{
			Brokers: f.kafkaBrokers,
			Topic:   f.kafkaTopic,
			TLS:     f.kafkaTLS,
			CAFile:  f.kafkaCAFile,
			Stats:   st,
			Logger:  log,
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
	return exps, nil
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
// exporter's errors start with its name).
func closeExporters(ctx context.Context, exps []exporter) error {
	var errs []error
	for _, e := range exps {
		errs = append(errs, e.close(ctx))
	}
	return errors.Join(errs...)
}

// exporterDrain is how long record lets the exporters deliver what they
// hold once capture has stopped.
const exporterDrain = 10 * time.Second
