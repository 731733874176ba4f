package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// eventstreamFrame builds a real AWS eventstream frame (no headers) with
// valid prelude and message CRCs.
func eventstreamFrame(payload string) []byte {
	total := 16 + len(payload)
	b := make([]byte, 12, total)
	binary.BigEndian.PutUint32(b[0:], uint32(total))
	binary.BigEndian.PutUint32(b[4:], 0)
	binary.BigEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[:8]))
	b = append(b, payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func testRecording() *cassette.Recording {
	es := append(eventstreamFrame(`{"bytes":"e30="}`), eventstreamFrame(`{"bytes":"e319"}`)...)
	return &cassette.Recording{Format: cassette.FormatVCRPy, Interactions: []cassette.Interaction{
		{ // 0: SSE stream, recorded with stale framing headers
			Request: cassette.Request{Method: "POST", URL: "https://api.openai.com/v1/chat/completions?x=1&y=%2F",
				Header: http.Header{"Content-Type": {"application/json"}, "Content-Length": {"999"}, "Connection": {"keep-alive, X-Hop"}, "X-Hop": {"1"}, "Accept": {"a", "b"}},
				Body:   []byte(`{"stream":true}`)},
			Response: cassette.Response{Status: 200, Reason: "OK", Header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}, "Transfer-Encoding": {"chunked"}, "Content-Length": {"1"}},
				Body: []byte("data: {\"a\":1}\r\n\r\ndata: {\"a\":2}\n\nevent: done\ndata: [DONE]\n\n")},
		},
		{ // 1: plain JSON, same host: same connection
			Request:  cassette.Request{Method: "GET", URL: "https://api.openai.com:443/v1/models", Header: http.Header{}},
			Response: cassette.Response{Status: 429, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"error":{}}`)},
		},
		{ // 2: NDJSON over plain HTTP to a local port
			Request:  cassette.Request{Method: "POST", URL: "http://localhost:11434/api/chat", Header: http.Header{}, Body: []byte(`{}`)},
			Response: cassette.Response{Status: 200, Header: http.Header{"Content-Type": {"application/x-ndjson"}}, Body: []byte("{\"done\":false}\n{\"done\":true}\n")},
		},
		{ // 3: eventstream
			Request:  cassette.Request{Method: "POST", URL: "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude%3A0/invoke-with-response-stream", Header: http.Header{}, Body: []byte(`{}`)},
			Response: cassette.Response{Status: 200, Header: http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}}, Body: es},
		},
		{ // 4: Gemini JSON-array stream
			Request: cassette.Request{Method: "POST", URL: "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent", Header: http.Header{}, Body: []byte(`{}`)},
			Response: cassette.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}},
				Body: []byte("[{\"text\": \"a,]\"}\n,\r\n{\"text\": [1,2]}\n]")},
		},
		{ // 5: gzip-compressed SSE cannot be cut per event
			Request: cassette.Request{Method: "POST", URL: "https://api.anthropic.com/v1/messages", Header: http.Header{}, Body: []byte(`{}`)},
			Response: cassette.Response{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}, "Content-Encoding": {"gzip"}},
				Body: []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		},
		{ // 6: HEAD with a recorded body, 7: 204
			Request:  cassette.Request{Method: "HEAD", URL: "https://api.anthropic.com/v1/models", Header: http.Header{}},
			Response: cassette.Response{Status: 200, Header: http.Header{"Bad Name": {"x"}, "X-Bad-Value": {"a\r\nb"}}, Body: []byte("ignored")},
		},
		{
			Request:  cassette.Request{Method: "DELETE", URL: "https://api.anthropic.com/v1/files/f#frag", Header: http.Header{}},
			Response: cassette.Response{Status: 204, Header: http.Header{}},
		},
	}}
}

// wire is what one flow carried, reassembled per direction.
type wire struct {
	info         flow.Info
	client       []byte
	server       []byte
	clientChunks []flow.Chunk
	serverChunks []flow.Chunk
	exchanges    []int
}

func reassemble(flows []Flow) []wire {
	var out []wire
	for _, f := range flows {
		w := wire{info: f.Info, exchanges: f.Exchanges}
		for _, c := range f.Chunks {
			if c.Dir == flow.ClientToServer {
				w.client = append(w.client, c.Data...)
				w.clientChunks = append(w.clientChunks, c)
			} else {
				w.server = append(w.server, c.Data...)
				w.serverChunks = append(w.serverChunks, c)
			}
		}
		out = append(out, w)
	}
	return out
}

// checkWire parses every flow's bytes back with net/http and compares them
// with the recording: method, URL, request body, status, response body (as
// on the wire: de-chunked, still content-encoded) and headers.
func checkWire(t *testing.T, rec *cassette.Recording, flows []Flow) {
	t.Helper()
	seen := 0
	for _, w := range reassemble(flows) {
		cr := bufio.NewReader(bytes.NewReader(w.client))
		sr := bufio.NewReader(bytes.NewReader(w.server))
		for _, idx := range w.exchanges {
			seen++
			in := rec.Interactions[idx]
			req, err := http.ReadRequest(cr)
			if err != nil {
				t.Fatalf("interaction %d: ReadRequest: %v\n%q", idx, err, w.client)
			}
			reqBody, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatalf("interaction %d: request body: %v", idx, err)
			}
			scheme := "http"
			if w.info.TLS {
				scheme = "https"
			}
			if got, want := scheme+"://"+req.Host+req.RequestURI, normalURL(t, in.Request.URL); got != want {
				t.Errorf("interaction %d: URL %s, want %s", idx, got, want)
			}
			wantMethod := in.Request.Method
			if wantMethod == "" {
				wantMethod = "GET"
			}
			if req.Method != wantMethod || !bytes.Equal(reqBody, in.Request.Body) {
				t.Errorf("interaction %d: request %s %q, want %s %q", idx, req.Method, reqBody, wantMethod, in.Request.Body)
			}
			checkHeaders(t, idx, "request", req.Header, in.Request.Header)

			resp, err := http.ReadResponse(sr, req)
			if err != nil {
				t.Fatalf("interaction %d: ReadResponse: %v\n%q", idx, err, w.server)
			}
			respBody, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("interaction %d: response body: %v", idx, err)
			}
			wantBody := in.Response.Body
			if bodyless(req.Method, in.Response.Status) {
				wantBody = nil
			}
			if resp.StatusCode != in.Response.Status || !bytes.Equal(respBody, wantBody) {
				t.Errorf("interaction %d: response %d %.100q, want %d %.100q", idx, resp.StatusCode, respBody, in.Response.Status, wantBody)
			}
			checkHeaders(t, idx, "response", resp.Header, in.Response.Header)
		}
		if rest, _ := io.ReadAll(cr); len(rest) > 0 {
			t.Errorf("flow %s: %d client bytes after the last request", w.info.ID, len(rest))
		}
		if rest, _ := io.ReadAll(sr); len(rest) > 0 {
			t.Errorf("flow %s: %d server bytes after the last response", w.info.ID, len(rest))
		}
	}
	if seen != len(rec.Interactions) {
		t.Errorf("%d exchanges on the wire, %d recorded", seen, len(rec.Interactions))
	}
}

// normalURL is the URL as a client puts it on the wire: no fragment, no
// default port, unsendable bytes escaped.
func normalURL(t *testing.T, raw string) string {
	ep, err := parseEndpoint(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ep.scheme + "://" + ep.authority + ep.target
}

// checkHeaders: every recorded end-to-end header arrives with its values.
func checkHeaders(t *testing.T, idx int, what string, got, recorded http.Header) {
	t.Helper()
	conn := strings.ToLower(strings.Join(recorded.Values("Connection"), ","))
	for k, vs := range recorded {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop[ck] || strings.Contains(conn, strings.ToLower(k)) {
			if ck != "Host" && ck != "Content-Length" && ck != "Transfer-Encoding" && len(got.Values(k)) > 0 {
				t.Errorf("interaction %d: hop-by-hop %s header %s forwarded", idx, what, k)
			}
			continue
		}
		var valid []string
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) { // others are dropped and counted
				valid = append(valid, strings.Trim(v, " \t")) // optional whitespace is not part of a value
			}
		}
		if !httpguts.ValidHeaderFieldName(k) {
			valid = nil
		}
		if strings.Join(got.Values(k), "\x00") != strings.Join(valid, "\x00") {
			t.Errorf("interaction %d: %s header %s = %q, recorded %q", idx, what, k, got.Values(k), vs)
		}
	}
}

func TestSynthesizedWireParsesBack(t *testing.T) {
	rec := testRecording()
	counters := &stats.Counters{}
	flows, err := New(rec, Options{Stats: counters}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, rec, flows)
	if got := counters.Get(TokenBodyDropped); got != int64(len("ignored")) {
		t.Errorf("%s = %d", TokenBodyDropped, got)
	}
	if got := counters.Get(TokenHeaderDropped); got != 2 {
		t.Errorf("%s = %d, want 2", TokenHeaderDropped, got)
	}
}

func TestFlowsAndInfo(t *testing.T) {
	flows, err := New(testRecording(), Options{}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	// openai ×2 | localhost | bedrock | gemini | anthropic ×3
	wantExchanges := [][]int{{0, 1}, {2}, {3}, {4}, {5, 6, 7}}
	if len(flows) != len(wantExchanges) {
		t.Fatalf("%d flows, want %d", len(flows), len(wantExchanges))
	}
	for i, f := range flows {
		if fmt.Sprint(f.Exchanges) != fmt.Sprint(wantExchanges[i]) {
			t.Errorf("flow %d exchanges %v, want %v", i, f.Exchanges, wantExchanges[i])
		}
	}
	openai, local := flows[0].Info, flows[1].Info
	if openai.ID != "replay-1" || !openai.TLS || openai.SNI != "api.openai.com" || openai.RemoteHost != "api.openai.com" ||
		openai.RemotePort != 443 || openai.ALPN != "http/1.1" || openai.Method != flow.CaptureOther || openai.Transport != flow.TCP ||
		openai.Process.UID != -1 || !openai.Started.Equal(DefaultClock) {
		t.Errorf("openai flow info %+v", openai)
	}
	if local.ID != "replay-2" || local.TLS || local.SNI != "" || local.RemoteHost != "localhost" || local.RemotePort != 11434 {
		t.Errorf("local flow info %+v", local)
	}
	// The virtual clock: +1 ms per chunk across flows, +1 ms per close.
	at := DefaultClock
	for _, f := range flows {
		if !f.Info.Started.Equal(at) {
			t.Errorf("%s started %v, want %v", f.Info.ID, f.Info.Started, at)
		}
		for _, c := range f.Chunks {
			if !c.At.Equal(at) {
				t.Fatalf("%s chunk at %v, want %v", f.Info.ID, c.At, at)
			}
			at = at.Add(time.Millisecond)
		}
		if !f.Close.At.Equal(at) || f.Close.Reason != "eof" || !f.Chunks[len(f.Chunks)-1].Fin || f.Chunks[len(f.Chunks)-1].Dir != flow.ServerToClient {
			t.Errorf("%s close %+v", f.Info.ID, f.Close)
		}
		at = at.Add(time.Millisecond)
	}

	per, err := New(testRecording(), Options{PerFlow: PerExchange, IDPrefix: "x", CaptureMethod: flow.CaptureMITMProxy, ProcessInfo: flow.Process{PID: 7, Name: "python3"}}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	if len(per) != 8 || per[7].Info.ID != "x-8" || per[0].Info.Method != flow.CaptureMITMProxy || per[0].Info.Process.PID != 7 || per[0].Info.Process.UID != 0 {
		t.Errorf("per-exchange: %d flows, last %+v", len(per), per[len(per)-1].Info)
	}
}

func TestStreamsAreChunkedPerEvent(t *testing.T) {
	flows, err := New(testRecording(), Options{}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	ws := reassemble(flows)
	serverData := func(w wire) []string {
		var s []string
		for _, c := range w.serverChunks {
			s = append(s, string(c.Data))
		}
		return s
	}
	sse := serverData(ws[0])[:4] // head + 3 events, then the 429
	if !strings.HasPrefix(sse[0], "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n") {
		t.Errorf("SSE head %q", sse[0])
	}
	for i, want := range []string{"11\r\ndata: {\"a\":1}\r\n\r\n\r\n", "f\r\ndata: {\"a\":2}\n\n\r\n", "1a\r\nevent: done\ndata: [DONE]\n\n\r\n0\r\n\r\n"} {
		if sse[i+1] != want {
			t.Errorf("SSE event %d: %q, want %q", i, sse[i+1], want)
		}
	}
	if got := serverData(ws[1]); len(got) != 3 || got[1] != "f\r\n{\"done\":false}\n\r\n" {
		t.Errorf("NDJSON chunks %q", got)
	}
	if got := serverData(ws[2]); len(got) != 3 || !strings.HasPrefix(got[1], "20\r\n\x00\x00\x00\x20") {
		t.Errorf("eventstream chunks %q", got)
	}
	if got := serverData(ws[3]); len(got) != 4 || got[1] != "11\r\n[{\"text\": \"a,]\"}\n\r\n" || got[2] != "13\r\n,\r\n{\"text\": [1,2]}\n\r\n" || got[3] != "1\r\n]\r\n0\r\n\r\n" {
		t.Errorf("JSON array chunks %q", got)
	}
	if got := serverData(ws[4]); len(got) < 2 || !strings.HasPrefix(got[1], "14\r\n\x1f\x8b") {
		t.Errorf("gzip SSE chunks %q", got)
	}
	// A 429 JSON body goes with a Content-Length, head and body together.
	if got := serverData(ws[0]); got[4] != "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"error\":{}}" {
		t.Errorf("plain response %q", got[4])
	}
	req := string(ws[0].clientChunks[0].Data)
	if req != "POST /v1/chat/completions?x=1&y=%2F HTTP/1.1\r\nHost: api.openai.com\r\nAccept: a\r\nAccept: b\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"stream\":true}" {
		t.Errorf("request bytes %q", req)
	}
}

func TestSplitAnywhere(t *testing.T) {
	rec := testRecording()
	natural, err := New(rec, Options{}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(rec, Options{Seed: 42}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(rec, Options{Seed: 42}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(rec, Options{Seed: 43}).Plan()
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, rec, a)
	nw, aw, bw, cw := reassemble(natural), reassemble(a), reassemble(b), reassemble(c)
	moreChunks, differs := false, false
	for i := range nw {
		if !bytes.Equal(nw[i].client, aw[i].client) || !bytes.Equal(nw[i].server, aw[i].server) {
			t.Errorf("flow %d: split bytes differ from natural bytes", i)
		}
		if len(aw[i].serverChunks) > len(nw[i].serverChunks) {
			moreChunks = true
		}
		if len(aw[i].serverChunks) != len(bw[i].serverChunks) || len(aw[i].clientChunks) != len(bw[i].clientChunks) {
			t.Errorf("flow %d: same seed, different splits", i)
		}
		if len(aw[i].serverChunks) != len(cw[i].serverChunks) {
			differs = true
		}
	}
	if !moreChunks || !differs {
		t.Errorf("seeded split did not split (more=%v, seed-dependent=%v)", moreChunks, differs)
	}
	// Capacity is capped: appending to one piece must not touch the next.
	f := a[0]
	for i := 0; i+1 < len(f.Chunks); i++ {
		if cap(f.Chunks[i].Data) != len(f.Chunks[i].Data) {
			t.Fatalf("chunk %d has spare capacity", i)
		}
	}
}

// recorder is a flow.Handler that keeps the calls in order.
type recorder struct {
	calls  []string
	chunks map[string][]flow.Chunk
	cancel func()
	after  int
}

func (r *recorder) Open(info *flow.Info) { r.calls = append(r.calls, "open "+info.ID) }
func (r *recorder) Data(id string, c flow.Chunk) {
	r.calls = append(r.calls, "data "+id)
	if r.chunks == nil {
		r.chunks = map[string][]flow.Chunk{}
	}
	r.chunks[id] = append(r.chunks[id], c)
	if r.cancel != nil && len(r.calls) == r.after {
		r.cancel()
	}
}
func (r *recorder) Close(id string, ci flow.CloseInfo) {
	r.calls = append(r.calls, "close "+id+" "+ci.Reason)
}

func TestRunDeliversPlan(t *testing.T) {
	rec := testRecording()
	var h recorder
	if err := New(rec, Options{Seed: 7}).Run(context.Background(), &h); err != nil {
		t.Fatal(err)
	}
	plan, _ := New(rec, Options{Seed: 7}).Plan()
	n := 0
	for _, f := range plan {
		if h.calls[n] != "open "+f.Info.ID {
			t.Fatalf("call %d: %s", n, h.calls[n])
		}
		n += 1 + len(f.Chunks)
		if h.calls[n] != "close "+f.Info.ID+" eof" {
			t.Fatalf("call %d: %s", n, h.calls[n])
		}
		n++
		if len(h.chunks[f.Info.ID]) != len(f.Chunks) {
			t.Errorf("%s: %d chunks delivered, %d planned", f.Info.ID, len(h.chunks[f.Info.ID]), len(f.Chunks))
		}
	}
	if n != len(h.calls) {
		t.Errorf("%d calls, expected %d", len(h.calls), n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	stop := recorder{cancel: cancel, after: 3}
	err := New(rec, Options{Seed: 7}).Run(ctx, &stop)
	if !errors.Is(err, context.Canceled) || stop.calls[len(stop.calls)-1] != "close replay-1 source_closed" {
		t.Errorf("cancelled run: %v, calls %q", err, stop.calls)
	}
}

func TestBadRecordings(t *testing.T) {
	for _, u := range []string{"ftp://x/", "https:///nohost", "://", "https://x:99999/"} {
		rec := &cassette.Recording{Interactions: []cassette.Interaction{{Request: cassette.Request{Method: "GET", URL: u}, Response: cassette.Response{Status: 200}}}}
		if _, err := New(rec, Options{}).Plan(); err == nil || !strings.HasPrefix(err.Error(), "replay: interaction 0: ") {
			t.Errorf("%q: %v", u, err)
		}
		if err := New(rec, Options{}).Run(context.Background(), &recorder{}); err == nil {
			t.Errorf("%q: Run accepted it", u)
		}
	}
	rec := &cassette.Recording{Interactions: []cassette.Interaction{{Request: cassette.Request{Method: "GE T", URL: "http://x/"}, Response: cassette.Response{Status: 200}}}}
	if _, err := New(rec, Options{}).Plan(); err == nil {
		t.Error("method with a space accepted")
	}
	if _, err := New(&cassette.Recording{}, Options{PerFlow: "connection"}).Plan(); err == nil {
		t.Error("unknown PerFlow accepted")
	}
	empty, err := New(&cassette.Recording{}, Options{}).Plan()
	if err != nil || len(empty) != 0 {
		t.Errorf("empty recording: %v %d", err, len(empty))
	}
}

func TestOriginForm(t *testing.T) {
	for raw, want := range map[string]string{
		"https://h":                          "/",
		"https://h?q=1":                      "/?q=1",
		"https://h/a b/ü?x=%24alt#frag":      "/a%20b/%C3%BC?x=%24alt",
		"https://h/v1/models/g:generate?k=v": "/v1/models/g:generate?k=v",
	} {
		if got := originForm(raw); got != want {
			t.Errorf("originForm(%q) = %q, want %q", raw, got, want)
		}
	}
	if _, err := url.ParseRequestURI(originForm("https://h/a b/ü?x=1")); err != nil {
		t.Error(err)
	}
}

// TestSharedCorpusReplays synthesizes the shared recordings and parses them
// back (every 4th file; all with OISP_CASSETTE_ALL=1), natural and split.
func TestSharedCorpusReplays(t *testing.T) {
	const shared = "../../../../shared/cassettes"
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("shared corpus not present (%v)", err)
	}
	var files []string
	for _, src := range []string{"pydantic-ai", "openllmetry", "langchaingo"} {
		filepath.WalkDir(filepath.Join(shared, src), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.Contains(p, ".httprr")) {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) == 0 {
		t.Fatal("no shared recordings found")
	}
	all := os.Getenv("OISP_CASSETTE_ALL") != ""
	replayed := 0
	for i, f := range files {
		if !all && (i%4 != 0 || testing.Short() && i%20 != 0) {
			continue
		}
		rec, err := cassette.ReadFile(f)
		if errors.Is(err, cassette.ErrNotHTTP) {
			continue
		}
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			for _, seed := range []int64{0, int64(i) + 1} {
				flows, err := New(rec, Options{Seed: seed}).Plan()
				if err != nil {
					t.Fatal(err)
				}
				checkWire(t, rec, flows)
			}
		})
		replayed++
	}
	t.Logf("%d recordings replayed and parsed back", replayed)
}

// FuzzSynthesize: any interaction the source accepts must come out as wire
// bytes net/http parses back to the same exchange, natural or split.
func FuzzSynthesize(f *testing.F) {
	for _, in := range testRecording().Interactions {
		f.Add(in.Request.Method, in.Request.URL, in.Response.Status, in.Response.Header.Get("Content-Type"), in.Response.Header.Get("Content-Encoding"), in.Response.Body, int64(0))
	}
	f.Add("POST", "https://x/stream", 200, "application/json", "", []byte(`[{"a":"\"]"},{"b":[1,{"c":2}]}]`), int64(3))
	f.Add("POST", "https://x/", 200, "text/event-stream", "", []byte("\r\r\n\n\ndata: x"), int64(9))
	f.Add("POST", "https://x/", 200, "application/vnd.amazon.eventstream", "", []byte{0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 99}, int64(1))
	f.Fuzz(func(t *testing.T, method, rawURL string, status int, contentType, encoding string, body []byte, seed int64) {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		if encoding != "" {
			h.Set("Content-Encoding", encoding)
		}
		rec := &cassette.Recording{Interactions: []cassette.Interaction{{
			Request:  cassette.Request{Method: method, URL: rawURL, Header: http.Header{}, Body: body},
			Response: cassette.Response{Status: status, Header: h, Body: body},
		}}}
		flows, err := New(rec, Options{Seed: seed}).Plan()
		if err != nil {
			return
		}
		if _, err := url.ParseRequestURI(normalURL(t, rawURL)); err != nil {
			return // a target net/http itself refuses (bad %-escapes); our decoders read it
		}
		checkWire(t, rec, flows)
	})
}

// FuzzSplitEvents: event splitting never loses, reorders or invents bytes.
func FuzzSplitEvents(f *testing.F) {
	f.Add([]byte("data: a\r\n\r\ndata: b\n\n"))
	f.Add([]byte(`[{"a":"]"},{"b":1}]`))
	f.Add(append(eventstreamFrame("{}"), 1, 2, 3))
	f.Fuzz(func(t *testing.T, body []byte) {
		for kind := sseStream; kind <= jsonArrayStream; kind++ {
			parts := splitEvents(kind, body)
			if got := bytes.Join(parts, nil); !bytes.Equal(got, body) {
				t.Fatalf("kind %d: pieces %q do not make up %q", kind, parts, body)
			}
			for _, p := range parts {
				if len(p) == 0 {
					t.Fatalf("kind %d: empty piece", kind)
				}
			}
		}
	})
}
