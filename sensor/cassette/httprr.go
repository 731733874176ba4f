package cassette

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// httprrMagic starts every Go httprr trace (golang.org/x/oscar/internal/httprr,
// vendored by langchaingo).
const httprrMagic = "httprr trace v1\n"

// parseHTTPRR reads an httprr trace: after the magic line, records of
// "<reqLen> <respLen>\n" followed by exactly that many bytes of request (as
// written by Request.WriteProxy) and response (Response.Write). Records are
// split by the byte counts only: a response follows its request body with no
// separator.
func parseHTTPRR(data []byte) (*Recording, error) {
	rest := data[len(httprrMagic):]
	rec := &Recording{Format: FormatHTTPRR}
	// Whitespace after the last record (a final newline an editor added)
	// is not a record.
	for k := 0; len(bytes.TrimSpace(rest)) > 0; k++ {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("record %d: no length line", k)
		}
		reqLen, respLen, err := httprrLengths(string(rest[:nl]))
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", k, err)
		}
		rest = rest[nl+1:]
		if reqLen > len(rest) || respLen > len(rest)-reqLen {
			return nil, fmt.Errorf("record %d: truncated: needs %d+%d bytes, %d left", k, reqLen, respLen, len(rest))
		}
		in, err := httprrInteraction(rest[:reqLen], rest[reqLen:reqLen+respLen])
		if err != nil {
			return nil, fmt.Errorf("interaction %d: %w", k, err)
		}
		rec.Interactions = append(rec.Interactions, in)
		rest = rest[reqLen+respLen:]
	}
	return rec, nil
}

func httprrLengths(line string) (int, int, error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("bad length line %q", truncateForError(line))
	}
	a, err1 := strconv.ParseUint(f[0], 10, 31)
	b, err2 := strconv.ParseUint(f[1], 10, 31)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad length line %q", truncateForError(line))
	}
	return int(a), int(b), nil
}

func httprrInteraction(reqBytes, respBytes []byte) (Interaction, error) {
	var in Interaction
	lines, body := splitHead(reqBytes)
	if len(lines) == 0 || lines[0] == "" {
		return in, errors.New("request: no request line")
	}
	parts := strings.SplitN(lines[0], " ", 3)
	if len(parts) != 3 {
		return in, fmt.Errorf("request: bad request line %q", truncateForError(lines[0]))
	}
	req := &in.Request
	req.Method, req.Proto = parts[0], parts[2]
	req.Header = headerLines(lines[1:])
	req.URL = parts[1]
	if strings.HasPrefix(req.URL, "/") {
		// Origin-form (not what WriteProxy writes, but seen in hand-made traces).
		req.URL = "http://" + req.Header.Get("Host") + req.URL
	}
	var err error
	if hasToken(req.Header, "Transfer-Encoding", "chunked") {
		if body, err = dechunk(body); err != nil {
			return in, fmt.Errorf("request body: %w", err)
		}
	}
	req.Body = body

	lines, body = splitHead(respBytes)
	if len(lines) == 0 || lines[0] == "" {
		return in, errors.New("response: no status line")
	}
	parts = strings.SplitN(lines[0], " ", 3)
	if len(parts) < 2 {
		return in, fmt.Errorf("response: bad status line %q", truncateForError(lines[0]))
	}
	resp := &in.Response
	resp.Proto = parts[0]
	if resp.Status, err = strconv.Atoi(parts[1]); err != nil || resp.Status < 100 || resp.Status > 999 {
		return in, fmt.Errorf("response: bad status code %q", truncateForError(parts[1]))
	}
	if len(parts) == 3 {
		resp.Reason = parts[2]
	}
	resp.Header = headerLines(lines[1:])
	if hasToken(resp.Header, "Transfer-Encoding", "chunked") {
		if body, err = dechunk(body); err != nil {
			return in, fmt.Errorf("response body: %w", err)
		}
	}
	resp.Body = body
	return in, nil
}

// splitHead splits a message into its head lines and body. Lines end in
// CRLF or, leniently, a bare LF (httprr's scrubbers leave some); the first
// empty line ends the head. A message without one is all head.
func splitHead(msg []byte) (lines []string, body []byte) {
	for len(msg) > 0 {
		nl := bytes.IndexByte(msg, '\n')
		if nl < 0 {
			lines = append(lines, string(bytes.TrimSuffix(msg, []byte("\r"))))
			return lines, nil
		}
		line := string(bytes.TrimSuffix(msg[:nl], []byte("\r")))
		msg = msg[nl+1:]
		if line == "" {
			return lines, msg
		}
		lines = append(lines, line)
	}
	return lines, nil
}

// headerLines reads "Name: value" lines; lines without a colon carry no
// header and are skipped.
func headerLines(lines []string) http.Header {
	h := http.Header{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		addHeader(h, strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h
}

// dechunk removes HTTP/1.1 chunked transfer coding. Trailers are ignored.
func dechunk(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	out := make([]byte, 0, len(b))
	for n := 0; ; n++ {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("chunk %d: size line without end", n)
		}
		line := strings.TrimSpace(string(b[:nl]))
		b = b[nl+1:]
		if i := strings.IndexByte(line, ';'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		size, err := strconv.ParseUint(line, 16, 62)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: bad chunk size %q", n, truncateForError(line))
		}
		if size == 0 {
			return out, nil
		}
		if size > uint64(len(b)) {
			return nil, fmt.Errorf("chunk %d: %d bytes announced, %d left", n, size, len(b))
		}
		out = append(out, b[:size]...)
		b = b[size:]
		switch {
		case bytes.HasPrefix(b, []byte("\r\n")):
			b = b[2:]
		case bytes.HasPrefix(b, []byte("\n")):
			b = b[1:]
		default:
			return nil, fmt.Errorf("chunk %d: data not followed by CRLF", n)
		}
	}
}

func truncateForError(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
