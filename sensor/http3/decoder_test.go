package http3

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// chatBody is a realistic ~2 KiB chat completion request.
func chatBody() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o-mini","stream":true,"messages":[`)
	b.WriteString(`{"role":"system","content":"You are a careful assistant that answers briefly."}`)
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, `,{"role":"user","content":"Question %d: summarise the design of an incremental HTTP/3 decoder in one short paragraph, please."}`, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// sseEvents is a realistic ~8 KiB event stream, one event per write.
func sseEvents() [][]byte {
	var ev [][]byte
	for i := 0; i < 60; i++ {
		ev = append(ev, fmt.Appendf(nil, "data: {\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word%d \"}}]}\n\n", i))
	}
	return append(ev, []byte("data: [DONE]\n\n"))
}

// staticChat writes a chat exchange on stream id with static-only QPACK,
// the way quic-go's http3 client and server write it.
func (c *conn) staticChat(id int64, path string) {
	t := c.t
	body := chatBody()
	c.add(id, cs, frame(frameHeaders, staticSection(t, reqFields("POST", path, "content-type", "application/json", "authorization", "Bearer sk-test")...)), false)
	c.add(id, cs, frame(frameData, body[:700]), false)
	c.add(id, cs, append(frame(frameData, body[700:1500]), frame(frameData, body[1500:])...), true)
	c.add(id, sc, frame(frameHeaders, staticSection(t, ":status", "200", "content-type", "text/event-stream", "x-request-id", "req_"+fmt.Sprint(id))), false)
	for _, e := range sseEvents() {
		c.add(id, sc, frame(frameData, e), false)
	}
	c.add(id, sc, nil, true)
}

func checkChat(t *testing.T, x *httpmsg.Exchange, path string) {
	t.Helper()
	if x.Partial {
		t.Errorf("stream %d partial: %q", x.StreamID, x.Notes)
	}
	r := x.Request
	if r.Method != "POST" || r.Target != path || r.Authority != "api.example.test" || r.Scheme != "https" {
		t.Errorf("request %s %s://%s%s", r.Method, r.Scheme, r.Authority, r.Target)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") == "" {
		t.Errorf("request header %v", r.Header)
	}
	if !bytes.Equal(r.Body.Data, chatBody()) {
		t.Errorf("request body %d bytes", len(r.Body.Data))
	}
	resp := x.Response
	if resp == nil || resp.Status != 200 || !resp.Complete || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("response %+v", resp)
	}
	if !bytes.Equal(resp.Body.Data, bytes.Join(sseEvents(), nil)) {
		t.Errorf("response body %d bytes", len(resp.Body.Data))
	}
	if len(resp.Body.Marks) != len(sseEvents()) {
		t.Errorf("%d marks; want one per event", len(resp.Body.Marks))
	}
}

func TestStaticTableMatchesRFC(t *testing.T) {
	// Spot checks against RFC 9204 Appendix A.
	for i, want := range map[int][2]string{0: {":authority", ""}, 1: {":path", "/"}, 17: {":method", "GET"},
		25: {":status", "200"}, 31: {"accept-encoding", "gzip, deflate, br"}, 98: {"x-frame-options", "sameorigin"}} {
		if got := staticTable[i]; got.Name != want[0] || got.Value != want[1] {
			t.Errorf("static %d = %v; want %v", i, got, want)
		}
	}
}

func TestStaticExchanges(t *testing.T) {
	c := newConn(t)
	c.open(0, 0)
	c.staticChat(0, "/v1/chat/completions")
	c.staticChat(4, "/v1/chat/completions?n=1")
	r := decodeChunks(t, c.chunks, httpmsg.Limits{})
	if len(r.xs) != 2 {
		t.Fatalf("%d exchanges", len(r.xs))
	}
	checkChat(t, r.xs[0], "/v1/chat/completions")
	checkChat(t, r.xs[1], "/v1/chat/completions?n=1")
	if r.xs[0].Seq != 0 || r.xs[1].Seq != 1 || r.xs[1].StreamID != 4 {
		t.Errorf("seq/stream %d/%d %d/%d", r.xs[0].Seq, r.xs[0].StreamID, r.xs[1].Seq, r.xs[1].StreamID)
	}
	if n := len(r.ctr.Snapshot()); n != 0 {
		t.Errorf("counters on a clean connection: %v", r.ctr.Snapshot())
	}
}

// dynamicConn builds a connection whose client uses the dynamic table in
// every way RFC 9204 allows: literal-name, static-name and dynamic-name
// inserts, duplicates, Huffman strings, and sections with relative,
// post-base and name-reference lines.
func dynamicConn(t testing.TB, blockFirst bool) *conn {
	c := newConn(t)
	c.open(0, 4096)
	e := newQenc(4096)
	enc := e.setCapacity(4096)
	enc = append(enc, e.insertStaticName(0, "api.example.test")...)                 // 0 :authority
	enc = append(enc, e.insertLiteral("user-agent", "oisp-test/3.0", true)...)      // 1
	enc = append(enc, e.insertLiteral("authorization", "Bearer sk-dyn", false)...)  // 2
	enc = append(enc, e.insertDynamicName(1, "oisp-test/3.1")...)                   // 3 user-agent
	enc = append(enc, e.duplicate(0)...)                                            // 4 :authority
	enc = append(enc, e.insertLiteral("x-trace", strings.Repeat("t", 40), true)...) // 5
	// Base 4: entries 0..3 by relative index, 4 and 5 by post-base index.
	base := uint64(4)
	sec := section(e.prefix(6, base),
		lineStatic(staticIndex(t, ":method", "POST")),
		lineStatic(staticIndex(t, ":scheme", "https")),
		linePostBase(base, 4), // :authority (the duplicate)
		lineStaticName(1, "/v1/responses", true),
		lineDynamic(base, 3),                        // user-agent: oisp-test/3.1
		lineDynamicName(base, 2, "Bearer sk-dyn-2"), // authorization, new value
		linePostBaseName(base, 5, "trace-value"),    // x-trace name
		lineLiteral("x-literal", "plain", false),
		lineStaticName(staticIndex(t, "content-type", "application/json"), "application/json", false),
	)
	if !blockFirst {
		c.add(clientEncoder, cs, enc, false)
	}
	c.add(0, cs, frame(frameHeaders, sec), false)
	c.add(0, cs, frame(frameData, []byte(`{"input":"hi"}`)), true)
	if blockFirst {
		// The section arrived first; the instructions trickle in.
		for i := range enc {
			c.add(clientEncoder, cs, enc[i:i+1], false)
		}
	}
	c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200", "content-type", "application/json")), false)
	c.add(0, sc, frame(frameData, []byte(`{"output":"hello"}`)), true)
	return c
}

func checkDynamic(t *testing.T, x *httpmsg.Exchange) {
	t.Helper()
	if x.Partial {
		t.Errorf("partial: %q", x.Notes)
	}
	r := x.Request
	want := map[string]string{"User-Agent": "oisp-test/3.1", "Authorization": "Bearer sk-dyn-2", "X-Trace": "trace-value", "X-Literal": "plain", "Content-Type": "application/json"}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q; want %q", k, got, v)
		}
	}
	if r.Method != "POST" || r.Authority != "api.example.test" || r.Target != "/v1/responses" {
		t.Errorf("request %s %s %s", r.Method, r.Authority, r.Target)
	}
	if string(x.Response.Body.Data) != `{"output":"hello"}` || !x.Response.Complete {
		t.Errorf("response %+v", x.Response)
	}
}

func TestDynamicTable(t *testing.T) {
	r := decodeChunks(t, dynamicConn(t, false).chunks, httpmsg.Limits{})
	if len(r.xs) != 1 {
		t.Fatalf("%d exchanges %v", len(r.xs), r.ctr.Snapshot())
	}
	checkDynamic(t, r.xs[0])
	if r.count("http3.qpack_blocked") != 0 || r.count("http3.qpack_error") != 0 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
}

// TestBlockedSection: the section arrives before the entries it needs; it
// waits (the body still flows), and the exchange is only delivered once it
// could be decoded.
func TestBlockedSection(t *testing.T) {
	c := dynamicConn(t, true)
	var xs []*httpmsg.Exchange
	r := decodeChunks(t, c.chunks, httpmsg.Limits{})
	xs = r.xs
	if len(xs) != 1 {
		t.Fatalf("%d exchanges", len(xs))
	}
	checkDynamic(t, xs[0])
	if r.count("http3.qpack_blocked") != 1 || r.count("http3.qpack_never_unblocked") != 0 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
	if string(xs[0].Request.Body.Data) != `{"input":"hi"}` {
		t.Errorf("body %q", xs[0].Request.Body.Data)
	}
}

// TestResponseWaitsForBlockedRequest: the response ends while the request
// section is still blocked; delivery waits for the table.
func TestResponseWaitsForBlockedRequest(t *testing.T) {
	c := newConn(t)
	c.open(0, 4096)
	e := newQenc(4096)
	sec := section(e.prefix(1, 1), lineStatic(staticIndex(t, ":method", "GET")), lineDynamic(1, 0))
	c.add(0, cs, frame(frameHeaders, sec), true)
	c.add(0, sc, append(frame(frameHeaders, staticSection(t, ":status", "204")), frame(frameData, nil)...), true)
	d, got, _ := feed(t, c.chunks)
	if len(*got) != 0 {
		t.Fatal("delivered while the request section was blocked")
	}
	d.Feed(flow.Chunk{StreamID: clientEncoder, Dir: cs, Data: slices2(e.setCapacity(100), e.insertStaticName(1, "/late")), At: epoch.Add(time.Second)})
	if len(*got) != 1 || (*got)[0].Request.Target != "/late" || (*got)[0].Partial {
		t.Fatalf("after unblocking: %+v", *got)
	}
}

func slices2(a, b []byte) []byte { return append(append([]byte(nil), a...), b...) }

func feed(t testing.TB, chunks []flow.Chunk) (*Decoder, *[]*httpmsg.Exchange, *result) {
	t.Helper()
	r := &result{ctr: &stats.Counters{}}
	got := &[]*httpmsg.Exchange{}
	d := New(&flow.Info{ID: "q", Transport: flow.QUIC, TLS: true}, httpmsg.SinkFunc(func(x *httpmsg.Exchange) {
		checkExchange(t, x, httpmsg.DefaultLimits())
		*got = append(*got, x)
	}), httpmsg.Limits{}, r.ctr)
	for _, c := range chunks {
		d.Feed(c)
	}
	return d, got, r
}

// TestNeverUnblocked: entries that never arrive leave the section blocked
// until Close, which decodes what it can (static and literal lines) and
// delivers the exchange partial.
func TestNeverUnblocked(t *testing.T) {
	c := newConn(t)
	c.open(0, 4096)
	e := newQenc(4096)
	sec := section(e.prefix(3, 3),
		lineStatic(staticIndex(t, ":method", "POST")),
		lineStaticName(1, "/v1/kept-literal", false),
		lineDynamic(3, 2),
		lineLiteral("x-kept", "yes", true),
	)
	c.add(0, cs, frame(frameHeaders, sec), false)
	c.add(0, cs, frame(frameData, []byte("body")), true)
	c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200")), true)
	r := decodeChunks(t, c.chunks, httpmsg.Limits{})
	if len(r.xs) != 1 {
		t.Fatalf("%d exchanges", len(r.xs))
	}
	x := r.xs[0]
	if x.Request.Target != "/v1/kept-literal" || x.Request.Method != "POST" || x.Request.Header.Get("X-Kept") != "yes" {
		t.Errorf("request %+v", x.Request)
	}
	if !hasNote(x, "never arrived") || string(x.Request.Body.Data) != "body" {
		t.Errorf("notes %q", x.Notes)
	}
	if r.count("http3.qpack_never_unblocked") != 1 || r.count("http3.qpack_unknown_entry") != 1 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
}

// TestBlockedBounds: sections that can never unblock stay within the
// blocked-stream bound; the rest are decoded at once, partial.
func TestBlockedBounds(t *testing.T) {
	c := newConn(t)
	c.open(0, 4096)
	e := newQenc(4096)
	for i := 0; i < 150; i++ {
		id := int64(4 * i)
		sec := section(e.prefix(50, 50), lineStatic(staticIndex(t, ":method", "GET")), lineStaticName(1, fmt.Sprintf("/b/%d", i), false), lineDynamic(50, 10))
		c.add(id, cs, frame(frameHeaders, sec), true)
	}
	r := decodeChunks(t, c.chunks, httpmsg.Limits{})
	if len(r.xs) != 150 {
		t.Fatalf("%d exchanges", len(r.xs))
	}
	// The server advertised QPACK_BLOCKED_STREAMS 16.
	if r.count("http3.qpack_blocked_overflow") != 134 || r.count("http3.qpack_never_unblocked") != 16 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
	for i, x := range r.xs {
		if x.Request.Target == "" || !x.Partial {
			t.Fatalf("exchange %d: %+v", i, x.Request)
		}
	}
}

func TestRequiredInsertCountWraps(t *testing.T) {
	// Capacity 320 gives MaxEntries 10, so the encoded count wraps every
	// 20 insertions.
	c := newConn(t)
	c.open(0, 320)
	e := newQenc(320)
	c.add(clientEncoder, cs, e.setCapacity(320), false)
	for i := 0; i < 57; i++ {
		c.add(clientEncoder, cs, e.insertLiteral("x-n", fmt.Sprint(i), false), false)
		ric := e.inserted
		sec := section(e.prefix(ric, ric), lineStatic(staticIndex(t, ":method", "GET")), lineStaticName(1, "/w", false), lineDynamic(ric, ric-1))
		id := int64(4 * i)
		c.add(id, cs, frame(frameHeaders, sec), true)
		c.add(id, sc, frame(frameHeaders, staticSection(t, ":status", "200")), true)
	}
	r := decodeChunks(t, c.chunks, httpmsg.Limits{})
	if len(r.xs) != 57 {
		t.Fatalf("%d exchanges %v", len(r.xs), r.ctr.Snapshot())
	}
	for i, x := range r.xs {
		if got := x.Request.Header.Get("X-N"); got != fmt.Sprint(i) || x.Partial {
			t.Fatalf("stream %d: x-n %q notes %q", x.StreamID, got, x.Notes)
		}
	}
}

func TestGreaseReservedAndUnexpected(t *testing.T) {
	c := newConn(t)
	c.open(0, 0)
	c.add(14, cs, append(append([]byte{0x21}, "grease stream"...), 0x01), false) // grease uni type 0x21
	c.add(15, sc, append([]byte{streamPush, 0x00}, "pushed"...), false)          // push stream
	c.add(1, sc, []byte("server-initiated bidi"), false)
	c.add(0, cs, frame(0x21+0x1f*3, []byte("grease")), false)
	c.add(0, cs, frame(frameHeaders, staticSection(t, reqFields("GET", "/g")...)), false)
	c.add(0, cs, frame(0x8, []byte{1, 2, 3, 4}), false)      // reserved (HTTP/2 WINDOW_UPDATE)
	c.add(0, cs, settings(0x21, 7), false)                   // SETTINGS on a request stream
	c.add(0, cs, frame(0x4242, []byte("unknown ext")), true) // unknown extension frame
	c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200")), false)
	c.add(0, sc, frame(framePushPromise, []byte{0, 0, 0}), false)
	c.add(0, sc, frame(frameData, []byte("ok")), true)
	r := decodeChunks(t, c.chunks, httpmsg.Limits{})
	if len(r.xs) != 1 || r.xs[0].Partial || string(r.xs[0].Response.Body.Data) != "ok" || r.xs[0].Request.Target != "/g" {
		t.Fatalf("exchanges %+v", r.xs)
	}
	for tok, want := range map[string]int64{"http3.frame_reserved": 1, "http3.frame_unexpected": 1, "http3.frame_unknown": 1,
		"http3.push_promise": 1, "http3.push_stream_bytes": 7, "http3.uni_stream_unknown": 1, "http3.server_bidi_stream_bytes": 21} {
		if got := r.count(tok); got != want {
			t.Errorf("%s = %d; want %d", tok, got, want)
		}
	}
}

func TestGoAway(t *testing.T) {
	c := newConn(t)
	c.open(0, 0)
	for _, id := range []int64{0, 4, 8, 12} {
		c.add(id, cs, frame(frameHeaders, staticSection(t, reqFields("GET", fmt.Sprintf("/r%d", id))...)), true)
	}
	c.add(serverControl, sc, frame(frameGoAway, []byte{8}), false)
	c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200")), true)
	d, got, _ := feed(t, c.chunks)
	if len(*got) != 3 {
		t.Fatalf("%d delivered", len(*got))
	}
	for i, want := range []int64{8, 12, 0} {
		x := (*got)[i]
		if x.StreamID != want || (want != 0) != hasNote(x, "GOAWAY stream 8") {
			t.Errorf("delivery %d: stream %d notes %q", i, x.StreamID, x.Notes)
		}
	}
	d.Close(flow.CloseInfo{})
	if len(*got) != 4 || !hasNote((*got)[3], "no response") {
		t.Errorf("stream 4 at close: %+v", (*got)[3])
	}
}

func TestGaps(t *testing.T) {
	t.Run("inside DATA keeps sync", func(t *testing.T) {
		c := newConn(t)
		c.open(0, 0)
		c.add(0, cs, frame(frameHeaders, staticSection(t, reqFields("GET", "/")...)), true)
		c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200")), false)
		payload := bytes.Repeat([]byte("abcdefghij"), 10)
		f := frame(frameData, payload)
		c.add(0, sc, f[:20], false)
		c.gap(0, sc, 50)
		c.add(0, sc, f[70:], false)
		c.add(0, sc, frame(frameHeaders, staticSection(t, "grpc-status", "0")), true)
		r := decodeChunks(t, c.chunks, httpmsg.Limits{})
		x := r.xs[0]
		if len(x.Response.Body.Data) != 50 || x.Response.Body.WireLength != 50 || x.Response.Complete || !hasNote(x, "response bytes lost") {
			t.Errorf("body %d complete %v notes %q", len(x.Response.Body.Data), x.Response.Complete, x.Notes)
		}
		if x.Response.Trailer.Get("Grpc-Status") != "0" {
			t.Errorf("trailer after the gap lost: %v", x.Response.Trailer)
		}
	})
	t.Run("across frames loses sync", func(t *testing.T) {
		c := newConn(t)
		c.open(0, 0)
		c.add(0, cs, frame(frameHeaders, staticSection(t, reqFields("GET", "/")...)), true)
		c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200")), false)
		c.gap(0, sc, 500)
		c.add(0, sc, frame(frameData, []byte("unparseable now")), true)
		r := decodeChunks(t, c.chunks, httpmsg.Limits{})
		x := r.xs[0]
		if r.count("http3.unsynced_bytes") == 0 || x.Response.Complete || len(x.Response.Body.Data) != 0 {
			t.Errorf("counters %v body %q", r.ctr.Snapshot(), x.Response.Body.Data)
		}
	})
	t.Run("encoder stream gap unblocks as unknown", func(t *testing.T) {
		c := newConn(t)
		c.open(0, 4096)
		e := newQenc(4096)
		c.add(0, cs, frame(frameHeaders, section(e.prefix(2, 2), lineStaticName(1, "/p", false), lineDynamic(2, 1))), true)
		c.gap(clientEncoder, cs, 30)
		c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200")), true)
		_, got, _ := feed(t, c.chunks)
		if len(*got) != 1 || (*got)[0].Request.Target != "/p" || !(*got)[0].Partial {
			t.Fatalf("not delivered at once after the encoder stream broke: %+v", (*got)[0])
		}
	})
}

func TestLimits(t *testing.T) {
	c := newConn(t)
	c.open(0, 0)
	var extra []string
	for i := 0; i < 30; i++ {
		extra = append(extra, fmt.Sprintf("x-h-%d", i), strings.Repeat("v", 50))
	}
	c.add(0, cs, frame(frameHeaders, staticSection(t, reqFields("GET", "/trunc", extra...)...)), true)
	c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200")), false)
	for i := 0; i < 10; i++ {
		c.add(0, sc, frame(frameData, bytes.Repeat([]byte{'a'}, 300)), false)
	}
	c.add(0, sc, nil, true)
	huge := staticSection(t, reqFields("GET", "/huge", "x-big", strings.Repeat("b", 5000))...)
	c.add(4, cs, frame(frameHeaders, huge), true)
	r := decodeChunks(t, c.chunks, httpmsg.Limits{MaxHeaderBytes: 1024, MaxBody: 1000, MaxMarks: 4})
	m := r.byStream()
	a, b := m[0], m[4]
	if !hasNote(a, "header list truncated") || a.Request.Target != "/trunc" || len(a.Request.Header) >= 30 {
		t.Errorf("stream 0: %d headers notes %q", len(a.Request.Header), a.Notes)
	}
	if len(a.Response.Body.Data) != 1000 || a.Response.Body.Dropped != 2000 || len(a.Response.Body.Marks) != 4 {
		t.Errorf("body %d dropped %d marks %d", len(a.Response.Body.Data), a.Response.Body.Dropped, len(a.Response.Body.Marks))
	}
	if !hasNote(b, "over the limit") || b.Request.Method != "" {
		t.Errorf("stream 4: %q", b.Notes)
	}
	if r.count("http3.header_section_too_large") != 1 || r.count("http3.header_list_truncated") != 1 || r.count("http3.body_truncated") != 2000 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
}

func TestMaxTrackedStreams(t *testing.T) {
	c := newConn(t)
	for i := 0; i < 1010; i++ {
		c.add(int64(4*i), cs, frame(frameHeaders, staticSection(t, reqFields("GET", "/")...)), false)
	}
	r := decodeChunks(t, c.chunks, httpmsg.Limits{})
	if len(r.xs) != 1000 || r.count("http3.streams_dropped") != 10 {
		t.Fatalf("%d exchanges %v", len(r.xs), r.ctr.Snapshot())
	}
}

func sameExchanges(t *testing.T, want, got []*httpmsg.Exchange) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d exchanges; want %d", len(got), len(want))
	}
	for i := range want {
		a, b := *want[i], *got[i]
		a.Flow, b.Flow = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("exchange %d differs:\n%+v\n%+v", i, a, b)
		}
	}
}

func scenarios(t testing.TB) map[string][]flow.Chunk {
	st := newConn(t)
	st.open(0, 0)
	st.staticChat(0, "/v1/chat/completions")
	st.staticChat(4, "/v1/chat/completions?x=1")
	return map[string][]flow.Chunk{
		"static":  st.chunks,
		"dynamic": dynamicConn(t, false).chunks,
		"blocked": dynamicConn(t, true).chunks,
	}
}

func TestSplitAnywhere(t *testing.T) {
	for name, chunks := range scenarios(t) {
		t.Run(name, func(t *testing.T) {
			whole := decodeChunks(t, chunks, httpmsg.Limits{})
			bytewise := decodeChunks(t, testutil.SplitChunks(chunks, func(_, n int) []int {
				out := make([]int, n)
				for i := range out {
					out[i] = i + 1
				}
				return out
			}), httpmsg.Limits{})
			sameExchanges(t, whole.xs, bytewise.xs)
			for p := 1; p < 40; p++ {
				split := decodeChunks(t, testutil.SplitChunks(chunks, func(i, n int) []int { return []int{p % n, (p*7 + i) % n} }), httpmsg.Limits{})
				sameExchanges(t, whole.xs, split.xs)
			}
		})
	}
}

// TestEOFPrefixes ends the flow after every prefix of each scenario.
func TestEOFPrefixes(t *testing.T) {
	for name, chunks := range scenarios(t) {
		t.Run(name, func(t *testing.T) {
			whole := decodeChunks(t, chunks, httpmsg.Limits{}).byStream()
			total := 0
			for _, c := range chunks {
				total += len(c.Data)
			}
			for cut := 0; cut <= total; cut += max(1, total/500) {
				got := decodeChunks(t, testutil.Prefix(chunks, cut), httpmsg.Limits{})
				for _, x := range got.xs {
					w := whole[x.StreamID]
					if w == nil {
						t.Fatalf("cut %d: unknown stream %d", cut, x.StreamID)
					}
					if !x.Partial {
						sameExchanges(t, []*httpmsg.Exchange{w}, []*httpmsg.Exchange{x})
					}
				}
			}
		})
	}
}

// TestEndUnseen: the connection ends while a streamed response sits
// between two DATA frames with no FIN (the client stopped reading at the
// stream's last event and the server reset its side). The exchange is
// partial but marked EndUnseen, so its content may settle it; a response
// cut inside a frame, or a request that never ended, is not.
func TestEndUnseen(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cut         int // bytes dropped from the end of the last DATA frame
		requestEnds bool
		want        bool
	}{
		{"between frames", 0, true, true},
		{"inside a frame", 5, true, false},
		{"request not ended", 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConn(t)
			c.open(0, 0)
			c.add(0, cs, frame(frameHeaders, staticSection(t, reqFields("POST", "/v1/chat/completions", "content-type", "application/json")...)), false)
			c.add(0, cs, frame(frameData, chatBody()), tc.requestEnds)
			c.add(0, sc, frame(frameHeaders, staticSection(t, ":status", "200", "content-type", "text/event-stream")), false)
			evs := sseEvents()
			for _, e := range evs[:len(evs)-1] {
				c.add(0, sc, frame(frameData, e), false)
			}
			last := frame(frameData, evs[len(evs)-1])
			c.add(0, sc, last[:len(last)-tc.cut], false)
			d, got, _ := feed(t, c.chunks)
			d.Close(flow.CloseInfo{At: epoch.Add(time.Second), Reason: "eof"})
			if len(*got) != 1 {
				t.Fatalf("%d exchanges", len(*got))
			}
			x := (*got)[0]
			if !x.Partial || x.Response == nil || x.Response.Complete || x.EndUnseen != tc.want {
				t.Errorf("partial %v complete %v EndUnseen %v (notes %q), want EndUnseen %v", x.Partial, x.Response != nil && x.Response.Complete, x.EndUnseen, x.Notes, tc.want)
			}
		})
	}
}
