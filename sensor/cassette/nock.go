package cassette

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// isNock reports whether a JSON array is a nock recording: every element an
// object with scope and method (an empty array is one too).
func isNock(v *pyValue) bool {
	if v.kind != pyList {
		return false
	}
	for _, it := range v.items {
		if it.kind != pyDict || !it.has("scope") || !it.has("method") {
			return false
		}
	}
	return true
}

// fromNock reads a nock recording (nock.recorder with output_objects):
// [{scope, method, path, body, status, response, rawHeaders, reqheaders,
// responseIsBinary}, ...].
func fromNock(v *pyValue) (*Recording, error) {
	rec := &Recording{Format: FormatNock, Interactions: make([]Interaction, 0, len(v.items))}
	for i, it := range v.items {
		in, err := nockInteraction(it)
		if err != nil {
			return nil, fmt.Errorf("interaction %d: %w", i, err)
		}
		rec.Interactions = append(rec.Interactions, in)
	}
	return rec, nil
}

func nockInteraction(it *pyValue) (Interaction, error) {
	var in Interaction
	empty := &pyValue{kind: pyStr}
	scope, err := pyText(it.get("scope").or(empty))
	if err != nil {
		return in, fmt.Errorf("scope: %w", err)
	}
	path, err := pyText(it.get("path").or(empty))
	if err != nil {
		return in, fmt.Errorf("path: %w", err)
	}
	req := &in.Request
	if req.Method, err = pyText(it.get("method").or(empty)); err != nil {
		return in, fmt.Errorf("method: %w", err)
	}
	req.URL = strings.TrimRight(scope, "/") + path
	if req.Header, err = nockHeaderMap(it.get("reqheaders")); err != nil {
		return in, fmt.Errorf("reqheaders: %w", err)
	}
	var rebuilt bool
	if req.Body, rebuilt, err = nockBody(it.get("body"), false); err != nil {
		return in, fmt.Errorf("request body: %w", err)
	}
	if rebuilt {
		setContentLength(req.Header, len(req.Body))
	}

	resp := &in.Response
	resp.Status = http.StatusOK // nock's default when a recording leaves it out
	if st := it.get("status"); st != nil && st.kind != pyNone {
		if resp.Status, err = statusNumber(st); err != nil {
			return in, fmt.Errorf("status: %w", err)
		}
	}
	switch raw := it.get("rawHeaders"); {
	case raw != nil && raw.kind == pyList:
		resp.Header = http.Header{}
		for j := 0; j+1 < len(raw.items); j += 2 {
			name, err := pyText(raw.items[j])
			if err != nil {
				return in, fmt.Errorf("rawHeaders[%d]: %w", j, err)
			}
			value, err := pyText(raw.items[j+1])
			if err != nil {
				return in, fmt.Errorf("rawHeaders[%d]: %w", j+1, err)
			}
			addHeader(resp.Header, name, value)
		}
	case raw.truthy():
		if resp.Header, err = nockHeaderMap(raw); err != nil {
			return in, fmt.Errorf("rawHeaders: %w", err)
		}
	default:
		if resp.Header, err = nockHeaderMap(it.get("headers")); err != nil {
			return in, fmt.Errorf("headers: %w", err)
		}
	}
	if resp.Body, rebuilt, err = nockBody(it.get("response"), it.get("responseIsBinary").truthy()); err != nil {
		return in, fmt.Errorf("response body: %w", err)
	}
	if rebuilt {
		setContentLength(resp.Header, len(resp.Body))
	}
	return in, nil
}

func nockHeaderMap(v *pyValue) (http.Header, error) {
	h := http.Header{}
	if !v.truthy() {
		return h, nil
	}
	if v.kind != pyDict {
		return nil, fmt.Errorf("a %s, not an object", v.kind)
	}
	for i, k := range v.keys {
		name, _ := pyText(k)
		vals := []*pyValue{v.items[i]}
		if v.items[i].kind == pyList {
			vals = v.items[i].items
		}
		for _, val := range vals {
			s, err := pyText(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			addHeader(h, name, s)
		}
	}
	return h, nil
}

// nockBody decodes a nock body: a hex string when binary, an array of hex
// strings (nock's form for compressed bodies), a text string, or a JSON
// value nock parsed. A parsed value is re-serialised (rebuilt is then true)
// with Python's json.dumps conventions, like every other rebuilt body here,
// so all tools reading these files agree on the bytes; the original
// separators are not recorded anyway.
func nockBody(v *pyValue, binary bool) (body []byte, rebuilt bool, err error) {
	if v == nil || v.kind == pyNone {
		return nil, false, nil
	}
	if v.kind == pyStr {
		if binary {
			b, err := hex.DecodeString(v.s)
			if err != nil {
				return nil, false, fmt.Errorf("binary body is not hex: %w", err)
			}
			return b, false, nil
		}
		return []byte(v.s), false, nil
	}
	if v.kind == pyList && len(v.items) > 0 {
		var joined []byte
		allHex := true
		for _, it := range v.items {
			if it.kind != pyStr {
				allHex = false
				break
			}
			b, err := hex.DecodeString(it.s)
			if err != nil {
				allHex = false
				break
			}
			joined = append(joined, b...)
		}
		if allHex {
			return joined, false, nil
		}
	}
	b, err := pyJSONDumps(v)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}
