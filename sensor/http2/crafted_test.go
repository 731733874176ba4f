package http2_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/oisp/oisp-sensor/sensor/flow"
	h2 "github.com/oisp/oisp-sensor/sensor/http2"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

const (
	cs = flow.ClientToServer
	sc = flow.ServerToClient
)

// crafter writes frames with http2.Framer and header blocks with
// hpack.Encoder (one encoding context per direction, as a real peer has),
// recording one chunk per call.
type crafter struct {
	t    testing.TB
	recs []record
	hbuf [2]bytes.Buffer
	enc  [2]*hpack.Encoder
}

func newCrafter(t testing.TB) *crafter {
	c := &crafter{t: t}
	for i := range c.enc {
		c.enc[i] = hpack.NewEncoder(&c.hbuf[i])
	}
	return c
}

// start writes the client preface and both initial SETTINGS.
func (c *crafter) start(clientSettings, serverSettings []http2.Setting) *crafter {
	c.raw(cs, []byte(h2.ClientPreface))
	c.frames(cs, func(fr *http2.Framer) error { return fr.WriteSettings(clientSettings...) })
	c.frames(sc, func(fr *http2.Framer) error { return fr.WriteSettings(serverSettings...) })
	c.frames(cs, func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
	c.frames(sc, func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
	return c
}

func (c *crafter) raw(dir flow.Direction, p []byte) {
	c.recs = append(c.recs, record{Dir: dir, Data: bytes.Clone(p)})
}

func (c *crafter) gap(dir flow.Direction, n int64) {
	c.recs = append(c.recs, record{Dir: dir, Gap: n})
}

// frames records everything fn writes as one chunk.
func (c *crafter) frames(dir flow.Direction, fn func(fr *http2.Framer) error) {
	c.t.Helper()
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.AllowIllegalWrites = true
	if err := fn(fr); err != nil {
		c.t.Fatalf("write frames: %v", err)
	}
	c.raw(dir, b.Bytes())
}

// block HPACK-encodes name/value pairs with the direction's encoder.
func (c *crafter) block(dir flow.Direction, kv ...string) []byte {
	c.t.Helper()
	c.hbuf[dir].Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := c.enc[dir].WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			c.t.Fatal(err)
		}
	}
	return bytes.Clone(c.hbuf[dir].Bytes())
}

func (c *crafter) headers(dir flow.Direction, id uint32, end bool, kv ...string) {
	blk := c.block(dir, kv...)
	c.frames(dir, func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk, EndStream: end, EndHeaders: true})
	})
}

func (c *crafter) data(dir flow.Direction, id uint32, end bool, p []byte) {
	c.frames(dir, func(fr *http2.Framer) error { return fr.WriteData(id, end, p) })
}

func reqFields(method, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", "https", ":authority", "api.example.test", ":path", path}, extra...)
}

// feedAll feeds chunks without closing and returns the decoder and what
// was delivered so far.
func feedAll(t testing.TB, recs []record, lim httpmsg.Limits) (*h2.Decoder, *[]*httpmsg.Exchange, *stats.Counters) {
	t.Helper()
	ctr := &stats.Counters{}
	xs := &[]*httpmsg.Exchange{}
	d := h2.New(&flow.Info{ID: "f", TLS: true}, httpmsg.SinkFunc(func(x *httpmsg.Exchange) {
		checkExchange(t, x, lim.WithDefaults())
		*xs = append(*xs, x)
	}), lim, ctr)
	for _, ch := range chunksOf(recs) {
		d.Feed(ch)
	}
	return d, xs, ctr
}

func only(t testing.TB, r result) *httpmsg.Exchange {
	t.Helper()
	if len(r.xs) != 1 {
		t.Fatalf("got %d exchanges; want 1", len(r.xs))
	}
	return r.xs[0]
}

func hasNote(x *httpmsg.Exchange, sub string) bool {
	return slices.ContainsFunc(x.Notes, func(n string) bool { return strings.Contains(n, sub) })
}

// TestPaddingPriorityContinuationTrailers covers RFC 9113 §6.1 padding,
// §6.2 priority fields and §6.10 CONTINUATION, and trailers on both sides.
func TestPaddingPriorityContinuationTrailers(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	blk := c.block(cs, reqFields("POST", "/v1/messages", "content-type", "application/json", "x-api-key", "k-test", "te", "trailers")...)
	third := len(blk) / 3
	c.frames(cs, func(fr *http2.Framer) error {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID: 1, BlockFragment: blk[:third], PadLength: 7,
			Priority: http2.PriorityParam{StreamDep: 0, Weight: 200, Exclusive: true},
		}); err != nil {
			return err
		}
		return fr.WriteContinuation(1, false, blk[third:2*third])
	})
	// The last CONTINUATION arrives in its own chunk.
	c.frames(cs, func(fr *http2.Framer) error { return fr.WriteContinuation(1, true, blk[2*third:]) })
	c.frames(cs, func(fr *http2.Framer) error {
		if err := fr.WritePriority(1, http2.PriorityParam{Weight: 15}); err != nil {
			return err
		}
		if err := fr.WritePing(false, [8]byte{1}); err != nil {
			return err
		}
		return fr.WriteDataPadded(1, false, []byte(`{"model":`), []byte{0, 0, 0, 0})
	})
	c.data(cs, 1, false, []byte(`"claude"}`))
	c.headers(cs, 1, true, "x-request-checksum", "abc")
	c.frames(sc, func(fr *http2.Framer) error {
		if err := fr.WriteWindowUpdate(0, 1<<20); err != nil {
			return err
		}
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(sc, ":status", "200", "content-type", "application/grpc"), EndHeaders: true, PadLength: 3})
	})
	c.frames(sc, func(fr *http2.Framer) error { return fr.WriteDataPadded(1, false, []byte("hello "), make([]byte, 200)) })
	c.data(sc, 1, false, []byte("world"))
	c.headers(sc, 1, true, "grpc-status", "0", "grpc-message", "ok")

	r := decodeRecs(t, c.recs)
	x := only(t, r)
	if x.Partial {
		t.Fatalf("partial: %q", x.Notes)
	}
	if x.Request.Method != "POST" || x.Request.Target != "/v1/messages" || x.Request.Authority != "api.example.test" {
		t.Errorf("request %+v", x.Request)
	}
	if got := x.Request.Header.Get("X-Api-Key"); got != "k-test" {
		t.Errorf("x-api-key %q", got)
	}
	if got := x.Request.Trailer.Get("X-Request-Checksum"); got != "abc" || x.Request.Header.Get("X-Request-Checksum") != "" {
		t.Errorf("request trailer %q (headers %v)", got, x.Request.Header)
	}
	if string(x.Request.Body.Data) != `{"model":"claude"}` {
		t.Errorf("request body %q (padding must be stripped)", x.Request.Body.Data)
	}
	if string(x.Response.Body.Data) != "hello world" || x.Response.Body.WireLength != 11 {
		t.Errorf("response body %q wire %d", x.Response.Body.Data, x.Response.Body.WireLength)
	}
	if got := x.Response.Trailer.Get("Grpc-Status"); got != "0" {
		t.Errorf("trailer grpc-status %q", got)
	}
	if x.Response.Trailer.Get("Grpc-Message") != "ok" || !x.Response.Complete {
		t.Errorf("trailers %v complete %v", x.Response.Trailer, x.Response.Complete)
	}
	if want := []httpmsg.Mark{{Offset: 6, At: x.Response.Body.Marks[0].At}, {Offset: 11, At: x.Response.Body.Marks[1].At}}; len(x.Response.Body.Marks) != 2 || x.Response.Body.Marks[0].Offset != want[0].Offset {
		t.Errorf("marks %v", x.Response.Body.Marks)
	}
}

func TestInformationalResponse(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	c.headers(cs, 1, false, reqFields("POST", "/upload", "expect", "100-continue")...)
	c.headers(sc, 1, false, ":status", "100")
	c.data(cs, 1, true, []byte("payload"))
	c.headers(sc, 1, false, ":status", "103", "link", "</style.css>; rel=preload")
	c.headers(sc, 1, false, ":status", "204")
	c.data(sc, 1, true, nil)
	x := only(t, decodeRecs(t, c.recs))
	if x.Response.Status != 204 || x.Partial || x.Response.Header.Get("Link") != "" {
		t.Errorf("final response %+v partial %v", x.Response, x.Notes)
	}
}

// TestRSTStream: a reset stream still yields its exchange, at once, with
// the response marked not completed.
func TestRSTStream(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	c.headers(cs, 1, true, reqFields("GET", "/v1/stream")...)
	c.headers(sc, 1, false, ":status", "200", "content-type", "text/event-stream")
	c.data(sc, 1, false, []byte("data: one\n\n"))
	c.frames(cs, func(fr *http2.Framer) error { return fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	c.headers(cs, 3, true, reqFields("GET", "/v1/refused")...)
	c.frames(sc, func(fr *http2.Framer) error { return fr.WriteRSTStream(3, http2.ErrCodeRefusedStream) })
	// Frames after the reset are dropped, not resurrecting the stream.
	c.data(sc, 1, true, []byte("data: late\n\n"))

	_, xs, ctr := feedAll(t, c.recs, httpmsg.Limits{})
	if len(*xs) != 2 {
		t.Fatalf("delivered %d before close; want 2", len(*xs))
	}
	a, b := (*xs)[0], (*xs)[1]
	if a.StreamID != 1 || a.Response == nil || a.Response.Complete || !a.Partial || !hasNote(a, "reset by client: CANCEL") {
		t.Errorf("stream 1: %+v notes %q", a.Response, a.Notes)
	}
	if string(a.Response.Body.Data) != "data: one\n\n" {
		t.Errorf("stream 1 body %q", a.Response.Body.Data)
	}
	if b.StreamID != 3 || b.Response != nil || !hasNote(b, "reset by server: REFUSED_STREAM") || b.Request.Target != "/v1/refused" {
		t.Errorf("stream 3: %+v notes %q", b.Response, b.Notes)
	}
	if ctr.Get("http2.untracked_stream_frames") != 1 {
		t.Errorf("late DATA not counted: %v", ctr.Snapshot())
	}
}

func TestGoAway(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	for _, id := range []uint32{1, 3, 5} {
		c.headers(cs, id, true, reqFields("GET", fmt.Sprintf("/r%d", id))...)
	}
	c.frames(sc, func(fr *http2.Framer) error { return fr.WriteGoAway(1, http2.ErrCodeNo, []byte("shutting down")) })
	c.headers(sc, 1, false, ":status", "200")
	c.data(sc, 1, true, []byte("ok"))

	_, xs, _ := feedAll(t, c.recs, httpmsg.Limits{})
	if len(*xs) != 3 {
		t.Fatalf("delivered %d; want 3", len(*xs))
	}
	for i, want := range []int64{3, 5, 1} {
		x := (*xs)[i]
		if x.StreamID != want {
			t.Fatalf("delivery %d is stream %d; want %d", i, x.StreamID, want)
		}
		if want == 1 {
			if x.Partial || !x.Response.Complete {
				t.Errorf("stream 1 should complete: %q", x.Notes)
			}
		} else if !hasNote(x, "GOAWAY last stream 1") || x.Response != nil {
			t.Errorf("stream %d notes %q", want, x.Notes)
		}
	}
}

// serverBigTable makes the server's HPACK encoder use a 64 KiB table and
// index a long header, so later responses refer to entries only a 64 KiB
// table still holds.
func serverBigTable(c *crafter) {
	c.enc[sc].SetMaxDynamicTableSizeLimit(65536)
	c.enc[sc].SetMaxDynamicTableSize(65536)
	long := strings.Repeat("v", 6000)
	for id := uint32(1); id <= 5; id += 2 {
		c.headers(cs, id, true, reqFields("GET", "/big")...)
		c.headers(sc, id, true, ":status", "200", fmt.Sprintf("x-long-%d", id), long)
	}
	// Re-sends all three: indexed references into a table over 4 KiB.
	c.headers(cs, 7, true, reqFields("GET", "/big")...)
	c.headers(sc, 7, true, ":status", "200", "x-long-1", long, "x-long-3", long, "x-long-5", long)
}

// TestSettingsHeaderTableSize: SETTINGS_HEADER_TABLE_SIZE sent by the client
// bounds the server's encoder, so it must size the decoder of server→client
// header blocks, not the client's.
func TestSettingsHeaderTableSize(t *testing.T) {
	t.Run("client setting applies to server blocks", func(t *testing.T) {
		c := newCrafter(t).start([]http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 65536}}, nil)
		serverBigTable(c)
		r := decodeRecs(t, c.recs)
		x := byStream(r.xs)[7]
		if x == nil || x.Partial || len(x.Response.Header.Values("X-Long-5")) != 1 || r.count("http2.hpack_error") != 0 {
			t.Fatalf("stream 7 not decoded: %v %v", x, r.ctr.Snapshot())
		}
	})
	t.Run("server setting does not", func(t *testing.T) {
		c := newCrafter(t).start(nil, []http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 65536}})
		serverBigTable(c)
		r := decodeRecs(t, c.recs)
		if r.count("http2.hpack_error") == 0 {
			t.Fatalf("a table size update over the client's limit was accepted: %v", r.ctr.Snapshot())
		}
		// Bodies and request heads are unaffected; the decoder recovers.
		if len(r.xs) != 4 {
			t.Fatalf("got %d exchanges", len(r.xs))
		}
	})
	t.Run("capped", func(t *testing.T) {
		c := newCrafter(t).start([]http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 1 << 31}}, nil)
		c.enc[sc].SetMaxDynamicTableSizeLimit(1 << 30)
		c.enc[sc].SetMaxDynamicTableSize(1 << 30)
		c.headers(cs, 1, true, reqFields("GET", "/")...)
		c.headers(sc, 1, true, ":status", "200")
		c.headers(cs, 3, true, reqFields("GET", "/after")...)
		c.headers(sc, 3, true, ":status", "404")
		r := decodeRecs(t, c.recs)
		if r.count("http2.header_table_size_capped") != 1 || r.count("http2.hpack_error") != 1 {
			t.Fatalf("counters %v", r.ctr.Snapshot())
		}
		// After the rejected block the direction decodes against a
		// placeholder table and still gets the literal and static fields.
		if x := byStream(r.xs)[3]; x.Response.Status != 404 {
			t.Fatalf("stream 3 response %+v", x.Response)
		}
	})
}

// TestPushPromise: promises are counted and ignored, their header blocks
// still keep the server's HPACK table in step.
func TestPushPromise(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	c.headers(cs, 1, true, reqFields("GET", "/index.html")...)
	promise := c.block(sc, ":method", "GET", ":scheme", "https", ":authority", "api.example.test", ":path", "/style.css", "x-shared", "inserted-by-promise")
	c.frames(sc, func(fr *http2.Framer) error {
		return fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: promise, EndHeaders: true})
	})
	c.headers(sc, 2, false, ":status", "200", "content-type", "text/css")
	c.data(sc, 2, true, []byte("body{}"))
	c.headers(sc, 1, false, ":status", "200", "x-shared", "inserted-by-promise")
	c.data(sc, 1, true, []byte("<html>"))
	r := decodeRecs(t, c.recs)
	x := only(t, r)
	if x.Partial || x.Response.Header.Get("X-Shared") != "inserted-by-promise" || string(x.Response.Body.Data) != "<html>" {
		t.Fatalf("stream 1: %+v %q", x.Response, x.Notes)
	}
	if r.count("http2.push_promise") != 1 || r.count("http2.pushed_stream_frames") != 2 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
}

func TestMaxTrackedStreams(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	for i := 0; i < 1100; i++ {
		c.headers(cs, uint32(2*i+1), true, reqFields("GET", fmt.Sprintf("/s/%d", i))...)
	}
	// A response for a dropped stream is counted, not resurrected.
	c.headers(sc, 2*1050+1, true, ":status", "200")
	r := decodeRecs(t, c.recs)
	if len(r.xs) != 1000 || r.count("http2.streams_dropped") != 100 {
		t.Fatalf("%d exchanges, counters %v", len(r.xs), r.ctr.Snapshot())
	}
	for _, x := range r.xs {
		if x.Response != nil || !hasNote(x, "no response") {
			t.Fatalf("stream %d: %+v", x.StreamID, x.Response)
		}
	}
}

// TestHeaderListCap: a header list over MaxHeaderBytes is truncated, and the
// HPACK table stays in step so the next request decodes exactly.
func TestHeaderListCap(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	var extra []string
	for i := 0; i < 40; i++ {
		extra = append(extra, fmt.Sprintf("x-h-%02d", i), strings.Repeat("abcdef", 10))
	}
	c.headers(cs, 1, true, reqFields("GET", "/big", extra...)...)
	c.headers(cs, 3, true, reqFields("GET", "/small", extra[len(extra)-4:]...)...)
	r := decodeChunks(t, chunksOf(c.recs), httpmsg.Limits{MaxHeaderBytes: 1024})
	m := byStream(r.xs)
	big, small := m[1], m[3]
	if !hasNote(big, "header list truncated") || len(big.Request.Header) >= 40 || big.Request.Target != "/big" {
		t.Errorf("stream 1: %d headers, notes %q", len(big.Request.Header), big.Notes)
	}
	if hasNote(small, "truncated") || small.Request.Header.Get("X-H-39") != strings.Repeat("abcdef", 10) || small.Request.Target != "/small" {
		t.Errorf("stream 3 after a truncated list: %v %q", small.Request.Header, small.Notes)
	}
	if r.count("http2.header_list_truncated") != 1 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
}

// TestContinuationFlood: an endless header block stays bounded: it is read
// but no longer decoded past the bound, and the stream after it decodes.
func TestContinuationFlood(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		count int
	}{
		{"large fragments", bytes.Repeat([]byte{0x40, 0x03, 'a', 'b', 'c', 0x03, 'x', 'y', 'z'}, 1000), 200},
		{"empty fragments", nil, 6000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCrafter(t).start(nil, nil)
			c.frames(cs, func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.block(cs, reqFields("GET", "/flood")...)})
			})
			for i := 0; i < tc.count; i++ {
				c.frames(cs, func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, tc.frame) })
			}
			c.frames(cs, func(fr *http2.Framer) error { return fr.WriteContinuation(1, true, nil) })
			c.headers(cs, 3, true, reqFields("GET", "/next-request-after-the-flood")...)
			r := decodeChunks(t, chunksOf(c.recs), httpmsg.Limits{MaxHeaderBytes: 16 << 10})
			if r.count("http2.continuation_flood") != 1 {
				t.Fatalf("counters %v", r.ctr.Snapshot())
			}
			m := byStream(r.xs)
			if m[1] == nil || !m[1].Partial || m[1].Request.Target != "/flood" {
				t.Errorf("flooded stream: %+v", m[1])
			}
			if x := m[3]; x == nil || x.Request.Target != "/next-request-after-the-flood" || x.Request.Method != "GET" {
				t.Errorf("stream after the flood: %+v", x)
			}
		})
	}
}

func TestInterruptedHeaderBlock(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	blk := c.block(cs, reqFields("GET", "/cut")...)
	c.frames(cs, func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:len(blk)-2]})
	})
	c.data(cs, 1, true, []byte("x")) // not a CONTINUATION
	c.headers(cs, 3, true, reqFields("GET", "/fresh-literal-path")...)
	r := decodeRecs(t, c.recs)
	if r.count("http2.continuation_missing") != 1 {
		t.Fatalf("counters %v", r.ctr.Snapshot())
	}
	m := byStream(r.xs)
	if !hasNote(m[1], "cut off") {
		t.Errorf("stream 1 notes %q", m[1].Notes)
	}
	if m[3].Request.Target != "/fresh-literal-path" {
		t.Errorf("stream 3 %+v", m[3].Request)
	}
}

func TestBodyCaps(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	c.headers(cs, 1, true, reqFields("GET", "/big")...)
	c.headers(sc, 1, false, ":status", "200")
	for i := 0; i < 10; i++ {
		c.data(sc, 1, false, bytes.Repeat([]byte{'a' + byte(i)}, 500))
	}
	c.data(sc, 1, true, nil)
	r := decodeChunks(t, chunksOf(c.recs), httpmsg.Limits{MaxBody: 1200, MaxMarks: 2})
	x := only(t, r)
	b := x.Response.Body
	if len(b.Data) != 1200 || !b.Truncated || b.Dropped != 3800 || b.WireLength != 5000 || !x.Partial {
		t.Fatalf("body len %d trunc %v dropped %d wire %d partial %v", len(b.Data), b.Truncated, b.Dropped, b.WireLength, x.Partial)
	}
	if !x.Response.Complete {
		t.Errorf("a capped body still ended on the wire")
	}
	if len(b.Marks) != 2 || b.Marks[0].Offset != 500 || b.Marks[1].Offset != 1200 {
		t.Errorf("marks %v", b.Marks)
	}
	if r.count("http2.body_truncated") != 3800 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
}

func TestCloseDeliversOpenStreamsPartial(t *testing.T) {
	c := newCrafter(t).start(nil, nil)
	c.headers(cs, 1, false, reqFields("POST", "/half")...)
	c.data(cs, 1, false, []byte("part"))
	c.headers(cs, 3, true, reqFields("GET", "/waiting")...)
	c.headers(sc, 3, false, ":status", "200")
	c.data(sc, 3, false, []byte("partial body"))
	d, xs, _ := feedAll(t, c.recs, httpmsg.Limits{})
	if len(*xs) != 0 {
		t.Fatalf("delivered %d before close", len(*xs))
	}
	d.Close(flow.CloseInfo{At: epoch.Add(time.Hour), Reason: "reset"})
	if len(*xs) != 2 {
		t.Fatalf("delivered %d at close", len(*xs))
	}
	a, b := (*xs)[0], (*xs)[1]
	if !hasNote(a, "request incomplete") || !hasNote(a, "no response") || string(a.Request.Body.Data) != "part" {
		t.Errorf("stream 1 %q", a.Notes)
	}
	if b.Response.Complete || !hasNote(b, "connection ended before the response (reset)") || !b.Response.End.Equal(epoch.Add(time.Hour)) {
		t.Errorf("stream 3 %q end %v", b.Notes, b.Response.End)
	}
	d.Close(flow.CloseInfo{}) // idempotent
	d.Feed(flow.Chunk{Dir: cs, Data: []byte("late")})
	if len(*xs) != 2 {
		t.Fatal("double close delivered again")
	}
}

func TestGarbageNeverPanics(t *testing.T) {
	for _, in := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		bytes.Repeat([]byte{0}, 100),
		bytes.Repeat([]byte{0xff}, 70000),
		[]byte(h2.ClientPreface + "\x00\x00\x04\x01\x05\x00\x00\x00\x01\x88"),
	} {
		for _, dir := range []flow.Direction{cs, sc} {
			r := decodeChunks(t, []chunk{{Dir: dir, Data: in, At: epoch}}, httpmsg.Limits{})
			if len(r.xs) > 1 {
				t.Errorf("%d exchanges from %q", len(r.xs), in[:min(len(in), 16)])
			}
		}
	}
}
