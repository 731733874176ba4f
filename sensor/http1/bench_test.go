package http1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// benchFlow builds n keep-alive exchanges: a JSON POST of reqSize bytes
// answered by respSize bytes, with Content-Length or chunked in sseChunk
// pieces (an SSE-like stream) when sseChunk > 0.
//
// order records where each exchange starts in each direction, so the bytes
// can be fed in the order a real connection carries them.
func benchFlow(n, reqSize, respSize, sseChunk int) (client, server []byte, order [][2]int) {
	reqBody := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", max(reqSize-64, 0)) + `"}]}`
	event := "data: {\"choices\":[{\"delta\":{\"content\":\"token\"}}]}\n\n"
	respBody := strings.Repeat(event, respSize/len(event)+1)[:respSize]
	var c, s bytes.Buffer
	for range n {
		order = append(order, [2]int{c.Len(), s.Len()})
		fmt.Fprintf(&c, "POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nUser-Agent: OpenAI/Python 1.40.0\r\n"+
			"Authorization: Bearer sk-test\r\nContent-Type: application/json\r\nAccept: application/json\r\n"+
			"Accept-Encoding: gzip, deflate\r\nContent-Length: %d\r\n\r\n%s", len(reqBody), reqBody)
		s.WriteString("HTTP/1.1 200 OK\r\nDate: Mon, 18 Aug 2025 12:43:00 GMT\r\nContent-Type: text/event-stream\r\n" +
			"Openai-Processing-Ms: 237\r\nX-Request-Id: req_0123456789\r\nCf-Ray: 87084f286b44103c-LAX\r\n")
		if sseChunk > 0 {
			s.WriteString("Transfer-Encoding: chunked\r\n\r\n")
			for b := respBody; len(b) > 0; {
				k := min(sseChunk, len(b))
				fmt.Fprintf(&s, "%x\r\n%s\r\n", k, b[:k])
				b = b[k:]
			}
			s.WriteString("0\r\n\r\n")
		} else {
			fmt.Fprintf(&s, "Content-Length: %d\r\n\r\n%s", len(respBody), respBody)
		}
	}
	return c.Bytes(), s.Bytes(), order
}

// interleave feeds exchange by exchange: request i, then response i, each
// in size-byte pieces.
func interleave(client, server []byte, order [][2]int, size int) []flow.Chunk {
	var cs []flow.Chunk
	for i, o := range order {
		ce, se := len(client), len(server)
		if i+1 < len(order) {
			ce, se = order[i+1][0], order[i+1][1]
		}
		cs = append(cs, segments(flow.ClientToServer, client[o[0]:ce], size)...)
		cs = append(cs, segments(flow.ServerToClient, server[o[1]:se], size)...)
	}
	return cs
}

// segments cuts b into size-byte pieces, like TLS records read one at a time.
func segments(dir flow.Direction, b []byte, size int) []flow.Chunk {
	var cs []flow.Chunk
	for len(b) > 0 {
		k := min(size, len(b))
		cs = append(cs, flow.Chunk{Dir: dir, Data: b[:k], At: t0})
		b = b[k:]
	}
	return cs
}

var benchCases = []struct {
	name                          string
	n, reqSize, respSize, sseSize int
}{
	{"large bodies Content-Length", 8, 4 << 10, 256 << 10, 0},
	{"streamed chunked SSE", 8, 4 << 10, 64 << 10, 60},
	{"small exchanges", 100, 300, 500, 0},
}

// BenchmarkDecode compares this decoder with net/http's ReadRequest and
// ReadResponse (bodies read fully) on the same bytes in the same run.
func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchCases {
		client, server, order := benchFlow(bc.n, bc.reqSize, bc.respSize, bc.sseSize)
		chunks := interleave(client, server, order, 16<<10)
		total := int64(len(client) + len(server))

		b.Run(bc.name+"/http1", func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			exchanges, runs := 0, 0
			sink := httpmsg.SinkFunc(func(*httpmsg.Exchange) { exchanges++ })
			info := &flow.Info{TLS: true}
			allocs, cpu := mallocs(), cpuTime()
			for b.Loop() {
				runs++
				d := New(info, sink, httpmsg.Limits{}, stats.Discard{})
				for _, c := range chunks {
					d.Feed(c)
				}
				d.Close(flow.CloseInfo{})
			}
			if exchanges != bc.n*runs {
				b.Fatalf("%d exchanges; want %d", exchanges, bc.n*runs)
			}
			b.ReportMetric(float64(mallocs()-allocs)/float64(exchanges), "allocs/exchange")
			b.ReportMetric(float64(total*int64(runs))/1e6/(cpuTime()-cpu).Seconds(), "MB/cpu-s")
		})

		b.Run(bc.name+"/net-http", func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			exchanges, runs := 0, 0
			allocs, cpu := mallocs(), cpuTime()
			for b.Loop() {
				runs++
				cr := bufio.NewReader(bytes.NewReader(client))
				sr := bufio.NewReader(bytes.NewReader(server))
				for range bc.n {
					req, err := http.ReadRequest(cr)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadAll(req.Body); err != nil {
						b.Fatal(err)
					}
					resp, err := http.ReadResponse(sr, req)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadAll(resp.Body); err != nil {
						b.Fatal(err)
					}
					exchanges++
				}
			}
			b.ReportMetric(float64(mallocs()-allocs)/float64(exchanges), "allocs/exchange")
			b.ReportMetric(float64(total*int64(runs))/1e6/(cpuTime()-cpu).Seconds(), "MB/cpu-s")
		})
	}
}

// cpuTime is the CPU time the process has used (all threads, so garbage
// collection counts). On a shared machine it is a steadier measure of cost
// than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}
