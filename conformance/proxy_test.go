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
	return []capturePath{
		{name: "proxy-h1", run: throughProxy(h1, GoProxyClient{})},
		{name: "proxy-h2", run: throughProxy(h2, GoProxyClient{HTTP2: true})},
		{name: "proxy-socket", run: throughProxy(sock, GoProxyClient{HTTP2: true})},
		{name: "proxy-h1-curl", skip: CurlMissing, run: throughProxy(h1, CurlProxy{})},
		{name: "proxy-h2-curl", skip: CurlMissing, run: throughProxy(h2, CurlProxy{HTTP2: true})},
		{name: "proxy-h2-openai-go", applies: SDKProxy{}.Applies, run: throughProxy(h2, SDKProxy{})},
		{name: "proxy-h2-anthropic-go", applies: SDKProxy{Anthropic: true}.Applies, run: throughProxy(h2, SDKProxy{Anthropic: true})},
	}
}
