package http1

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// result is what a decoder run produced.
type result struct {
	xs    []*httpmsg.Exchange
	stats *stats.Counters
}

// run feeds chunks to a new decoder, closes it and returns the exchanges.
func run(chunks []flow.Chunk, lim httpmsg.Limits, opts Options) result {
	var r result
	r.stats = &stats.Counters{}
	info := &flow.Info{ID: "f1", TLS: true}
	d := NewWithOptions(info, httpmsg.SinkFunc(func(x *httpmsg.Exchange) { r.xs = append(r.xs, x) }), lim, r.stats, opts)
	last := t0
	for _, c := range chunks {
		d.Feed(c)
		last = c.At
	}
	d.Close(flow.CloseInfo{At: last.Add(time.Millisecond), Reason: "eof"})
	return r
}

// c2s and s2c build chunks; the i-th chunk of a test arrives at t0+i ms.
func c2s(i int, s string) flow.Chunk {
	return flow.Chunk{Dir: flow.ClientToServer, Data: []byte(s), At: t0.Add(time.Duration(i) * time.Millisecond)}
}

func s2c(i int, s string) flow.Chunk {
	return flow.Chunk{Dir: flow.ServerToClient, Data: []byte(s), At: t0.Add(time.Duration(i) * time.Millisecond)}
}

// both feeds all client bytes, then all server bytes, each as one chunk.
func both(client, server string) []flow.Chunk {
	var cs []flow.Chunk
	if client != "" {
		cs = append(cs, c2s(0, client))
	}
	if server != "" {
		cs = append(cs, s2c(1, server))
	}
	return cs
}

// split cuts s at the given offsets into chunks of one direction, all
// arriving at the same instant (so marks do not depend on the split).
func split(dir flow.Direction, s []byte, cuts []int, at time.Time) []flow.Chunk {
	var cs []flow.Chunk
	prev := 0
	for _, c := range cuts {
		if c <= prev || c >= len(s) {
			continue
		}
		cs = append(cs, flow.Chunk{Dir: dir, Data: bytes.Clone(s[prev:c]), At: at})
		prev = c
	}
	return append(cs, flow.Chunk{Dir: dir, Data: bytes.Clone(s[prev:]), At: at})
}

func randomCuts(rng *rand.Rand, n, max int) []int {
	cuts := make([]int, 0, n)
	for range n {
		if max > 1 {
			cuts = append(cuts, 1+rng.IntN(max-1))
		}
	}
	sort.Ints(cuts)
	return cuts
}

// summary is the part of an exchange most table tests check.
type summary struct {
	Seq       int
	Method    string
	Target    string
	Authority string
	ReqBody   string
	Status    int // 0: no response
	RespBody  string
	Complete  bool
	Partial   bool
}

func summarize(xs []*httpmsg.Exchange) []summary {
	var out []summary
	for _, x := range xs {
		s := summary{Seq: x.Seq, Method: x.Request.Method, Target: x.Request.Target, Authority: x.Request.Authority,
			ReqBody: string(x.Request.Body.Data), Partial: x.Partial}
		if x.Response != nil {
			s.Status = x.Response.Status
			s.RespBody = string(x.Response.Body.Data)
			s.Complete = x.Response.Complete
		}
		out = append(out, s)
	}
	return out
}

// chunked encodes body in chunks of the given sizes (the rest in one).
func chunked(body string, sizes ...int) string {
	var b strings.Builder
	for _, n := range sizes {
		if n > len(body) {
			n = len(body)
		}
		if n == 0 {
			continue
		}
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	if body != "" {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(body), body)
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func post(target, body string, extra ...string) string {
	return "POST " + target + " HTTP/1.1\r\nHost: api.example.com\r\n" + strings.Join(extra, "") +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func get(target string, extra ...string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: api.example.com\r\n" + strings.Join(extra, "") + "\r\n"
}

func ok(body string, extra ...string) string {
	return "HTTP/1.1 200 OK\r\n" + strings.Join(extra, "") + "Content-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// httprrRecord is one request/response pair of a Go httprr trace.
type httprrRecord struct{ req, resp []byte }

// readHTTPRR splits a httprr trace by its byte counts.
func readHTTPRR(t testing.TB, path string) []httprrRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const magic = "httprr trace v1\n"
	if !bytes.HasPrefix(data, []byte(magic)) {
		t.Fatalf("%s: not a httprr trace", path)
	}
	data = data[len(magic):]
	var recs []httprrRecord
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		var nreq, nresp int
		if _, err := fmt.Sscanf(string(data[:nl]), "%d %d", &nreq, &nresp); err != nil {
			t.Fatalf("%s: bad record header %q", path, data[:nl])
		}
		data = data[nl+1:]
		recs = append(recs, httprrRecord{req: data[:nreq], resp: data[nreq : nreq+nresp]})
		data = data[nreq+nresp:]
	}
	return recs
}

// canonicalHeader drops the fields net/http moves out of Header, for
// cross-checks.
func canonicalHeader(h http.Header) http.Header {
	c := h.Clone()
	for _, k := range []string{"Host", "Transfer-Encoding", "Content-Length", "Trailer"} {
		delete(c, k)
	}
	if len(c) == 0 {
		return nil
	}
	return c
}
