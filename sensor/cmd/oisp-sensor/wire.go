package main

import (
	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// wireSource replays a recording over a real loopback TLS connection with a
// real Go client, tapped at the server's TLS boundary.
func wireSource(rec *cassette.Recording, transport string) (flow.Source, error) {
	return loopback.New(rec, loopback.Options{Transport: loopback.Transport(transport)}), nil
}
