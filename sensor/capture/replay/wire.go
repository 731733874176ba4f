package replay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// hopByHop are the headers that describe one connection, not the message;
// a recording's values for them (and its framing) do not apply to the
// connection we synthesize.
var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Content-Length":      true, // recomputed from the body we send
	"Host":                true, // written first, from the URL
}

// methodsWithBody always carry Content-Length, even when zero.
var methodsWithBody = map[string]bool{"POST": true, "PUT": true, "PATCH": true}

// requestParts returns the request's wire bytes: one natural chunk.
func requestParts(in *cassette.Interaction, ep endpoint, rec stats.Recorder) ([][]byte, error) {
	req := &in.Request
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !httpguts.ValidHeaderFieldName(method) { // a method is a token
		return nil, fmt.Errorf("request method %q is not a token", req.Method)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, ep.target, ep.authority)
	writeHeaders(&b, req.Header, rec)
	if len(req.Body) > 0 || methodsWithBody[method] {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(req.Body))
	}
	b.WriteString("\r\n")
	b.Write(req.Body)
	return [][]byte{b.Bytes()}, nil
}

// responseParts returns the response's wire bytes as natural chunks: head
// and body together for a plain body; the head, then one chunk per event
// for a stream.
func responseParts(in *cassette.Interaction, rec stats.Recorder) [][]byte {
	resp := &in.Response
	reason := resp.Reason
	if reason == "" || strings.ContainsAny(reason, "\r\n") {
		reason = http.StatusText(resp.Status)
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "HTTP/1.1 %03d %s\r\n", resp.Status, reason)
	writeHeaders(&head, resp.Header, rec)

	body := resp.Body
	if bodyless(in.Request.Method, resp.Status) {
		if len(body) > 0 {
			rec.Count(TokenBodyDropped, int64(len(body)))
		}
		head.WriteString("\r\n")
		return [][]byte{head.Bytes()}
	}
	kind := streamKindOf(in)
	if kind == notStream {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", len(body))
		head.Write(body)
		return [][]byte{head.Bytes()}
	}
	head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	parts := [][]byte{head.Bytes()}
	events := [][]byte{body}
	if !isContentEncoded(resp.Header) { // compressed bytes have no event boundaries
		events = splitEvents(kind, body)
	}
	for _, ev := range events {
		if len(ev) == 0 {
			continue // a zero-size chunk would end the body
		}
		var c bytes.Buffer
		fmt.Fprintf(&c, "%x\r\n", len(ev))
		c.Write(ev)
		c.WriteString("\r\n")
		parts = append(parts, c.Bytes())
	}
	last := parts[len(parts)-1]
	parts[len(parts)-1] = append(last, "0\r\n\r\n"...)
	return parts
}

// bodyless reports responses that carry no body by definition (RFC 9110 §6.4.1).
func bodyless(method string, status int) bool {
	return method == http.MethodHead || status/100 == 1 || status == http.StatusNoContent || status == http.StatusNotModified
}

// writeHeaders writes recorded headers in a stable order (sorted names,
// values in recorded order), leaving out hop-by-hop headers, headers named
// by Connection, and anything that is not valid on an HTTP/1.1 wire.
func writeHeaders(b *bytes.Buffer, h http.Header, rec stats.Recorder) {
	connTokens := map[string]bool{}
	for _, v := range h.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				connTokens[http.CanonicalHeaderKey(tok)] = true
			}
		}
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop[ck] || connTokens[ck] {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			rec.Count(TokenHeaderDropped, int64(len(h[k])))
			continue
		}
		for _, v := range h[k] {
			if !httpguts.ValidHeaderFieldValue(v) {
				rec.Count(TokenHeaderDropped, 1)
				continue
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteString("\r\n")
		}
	}
}

func isContentEncoded(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "identity") {
			return true
		}
	}
	return false
}

type streamKind int

const (
	notStream streamKind = iota
	sseStream
	lineStream      // NDJSON / JSON Lines
	eventStream     // AWS eventstream (binary frames)
	jsonArrayStream // a JSON array sent element by element (Gemini without alt=sse)
)

// streamKindOf decides whether a response body is a stream and of which
// kind, from its media type; a JSON array counts as a stream when the URL
// asks for one or the recording says the body was chunked.
func streamKindOf(in *cassette.Interaction) streamKind {
	ct := in.Response.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	}
	switch mt {
	case "text/event-stream":
		return sseStream
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return lineStream
	case "application/vnd.amazon.eventstream":
		return eventStream
	case "application/json":
		body := bytes.TrimLeft(in.Response.Body, " \t\r\n")
		if len(body) > 0 && body[0] == '[' && !isContentEncoded(in.Response.Header) &&
			(strings.Contains(strings.ToLower(in.Request.URL), "stream") || hasChunked(in.Response.Header)) {
			return jsonArrayStream
		}
	}
	return notStream
}

func hasChunked(h http.Header) bool {
	for _, v := range h.Values("Transfer-Encoding") {
		if strings.Contains(strings.ToLower(v), "chunked") {
			return true
		}
	}
	return false
}

// splitEvents cuts a stream body where its server would have flushed: after
// each SSE event's blank line, each line, each eventstream frame, or before
// each top-level comma and the closing bracket of a JSON array. The pieces
// concatenate to the body.
func splitEvents(kind streamKind, body []byte) [][]byte {
	switch kind {
	case sseStream:
		return splitSSE(body)
	case lineStream:
		return splitLines(body)
	case eventStream:
		return splitEventStream(body)
	case jsonArrayStream:
		return splitJSONArray(body)
	}
	return [][]byte{body}
}

// splitSSE ends an event after an empty line; lines end in CRLF, LF or CR.
func splitSSE(b []byte) [][]byte {
	var out [][]byte
	start, lineStart := 0, 0
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\n' && c != '\r' {
			i++
			continue
		}
		end := i + 1
		if c == '\r' && end < len(b) && b[end] == '\n' {
			end++
		}
		if i == lineStart {
			out = append(out, b[start:end])
			start = end
		}
		i, lineStart = end, end
	}
	if start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

// splitEventStream cuts at AWS eventstream frame boundaries (the prelude's
// big-endian total length); bytes that do not frame stay one piece.
func splitEventStream(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 16 {
		n := int(binary.BigEndian.Uint32(b))
		if n < 16 || n > len(b) {
			break
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}

// splitJSONArray cuts "[a,b]" into "[a", ",b", "]".
func splitJSONArray(b []byte) [][]byte {
	var out [][]byte
	depth, start := 0, 0
	inString, escaped := false, false
	for i, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
		case ']', '}':
			if depth == 1 && c == ']' && i > start {
				out = append(out, b[start:i])
				start = i
			}
			depth--
		case ',':
			if depth == 1 && i > start {
				out = append(out, b[start:i])
				start = i
			}
		}
	}
	if start < len(b) {
		out = append(out, b[start:])
	}
	return out
}
