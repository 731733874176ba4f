package loopback

import (
	"net/http"
	"net/url"
)

func parseURL(raw string) (*url.URL, error) { return url.Parse(raw) }

// RoundTripper returns an HTTP client transport forced to the server's
// protocol that dials the server whatever host a request names, offering
// that host as SNI. The returned func closes every connection the
// transport opened.
func (s *Server) RoundTripper() (http.RoundTripper, func(), error) {
	return s.ClientTransport(ClientOptions{})
}
