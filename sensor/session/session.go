// Package session owns one run of the sensor: it loads the provider
// registry, makes the event builder and the pipeline, runs capture sources
// into it and flushes what is in flight at the end. The CLI and the
// conformance suite both start runs through it, so they exercise the same
// wiring.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/pipeline"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Version is the sensor's version, reported in every event's source.
const Version = "0.1.0"

// Options configure a session.
type Options struct {
	Out     pipeline.Recorder
	Content pipeline.ContentMode
	Limits  httpmsg.Limits
	Logger  *slog.Logger
	// ExtraHosts adds hosts to the provider registry (host or host:port →
	// provider id).
	ExtraHosts map[string]string
	// Host fixes the host object of events (tests); detected when nil.
	Host *oisp.Host
	// Entropy fixes event id randomness (tests); crypto/rand when nil.
	Entropy io.Reader
	// Stats are the session's counters; new ones when nil. Given, they
	// let exporters made before the session count into them (sink.*).
	Stats *stats.Counters
}

// Session is one run.
type Session struct {
	Registry *provider.Registry
	Builder  *oisp.Builder
	Pipeline *pipeline.Pipeline
	Stats    *stats.Counters
}

// New makes a session.
func New(opt Options) (*Session, error) {
	if opt.Out == nil {
		return nil, errors.New("session: no event output")
	}
	reg, err := provider.LoadRegistry(provider.RegistryOptions{ExtraHosts: opt.ExtraHosts})
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	b := oisp.NewBuilder(oisp.BuilderOptions{CollectorVersion: Version, Host: opt.Host, Entropy: opt.Entropy})
	st := opt.Stats
	if st == nil {
		st = &stats.Counters{}
	}
	p := pipeline.New(pipeline.Config{
		Registry: reg,
		Builder:  b,
		Out:      opt.Out,
		Limits:   opt.Limits,
		Stats:    st,
		Content:  opt.Content,
		Logger:   opt.Logger,
	})
	return &Session{Registry: reg, Builder: b, Pipeline: p, Stats: st}, nil
}

// Run runs src until it ends or ctx is cancelled, then flushes every flow
// still open so that what is in flight becomes events.
func (s *Session) Run(ctx context.Context, src flow.Source) error {
	err := src.Run(ctx, s.Pipeline)
	s.Pipeline.Flush(flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
