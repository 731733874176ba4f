// Package web owns the live dashboard the sensor serves while it records:
// a sink that keeps the most recent events (encoded once, in a bounded
// ring) and an http.Handler that serves an embedded single-page dashboard,
// a Server-Sent Events stream of the events as they are recorded (resumable
// with Last-Event-ID from the ring), the buffered events as JSON and the
// sink's counters.
//
// Events carry prompts, responses, tool arguments and command lines, so the
// dashboard is for the machine's own user: Server listens on 127.0.0.1 by
// default, the handler answers only requests whose Host is an IP literal,
// "localhost" or a name the configuration allows (so that a web page cannot
// reach it through DNS rebinding), and the page runs under a strict
// Content-Security-Policy with no external resource. Listening on another
// address exposes every captured prompt to whoever can reach it.
//
// Record never blocks: each dashboard stream has a bounded queue, and a
// stream whose queue is full (a client that does not read fast enough) is
// dropped and counted; the browser reconnects and resumes from the ring.
package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Counter tokens of the web sink.
const (
	TokenEvents        = "sink.web.sent"           // events recorded into the ring: what the dashboard shows (sent, as every exporter counts it)
	TokenClients       = "sink.web.clients"        // event streams opened
	TokenClientDropped = "sink.web.client_dropped" // streams closed because their client fell behind
	TokenErrors        = "sink.web.errors"         // events that could not be encoded (not shown)
	TokenDropped       = "sink.web.dropped"        // events recorded after Close (not shown)
	TokenMissed        = "sink.web.missed"         // events a reconnecting stream asked for that the ring had evicted
	TokenRejected      = "sink.web.rejected"       // requests refused: foreign Host, too many streams, closed
)

// Defaults of Config.
const (
	DefaultAddr        = "127.0.0.1:7777"
	DefaultRingEvents  = 5000
	DefaultRingBytes   = 64 << 20
	DefaultClientQueue = 1024
	DefaultMaxClients  = 32
	DefaultHeartbeat   = 15 * time.Second
)

// Config configures a Sink and its Server. Zero values take the defaults.
type Config struct {
	// Addr is where Server listens (DefaultAddr: loopback only, because
	// events carry prompts).
	Addr string
	// RingEvents and RingBytes bound the buffered recent events: the
	// oldest are evicted when either is exceeded (DefaultRingEvents,
	// DefaultRingBytes of encoded JSON).
	RingEvents int
	RingBytes  int
	// ClientQueue is how many events may wait for one stream's client; a
	// client further behind is dropped (DefaultClientQueue).
	ClientQueue int
	// MaxClients bounds the open event streams (DefaultMaxClients).
	MaxClients int
	// Heartbeat is how often an idle stream gets a comment line, so that
	// proxies and the browser keep it open and a gone client is noticed
	// (DefaultHeartbeat).
	Heartbeat time.Duration
	// AllowedHosts are host names, besides IP literals and "localhost",
	// that requests may name in their Host header (for a dashboard reached
	// by a name of this machine).
	AllowedHosts []string
	// Stats counts events, streams and drops; nil discards.
	Stats stats.Recorder
	// Logger logs streams dropped and encoding failures; nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.RingEvents <= 0 {
		c.RingEvents = DefaultRingEvents
	}
	if c.RingBytes <= 0 {
		c.RingBytes = DefaultRingBytes
	}
	if c.ClientQueue <= 0 {
		c.ClientQueue = DefaultClientQueue
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Stats == nil {
		c.Stats = stats.Discard{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Sink keeps recent events for the dashboard and fans new ones out to the
// open event streams. It is an http.Handler and a pipeline recorder; it is
// safe for concurrent use.
type Sink struct {
	cfg     Config
	handler http.Handler

	mu      sync.Mutex
	seq     uint64 // sequence number of the last event recorded
	ring    ring
	clients []*client
	closed  bool
	tally   tally
	// streams counts the handlers of open streams, so that Close can wait
	// for them to deliver what is queued.
	streams sync.WaitGroup
	// encodeErrors counts failed encodings, logged only the first time
	// so that a bad event type repeated on every request does not flood
	// the log.
	encodeErrors int64
	// encoders are encoders with their buffers, reused across events.
	encoders sync.Pool
	// slab holds the encoded events of the ring (under mu).
	slab slab
	// clientsDropped, missed and droppedAtClose mirror TokenClientDropped,
	// TokenMissed and TokenDropped for the dashboard's own counters.
	clientsDropped int64
	missed         int64
	droppedAtClose int64
}

// New returns a Sink.
func New(cfg Config) *Sink {
	cfg = cfg.withDefaults()
	s := &Sink{cfg: cfg, ring: newRing(cfg.RingEvents, cfg.RingBytes)}
	s.tally.byType = make(map[string]int64)
	s.encoders.New = func() any {
		eb := new(encodeBuffer)
		eb.enc = json.NewEncoder(&eb.buf)
		return eb
	}
	s.handler = s.routes()
	return s
}

// Record encodes ev and offers it to the ring and every open stream. It
// does not retain ev.
func (s *Sink) Record(ev *oisp.Event) {
	// Encoding, the bulk of the work, runs outside the lock so that
	// events recorded concurrently encode in parallel.
	eb := s.encoders.Get().(*encodeBuffer)
	defer func() {
		if eb.buf.Cap() <= maxPooledBuffer {
			s.encoders.Put(eb)
		}
	}()
	eb.buf.Reset()
	if err := eb.enc.Encode(ev); err != nil {
		s.cfg.Stats.Count(TokenErrors, 1)
		s.mu.Lock()
		s.encodeErrors++
		first := s.encodeErrors == 1
		s.mu.Unlock()
		if first {
			s.cfg.Logger.Warn("web dashboard: cannot encode event; it is not shown (counted as "+TokenErrors+")",
				"event_type", ev.EventType, "err", err)
		}
		return
	}
	encoded := bytes.TrimSuffix(eb.buf.Bytes(), []byte("\n"))
	var dropped []*client
	s.mu.Lock()
	if s.closed {
		s.droppedAtClose++
		s.mu.Unlock()
		s.cfg.Stats.Count(TokenDropped, 1)
		return
	}
	s.seq++
	e := entry{seq: s.seq, data: s.slab.copy(encoded)}
	s.ring.push(e)
	s.tally.add(ev)
	for i := 0; i < len(s.clients); {
		c := s.clients[i]
		select {
		case c.queue <- e:
			i++
		default:
			// The client is a whole queue behind: drop it rather than
			// wait or grow. Its browser reconnects and resumes from the
			// ring.
			s.removeLocked(i)
			s.clientsDropped++
			dropped = append(dropped, c)
		}
	}
	s.mu.Unlock()
	s.cfg.Stats.Count(TokenEvents, 1)
	for _, c := range dropped {
		c.cut()
		close(c.gone)
		s.cfg.Stats.Count(TokenClientDropped, 1)
		s.cfg.Logger.Info("web dashboard: dropped a stream whose client fell behind; it may reconnect and resume",
			"remote", c.remote, "queue", s.cfg.ClientQueue, "seq", e.seq)
	}
}

// maxPooledBuffer is the largest encoding buffer kept for reuse: one
// huge event should not pin its buffer for the rest of the run.
const maxPooledBuffer = 1 << 20

// encodeBuffer is an encoder writing into its own buffer.
type encodeBuffer struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// slabSize is the size of the blocks encoded events are copied into: one
// allocation for many events instead of one each. A block lives while any
// event in it is in the ring or a stream queue; both drop events oldest
// first, so the blocks alive span at most the buffered events plus one
// block.
const slabSize = 256 << 10

// slab copies encoded events into shared blocks.
type slab struct{ block []byte }

// copy returns a copy of p that is never written again.
func (b *slab) copy(p []byte) []byte {
	if len(p) > slabSize/8 {
		return bytes.Clone(p) // big events would waste the rest of a block
	}
	if cap(b.block)-len(b.block) < len(p) {
		b.block = make([]byte, 0, slabSize)
	}
	start := len(b.block)
	b.block = append(b.block, p...)
	return b.block[start:len(b.block):len(b.block)]
}

// removeLocked removes the client at i from the open streams.
func (s *Sink) removeLocked(i int) {
	last := len(s.clients) - 1
	s.clients[i] = s.clients[last]
	s.clients[last] = nil
	s.clients = s.clients[:last]
}

// ServeHTTP serves the dashboard and its API.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Close ends every event stream, each after delivering what its queue
// holds, and waits for them until ctx ends; streams still writing then are
// cut. Events recorded afterwards are dropped and counted.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	clients := s.clients
	s.clients = nil
	s.mu.Unlock()
	for _, c := range clients {
		close(c.gone)
	}
	done := make(chan struct{})
	go func() {
		s.streams.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		stuck := 0
		for _, c := range clients {
			if c.cut() {
				stuck++
			}
		}
		<-done
		return fmt.Errorf("web dashboard: event streams cut before their queued events were written: %d (a client stopped reading): %w", stuck, ctx.Err())
	}
}

// Server serves a Sink on a listening address.
type Server struct {
	*Sink
	ln   net.Listener
	http *http.Server
	done chan error
}

// Listen starts serving a new Sink on cfg.Addr (DefaultAddr when empty).
func Listen(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("web dashboard: listen on %s: %w (choose another address or port for the dashboard)", cfg.Addr, err)
	}
	sink := New(cfg)
	srv := &Server{
		Sink: sink,
		ln:   ln,
		http: &http.Server{
			Handler:           sink,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		},
		done: make(chan error, 1),
	}
	go func() { srv.done <- srv.http.Serve(ln) }()
	return srv, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the dashboard's URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Close ends the event streams (see Sink.Close), then shuts the server
// down, waiting for requests in flight until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	errSink := s.Sink.Close(ctx)
	errHTTP := s.http.Shutdown(ctx)
	if errHTTP != nil {
		s.http.Close()
		errHTTP = fmt.Errorf("web dashboard: shut down the server: %w", errHTTP)
	}
	if err := <-s.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errHTTP = errors.Join(errHTTP, fmt.Errorf("web dashboard: serve: %w", err))
	}
	return errors.Join(errSink, errHTTP)
}
