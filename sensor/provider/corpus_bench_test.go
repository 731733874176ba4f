package provider_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/http1"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/provider"
)

// corpusExchanges decodes every fixture cassette under ../../fixtures into
// HTTP exchanges once (HTTP/1.1 framing and content decoding are not what
// the provider benchmarks measure).
func corpusExchanges(tb testing.TB) ([]*httpmsg.Exchange, int64) {
	tb.Helper()
	cassettes, err := filepath.Glob(filepath.Join("..", "..", "fixtures", "*", "*", "cassette.yaml"))
	if err != nil || len(cassettes) == 0 {
		tb.Skipf("no fixtures: %v", err)
	}
	var (
		out   []*httpmsg.Exchange
		bytes int64
	)
	for _, path := range cassettes {
		rec, err := cassette.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		flows, err := replay.New(rec, replay.Options{IDPrefix: filepath.Base(filepath.Dir(path))}).Plan()
		if err != nil {
			tb.Fatal(err)
		}
		for i := range flows {
			f := &flows[i]
			sink := httpmsg.SinkFunc(func(x *httpmsg.Exchange) {
				out = append(out, x)
				bytes += int64(len(x.Request.Body.Data))
				if x.Response != nil {
					bytes += int64(len(x.Response.Body.Data))
				}
			})
			d := http1.New(&f.Info, sink, httpmsg.Limits{}, nil)
			for _, ch := range f.Chunks {
				d.Feed(ch)
			}
			d.Close(f.Close)
		}
	}
	return out, bytes
}

// decodeCorpusExchange runs the first matching API on x the way the
// pipeline does.
func decodeCorpusExchange(reg *provider.Registry, apis []provider.API, x *httpmsg.Exchange) *provider.Result {
	t, _ := reg.Lookup(strings.TrimSuffix(x.Request.Authority, ":443"), 0)
	for _, a := range apis {
		if !a.Match(t, x) {
			continue
		}
		if r, err := a.Decode(t, x, provider.Env{Registry: reg}); err == nil && r != nil {
			return r
		}
	}
	return nil
}

// BenchmarkProviderCorpus measures provider decoding alone over every
// exchange of every conformance fixture (request and response bodies).
func BenchmarkProviderCorpus(b *testing.B) {
	xs, n := corpusExchanges(b)
	reg, err := provider.LoadRegistry(provider.RegistryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	apis := provider.BuiltinAPIs()
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, x := range xs {
			decodeCorpusExchange(reg, apis, x)
		}
	}
	b.ReportMetric(float64(len(xs)), "exchanges/op")
}
