package session

import (
	"context"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/golden"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink"
)

// Replay runs a recording through a fresh session as synthesized HTTP/1.1
// and returns the events.
func Replay(ctx context.Context, rec *cassette.Recording, opt replay.Options) ([]*oisp.Event, *Session, error) {
	mem := &sink.Memory{}
	s, err := New(Options{Out: mem})
	if err != nil {
		return nil, nil, err
	}
	if opt.Stats == nil {
		opt.Stats = s.Stats
	}
	if err := s.Run(ctx, replay.New(rec, opt)); err != nil {
		return nil, s, err
	}
	return mem.Events(), s, nil
}

// ReplayGolden is Replay with the events in golden form (see package
// golden), as fixtures store them.
func ReplayGolden(ctx context.Context, rec *cassette.Recording, opt replay.Options) ([]map[string]any, error) {
	evs, _, err := Replay(ctx, rec, opt)
	if err != nil {
		return nil, err
	}
	out, err := golden.FromEvents(evs)
	if err != nil {
		return nil, err
	}
	golden.Canonical(out)
	return out, nil
}
