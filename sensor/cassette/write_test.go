package cassette

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vcr "gopkg.in/dnaeon/go-vcr.v4/pkg/cassette"
	"gopkg.in/dnaeon/go-vcr.v4/pkg/recorder"
)

func sampleRecording(t testing.TB) *Recording {
	wire := gz(t, []byte(`{"object":"list","data":[]}`))
	eventstream := []byte{0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff} // empty frame
	return &Recording{Format: FormatVCRPy, Interactions: []Interaction{
		{
			Request: Request{Method: "POST", URL: "https://api.openai.com/v1/chat/completions?api-version=2024-10-21", Proto: "HTTP/1.1",
				Header: http.Header{"Content-Type": {"application/json"}, "Accept": {"a", "b"}}, Body: []byte(`{"model":"gpt-4o","stream":true}`)},
			Response: Response{Status: 200, Reason: "OK", Proto: "HTTP/2.0",
				Header: http.Header{"Content-Type": {"text/event-stream"}, "Retry-After": {"1:30"}, "X-Flag": {"yes"}, "X-Num": {"1e5"}},
				Body:   []byte("data: {\"x\": \"caf\u00e9\"}\r\n\r\ndata: [DONE]\n\n  trailing spaces  \t\x00")},
		},
		{
			Request:  Request{Method: "GET", URL: "https://api.openai.com/v1/models", Header: http.Header{}},
			Response: Response{Status: 429, Header: http.Header{"Content-Encoding": {"gzip"}}, Body: wire},
		},
		{
			Request:  Request{Method: "POST", URL: "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse-stream", Header: http.Header{}, Body: []byte("{}")},
			Response: Response{Status: 200, Reason: "OK", Header: http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}}, Body: eventstream},
		},
	}}
}

func TestWriteRoundTrip(t *testing.T) {
	rec := sampleRecording(t)
	var buf bytes.Buffer
	if err := Write(&buf, rec); err != nil {
		t.Fatal(err)
	}
	back, err := Parse("roundtrip.yaml", buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	if back.Format != FormatGoVCR {
		t.Errorf("format %q", back.Format)
	}
	if diff := diffInteractions(rec.Interactions, back.Interactions); diff != "" {
		t.Errorf("round trip (-wrote +read):\n%s\n%s", diff, buf.Bytes())
	}

	// go-vcr itself must load it and hand out the same exchange.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := vcr.Load(filepath.Join(dir, "c"))
	if err != nil {
		t.Fatalf("go-vcr cassette.Load: %v", err)
	}
	if len(c.Interactions) != len(rec.Interactions) {
		t.Fatalf("go-vcr loaded %d interactions", len(c.Interactions))
	}
	for i, in := range rec.Interactions {
		resp, err := c.Interactions[i].GetHTTPResponse()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != in.Response.Status || !bytes.Equal(body, in.Response.Body) || resp.Request.URL.String() != in.Request.URL {
			t.Errorf("go-vcr interaction %d: %d %s %q", i, resp.StatusCode, resp.Request.URL, body)
		}
	}
}

func TestWriteRedactsSecrets(t *testing.T) {
	rec := &Recording{Interactions: []Interaction{{
		Request: Request{Method: "POST", URL: "https://user:pw@generativelanguage.googleapis.com/v1beta/models/g:generateContent?key=AIzaSECRET&alt=sse&X-Amz-Signature=abc",
			Header: http.Header{"Authorization": {"Bearer sk-SECRET"}, "X-Api-Key": {"sk-ant-SECRET"}, "Api-Key": {"az-SECRET"}, "X-Goog-Api-Key": {"AIzaSECRET"}, "Content-Type": {"application/json"}}},
		Response: Response{Status: 200, Header: http.Header{}},
	}}}
	var buf bytes.Buffer
	if err := Write(&buf, rec); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "SECRET") || strings.Contains(buf.String(), "pw@") || strings.Contains(buf.String(), "=abc") {
		t.Errorf("secret written:\n%s", buf.String())
	}
	back, err := Parse("r.yaml", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	in := back.Interactions[0]
	if in.Request.URL != "https://user:REDACTED@generativelanguage.googleapis.com/v1beta/models/g:generateContent?key=REDACTED&alt=sse&X-Amz-Signature=REDACTED" {
		t.Errorf("url %q", in.Request.URL)
	}
	if in.Request.Header.Get("Authorization") != Redacted || in.Request.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", in.Request.Header)
	}
	if rec.Interactions[0].Request.Header.Get("Authorization") != "Bearer sk-SECRET" {
		t.Error("Write modified its input")
	}
}

// roundTripFunc is an http.RoundTripper standing in for the network, so
// go-vcr's real recorder can record without sockets.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestReadGoVCRRecorderOutput reads a cassette written by go-vcr's own
// recorder (not by our Write).
func TestReadGoVCRRecorderOutput(t *testing.T) {
	wire := gz(t, []byte(`{"ok":true}`))
	upstream := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil { // a real transport sends the body; go-vcr records it as it is read
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return nil, err
			}
		}
		h := http.Header{"Content-Type": {"application/json"}}
		body := []byte(`{"id":"msg_1","usage":{"input_tokens":3}}`)
		if r.Method == http.MethodGet {
			h.Set("Content-Encoding", "gzip")
			body = wire
		}
		return &http.Response{StatusCode: 200, Status: "200 OK", Proto: "HTTP/2.0", ProtoMajor: 2, Header: h,
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	})
	name := filepath.Join(t.TempDir(), "recorded")
	r, err := recorder.New(name, recorder.WithMode(recorder.ModeRecordOnly), recorder.WithRealTransport(upstream), recorder.WithSkipRequestLatency(true))
	if err != nil {
		t.Fatal(err)
	}
	client := r.GetDefaultClient()
	req, _ := http.NewRequest("POST", "https://api.anthropic.com/v1/messages?beta=true", strings.NewReader(`{"model":"claude"}`))
	req.Header.Set("Content-Type", "application/json")
	for _, rq := range []*http.Request{req, mustRequest(t, "GET", "https://api.anthropic.com/v1/models")} {
		resp, err := client.Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadFile(name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Format != FormatGoVCR || len(rec.Interactions) != 2 {
		t.Fatalf("format %q, %d", rec.Format, len(rec.Interactions))
	}
	a, b := rec.Interactions[0], rec.Interactions[1]
	if a.Request.Method != "POST" || a.Request.URL != "https://api.anthropic.com/v1/messages?beta=true" || string(a.Request.Body) != `{"model":"claude"}` {
		t.Errorf("request %+v", a.Request)
	}
	if a.Response.Status != 200 || a.Response.Reason != "OK" || a.Response.Proto != "HTTP/2.0" || !strings.Contains(string(a.Response.Body), "input_tokens") {
		t.Errorf("response %+v", a.Response)
	}
	if !bytes.Equal(b.Response.Body, wire) || b.Response.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("gzip body %x %v", b.Response.Body, b.Response.Header)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
