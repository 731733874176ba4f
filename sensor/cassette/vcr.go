package cassette

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// fromVCR reads the cassette family that shares vcrpy's skeleton:
// {interactions: [{request, response}]} written by vcrpy or go-vcr, and the
// {requests: [...], responses: [...]} parallel-lists variant.
func fromVCR(d *pyValue) (*Recording, error) {
	type pair struct{ rq, rs *pyValue }
	var pairs []pair
	format := FormatVCRPy
	switch {
	case d.has("interactions"):
		its := d.get("interactions").or(&pyValue{kind: pyList})
		if its.kind != pyList {
			return nil, fmt.Errorf("interactions is a %s, not a list", its.kind)
		}
		for _, it := range its.items {
			if !(it.kind == pyDict && it.has("request") && it.has("response")) {
				return nil, notHTTPInteractions(its)
			}
		}
		for _, it := range its.items {
			rq := it.get("request")
			if rq.has("url") {
				format = FormatGoVCR
			}
			pairs = append(pairs, pair{rq, it.get("response")})
		}
	case d.has("requests") && d.has("responses"):
		format = FormatVCRPyLists
		rqs, rss := d.get("requests"), d.get("responses")
		if rqs.kind != pyList || rss.kind != pyList {
			return nil, errors.New("requests and responses must be lists")
		}
		if len(rqs.items) != len(rss.items) {
			return nil, fmt.Errorf("%d requests but %d responses", len(rqs.items), len(rss.items))
		}
		for i := range rqs.items {
			pairs = append(pairs, pair{rqs.items[i], rss.items[i]})
		}
	default:
		keys := make([]string, 0, len(d.keys))
		for _, k := range d.keys {
			s, _ := pyText(k)
			keys = append(keys, s)
		}
		if len(keys) > 5 {
			keys = keys[:5]
		}
		return nil, fmt.Errorf("%w (no interactions; keys: %s)", ErrNotHTTP, strings.Join(keys, ", "))
	}
	// go-vcr cassettes are written by Go YAML encoders, which leave e.g.
	// "1:30" unquoted; read their scalars as Go does, the others as Python.
	text := pyText
	if format == FormatGoVCR {
		text = goText
	}
	rec := &Recording{Format: format, Interactions: make([]Interaction, 0, len(pairs))}
	for i, p := range pairs {
		in, parsedBody, err := vcrInteraction(p.rq, p.rs, text)
		if err != nil {
			return nil, fmt.Errorf("interaction %d: %w", i, err)
		}
		if parsedBody && format == FormatVCRPy {
			rec.Format = FormatVCRPyParsedBody
		}
		rec.Interactions = append(rec.Interactions, in)
	}
	return rec, nil
}

// notHTTPInteractions explains which kind of non-HTTP recording this is.
func notHTTPInteractions(its *pyValue) error {
	for _, it := range its.items {
		switch {
		case it.has("kind") && (it.has("direction") || it.get("kind").kind == pyStr):
			return fmt.Errorf("%w (WebSocket transcript)", ErrNotHTTP)
		case it.has("request_sample") || it.has("response_sample") || it.has("request_stream") || it.has("response_stream"):
			return fmt.Errorf("%w (xAI gRPC samples)", ErrNotHTTP)
		}
	}
	return fmt.Errorf("%w (interactions are not request/response pairs)", ErrNotHTTP)
}

// textFunc turns a scalar into text: pyText (Python's str) or goText.
type textFunc func(*pyValue) (string, error)

func vcrInteraction(rq, rs *pyValue, text textFunc) (in Interaction, parsedBody bool, err error) {
	if rq.kind != pyDict {
		return in, false, fmt.Errorf("request is a %s, not a mapping", rq.kind)
	}
	if rs.kind != pyDict {
		return in, false, fmt.Errorf("response is a %s, not a mapping", rs.kind)
	}
	req := &in.Request
	if req.Method, err = text(rq.get("method").or(&pyValue{kind: pyStr})); err != nil {
		return in, false, fmt.Errorf("request method: %w", err)
	}
	if req.URL, err = text(rq.get("uri").or(rq.get("url")).or(&pyValue{kind: pyStr})); err != nil {
		return in, false, fmt.Errorf("request uri: %w", err)
	}
	if p := rq.get("proto"); p != nil && p.kind == pyStr {
		req.Proto = p.s
	}
	if req.Header, err = vcrHeaders(rq.get("headers"), text); err != nil {
		return in, false, fmt.Errorf("request headers: %w", err)
	}
	var rebuilt bool
	if req.Body, rebuilt, err = vcrBody(rq, text); err != nil {
		return in, false, fmt.Errorf("request body: %w", err)
	}
	if rebuilt {
		setContentLength(req.Header, len(req.Body))
	}
	parsedBody = rq.has("parsed_body")

	resp := &in.Response
	if resp.Status, resp.Reason, err = vcrStatus(rs, text); err != nil {
		return in, false, fmt.Errorf("response status: %w", err)
	}
	if p := rs.get("proto"); p != nil && p.kind == pyStr {
		resp.Proto = p.s
	}
	if resp.Header, err = vcrHeaders(rs.get("headers"), text); err != nil {
		return in, false, fmt.Errorf("response headers: %w", err)
	}
	if resp.Body, rebuilt, err = vcrBody(rs, text); err != nil {
		return in, false, fmt.Errorf("response body: %w", err)
	}
	if rebuilt {
		setContentLength(resp.Header, len(resp.Body))
	}
	parsedBody = parsedBody || rs.has("parsed_body")
	return in, parsedBody, nil
}

// vcrHeaders reads {name: [values]} or {name: value}; byte values (botocore
// sends bytes headers) decode as Latin-1.
func vcrHeaders(v *pyValue, text textFunc) (http.Header, error) {
	h := http.Header{}
	if !v.truthy() {
		return h, nil
	}
	if v.kind != pyDict {
		return nil, fmt.Errorf("a %s, not a mapping", v.kind)
	}
	for i, k := range v.keys {
		name, err := text(k)
		if err != nil {
			return nil, err
		}
		vals := v.items[i]
		list := []*pyValue{vals}
		if vals.kind == pyList {
			list = vals.items
		}
		for _, val := range list {
			s, err := text(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			addHeader(h, name, s)
		}
	}
	return h, nil
}

// vcrBody returns a message's body bytes and whether they were rebuilt from
// a parsed tree (so the recorded Content-Length no longer applies).
//
// Stored forms: parsed_body (a JSON tree, pydantic-ai); body as a string,
// !!binary, null, {string: ...}, {base64_string: ...}; and, in a few
// pydantic-ai files, body as a bare JSON tree.
func vcrBody(m *pyValue, text textFunc) ([]byte, bool, error) {
	if m.has("parsed_body") {
		b, err := pyJSONDumps(m.get("parsed_body"))
		if err != nil {
			return nil, false, fmt.Errorf("parsed_body: %w", err)
		}
		return b, true, nil
	}
	return storedBody(m.get("body"), text)
}

func storedBody(b *pyValue, text textFunc) ([]byte, bool, error) {
	if b == nil {
		return nil, false, nil
	}
	switch b.kind {
	case pyNone:
		return nil, false, nil
	case pyBytes:
		return b.raw, false, nil
	case pyStr:
		return []byte(b.s), false, nil
	case pyDict:
		switch {
		case b.has("base64_string"):
			s := b.get("base64_string")
			if s.kind != pyStr {
				return nil, false, fmt.Errorf("base64_string is a %s", s.kind)
			}
			raw, err := decodeBase64Lenient(s.s)
			if err != nil {
				return nil, false, fmt.Errorf("base64_string: %w", err)
			}
			return raw, false, nil
		case b.has("string"):
			return storedBody(b.get("string"), text)
		}
		// A JSON body stored as a tree without the parsed_body marker.
		out, err := pyJSONDumps(b)
		if err != nil {
			return nil, false, err
		}
		return out, true, nil
	case pyList:
		out, err := pyJSONDumps(b)
		if err != nil {
			return nil, false, err
		}
		return out, true, nil
	}
	s, err := text(b)
	if err != nil {
		return nil, false, err
	}
	return []byte(s), false, nil
}

// vcrStatus reads vcrpy's {code, message}, go-vcr's code + "200 OK", or a
// bare status number or line.
func vcrStatus(rs *pyValue, text textFunc) (int, string, error) {
	st := rs.get("status")
	switch {
	case st != nil && st.kind == pyDict:
		code, err := statusNumber(st.get("code"))
		if err != nil {
			return 0, "", err
		}
		reason := ""
		if m := st.get("message"); m != nil && m.kind != pyNone {
			reason, _ = text(m)
		}
		return code, reason, nil
	case rs.get("code") != nil && rs.get("code").kind == pyInt:
		code, err := statusNumber(rs.get("code"))
		if err != nil {
			return 0, "", err
		}
		reason := ""
		if st != nil && (st.kind == pyStr || st.kind == pyBytes) {
			line, err := text(st)
			if err != nil {
				return 0, "", err
			}
			if _, r, ok := strings.Cut(line, " "); ok {
				reason = r
			}
		}
		return code, reason, nil
	case st != nil && st.kind == pyInt:
		code, err := statusNumber(st)
		return code, "", err
	case st != nil && st.kind == pyStr && len(st.s) >= 3:
		code, err := strconv.Atoi(st.s[:3])
		if err != nil {
			return 0, "", fmt.Errorf("bad status %q", st.s)
		}
		reason := ""
		if len(st.s) > 4 {
			reason = st.s[4:]
		}
		return code, reason, nil
	}
	return 0, "", errors.New("no status code")
}

func statusNumber(v *pyValue) (int, error) {
	if v == nil {
		return 0, errors.New("no status code")
	}
	var n int64
	switch v.kind {
	case pyInt:
		if !v.i.IsInt64() {
			return 0, fmt.Errorf("bad status code %s", v.i)
		}
		n = v.i.Int64()
	case pyStr:
		var err error
		if n, err = strconv.ParseInt(v.s, 10, 32); err != nil {
			return 0, fmt.Errorf("bad status code %q", v.s)
		}
	default:
		return 0, fmt.Errorf("status code is a %s", v.kind)
	}
	if n < 100 || n > 999 {
		return 0, fmt.Errorf("status code %d out of range", n)
	}
	return int(n), nil
}
