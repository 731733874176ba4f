package cassette

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func mustParse(t *testing.T, name, data string) *Recording {
	t.Helper()
	rec, err := Parse(name, []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return rec
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// vcrpyPlain mimics an openllmetry cassette: SSE text in a single-quoted
// folded scalar, a gzip wire body as !!binary, a botocore bytes header.
func vcrpyPlain(t testing.TB) (string, []byte) {
	wire := gz(t, []byte(`{"id":"chatcmpl-1","usage":{"prompt_tokens":5}}`))
	return `interactions:
- request:
    body: '{"model": "gpt-4o", "stream": true}'
    headers:
      Content-Type:
      - application/json
      X-Amz-Date:
      - !!binary |
        Y2Fm6Q==
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body:
      string: 'data: {"a": 1}


        data: [DONE]


        '
    headers:
      Content-Type:
      - text/event-stream
      Transfer-Encoding:
      - chunked
    status:
      code: 200
      message: OK
- request:
    body: null
    headers: {}
    method: GET
    uri: https://api.openai.com/v1/models?limit=2
  response:
    body:
      string: !!binary |
        ` + base64.StdEncoding.EncodeToString(wire) + `
    headers:
      Content-Encoding:
      - gzip
      Content-Length:
      - '` + fmt.Sprint(len(wire)) + `'
    status:
      code: 429
      message: Too Many Requests
version: 1
`, wire
}

func TestVCRPyPlain(t *testing.T) {
	text, wire := vcrpyPlain(t)
	rec := mustParse(t, "plain.yaml", text)
	if rec.Format != FormatVCRPy || len(rec.Interactions) != 2 {
		t.Fatalf("format %q, %d interactions", rec.Format, len(rec.Interactions))
	}
	a, b := rec.Interactions[0], rec.Interactions[1]
	if a.Request.Method != "POST" || a.Request.URL != "https://api.openai.com/v1/chat/completions" {
		t.Errorf("request %s %s", a.Request.Method, a.Request.URL)
	}
	if string(a.Request.Body) != `{"model": "gpt-4o", "stream": true}` {
		t.Errorf("request body %q", a.Request.Body)
	}
	if got := a.Request.Header.Get("X-Amz-Date"); got != "café" {
		t.Errorf("binary header value %q, want Latin-1 decoded café", got)
	}
	if string(a.Response.Body) != "data: {\"a\": 1}\n\ndata: [DONE]\n\n" {
		t.Errorf("SSE body %q", a.Response.Body)
	}
	if a.Response.Status != 200 || a.Response.Reason != "OK" || a.Response.Header.Get("Transfer-Encoding") != "chunked" {
		t.Errorf("response %d %q %v", a.Response.Status, a.Response.Reason, a.Response.Header)
	}
	if b.Request.Body != nil || b.Request.URL != "https://api.openai.com/v1/models?limit=2" {
		t.Errorf("second request %q body %q", b.Request.URL, b.Request.Body)
	}
	if !bytes.Equal(b.Response.Body, wire) || b.Response.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("gzip wire body not kept compressed: %x", b.Response.Body)
	}
	if b.Response.Status != 429 || b.Response.Reason != "Too Many Requests" {
		t.Errorf("status %d %q", b.Response.Status, b.Response.Reason)
	}
}

// parsedBodyYAML exercises PyYAML's scalar rules and json.dumps's output.
const parsedBodyYAML = `interactions:
- request:
    headers:
      content-length:
      - '999'
      content-type:
      - application/json
    method: POST
    parsed_body:
      model: gpt-4o
      temperature: 0.5
      top_p: 1.0e-05
      tiny: 1.5e-07
      big: 12345678901234567890
      huge: 1.0e+16
      not_float: 1e5
      words: inf
      yes_word: yes
      hex: 0x1F
      octal: 017
      sexa: 1:30
      nan: .nan
      negzero: -0.0
      messages:
      - role: user
        content: "caf\u00e9 \U0001F600 \"q\" \\ \t\x7f"
      empty_list: []
      empty_map: {}
      nothing: null
      flag: true
      200: numeric key
    uri: https://api.openai.com/v1/chat/completions?x=1
  response:
    headers:
      content-type:
      - application/json
    parsed_body:
    - 1
    - 2.50
    status:
      code: 200
      message: OK
version: 1
`

func TestVCRPyParsedBody(t *testing.T) {
	rec := mustParse(t, "pydantic.yaml", parsedBodyYAML)
	if rec.Format != FormatVCRPyParsedBody {
		t.Errorf("format %q", rec.Format)
	}
	in := rec.Interactions[0]
	// Produced by python3 -c 'json.dumps(yaml.safe_load(...))'.
	const want = `{"model": "gpt-4o", "temperature": 0.5, "top_p": 1e-05, "tiny": 1.5e-07, "big": 12345678901234567890, "huge": 1e+16, "not_float": "1e5", "words": "inf", "yes_word": true, "hex": 31, "octal": 15, "sexa": 90, "nan": NaN, "negzero": -0.0, "messages": [{"role": "user", "content": "caf\u00e9 \ud83d\ude00 \"q\" \\ \t\u007f"}], "empty_list": [], "empty_map": {}, "nothing": null, "flag": true, "200": "numeric key"}`
	if string(in.Request.Body) != want {
		t.Errorf("rebuilt request body\n got %s\nwant %s", in.Request.Body, want)
	}
	if got := in.Request.Header.Get("Content-Length"); got != fmt.Sprint(len(want)) {
		t.Errorf("Content-Length %s, want recomputed %d", got, len(want))
	}
	if string(in.Response.Body) != "[1, 2.5]" {
		t.Errorf("response body %q", in.Response.Body)
	}
	if in.Response.Header.Get("Content-Length") != "" {
		t.Errorf("Content-Length invented for a response that had none")
	}
}

func TestVCRPyLists(t *testing.T) {
	rec := mustParse(t, "lists.yaml", `requests:
- method: POST
  uri: https://api.anthropic.com/v1/messages
  body: '{"model":"claude"}'
  headers: {x-api-key: [PLACEHOLDER]}
- method: GET
  uri: https://api.anthropic.com/v1/models
  body: null
  headers: {}
responses:
- status: {code: 200, message: OK}
  headers: {content-type: [application/json]}
  body: {string: '{"id":"msg_1"}'}
- status: {code: 404, message: Not Found}
  headers: {}
  body: {string: ''}
`)
	if rec.Format != FormatVCRPyLists || len(rec.Interactions) != 2 {
		t.Fatalf("format %q, %d interactions", rec.Format, len(rec.Interactions))
	}
	if rec.Interactions[1].Response.Status != 404 || string(rec.Interactions[0].Response.Body) != `{"id":"msg_1"}` {
		t.Errorf("%+v", rec.Interactions)
	}
	_, err := Parse("uneven.yaml", []byte("requests: [{method: GET, uri: 'http://a/'}]\nresponses: []\n"))
	if err == nil || !strings.Contains(err.Error(), "1 requests but 0 responses") {
		t.Errorf("uneven lists: %v", err)
	}
}

func TestGoVCRHandWritten(t *testing.T) {
	rec := mustParse(t, "govcr.yaml", `---
version: 2
interactions:
    - id: 0
      request:
        proto: HTTP/1.1
        proto_major: 1
        proto_minor: 1
        content_length: 2
        host: generativelanguage.googleapis.com
        body: '{}'
        headers:
            Content-Type:
                - application/json
            Retry-After:
                - 1:30
        url: https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent?%24alt=json%3Benum-encoding%3Dint
        method: POST
      response:
        proto: HTTP/2.0
        proto_major: 2
        proto_minor: 0
        content_length: -1
        body: |
            {"candidates": []}
        headers:
            Content-Type:
                - application/json; charset=UTF-8
        status: 200 OK
        code: 200
        duration: 1.2s
`)
	if rec.Format != FormatGoVCR || len(rec.Interactions) != 1 {
		t.Fatalf("format %q, %d", rec.Format, len(rec.Interactions))
	}
	in := rec.Interactions[0]
	if in.Request.URL != "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent?%24alt=json%3Benum-encoding%3Dint" {
		t.Errorf("url %q", in.Request.URL)
	}
	if got := in.Request.Header.Get("Retry-After"); got != "1:30" {
		t.Errorf("go-vcr scalar read with Python rules: %q", got)
	}
	if in.Response.Proto != "HTTP/2.0" || in.Response.Status != 200 || in.Response.Reason != "OK" || string(in.Response.Body) != "{\"candidates\": []}\n" {
		t.Errorf("response %+v", in.Response)
	}
}

// httprrTrace builds a trace like langchaingo's: an HTTP/2.0 JSON response
// with Content-Length right after a request body; a chunked NDJSON response
// from local Ollama whose request has a bare-LF header line; a response with
// no length at all.
func httprrRecord(req, resp string) string {
	return fmt.Sprintf("%d %d\n%s%s", len(req), len(resp), req, resp)
}

func httprrTrace() string {
	rec := httprrRecord
	req1 := "POST https://api.anthropic.com/v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nUser-Agent: langchaingo-httprr\nContent-Length: 16\r\nX-Api-Key: test-api-key\r\n\r\n{\"stream\":true}\n"
	resp1 := "HTTP/2.0 200 OK\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"id\":\"m\"}\n"
	req2 := "POST http://localhost:11434/api/chat HTTP/1.1\r\nHost: localhost:11434\r\nContent-Length: 2\r\n\r\n{}"
	resp2 := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n\r\n" +
		"e\r\n{\"done\":false}\r\ne\r\n\n{\"done\":true}\r\n0\r\n\r\n"
	req3 := "GET https://en.wikipedia.org/w/api.php?action=query&format=json HTTP/1.1\r\nHost: en.wikipedia.org\r\n\r\n"
	resp3 := "HTTP/2.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such page"
	return httprrMagic + rec(req1, resp1) + rec(req2, resp2) + rec(req3, resp3)
}

func TestHTTPRR(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"trace.httprr", []byte(httprrTrace())},
		{"trace.httprr.gz", gz(t, []byte(httprrTrace()))},
		// an editor's final newline is not a record
		{"newline.httprr", []byte(httprrTrace() + "\n")},
		{"crlf.httprr", []byte(httprrTrace() + "\r\n")},
	} {
		rec, err := Parse(tc.name, tc.data)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Format != FormatHTTPRR || len(rec.Interactions) != 3 {
			t.Fatalf("%s: format %q, %d interactions", tc.name, rec.Format, len(rec.Interactions))
		}
		a, b, c := rec.Interactions[0], rec.Interactions[1], rec.Interactions[2]
		if a.Request.URL != "https://api.anthropic.com/v1/messages" || a.Request.Proto != "HTTP/1.1" ||
			a.Request.Header.Get("User-Agent") != "langchaingo-httprr" || a.Request.Header.Get("Content-Length") != "16" ||
			string(a.Request.Body) != "{\"stream\":true}\n" {
			t.Errorf("request 0: %+v", a.Request)
		}
		if a.Response.Proto != "HTTP/2.0" || a.Response.Status != 200 || a.Response.Reason != "OK" || string(a.Response.Body) != "{\"id\":\"m\"}\n" {
			t.Errorf("response 0: %+v", a.Response)
		}
		if string(b.Response.Body) != "{\"done\":false}\n{\"done\":true}" {
			t.Errorf("de-chunked body %q", b.Response.Body)
		}
		if c.Request.Method != "GET" || c.Request.URL != "https://en.wikipedia.org/w/api.php?action=query&format=json" ||
			c.Response.Status != 404 || string(c.Response.Body) != "no such page" {
			t.Errorf("interaction 2: %+v", c)
		}
	}
	empty := mustParse(t, "empty.httprr", httprrMagic)
	if len(empty.Interactions) != 0 {
		t.Errorf("empty trace: %d interactions", len(empty.Interactions))
	}
}

func TestNock(t *testing.T) {
	frame := "0000001d0000000d" + strings.Repeat("00", 13) // any bytes, hex in the file
	gzBody := gz(t, []byte(`{"ok":true}`))
	hexGz := fmt.Sprintf("%x", gzBody)
	data := `[
 {"scope": "https://bedrock-runtime.us-east-1.amazonaws.com:443", "method": "POST",
  "path": "/model/anthropic.claude-3-haiku%3A0/converse-stream", "body": {"messages": [], "é": 1.0},
  "status": 200, "response": "` + frame + `", "responseIsBinary": true,
  "rawHeaders": ["Content-Type", "application/vnd.amazon.eventstream", "Transfer-Encoding", "chunked"],
  "reqheaders": {"authorization": "AWS4-HMAC-SHA256 Signature=x", "content-length": "3"}},
 {"scope": "https://api.openai.com:443/", "method": "POST", "path": "/v1/embeddings", "body": "{\"input\":\"x\"}",
  "status": 400, "response": {"error": {"message": "bad", "code": null}}, "rawHeaders": ["Content-Length", "5"]},
 {"scope": "https://api.openai.com:443", "method": "GET", "path": "/v1/models",
  "status": 200, "response": ["` + hexGz[:10] + `", "` + hexGz[10:] + `"], "rawHeaders": ["Content-Encoding", "gzip"]}
]`
	rec := mustParse(t, "nock.json", data)
	if rec.Format != FormatNock || len(rec.Interactions) != 3 {
		t.Fatalf("format %q, %d", rec.Format, len(rec.Interactions))
	}
	a, b, c := rec.Interactions[0], rec.Interactions[1], rec.Interactions[2]
	if a.Request.URL != "https://bedrock-runtime.us-east-1.amazonaws.com:443/model/anthropic.claude-3-haiku%3A0/converse-stream" {
		t.Errorf("url %q", a.Request.URL)
	}
	if string(a.Request.Body) != `{"messages": [], "\u00e9": 1.0}` || a.Request.Header.Get("Content-Length") != fmt.Sprint(len(a.Request.Body)) {
		t.Errorf("request body %q, Content-Length %q", a.Request.Body, a.Request.Header.Get("Content-Length"))
	}
	if fmt.Sprintf("%x", a.Response.Body) != frame || a.Response.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
		t.Errorf("binary response %x", a.Response.Body)
	}
	if b.Request.URL != "https://api.openai.com:443/v1/embeddings" || b.Response.Status != 400 ||
		string(b.Response.Body) != `{"error": {"message": "bad", "code": null}}` || b.Response.Header.Get("Content-Length") != fmt.Sprint(len(b.Response.Body)) {
		t.Errorf("object response: %q %v", b.Response.Body, b.Response.Header)
	}
	if !bytes.Equal(c.Response.Body, gzBody) {
		t.Errorf("hex chunks: %x", c.Response.Body)
	}
}

func TestGzipYAML(t *testing.T) {
	text, _ := vcrpyPlain(t)
	rec := mustParse(t, "plain.yaml.gz", string(gz(t, []byte(text))))
	if len(rec.Interactions) != 2 {
		t.Errorf("%d interactions", len(rec.Interactions))
	}
}

func TestNotHTTP(t *testing.T) {
	for _, tc := range []struct{ name, data, why string }{
		{"ws.yaml", "version: 1\ninteractions:\n- kind: message\n  direction: sent\n  data: {type: session.update}\n", "WebSocket transcript"},
		{"x.xai.yaml", "interactions:\n- request_sample: {json: '{}', raw: !!binary AAE=}\n  response_sample: {json: '{}'}\n", "gRPC"},
		{"s.xai.yaml", "interactions:\n- request_stream: [{json: '{}'}]\n  response_stream: []\n", "gRPC"},
		{"fixture.json", `[{"id": "chatcmpl-1"}]`, "not a nock recording"},
		{"config.yaml", "name: x\nsteps: []\n", "no interactions"},
	} {
		_, err := Parse(tc.name, []byte(tc.data))
		if !errors.Is(err, ErrNotHTTP) || !strings.Contains(err.Error(), tc.why) || !strings.HasPrefix(err.Error(), "cassette "+tc.name+": ") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestErrorsNameFileAndPlace(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"a.yaml", "interactions:\n- request: {method: GET, uri: 'http://x/'}\n  response: {status: {code: 200}}\n- request: {method: GET, uri: 'http://x/'}\n  response: {headers: {}}\n",
			"cassette a.yaml: interaction 1: response status: no status code"},
		{"b.yaml", "interactions:\n- request: {method: GET, uri: 'http://x/'}\n  response: {status: {code: 200}, body: {string: !!binary 'Q'}}\n",
			"cassette b.yaml: YAML: line 3: bad !!binary"},
		{"c.httprr", httprrMagic + "10 10\nshort", "cassette c.httprr: record 0: truncated"},
		{"d.httprr", httprrMagic + "0\n", "cassette d.httprr: record 0: bad length line"},
		{"e.httprr", httprrMagic + httprrRecord("GET http://x/ HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"),
			"cassette e.httprr: interaction 0: response body: chunk 0: bad chunk size \"zz\""},
		{"f.httprr", httprrMagic + httprrRecord("GET http://x/ HTTP/1.1\r\n\r\n", "HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n"),
			"cassette f.httprr: interaction 0: response: bad status code"},
		{"g.json", `[{"scope": "http://x", "method": "GET", "path": "/", "response": "zz", "responseIsBinary": true}]`,
			"cassette g.json: interaction 0: response body: binary body is not hex"},
		{"h.yaml", "- a\n- b\n", "cassette h.yaml: not a recognised recording (top level is a YAML list)"},
		{"i.yaml", "a: 1\n---\nb: 2\n", "cassette i.yaml: YAML: more than one document"},
		{"j.yaml.gz", "\x1f\x8bnot gzip", "cassette j.yaml.gz: gzip:"},
	} {
		_, err := Parse(tc.name, []byte(tc.data))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want prefix %q", tc.name, err, tc.want)
		}
		if errors.Is(err, ErrNotHTTP) {
			t.Errorf("%s: malformed input reported as not HTTP", tc.name)
		}
	}
}

func TestWebSocketTranscript(t *testing.T) {
	tr, err := ParseWebSocketTranscript("ws.yaml", []byte(`version: 1
interactions:
- request:
    method: POST
    uri: https://api.openai.com/v1/realtime/calls
    body: v=0
    headers: {}
  response:
    status: {code: 201, message: Created}
    headers: {}
    body: {string: answer}
- kind: message
  direction: received
  data:
    type: session.created
    session: {max_output_tokens: inf, speed: 1.0}
- kind: message
  direction: sent
  data: {type: response.create}
- kind: close
  code: 1011
  reason: test reconnect
  ok: false
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Messages) != 4 {
		t.Fatalf("%d messages", len(tr.Messages))
	}
	m := tr.Messages
	if m[0].Exchange == nil || m[0].Exchange.Response.Status != 201 {
		t.Errorf("sideband exchange: %+v", m[0])
	}
	if m[1].Sent || string(m[1].Data) != `{"type": "session.created", "session": {"max_output_tokens": "inf", "speed": 1.0}}` {
		t.Errorf("received message %q", m[1].Data)
	}
	if !m[2].Sent || string(m[2].Data) != `{"type": "response.create"}` {
		t.Errorf("sent message %+v", m[2])
	}
	if !m[3].Close || m[3].CloseCode != 1011 || m[3].CloseReason != "test reconnect" {
		t.Errorf("close %+v", m[3])
	}
	text, _ := vcrpyPlain(t)
	if _, err := ParseWebSocketTranscript("http.yaml", []byte(text)); err == nil {
		t.Error("HTTP cassette read as a WebSocket transcript")
	}
}

func TestHeaderCanonicalAndMultiValue(t *testing.T) {
	rec := mustParse(t, "h.yaml", `interactions:
- request: {method: GET, uri: 'https://x/', headers: {accept: ['a', 'b'], x-count: 3}}
  response: {status: {code: 200, message: OK}, headers: {set-cookie: [c=1, d=2]}, body: {string: ''}}
`)
	in := rec.Interactions[0]
	want := http.Header{"Accept": {"a", "b"}, "X-Count": {"3"}}
	if fmt.Sprint(in.Request.Header) != fmt.Sprint(want) {
		t.Errorf("headers %v", in.Request.Header)
	}
	if len(in.Response.Header.Values("Set-Cookie")) != 2 {
		t.Errorf("multi-value %v", in.Response.Header)
	}
}

func TestStaleContentEncodingDropped(t *testing.T) {
	wire := gz(t, []byte("{}"))
	rec := mustParse(t, "stale.yaml", `interactions:
- request: {method: GET, uri: 'https://x/a', headers: {}}
  response:
    status: {code: 200, message: OK}
    headers: {Content-Encoding: [gzip], Content-Length: ['42']}
    body: {string: '{"already": "decoded"}'}
- request: {method: GET, uri: 'https://x/b', headers: {}}
  response:
    status: {code: 200, message: OK}
    headers: {Content-Encoding: [gzip], Content-Length: ['`+fmt.Sprint(len(wire))+`']}
    body: {string: !!binary `+base64.StdEncoding.EncodeToString(wire)+`}
- request: {method: GET, uri: 'https://x/c', headers: {}}
  response:
    status: {code: 200, message: OK}
    headers: {Content-Encoding: [br]}
    body: {string: 'unknowable'}
`)
	a, b, c := rec.Interactions[0].Response, rec.Interactions[1].Response, rec.Interactions[2].Response
	if a.Header.Get("Content-Encoding") != "" || a.Header.Get("Content-Length") != "22" {
		t.Errorf("stale gzip label kept: %v", a.Header)
	}
	if b.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(b.Body, wire) {
		t.Errorf("real gzip body lost its label: %v", b.Header)
	}
	if c.Header.Get("Content-Encoding") != "br" {
		t.Errorf("br label dropped without evidence: %v", c.Header)
	}
}
