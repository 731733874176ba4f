// Package loopback owns real-wire replay: it serves a recording's responses
// from a real TLS server on the loopback interface (Go net/http for
// HTTP/1.1, x/net/http2 for HTTP/2, quic-go for HTTP/3), drives a real Go
// client through every recorded request over the chosen protocol, and taps
// the plaintext at the server's TLS boundary (for HTTP/3, at a stream-level
// QUIC relay in front of the server). The taps produce ordinary flows, so
// the decoders see exactly what a TLS-boundary capture would see.
package loopback

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// Transport names the protocol the client and server speak.
type Transport string

// Transports.
const (
	H1 Transport = "h1"
	H2 Transport = "h2"
	H3 Transport = "h3"
)

// Options configure a replay.
type Options struct {
	Transport Transport
	Logger    *slog.Logger
	// Client, when set, sends the requests instead of the built-in Go
	// client (the conformance suite plugs SDKs and curl in here). It gets
	// the server's address and CA and must perform every interaction in
	// order.
	Client Driver
}

// Driver performs a recording's requests against a running replay server.
type Driver interface {
	Drive(ctx context.Context, srv *Server, rec *cassette.Recording) error
}

// Source replays one recording over a real connection. It implements
// flow.Source.
type Source struct {
	rec *cassette.Recording
	opt Options
}

// New returns a source replaying rec.
func New(rec *cassette.Recording, opt Options) *Source {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Transport == "" {
		opt.Transport = H1
	}
	return &Source{rec: rec, opt: opt}
}

// Run starts the server, drives the client through every interaction, and
// returns when all of them are done and every flow is closed.
func (s *Source) Run(ctx context.Context, h flow.Handler) error {
	srv, err := Start(s.rec, s.opt.Transport, h, s.opt.Logger)
	if err != nil {
		return err
	}
	drv := s.opt.Client
	if drv == nil {
		drv = GoClient{}
	}
	derr := drv.Drive(ctx, srv, s.rec)
	cerr := srv.Close()
	return errors.Join(derr, cerr)
}

// Server is a running replay server.
type Server struct {
	Transport Transport
	// Addr is the loopback address clients must dial (TCP for h1/h2, UDP
	// for h3). Requests carry the recorded host names; clients dial Addr
	// whatever the host.
	Addr string
	// CA signs the server's certificates; clients must trust it.
	CA *ca.CA
	// CAFile is the CA certificate in PEM, for clients such as curl.
	CAFile string

	responder *responder
	taps      *tapSet
	closers   []func() error
	tmp       string
	wg        sync.WaitGroup
}

// Start starts a replay server for rec over transport; the plaintext of
// every connection is delivered to h.
func Start(rec *cassette.Recording, transport Transport, h flow.Handler, log *slog.Logger) (*Server, error) {
	tmp, err := os.MkdirTemp("", "oisp-loopback-")
	if err != nil {
		return nil, err
	}
	authority, err := ca.Create(tmp, ca.Options{CommonName: "oisp-sensor loopback replay CA"})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("loopback: create CA: %w", err)
	}
	srv := &Server{
		Transport: transport,
		CA:        authority,
		CAFile:    authority.CertPath(),
		responder: newResponder(rec, log),
		taps:      &tapSet{h: h},
		tmp:       tmp,
	}
	switch transport {
	case H1, H2:
		err = srv.startTCP(transport, log)
	case H3:
		err = srv.startQUIC(log)
	default:
		err = fmt.Errorf("loopback: unknown transport %q (want h1, h2 or h3)", transport)
	}
	if err != nil {
		srv.Close()
		return nil, err
	}
	return srv, nil
}

// Close stops the server, waits for its connections and closes every flow.
func (s *Server) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if !waitTimeout(&s.wg, closeGrace) {
		// A client that left a connection open would keep its server
		// goroutine, and so Close, waiting forever: cut it.
		s.taps.closeConns()
		s.wg.Wait()
	}
	s.taps.closeAll()
	os.RemoveAll(s.tmp)
	return errors.Join(errs...)
}

// closeGrace is how long Close lets clients end their connections before
// cutting them.
const closeGrace = 5 * time.Second

// waitTimeout waits for wg and reports whether it finished within d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Unserved reports interactions the server never served (a client that
// skipped requests).
func (s *Server) Unserved() int { return s.responder.unserved() }

func (s *Server) tlsConfig(protos []string) *tls.Config {
	return &tls.Config{
		GetCertificate: s.CA.GetCertificate,
		NextProtos:     protos,
		MinVersion:     tls.VersionTLS12,
	}
}

// ClientTLS returns a TLS config for a client of this server.
func (s *Server) ClientTLS(serverName string, protos []string) *tls.Config {
	return &tls.Config{RootCAs: s.CA.CertPool(), ServerName: serverName, NextProtos: protos}
}

// hostOf returns the host name (no port) of a recorded URL.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// hopByHop are headers that describe one connection, not the message.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Transfer-Encoding": true,
	"Upgrade": true, "Te": true, "Trailer": true, "Content-Length": true, "Host": true,
	"Http2-Settings": true,
}

func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop[ck] || strings.HasPrefix(k, ":") {
			continue
		}
		for _, v := range vs {
			dst.Add(ck, v)
		}
	}
}

// streamParts splits a response body into the pieces the server writes and
// flushes one by one: SSE events, NDJSON lines, or a single piece.
func streamParts(h http.Header, body []byte) [][]byte {
	ct := strings.ToLower(h.Get("Content-Type"))
	if h.Get("Content-Encoding") != "" {
		return [][]byte{body}
	}
	var sep []byte
	switch {
	case strings.Contains(ct, "text/event-stream"):
		sep = []byte("\n\n")
		if bytes.Contains(body, []byte("\r\n\r\n")) {
			sep = []byte("\r\n\r\n")
		}
	case strings.Contains(ct, "ndjson"), strings.Contains(ct, "jsonl"):
		sep = []byte("\n")
	default:
		return [][]byte{body}
	}
	var parts [][]byte
	for len(body) > 0 {
		i := bytes.Index(body, sep)
		if i < 0 {
			parts = append(parts, body)
			break
		}
		parts = append(parts, body[:i+len(sep)])
		body = body[i+len(sep):]
	}
	return parts
}

// GoClient drives the recording with Go's net/http client (x/net/http2 for
// h2, quic-go's http3 for h3), forced to the server's transport.
type GoClient struct{}

// Drive performs every interaction in order.
func (GoClient) Drive(ctx context.Context, srv *Server, rec *cassette.Recording) error {
	return driveGo(ctx, srv, rec, ClientOptions{})
}

// driveGo sends every recorded request in order over a client transport
// with options o, reading each response to its end.
func driveGo(ctx context.Context, srv *Server, rec *cassette.Recording, o ClientOptions) error {
	rt, closeRT, err := srv.ClientTransport(o)
	if err != nil {
		return err
	}
	defer closeRT()
	client := &http.Client{Transport: rt, Timeout: 60 * time.Second}
	for i, in := range rec.Interactions {
		if err := doInteraction(ctx, client, in); err != nil {
			return fmt.Errorf("interaction %d (%s %s): %w", i+1, in.Request.Method, in.Request.URL, err)
		}
	}
	return nil
}

func doInteraction(ctx context.Context, client *http.Client, in cassette.Interaction) error {
	u := in.Request.URL
	if strings.HasPrefix(u, "http://") {
		u = "https://" + strings.TrimPrefix(u, "http://")
	}
	var body io.Reader
	if len(in.Request.Body) > 0 {
		body = bytes.NewReader(in.Request.Body)
	}
	req, err := http.NewRequestWithContext(ctx, in.Request.Method, u, body)
	if err != nil {
		return err
	}
	copyHeaders(req.Header, in.Request.Header)
	if req.Header.Get("Accept-Encoding") == "" {
		// Keep Go's transport from asking for gzip and decompressing on
		// its own: the recorded exchange decides the encoding.
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
