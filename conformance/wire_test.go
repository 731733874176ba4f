package conformance

import (
	"context"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
)

// overLoopback replays over a real loopback TLS server and Go client.
func overLoopback(tr loopback.Transport, drv loopback.Driver) func(context.Context, *testing.T, *cassette.Recording) ([]*oisp.Event, error) {
	return func(ctx context.Context, t *testing.T, rec *cassette.Recording) ([]*oisp.Event, error) {
		mem := &sink.Memory{}
		s, err := session.New(session.Options{Out: mem})
		if err != nil {
			return nil, err
		}
		if err := s.Run(ctx, loopback.New(rec, loopback.Options{Transport: tr, Client: drv})); err != nil {
			return nil, err
		}
		return mem.Events(), nil
	}
}

// wirePaths are the capture paths over real connections.
func wirePaths() []capturePath {
	return append([]capturePath{
		{name: "tls-h1-goclient", run: overLoopback(loopback.H1, nil)},
		{name: "tls-h2-goclient", run: overLoopback(loopback.H2, nil)},
		{name: "tls-h3-goclient", run: overLoopback(loopback.H3, nil)},
	}, clientPaths()...)
}
