// Package cassette owns recorded HTTP traffic formats: it reads go-vcr
// cassettes, vcrpy YAML (plain, the pydantic-ai variant with parsed_body
// trees, the parallel-lists variant), Go httprr traces and nock JSON
// recordings, gzip-compressed or not, into one neutral model (Recording), and
// writes that model back as go-vcr v4 cassettes.
//
// The model keeps what a replay needs to rebuild the wire: absolute URLs,
// headers as recorded (names canonicalised), request bodies, and response
// bodies as they travelled after de-chunking — still gzip-compressed when the
// recording kept Content-Encoding. Where a recorder stored a body as a parsed
// tree, the bytes are rebuilt the way the recorder's own tooling serialises
// them (Python's json.dumps for vcrpy and nock files) and Content-Length is
// recomputed.
//
// Recordings that are not HTTP (WebSocket transcripts, xAI gRPC samples) are
// refused with an error wrapping ErrNotHTTP; ReadWebSocketTranscript reads
// the WebSocket ones.
package cassette

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// ErrNotHTTP is wrapped by errors for recordings that are recordings, but not
// of HTTP exchanges (WebSocket transcripts, gRPC samples).
var ErrNotHTTP = errors.New("not an HTTP recording")

// Format names, the values of Recording.Format.
const (
	FormatGoVCR           = "go-vcr"            // go-vcr v1–v4 cassette (url, code, string bodies)
	FormatVCRPy           = "vcrpy"             // vcrpy YAML with stored bodies
	FormatVCRPyParsedBody = "vcrpy-parsed-body" // vcrpy YAML with JSON bodies stored as parsed_body trees (pydantic-ai)
	FormatVCRPyLists      = "vcrpy-lists"       // {requests: [...], responses: [...]} (langchain)
	FormatHTTPRR          = "httprr"            // Go httprr trace v1
	FormatNock            = "nock"              // nock JSON recording
)

// Recording is one recorded file: its exchanges in call order.
type Recording struct {
	Format       string
	Interactions []Interaction
}

// Interaction is one HTTP request and its response.
type Interaction struct {
	Request  Request
	Response Response
}

// Request is a recorded request.
type Request struct {
	Method string
	URL    string // absolute URL with query, as recorded
	Proto  string // "HTTP/1.1" when the recording says so, "" when unknown
	Header http.Header
	Body   []byte
}

// Response is a recorded response.
type Response struct {
	Status int
	Reason string
	Proto  string // "HTTP/2.0", "HTTP/1.1", or "" when unknown
	Header http.Header
	// Body is the wire body: de-chunked, still content-encoded when
	// Header has a Content-Encoding.
	Body []byte
}

// maxRecordingSize bounds a recording (and its gunzipped form); the largest
// real recordings are a few MiB.
const maxRecordingSize = 256 << 20

// ReadFile reads a recording in any supported format, gunzipping it first
// when it is gzip-compressed (.gz or gzip magic).
func ReadFile(path string) (*Recording, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cassette: %w", err) // the error names the path
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRecordingSize+1))
	if err != nil {
		return nil, fmt.Errorf("cassette %s: %w", path, err)
	}
	if len(data) > maxRecordingSize {
		return nil, fmt.Errorf("cassette %s: larger than %d bytes", path, maxRecordingSize)
	}
	return data, nil
}

// Parse reads a recording from data; name is used in errors only.
// The format is detected from the content, never from the name.
func Parse(name string, data []byte) (*Recording, error) {
	rec, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("cassette %s: %w", name, err)
	}
	return rec, nil
}

func parse(data []byte) (*Recording, error) {
	data, err := gunzipIfCompressed(data)
	if err != nil {
		return nil, err
	}
	var rec *Recording
	if bytes.HasPrefix(data, []byte(httprrMagic)) {
		rec, err = parseHTTPRR(data)
	} else {
		rec, err = parseTreeRecording(data)
	}
	if err != nil {
		return nil, err
	}
	for i := range rec.Interactions {
		in := &rec.Interactions[i]
		dropStaleContentEncoding(in.Request.Header, in.Request.Body)
		dropStaleContentEncoding(in.Response.Header, in.Response.Body)
	}
	return rec, nil
}

// parseTreeRecording reads the formats stored as YAML or JSON trees.
func parseTreeRecording(data []byte) (*Recording, error) {
	top, isJSON, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	switch top.kind {
	case pyList:
		if !isJSON {
			return nil, errors.New("not a recognised recording (top level is a YAML list)")
		}
		if !isNock(top) {
			return nil, fmt.Errorf("%w (JSON array that is not a nock recording)", ErrNotHTTP)
		}
		return fromNock(top)
	case pyDict:
		return fromVCR(top)
	}
	return nil, fmt.Errorf("not a recognised recording (top level is %s)", top.kind)
}

// parseTree reads JSON when the text starts like JSON and parses as JSON,
// otherwise YAML, the same order in which Python's tooling tries them.
func parseTree(data []byte) (v *pyValue, isJSON bool, err error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\v\f")
	if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
		if v, err := parseJSONValue(data); err == nil {
			return v, true, nil
		}
		// YAML flow style can also start with '[' or '{'.
	}
	v, err = parseYAMLDocument(data)
	return v, false, err
}

func gunzipIfCompressed(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxRecordingSize+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(out) > maxRecordingSize {
		return nil, fmt.Errorf("gzip: decompresses to more than %d bytes", maxRecordingSize)
	}
	return out, nil
}

// addHeader appends a recorded header under its canonical name.
func addHeader(h http.Header, name, value string) {
	h[http.CanonicalHeaderKey(name)] = append(h[http.CanonicalHeaderKey(name)], value)
}

// setContentLength rewrites a recorded Content-Length to the length of a
// rebuilt body; a recording without one keeps none.
func setContentLength(h http.Header, n int) {
	if _, ok := h["Content-Length"]; ok {
		h["Content-Length"] = []string{fmt.Sprint(n)}
	}
}

// hasToken reports whether a comma-separated header contains token
// (case-insensitive), e.g. Transfer-Encoding: chunked.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// dropStaleContentEncoding removes a Content-Encoding that the body
// provably no longer has. Some recorders decode the body and keep the
// header (openllmetry has gzip-labelled plain JSON); the model promises
// that a body with Content-Encoding is still encoded. Only codings with a
// magic number can be checked: gzip (1f 8b) and zstd (28 b5 2f fd). The
// recorded Content-Length then no longer applies either.
func dropStaleContentEncoding(h http.Header, body []byte) {
	vals := h.Values("Content-Encoding")
	if len(vals) != 1 || len(body) == 0 {
		return
	}
	var magic []byte
	switch strings.ToLower(strings.TrimSpace(vals[0])) {
	case "gzip", "x-gzip":
		magic = []byte{0x1f, 0x8b}
	case "zstd":
		magic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	default:
		return
	}
	if bytes.HasPrefix(body, magic) {
		return
	}
	h.Del("Content-Encoding")
	setContentLength(h, len(body))
}
