package cassette

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/oisp/oisp-sensor/sensor/secret"
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
const Redacted = secret.Redacted

// RedactHeader returns a copy of h with credential headers' values replaced.
func RedactHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		if secret.IsHeader(k) {
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

// RedactURL replaces the values of key-like query parameters and any
// userinfo password; every other byte of the URL is kept as recorded.
func RedactURL(raw string) string { return secret.RedactURL(raw) }
