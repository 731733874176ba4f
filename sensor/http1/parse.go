package http1

import (
	"bytes"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// This file holds the pure parsing functions over bytes; the per-direction
// state machine that drives them lives in side.go.

// blockEnd returns the length of the header block at the start of b through
// the empty line that ends it, or -1 when b does not hold a whole block yet.
// Lines may end in CRLF or a bare LF. from resumes an earlier search of the
// same block: pass max(0, previous length-2), or 0 for a new block.
func blockEnd(b []byte, from int) int {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		p := i + j + 1 // start of the next line
		if p >= len(b) {
			return -1
		}
		switch b[p] {
		case '\n':
			return p + 1
		case '\r':
			if p+1 >= len(b) {
				return -1
			}
			if b[p+1] == '\n' {
				return p + 2
			}
		}
		i = p
	}
}

// isTchar reports whether c may appear in a token (RFC 9110 5.6.2), the
// syntax of methods and field names.
func isTchar(c byte) bool {
	return tcharTable[c]
}

var tcharTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// maxMethodLen bounds how long a method token may be before a line is taken
// for garbage; the longest registered methods are under 20 bytes.
const maxMethodLen = 24

// isVersion reports whether b is "HTTP/d.d".
func isVersion(b string) bool {
	return len(b) == 8 && b[:5] == "HTTP/" && isDigit(b[5]) && b[6] == '.' && isDigit(b[7])
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// trimCR drops one trailing CR.
func trimCR(s string) string {
	if len(s) > 0 && s[len(s)-1] == '\r' {
		return s[:len(s)-1]
	}
	return s
}

// parseRequestLine splits "METHOD SP target SP HTTP/d.d". Runs of spaces
// between the parts are tolerated; the target must not contain controls.
func parseRequestLine(line string) (method, target, proto string, ok bool) {
	sp := strings.IndexByte(line, ' ')
	if sp <= 0 || sp > maxMethodLen {
		return "", "", "", false
	}
	method = line[:sp]
	for i := 0; i < len(method); i++ {
		if !isTchar(method[i]) {
			return "", "", "", false
		}
	}
	rest := strings.TrimRight(line[sp+1:], " \t")
	last := strings.LastIndexByte(rest, ' ')
	if last < 0 {
		return "", "", "", false // HTTP/0.9 or garbage
	}
	proto = rest[last+1:]
	target = strings.Trim(rest[:last], " ")
	if !isVersion(proto) || target == "" {
		return "", "", "", false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return "", "", "", false
		}
	}
	return method, target, proto, true
}

// parseStatusLine splits "HTTP/d.d SP ddd [SP reason]".
func parseStatusLine(line string) (proto string, status int, reason string, ok bool) {
	if len(line) < 12 || !isVersion(line[:8]) || line[8] != ' ' {
		return "", 0, "", false
	}
	code := line[9:12]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) {
		return "", 0, "", false
	}
	if len(line) > 12 && line[12] != ' ' {
		return "", 0, "", false
	}
	status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if status < 100 {
		return "", 0, "", false
	}
	if len(line) > 13 {
		reason = strings.TrimSpace(line[13:])
	}
	return line[:8], status, reason, true
}

// plausibleRequestStart reports whether b, the beginning of a line that may
// not be complete yet, can still become a request line. It lets garbage be
// dropped without waiting for a line end that may never come.
func plausibleRequestStart(b []byte) bool {
	i := 0
	for i < len(b) && isTchar(b[i]) {
		i++
	}
	if i > maxMethodLen {
		return false
	}
	if i == len(b) {
		return true
	}
	return b[i] == ' ' && i > 0
}

// plausibleStatusStart is plausibleRequestStart for status lines.
func plausibleStatusStart(b []byte) bool {
	const p = "HTTP/"
	if len(b) < len(p) {
		return string(b) == p[:len(b)]
	}
	return string(b[:len(p)]) == p
}

// parseFields parses the field lines at the start of block, up to the empty
// line that ends a header block or to the end of block, and appends them to
// h. Lines may end in CRLF or LF; a line starting with a space or tab
// continues the previous field (obsolete line folding, RFC 9112 5.2) and is
// joined with one space. It returns the fields, the number of bytes in lines
// that are not fields, which are skipped, and the length of block through
// the empty line (-1 when block holds none). Values are substrings of block.
func parseFields(block string, h httpmsg.Header) (_ httpmsg.Header, bad, end int) {
	// folds: the last line was a field, which a continuation line extends.
	folds := false
	for rest := block; len(rest) > 0; {
		if n := httpmsg.CanonicalNameLen(rest); n > 0 {
			name, value := rest[:n], rest[n+1:]
			if i := strings.IndexByte(value, '\n'); i >= 0 {
				value, rest = value[:i], value[i+1:]
			} else {
				rest = ""
			}
			h = append(h, httpmsg.Field{Name: name, Value: trimOWS(trimCR(value))})
			folds = true
			continue
		}
		var line string
		i := strings.IndexByte(rest, '\n')
		if i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			line, rest = rest, ""
		}
		raw := len(line) + 1
		line = trimCR(line)
		if line == "" {
			if i >= 0 {
				return h, bad, len(block) - len(rest)
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if folds {
				if cont := strings.Trim(line, " \t"); cont != "" {
					last := &h[len(h)-1]
					last.Value = strings.TrimRight(last.Value+" "+cont, " \t")
				}
				continue
			}
			bad += raw
			continue
		}
		colon := strings.IndexByte(line, ':')
		name := ""
		if colon > 0 {
			name = trimRightOWS(line[:colon])
		}
		if name == "" {
			bad += raw
			folds = false
			continue
		}
		h = append(h, httpmsg.Field{Name: httpmsg.CanonicalName(name), Value: trimOWS(line[colon+1:])})
		folds = true
	}
	return h, bad, -1
}

// trimRightOWS drops trailing spaces and tabs (optional whitespace).
func trimRightOWS(s string) string {
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// trimOWS drops leading and trailing spaces and tabs.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return trimRightOWS(s)
}

// parseContentLength reads the Content-Length field values of h. Repeated
// or comma-listed values must agree (RFC 9110 8.6).
func parseContentLength(h httpmsg.Header) (int64, bool) {
	n := int64(-1)
	for _, f := range h {
		if f.Name != "Content-Length" {
			continue
		}
		for part := range strings.SplitSeq(f.Value, ",") {
			part = strings.TrimSpace(part)
			if part == "" || len(part) > 18 {
				return 0, false
			}
			var x int64
			for i := 0; i < len(part); i++ {
				if !isDigit(part[i]) {
					return 0, false
				}
				x = x*10 + int64(part[i]-'0')
			}
			if n >= 0 && x != n {
				return 0, false
			}
			n = x
		}
	}
	return n, n >= 0
}

// transferCodings reads the Transfer-Encoding values of h: whether the
// message is chunked (chunked must be the last coding), and the other codings
// in the order they were applied.
func transferCodings(h httpmsg.Header) (chunked bool, others []string) {
	var list []string
	for _, f := range h {
		if f.Name != "Transfer-Encoding" {
			continue
		}
		for part := range strings.SplitSeq(f.Value, ",") {
			if part = strings.ToLower(strings.TrimSpace(part)); part != "" {
				list = append(list, part)
			}
		}
	}
	if n := len(list); n > 0 && list[n-1] == "chunked" {
		return true, list[:n-1]
	}
	return false, list
}

// headerHasToken reports whether a comma-separated field of h (Connection,
// Expect; name in canonical form) lists token, case-insensitively.
func headerHasToken(h httpmsg.Header, name, token string) bool {
	for _, f := range h {
		if f.Name != name {
			continue
		}
		for part := range strings.SplitSeq(f.Value, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// maxChunkSizeLine bounds a chunk-size line with its extensions.
const maxChunkSizeLine = 4096

// parseChunkSize reads the hex size at the start of a chunk-size line
// (after trimming its line end), ignoring chunk extensions.
func parseChunkSize(line []byte) (int64, bool) {
	for len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		line = line[1:]
	}
	var n int64
	digits := 0
	for _, c := range line {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t' || c == '\r':
			return n, digits > 0
		default:
			return 0, false
		}
		if digits++; digits > 15 {
			return 0, false // over 2^60: nobody sends that
		}
		n = n<<4 | int64(v)
	}
	return n, digits > 0
}

// resyncStatus returns the offset of the first plausible status line in b
// at or after from, or -1. A candidate needs "HTTP/d.d ddd" to be present.
func resyncStatus(b []byte, from int) int {
	for from < len(b) {
		i := bytes.Index(b[from:], []byte("HTTP/1."))
		if i < 0 {
			return -1
		}
		i += from
		if len(b)-i < 12 {
			return i // wait for more bytes; the start line check decides
		}
		if _, _, _, ok := parseStatusLine(string(b[i : i+12])); ok {
			return i
		}
		from = i + 1
	}
	return -1
}

// resyncRequest returns the offset of the first plausible request line in b
// at or after from, or -1. It looks for " HTTP/1.d" followed by a line end
// and walks back over the target and the method. Garbage glued to the
// method ("}POST") is cut at the last known method name or where the
// upper-case letters start.
func resyncRequest(b []byte, from int) int {
	for from < len(b) {
		i := bytes.Index(b[from:], []byte(" HTTP/1."))
		if i < 0 {
			return -1
		}
		i += from
		from = i + 1
		end := i + 9
		if end < len(b) && (!isDigit(b[end-1]) || b[end] != '\r' && b[end] != '\n') {
			continue
		}
		// Walk back over the target.
		j := i
		for j > 0 && b[j-1] > ' ' && b[j-1] != 0x7f {
			j--
		}
		if j == i || j == 0 || b[j-1] != ' ' {
			continue
		}
		// Walk back over the method.
		m := j - 1
		k := m
		for k > 0 && isTchar(b[k-1]) && m-k < 64 {
			k--
		}
		if k == m {
			continue
		}
		if start := methodStart(b[k:m]); start >= 0 {
			return k + start
		}
	}
	return -1
}

var knownMethods = []string{
	"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PRI",
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "QUERY",
}

// methodStart returns where a method begins in token, a run of token bytes
// that ends just before the space: at a known method name that ends the
// token, else at the start of its trailing upper-case letters.
func methodStart(token []byte) int {
	best := -1
	for _, m := range knownMethods {
		if bytes.HasSuffix(token, []byte(m)) && (best < 0 || len(token)-len(m) < best) {
			best = len(token) - len(m)
		}
	}
	if best >= 0 {
		return best
	}
	k := len(token)
	for k > 0 && 'A' <= token[k-1] && token[k-1] <= 'Z' {
		k--
	}
	if k == len(token) || len(token)-k > maxMethodLen {
		return -1
	}
	return k
}
