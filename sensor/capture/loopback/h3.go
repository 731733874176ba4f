package loopback

import (
	"errors"
	"log/slog"
	"net/http"
)

var errNoH3 = errors.New("loopback: HTTP/3 replay needs the QUIC relay (sensor/capture/quicrelay)")

func (s *Server) startQUIC(log *slog.Logger) error { return errNoH3 }

func (s *Server) h3RoundTripper() (http.RoundTripper, func(), error) { return nil, nil, errNoH3 }
