package assemble

import (
	"bytes"
	"compress/gzip"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func newConfig(lim httpmsg.Limits) (*Config, *stats.Counters) {
	ctr := &stats.Counters{}
	c := &Config{Flow: &flow.Info{TLS: true}, Proto: "HTTP/2", Limits: lim, Rec: ctr, Prefix: "http2"}
	c.Init()
	return c, ctr
}

func head(kv ...string) Block {
	var b Block
	for i := 0; i+1 < len(kv); i += 2 {
		b.Fields = append(b.Fields, Field{Name: kv[i], Value: kv[i+1]})
	}
	return b
}

func TestCompleteExchange(t *testing.T) {
	c, _ := newConfig(httpmsg.Limits{})
	e := c.Start(1, 0, ms(0))
	e.Headers(Request, head(":method", "POST", ":scheme", "https", ":authority", "a.test", ":path", "/p?q=1",
		"cookie", "a=1", "cookie", "b=2", "x-multi", "1", "x-multi", "2"), ms(0))
	e.Data(Request, []byte("req"), ms(1))
	e.End(Request, ms(1))
	e.Headers(Response, head(":status", "200"), ms(2))
	e.Data(Response, []byte("ab"), ms(3))
	e.Data(Response, []byte("cd"), ms(3)) // same arrival: one mark
	e.Data(Response, []byte("ef"), ms(4))
	e.Headers(Response, head("grpc-status", "0"), ms(5))
	e.End(Response, ms(5))
	x := e.Finish(ms(6))
	if x.Partial || !x.Response.Complete {
		t.Fatalf("notes %q", x.Notes)
	}
	if x.Request.Header.Get("Cookie") != "a=1; b=2" || len(x.Request.Header.Values("X-Multi")) != 2 || x.Request.URL() != "https://a.test/p?q=1" {
		t.Errorf("request %+v", x.Request)
	}
	want := []httpmsg.Mark{{Offset: 4, At: ms(3)}, {Offset: 6, At: ms(4)}}
	if len(x.Response.Body.Marks) != 2 || x.Response.Body.Marks[0] != want[0] || x.Response.Body.Marks[1] != want[1] {
		t.Errorf("marks %v", x.Response.Body.Marks)
	}
	if x.Response.Trailer.Get("Grpc-Status") != "0" || !x.Response.End.Equal(ms(5)) || !x.Request.End.Equal(ms(1)) {
		t.Errorf("trailer %v end %v", x.Response.Trailer, x.Response.End)
	}
}

func TestMarksCap(t *testing.T) {
	c, _ := newConfig(httpmsg.Limits{MaxMarks: 3})
	e := c.Start(1, 0, ms(0))
	e.Headers(Response, head(":status", "200"), ms(0))
	for i := 1; i <= 10; i++ {
		e.Data(Response, []byte("x"), ms(i))
	}
	b := e.Finish(ms(20)).Response.Body
	want := []httpmsg.Mark{{Offset: 1, At: ms(1)}, {Offset: 2, At: ms(2)}, {Offset: 10, At: ms(10)}}
	if len(b.Marks) != 3 || b.Marks[0] != want[0] || b.Marks[1] != want[1] || b.Marks[2] != want[2] {
		t.Errorf("marks %v; want %v", b.Marks, want)
	}
}

func TestConnectionBodyBudget(t *testing.T) {
	c, ctr := newConfig(httpmsg.Limits{MaxBody: 100})
	c.BodyBudget = 150
	a, b := c.Start(1, 0, ms(0)), c.Start(3, 1, ms(0))
	a.Data(Response, bytes.Repeat([]byte("a"), 100), ms(1))
	b.Data(Response, bytes.Repeat([]byte("b"), 100), ms(1))
	if c.Held() != 150 || ctr.Get("http2.connection_body_budget_exceeded") != 50 {
		t.Fatalf("held %d counters %v", c.Held(), ctr.Snapshot())
	}
	xa := a.Finish(ms(2))
	if c.Held() != 50 || len(xa.Response.Body.Data) != 100 {
		t.Errorf("held %d after finishing a", c.Held())
	}
	b.Data(Response, bytes.Repeat([]byte("c"), 10), ms(3))
	if xb := b.Finish(ms(4)); !xb.Response.Body.Truncated || xb.Response.Body.Dropped != 50 || len(xb.Response.Body.Data) != 60 {
		t.Errorf("b body %d dropped %d", len(xb.Response.Body.Data), xb.Response.Body.Dropped)
	}
	if c.Held() != 0 {
		t.Errorf("held %d at the end", c.Held())
	}
}

func TestTrailersAfterMissedHead(t *testing.T) {
	c, _ := newConfig(httpmsg.Limits{})
	e := c.Start(1, 0, ms(0))
	e.Data(Response, []byte("tail"), ms(1))
	e.Headers(Response, Block{Fields: head("x-usage", "42").Fields, EndStream: true}, ms(2))
	e.End(Response, ms(2))
	x := e.Finish(ms(3))
	if x.Response.Trailer.Get("X-Usage") != "42" || x.Response.Status != 0 || !x.Partial {
		t.Errorf("response %+v notes %q", x.Response, x.Notes)
	}
	// Without body bytes, a block with unknown fields is taken as the head.
	e = c.Start(3, 1, ms(0))
	e.Headers(Response, Block{Fields: head("content-type", "text/plain").Fields, EndStream: true, Unknown: 1}, ms(1))
	if x := e.Finish(ms(2)); x.Response.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("head %+v", x.Response)
	}
}

func TestContentDecoding(t *testing.T) {
	c, _ := newConfig(httpmsg.Limits{})
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write([]byte("data: one\n\n"))
	_ = zw.Flush()
	first := z.Len()
	_, _ = zw.Write([]byte("data: two\n\n"))
	_ = zw.Close()
	e := c.Start(1, 0, ms(0))
	e.Headers(Response, head(":status", "200", "content-encoding", "gzip"), ms(0))
	e.Data(Response, z.Bytes()[:first], ms(1))
	e.Data(Response, z.Bytes()[first:], ms(2))
	e.End(Response, ms(2))
	b := e.Finish(ms(3)).Response.Body
	if string(b.Data) != "data: one\n\ndata: two\n\n" || b.ContentEncoding != "gzip" || b.WireLength != int64(z.Len()) {
		t.Fatalf("body %q enc %q", b.Data, b.ContentEncoding)
	}
	if len(b.Marks) != 2 || b.Marks[0].Offset != 11 || !b.Marks[0].At.Equal(ms(1)) {
		t.Errorf("marks %v (the first event's time must survive decoding)", b.Marks)
	}
}

func TestIncompleteNotes(t *testing.T) {
	c, _ := newConfig(httpmsg.Limits{})
	e := c.Start(1, 0, ms(0))
	e.Headers(Request, head(":method", "GET", ":path", "/"), ms(0))
	x := e.Finish(ms(1))
	if !x.Partial || x.Response != nil || len(x.Notes) != 2 {
		t.Errorf("notes %q", x.Notes)
	}
	defer func() {
		if recover() == nil {
			t.Error("second Finish did not panic")
		}
	}()
	e.Finish(ms(2))
}
