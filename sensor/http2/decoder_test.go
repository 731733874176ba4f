package http2_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oisp/oisp-sensor/sensor/flow"
	h2 "github.com/oisp/oisp-sensor/sensor/http2"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// chunk is one Feed call.
type chunk = flow.Chunk

// chunksOf turns records into chunks with one millisecond between records.
func chunksOf(recs []record) []chunk {
	out := make([]chunk, 0, len(recs))
	for i, r := range recs {
		out = append(out, chunk{Dir: r.Dir, Data: r.Data, Fin: r.Fin, Gap: r.Gap, At: epoch.Add(time.Duration(i) * time.Millisecond)})
	}
	return out
}

type result struct {
	xs  []*httpmsg.Exchange
	ctr *stats.Counters
}

func (r result) count(tok string) int64 { return r.ctr.Get(tok) }

func decodeChunks(t testing.TB, chunks []chunk, lim httpmsg.Limits) result {
	t.Helper()
	ctr := &stats.Counters{}
	var xs []*httpmsg.Exchange
	info := &flow.Info{ID: "f1", TLS: true, ALPN: "h2", SNI: "api.example.test"}
	d := h2.New(info, httpmsg.SinkFunc(func(x *httpmsg.Exchange) { xs = append(xs, x) }), lim, ctr)
	var last time.Time
	for _, c := range chunks {
		c.Data = bytes.Clone(c.Data)
		d.Feed(c)
		last = c.At
	}
	d.Close(flow.CloseInfo{At: last.Add(time.Millisecond), Reason: "eof"})
	for _, x := range xs {
		checkExchange(t, x, lim.WithDefaults())
	}
	return result{xs: xs, ctr: ctr}
}

func decodeRecs(t testing.TB, recs []record) result {
	return decodeChunks(t, chunksOf(recs), httpmsg.Limits{})
}

// checkExchange asserts invariants every delivered exchange must hold.
func checkExchange(t testing.TB, x *httpmsg.Exchange, lim httpmsg.Limits) {
	t.Helper()
	if x.Proto != "HTTP/2" {
		t.Errorf("stream %d: proto %q", x.StreamID, x.Proto)
	}
	if x.Partial != (len(x.Notes) > 0) {
		t.Errorf("stream %d: partial=%v but notes %q", x.StreamID, x.Partial, x.Notes)
	}
	bodies := []*httpmsg.Body{&x.Request.Body}
	if x.Response != nil {
		bodies = append(bodies, &x.Response.Body)
		if x.Response.Complete && x.Partial && slices.Contains(x.Notes, "response incomplete") {
			t.Errorf("stream %d: complete response noted incomplete", x.StreamID)
		}
	}
	for _, b := range bodies {
		if len(b.Data) > lim.MaxBody {
			t.Errorf("stream %d: body %d over cap %d", x.StreamID, len(b.Data), lim.MaxBody)
		}
		if len(b.Marks) > lim.MaxMarks {
			t.Errorf("stream %d: %d marks over cap", x.StreamID, len(b.Marks))
		}
		if !slices.IsSortedFunc(b.Marks, func(a, c httpmsg.Mark) int { return a.Offset - c.Offset }) {
			t.Errorf("stream %d: marks not sorted: %v", x.StreamID, b.Marks)
		}
		if n := len(b.Marks); n > 0 && b.Marks[n-1].Offset != len(b.Data) {
			t.Errorf("stream %d: last mark %d, body %d", x.StreamID, b.Marks[n-1].Offset, len(b.Data))
		}
		if len(b.Data) > 0 && len(b.Marks) == 0 {
			t.Errorf("stream %d: body without marks", x.StreamID)
		}
	}
}

func byStream(xs []*httpmsg.Exchange) map[int64]*httpmsg.Exchange {
	m := map[int64]*httpmsg.Exchange{}
	for _, x := range xs {
		m[x.StreamID] = x
	}
	return m
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// checkChatRecording checks the exchanges of recordChat.
func checkChatRecording(t *testing.T, r result) {
	t.Helper()
	if len(r.xs) != 8 {
		t.Fatalf("got %d exchanges; want 8", len(r.xs))
	}
	for i, x := range r.xs {
		if x.Seq != int(x.StreamID-1)/2 {
			t.Errorf("exchange %d: seq %d for stream %d", i, x.Seq, x.StreamID)
		}
	}
	m := byStream(r.xs)
	chat := m[1]
	if chat == nil {
		t.Fatal("no stream 1")
	}
	if chat.Partial {
		t.Errorf("chat partial: %q", chat.Notes)
	}
	req := chat.Request
	if req.Method != "POST" || req.Scheme != "https" || req.Authority != "api.example.test" || req.Target != "/v1/chat/completions" {
		t.Errorf("chat request line: %s %s://%s%s", req.Method, req.Scheme, req.Authority, req.Target)
	}
	if got := req.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("request content-type %q", got)
	}
	if got := req.Header.Get("Authorization"); got == "" {
		t.Errorf("authorization header not decoded (the decoder keeps it; redaction is above)")
	}
	if req.Header.Has(":path") {
		t.Error("pseudo-header in Header")
	}
	if !bytes.Equal(req.Body.Data, chatBody()) {
		t.Errorf("request body %d bytes; want %d", len(req.Body.Data), len(chatBody()))
	}
	resp := chat.Response
	if resp == nil || resp.Status != 200 || !resp.Complete {
		t.Fatalf("chat response %+v", resp)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("response content-type %q", got)
	}
	if !bytes.Equal(resp.Body.Data, joinEvents(sseEvents())) {
		t.Errorf("SSE body differs: %d bytes; want %d", len(resp.Body.Data), len(joinEvents(sseEvents())))
	}
	if len(resp.Body.Marks) < 10 {
		t.Errorf("SSE body has %d marks; want one per flushed write", len(resp.Body.Marks))
	}
	if !resp.Body.Marks[0].At.After(req.Start) {
		t.Errorf("first SSE byte at %v not after request start %v", resp.Body.Marks[0].At, req.Start)
	}

	models := m[3]
	if models.Request.Method != "GET" || models.Response.Status != 200 {
		t.Errorf("models: %s %d", models.Request.Method, models.Response.Status)
	}
	if got := models.Response.Header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("models content-encoding %q", got)
	}
	if mb := models.Response.Body; mb.ContentEncoding == "gzip" {
		if !bytes.Equal(mb.Data, modelsJSON()) {
			t.Errorf("models decoded body differs")
		}
	} else if !bytes.Equal(gunzip(t, mb.Data), modelsJSON()) {
		t.Errorf("models raw body does not gunzip to the JSON")
	}

	usage := m[5]
	if got := usage.Response.Trailer.Get("X-Usage-Tokens"); got != "472" {
		t.Errorf("usage trailer %q; trailers %v", got, usage.Response.Trailer)
	}
	if string(usage.Response.Body.Data) != `{"ok":true}` {
		t.Errorf("usage body %q", usage.Response.Body.Data)
	}
	echo := m[7]
	if echo.Response.Status != 201 || !bytes.Equal(echo.Response.Body.Data, chatBody()) {
		t.Errorf("echo: %d, %d bytes", echo.Response.Status, len(echo.Response.Body.Data))
	}
	targets := map[string]bool{}
	for id := int64(9); id <= 15; id += 2 {
		x := m[id]
		if x == nil || x.Partial || !bytes.Equal(x.Response.Body.Data, joinEvents(sseEvents())) {
			t.Errorf("concurrent stream %d incomplete", id)
			continue
		}
		targets[x.Request.Target] = true
	}
	if len(targets) != 4 {
		t.Errorf("concurrent targets %v", targets)
	}
	for _, tok := range []string{"http2.hpack_error", "http2.frame_invalid", "http2.resync_skipped_bytes", "http2.hpack_unknown_index"} {
		if n := r.count(tok); n != 0 {
			t.Errorf("%s = %d", tok, n)
		}
	}
}

func TestLiveConnection(t *testing.T) {
	recs := recordChat(t)
	checkChatRecording(t, decodeRecs(t, recs))
}

// checkCancelRecording checks recordCancel: the cancelled stream still
// yields its exchange, partial, with what arrived before the reset.
func checkCancelRecording(t *testing.T, r result) {
	t.Helper()
	m := byStream(r.xs)
	if len(m) != 4 {
		t.Fatalf("%d exchanges", len(m))
	}
	for _, id := range []int64{1, 5} {
		if x := m[id]; x.Partial || !bytes.Equal(x.Response.Body.Data, joinEvents(sseEvents()[:20])) {
			t.Errorf("stream %d: %q %d bytes", id, x.Notes, len(x.Response.Body.Data))
		}
	}
	c := m[3]
	// The HTTP layer cannot tell a cut event stream from a whole one whose
	// END_STREAM had not arrived: it says the client cancelled it.
	if c.Request.Target != "/v1/chat/completions?c=1" || c.Response == nil || c.Response.Complete || !hasNote(c, "stream reset by client: CANCEL") || !c.EndUnseen {
		t.Errorf("cancelled stream: target %q notes %q cancelled %v", c.Request.Target, c.Notes, c.EndUnseen)
	}
	if got := len(c.Response.Body.Data); got < 3*len(sseEvents()[0]) || got >= len(joinEvents(sseEvents()[:20])) {
		t.Errorf("cancelled stream body %d bytes", got)
	}
	if after := m[7]; after.Partial || after.Request.Target != "/v1/after-cancel" {
		t.Errorf("stream after the cancel: %q", after.Notes)
	}
}

func TestLiveCancel(t *testing.T) { checkCancelRecording(t, decodeRecs(t, recordCancel(t))) }

func TestRecordedCancel(t *testing.T) {
	checkCancelRecording(t, decodeRecs(t, readRecording(t, "cancel.bin")))
}

func TestRecordedConnection(t *testing.T) {
	checkChatRecording(t, decodeRecs(t, readRecording(t, "chat.bin")))
}

func TestSplitAnywhere(t *testing.T) {
	recs := readRecording(t, "chat.bin")
	whole := decodeRecs(t, recs)
	base := chunksOf(recs)
	cuts := map[string]func(i, n int) []int{
		"bytewise": func(_, n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i + 1
			}
			return out
		},
		"halves": func(_, n int) []int { return []int{n / 2} },
		"odd":    func(i, n int) []int { return []int{1, 1 + (i*7)%n, n - 1} },
		"nine":   func(_, n int) []int { return []int{9, 10, 18} },
	}
	for name, cut := range cuts {
		t.Run(name, func(t *testing.T) {
			split := decodeChunks(t, testutil.SplitChunks(base, cut), httpmsg.Limits{})
			if d := diffExchanges(whole.xs, split.xs); d != "" {
				t.Errorf("split decode differs:\n%s", d)
			}
		})
	}
	// Every single cut position of the first chunks (preface, SETTINGS,
	// HEADERS, first DATA) of each direction, decoding only that prefix.
	head := base[:min(len(base), 12)]
	want := decodeChunks(t, head, httpmsg.Limits{})
	for i := range head {
		for p := 1; p < len(head[i].Data); p++ {
			split := decodeChunks(t, testutil.SplitChunks(head, func(j, n int) []int {
				if j == i {
					return []int{p}
				}
				return nil
			}), httpmsg.Limits{})
			if d := diffExchanges(want.xs, split.xs); d != "" {
				t.Fatalf("cut chunk %d at %d differs:\n%s", i, p, d)
			}
		}
	}
}

// TestEOFPrefixes ends the flow after every prefix of the recording: no
// panic, never more exchanges than the whole, and every exchange that was
// complete before the cut equals the one from the whole recording.
func TestEOFPrefixes(t *testing.T) {
	recs := readRecording(t, "chat.bin")
	whole := byStream(decodeRecs(t, recs).xs)
	chunks := chunksOf(recs)
	var all []byte
	for _, c := range chunks {
		all = append(all, c.Data...)
	}
	total := len(all)
	for cut := 0; cut <= total; cut += max(1, total/700) {
		got := decodeChunks(t, testutil.Prefix(chunks, cut), httpmsg.Limits{})
		if len(got.xs) > len(whole) {
			t.Fatalf("cut %d: %d exchanges; whole has %d", cut, len(got.xs), len(whole))
		}
		for _, x := range got.xs {
			if x.Response != nil && x.Response.Complete && !x.Partial {
				if d := diffExchanges([]*httpmsg.Exchange{whole[x.StreamID]}, []*httpmsg.Exchange{x}); d != "" {
					t.Fatalf("cut %d: complete stream %d differs:\n%s", cut, x.StreamID, d)
				}
			} else if !x.Partial {
				t.Fatalf("cut %d: incomplete stream %d not partial", cut, x.StreamID)
			}
		}
	}
}

func diffExchanges(want, got []*httpmsg.Exchange) string {
	var b strings.Builder
	if len(want) != len(got) {
		return "different count: " + itoa(len(want)) + " vs " + itoa(len(got))
	}
	w, g := byStream(want), byStream(got)
	for id, a := range w {
		c := g[id]
		if c == nil {
			b.WriteString("missing stream " + itoa(int(id)) + "\n")
			continue
		}
		if d := exchangeDiff(a, c); d != "" {
			b.WriteString("stream " + itoa(int(id)) + ": " + d + "\n")
		}
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

func exchangeDiff(a, b *httpmsg.Exchange) string {
	ac, bc := *a, *b
	ac.Flow, bc.Flow = nil, nil
	if reflect.DeepEqual(&ac, &bc) {
		return ""
	}
	return cmp.Diff(a, b, cmpopts.IgnoreFields(httpmsg.Exchange{}, "Flow"),
		cmp.Comparer(func(x, y []byte) bool { return bytes.Equal(x, y) }))
}

// TestLiveCancelAfterWholeBody: the server declares a Content-Length,
// sends the whole body and holds END_STREAM back; the client reads every
// byte and closes the body, so Go's transport resets the stream with
// CANCEL. Nothing was cut, so the exchange is complete. On a second
// stream the server sends only half the declared body before waiting: that
// reset does cut the response, which stays partial.
func TestLiveCancelAfterWholeBody(t *testing.T) {
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"OK"},"finish_reason":"stop"}]}`)
	l := newLiveConn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(200)
		n, _ := strconv.Atoi(r.URL.Query().Get("read"))
		_, _ = w.Write(body[:n])
		w.(http.Flusher).Flush()
		select { // END_STREAM only once the client has given up
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}), nil)
	for _, n := range []int{len(body), len(body) / 2} {
		resp, err := l.cc.RoundTrip(newRequest(t, "POST", fmt.Sprintf("/v1/chat/completions?read=%d", n), chatBody()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	r := decodeRecs(t, l.finish(t))
	m := byStream(r.xs)
	whole, half := m[1], m[3]
	if whole == nil || half == nil {
		t.Fatalf("exchanges %v", m)
	}
	if whole.Partial || !whole.Response.Complete || !bytes.Equal(whole.Response.Body.Data, body) {
		t.Errorf("whole body read, then CANCEL: partial=%v notes %q", whole.Partial, whole.Notes)
	}
	if !half.Partial || half.Response.Complete || !hasNote(half, "stream reset by client: CANCEL") || half.EndUnseen {
		t.Errorf("half body read, then CANCEL: partial=%v notes %q cancelled %v", half.Partial, half.Notes, half.EndUnseen)
	}
	if n := r.count("http2.reset_after_complete"); n != 1 {
		t.Errorf("http2.reset_after_complete = %d, want 1", n)
	}
}
