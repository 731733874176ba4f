//go:build unix

package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// countingHandler consumes flows the way a fast decoder would: it looks at
// every chunk and keeps nothing.
type countingHandler struct{ bytes, flows atomic.Int64 }

func (c *countingHandler) Open(*flow.Info)              { c.flows.Add(1) }
func (c *countingHandler) Data(_ string, ch flow.Chunk) { c.bytes.Add(int64(len(ch.Data))) }
func (c *countingHandler) Close(string, flow.CloseInfo) {}

func benchWorld(b *testing.B, bodySize int) *world {
	w := newWorld(b)
	body := bytes.Repeat([]byte("x"), bodySize)
	w.serveTLS(b, apiHost, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(body)
	}))
	w.handler = &countingHandler{}
	w.start(b, Config{Logger: quiet(), NoProcessLookup: os.Getenv("BENCH_NO_LOOKUP") != ""})
	return w
}

func get(b *testing.B, c *http.Client) {
	resp, err := c.Get("https://" + apiHost + "/v1/models")
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatal(resp.Status)
	}
}

// cpuTime is the CPU time (user+system) this process has used. The
// benchmark process holds client, proxy and server, so the difference
// between direct and proxy runs is the proxy's cost, and unlike wall time
// it is barely affected by other load on the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timed runs the request loop, reporting p50/p90/p99 latency, requests/s and
// CPU per request.
func timed(b *testing.B, c *http.Client) {
	get(b, c) // warm: connection, TLS, leaf cache
	lat := make([]time.Duration, 0, 1024)
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		get(b, c)
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.90), "p90-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(len(lat)), "cpu-µs/req")
}

// BenchmarkWarm compares a request on a kept-alive connection made
// directly and through the proxy (1 KiB response body).
func BenchmarkWarm(b *testing.B) {
	for _, proto := range []string{"http/1.1", "h2"} {
		for _, via := range []string{"direct", "proxy"} {
			b.Run(fmt.Sprintf("%s/%s", proto, via), func(b *testing.B) {
				w := benchWorld(b, 1024)
				c := w.directClient(proto, true)
				if via == "proxy" {
					c = w.client(proto, true)
				}
				defer c.CloseIdleConnections()
				timed(b, c)
			})
		}
	}
}

// BenchmarkNewConnection compares a request on a fresh connection (TCP +
// TLS handshakes each time; through the proxy: CONNECT, upstream dial and
// two handshakes, with the leaf certificate cached).
func BenchmarkNewConnection(b *testing.B) {
	for _, via := range []string{"direct", "proxy"} {
		b.Run(via, func(b *testing.B) {
			w := benchWorld(b, 1024)
			c := w.directClient("http/1.1", false)
			if via == "proxy" {
				c = w.client("http/1.1", false)
			}
			timed(b, c)
		})
	}
}

// BenchmarkParallel measures throughput with 8 concurrent clients on
// kept-alive HTTP/1.1 connections.
func BenchmarkParallel(b *testing.B) {
	for _, via := range []string{"direct", "proxy"} {
		b.Run(via, func(b *testing.B) {
			w := benchWorld(b, 1024)
			c := w.directClient("http/1.1", true)
			if via == "proxy" {
				c = w.client("http/1.1", true)
			}
			c.Transport.(*http.Transport).MaxIdleConnsPerHost = 8
			get(b, c)
			b.SetParallelism(4)
			cpu0 := cpuTime()
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, c)
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
		})
	}
}

// BenchmarkStreamingBody compares a 1 MiB response (SSE-sized reads)
// directly and through the proxy: the relay and tee cost per byte.
func BenchmarkStreamingBody(b *testing.B) {
	for _, via := range []string{"direct", "proxy"} {
		b.Run(via, func(b *testing.B) {
			w := benchWorld(b, 1<<20)
			c := w.directClient("http/1.1", true)
			if via == "proxy" {
				c = w.client("http/1.1", true)
			}
			b.SetBytes(1 << 20)
			timed(b, c)
		})
	}
}
