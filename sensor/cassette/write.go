package cassette

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	yaml4 "go.yaml.in/yaml/v4"
	vcr "gopkg.in/dnaeon/go-vcr.v4/pkg/cassette"
)

// Write writes r as a go-vcr v4 cassette (format version 2), encoded the way
// go-vcr's own Cassette.Save does, so cassette.Load reads it. Bodies that
// are not valid UTF-8 (gzip wire bodies, eventstream) become !!binary.
//
// Secrets never leave the sensor: Authorization-like headers and key-like
// query parameters are written as "REDACTED" (see Redact).
func Write(w io.Writer, r *Recording) error {
	c := &vcr.Cassette{Version: vcr.CassetteFormatVersion, Interactions: make([]*vcr.Interaction, 0, len(r.Interactions))}
	for i, in := range r.Interactions {
		u := RedactURL(in.Request.URL)
		host := ""
		if pu, err := url.Parse(u); err == nil {
			host = pu.Host
		}
		rq := vcr.Request{
			Proto:         in.Request.Proto,
			ContentLength: int64(len(in.Request.Body)),
			Host:          host,
			Body:          string(in.Request.Body),
			Headers:       RedactHeader(in.Request.Header),
			URL:           u,
			Method:        in.Request.Method,
		}
		rq.ProtoMajor, rq.ProtoMinor, _ = http.ParseHTTPVersion(rq.Proto)
		status := strconv.Itoa(in.Response.Status)
		if in.Response.Reason != "" {
			status += " " + in.Response.Reason
		}
		rs := vcr.Response{
			Proto:         in.Response.Proto,
			ContentLength: int64(len(in.Response.Body)),
			Body:          string(in.Response.Body),
			Headers:       RedactHeader(in.Response.Header),
			Status:        status,
			Code:          in.Response.Status,
		}
		if rs.Headers == nil {
			rs.Headers = http.Header{}
		}
		rs.ProtoMajor, rs.ProtoMinor, _ = http.ParseHTTPVersion(rs.Proto)
		c.Interactions = append(c.Interactions, &vcr.Interaction{ID: i, Request: rq, Response: rs})
	}
	data, err := yaml4.Marshal(c)
	if err != nil {
		return fmt.Errorf("cassette: encode: %w", err)
	}
	if _, err := io.WriteString(w, "---\n"); err != nil {
		return fmt.Errorf("cassette: write: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("cassette: write: %w", err)
	}
	return nil
}

// Redacted replaces secret values in written recordings.
const Redacted = "REDACTED"

// secretHeaders carry credentials (lower-case names).
var secretHeaders = map[string]bool{
	"authorization":       true,
	"proxy-authorization": true,
	"x-api-key":           true,
	"api-key":             true,
	"x-goog-api-key":      true,
}

// RedactHeader returns a copy of h with credential headers' values replaced.
func RedactHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		if secretHeaders[strings.ToLower(k)] {
			red := make([]string, len(vs))
			for i := range red {
				red[i] = Redacted
			}
			out[k] = red
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// isSecretParam reports whether a query parameter name looks like it carries
// a credential: key=, api_key=, access_token=, X-Amz-Signature=, sig= …
func isSecretParam(name string) bool {
	n := strings.ToLower(name)
	if n == "sig" {
		return true
	}
	for _, suffix := range []string{"key", "token", "secret", "signature", "credential", "password"} {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// RedactURL replaces the values of key-like query parameters and any
// userinfo password; every other byte of the URL is kept as recorded.
func RedactURL(raw string) string {
	if at := strings.Index(raw, "://"); at >= 0 {
		rest := raw[at+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if ui := strings.LastIndexByte(rest[:end], '@'); ui >= 0 {
			if colon := strings.IndexByte(rest[:ui], ':'); colon >= 0 {
				raw = raw[:at+3] + rest[:colon+1] + Redacted + rest[ui:]
			}
		}
	}
	q := strings.IndexByte(raw, '?')
	if q < 0 {
		return raw
	}
	query, frag := raw[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	parts := strings.Split(query, "&")
	changed := false
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		}
		if hasValue && isSecretParam(name) {
			k, _, _ := strings.Cut(p, "=")
			parts[i] = k + "=" + Redacted
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return raw[:q+1] + strings.Join(parts, "&") + frag
}
