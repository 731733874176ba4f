package conformance

import (
	"context"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// throughProxy replays over the capture proxy with drv.
func throughProxy(opt ProxyOptions, drv ProxyDriver) func(context.Context, *testing.T, *cassette.Recording) ([]*oisp.Event, error) {
	return func(ctx context.Context, t *testing.T, rec *cassette.Recording) ([]*oisp.Event, error) {
		return RunThroughProxy(ctx, rec, opt, drv)
	}
}

// proxyPaths are the capture-proxy paths: real clients reach the replay
// server only through the proxy (proxy settings and the sensor CA), the
// proxy's flows go into the session in-process or over the extension
// socket.
func proxyPaths() []capturePath {
	h1 := ProxyOptions{Transport: loopback.H1}
	h2 := ProxyOptions{Transport: loopback.H2}
	sock := ProxyOptions{Transport: loopback.H2, ViaSocket: true}
	h3 := ProxyOptions{Transport: loopback.H3}
	return []capturePath{
		{name: "proxy-h1", run: throughProxy(h1, GoProxyClient{})},
		{name: "proxy-h2", run: throughProxy(h2, GoProxyClient{HTTP2: true})},
		{name: "proxy-socket", run: throughProxy(sock, GoProxyClient{HTTP2: true})},
		// quic-go's HTTP/3 client dialling the proxy's QUIC listener.
		{name: "proxy-h3", run: throughProxy(h3, GoProxyH3Client{})},
		{name: "proxy-h1-curl", skip: CurlMissing, run: throughProxy(h1, CurlProxy{})},
		{name: "proxy-h2-curl", skip: CurlMissing, run: throughProxy(h2, CurlProxy{HTTP2: true})},
		{name: "proxy-h2-openai-go", applies: SDKProxy{}.Applies, run: throughProxy(h2, SDKProxy{})},
		{name: "proxy-h2-anthropic-go", applies: SDKProxy{Anthropic: true}.Applies, run: throughProxy(h2, SDKProxy{Anthropic: true})},
		// Node's fetch (undici) speaks HTTP/1.1 through a proxy.
		{name: "proxy-h1-node-openai", skip: NodeMissing, applies: NodeSDK{}.Applies, run: throughProxy(h1, NodeSDK{})},
		{name: "proxy-h1-node-anthropic", skip: NodeMissing, applies: NodeSDK{Anthropic: true}.Applies, run: throughProxy(h1, NodeSDK{Anthropic: true})},
	}
}

// driveProxyAgainst serves served behind a proxy rig and drives the client
// with what it expects, expected.
func driveProxyAgainst(t *testing.T, tr loopback.Transport, drv ProxyDriver, served, expected *cassette.Recording) error {
	t.Helper()
	rig, err := StartProxyRig(served, ProxyOptions{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	derr := drv.DriveProxy(context.Background(), rig, expected)
	if _, err := rig.Stop(); err != nil {
		t.Fatal(err)
	}
	return derr
}

// TestProxyClientsFailOnWrongBytes shows each proxy-path client's check
// can fail: served one response, expecting the recorded other.
func TestProxyClientsFailOnWrongBytes(t *testing.T) {
	type client struct {
		name string
		tr   loopback.Transport
		drv  ProxyDriver
		skip func() string
	}
	for _, c := range []client{
		{"go h1", loopback.H1, GoProxyClient{}, nil},
		{"go h2", loopback.H2, GoProxyClient{HTTP2: true}, nil},
		{"go h3", loopback.H3, GoProxyH3Client{}, nil},
		{"openai-go", loopback.H2, SDKProxy{}, nil},
		{"curl h2", loopback.H2, CurlProxy{HTTP2: true}, CurlMissing},
		{"node openai", loopback.H1, NodeSDK{}, NodeMissing},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != nil {
				if why := c.skip(); why != "" {
					t.Skip(why)
				}
			}
			// The cases up to the recorded failure, as this test has
			// always run them.
			checkVerdicts(t, chatVerdicts()[:4], func(t *testing.T, served, expected *cassette.Recording) error {
				return driveProxyAgainst(t, c.tr, c.drv, served, expected)
			})
		})
	}
}
