package web

import (
	"bytes"
	"embed"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
)

// assets is the dashboard: plain HTML, CSS and JavaScript, no build step
// and nothing fetched from elsewhere (the sensor may run offline).
//
//go:embed assets/index.html assets/app.css assets/app.js
var assets embed.FS

// contentSecurityPolicy lets the page load only its own script, style and
// API: no inline script, no eval, no other origin, no framing. Event text
// that slipped into markup could still not run.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// writeTimeout bounds one write to a stream's client: a client that reads
// nothing for that long is gone even if no event came to fill its queue.
const writeTimeout = time.Minute

// client is one open event stream.
type client struct {
	queue  chan entry
	gone   chan struct{} // closed when the stream must end (dropped or Close)
	remote string

	mu       sync.Mutex
	rc       *http.ResponseController
	isCut    bool
	finished bool
}

// cut makes the stream's pending and later writes fail at once, so that a
// handler blocked writing to a client that does not read returns and its
// connection closes.
// It reports whether the handler was still running.
func (c *client) cut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.isCut = true
	if !c.finished {
		c.rc.SetWriteDeadline(time.Unix(1, 0))
	}
	return !c.finished
}

// extendDeadline gives the next write writeTimeout, unless the stream is
// cut.
func (c *client) extendDeadline() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.isCut {
		c.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	}
}

// drain appends to batch what the queue holds, without waiting, until
// batch has max entries (max 0: no limit).
func (c *client) drain(batch []entry, max int) []entry {
	for max == 0 || len(batch) < max {
		select {
		case e := <-c.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// finish marks the handler returned: the response controller must not be
// used after it.
func (c *client) finish() {
	c.mu.Lock()
	c.finished = true
	c.mu.Unlock()
}

func (s *Sink) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveAsset("assets/index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /app.js", s.serveAsset("assets/app.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /app.css", s.serveAsset("assets/app.css", "text/css; charset=utf-8"))
	// No icon: answered so that browsers do not log a missing one.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /api/events", s.serveEvents)
	mux.HandleFunc("GET /api/recent", s.serveRecent)
	mux.HandleFunc("GET /api/stats", s.serveStats)
	return s.guard(mux)
}

// guard refuses requests naming a host that is not this machine's (DNS
// rebinding: a page whose name resolves to 127.0.0.1 would otherwise read
// the events) and sets the headers every response carries.
func (s *Sink) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			s.cfg.Stats.Count(TokenRejected, 1)
			http.Error(w, "web dashboard: unknown host "+strconv.Quote(r.Host)+"; open it by IP address or localhost, or add the name to the allowed hosts", http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (s *Sink) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") {
		return true
	}
	for _, a := range s.cfg.AllowedHosts {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

func (s *Sink) serveAsset(name, contentType string) http.HandlerFunc {
	body, err := assets.ReadFile(name)
	if err != nil {
		panic("web: embedded asset missing: " + name) // a build error, not a runtime one
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
}

// resumePoint reads where a stream resumes: the Last-Event-ID header a
// reconnecting EventSource sends, else the since parameter; ok is false
// when neither is given (new events only).
func resumePoint(r *http.Request) (seq uint64, reconnect, ok bool) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			return n, true, true
		}
	}
	if v := r.URL.Query().Get("since"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			return n, false, true
		}
	}
	return 0, false, false
}

// subscribe opens a stream: the buffered entries after seq (when resume)
// and a queue registered for the entries recorded from then on, with no
// gap or overlap between the two.
func (s *Sink) subscribe(seq uint64, resume bool, c *client) (backlog []entry, missed uint64, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, 0, http.StatusServiceUnavailable
	case len(s.clients) >= s.cfg.MaxClients:
		return nil, 0, http.StatusTooManyRequests
	}
	if resume {
		if seq > s.seq {
			// A sequence number from an earlier run of the sensor: start
			// over.
			backlog, missed = s.ring.after(0, s.seq, 0)
		} else {
			backlog, missed = s.ring.after(seq, s.seq, 0)
		}
	}
	s.clients = append(s.clients, c)
	s.streams.Add(1)
	return backlog, missed, 0
}

// unsubscribe removes c if it is still registered.
func (s *Sink) unsubscribe(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.clients {
		if o == c {
			s.removeLocked(i)
			return
		}
	}
}

// serveEvents streams events as Server-Sent Events: "id:" is the event's
// sequence number and "data:" its JSON on one line. A "gap" event tells a
// resuming client how many events the ring had already evicted.
func (s *Sink) serveEvents(w http.ResponseWriter, r *http.Request) {
	seq, reconnect, resume := resumePoint(r)
	c := &client{
		queue:  make(chan entry, s.cfg.ClientQueue),
		gone:   make(chan struct{}),
		remote: r.RemoteAddr,
		rc:     http.NewResponseController(w),
	}
	backlog, missed, status := s.subscribe(seq, resume, c)
	if status != 0 {
		s.cfg.Stats.Count(TokenRejected, 1)
		http.Error(w, "web dashboard: no more event streams (closing, or too many open)", status)
		return
	}
	defer s.streams.Done()
	defer c.finish()
	defer s.unsubscribe(c)
	s.cfg.Stats.Count(TokenClients, 1)
	if missed > 0 && reconnect {
		s.cfg.Stats.Count(TokenMissed, int64(missed))
		s.mu.Lock()
		s.missed += int64(missed)
		s.mu.Unlock()
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	buf := make([]byte, 0, 4096)
	buf = append(buf, "retry: 2000\n\n"...)
	if missed > 0 {
		buf = append(buf, "event: gap\ndata: {\"missed\":"...)
		buf = strconv.AppendUint(buf, missed, 10)
		buf = append(buf, "}\n\n"...)
	}
	c.extendDeadline()
	if !s.writeEntries(w, c, buf, backlog) {
		return
	}

	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case e := <-c.queue:
			// Write what else is queued in the same flush.
			batch := c.drain(append(backlog[:0], e), 256)
			c.extendDeadline()
			if !s.writeEntries(w, c, buf[:0], batch) {
				return
			}
			backlog = batch
		case <-heartbeat.C:
			c.extendDeadline()
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
				return
			}
			if c.rc.Flush() != nil {
				return
			}
		case <-c.gone:
			// Dropped (the connection is already cut) or closing: deliver
			// what is queued, then end the stream.
			rest := c.drain(nil, 0)
			c.extendDeadline()
			s.writeEntries(w, c, buf[:0], rest)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// writeEntries writes prefix and the entries as SSE events, in pieces of
// about 64 KiB, then flushes; false when the client is gone.
func (s *Sink) writeEntries(w http.ResponseWriter, c *client, buf []byte, entries []entry) bool {
	for _, e := range entries {
		buf = append(buf, "id: "...)
		buf = strconv.AppendUint(buf, e.seq, 10)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, e.data...)
		buf = append(buf, "\n\n"...)
		if len(buf) >= 64<<10 {
			if _, err := w.Write(buf); err != nil {
				return false
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return false
		}
	}
	return c.rc.Flush() == nil
}

// serveRecent answers the buffered events as JSON: those after since=SEQ,
// or the last n=N (both: the last N after SEQ; neither: all buffered).
func (s *Sink) serveRecent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("n"))
	s.mu.Lock()
	entries, missed := s.ring.after(since, s.seq, limit)
	last := s.seq
	s.mu.Unlock()
	var b bytes.Buffer
	b.WriteString(`{"last_seq":`)
	b.WriteString(strconv.FormatUint(last, 10))
	b.WriteString(`,"missed":`)
	b.WriteString(strconv.FormatUint(missed, 10))
	b.WriteString(`,"events":[`)
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"seq":`)
		b.WriteString(strconv.FormatUint(e.seq, 10))
		b.WriteString(`,"event":`)
		b.Write(e.data)
		b.WriteByte('}')
	}
	b.WriteString("]}\n")
	w.Header().Set("Content-Type", "application/json")
	w.Write(b.Bytes())
}

// Stats is the sink's counters as /api/stats answers them.
type Stats struct {
	Events           int64            `json:"events"`
	ByType           map[string]int64 `json:"by_type"`
	PromptTokens     int64            `json:"prompt_tokens"`
	CompletionTokens int64            `json:"completion_tokens"`
	TotalTokens      int64            `json:"total_tokens"`
	CostUSD          float64          `json:"cost_usd"`
	Errors           int64            `json:"errors"`
	EncodeErrors     int64            `json:"encode_errors"`
	Clients          int              `json:"clients"`
	ClientsDropped   int64            `json:"clients_dropped"`
	// Backlog is the longest stream queue: how many events the slowest
	// client is behind (past the socket buffers).
	Backlog        int    `json:"backlog"`
	Missed         int64  `json:"missed"`
	DroppedAtClose int64  `json:"dropped_at_close"`
	LastSeq        uint64 `json:"last_seq"`
	RingFirstSeq   uint64 `json:"ring_first_seq"`
	RingEvents     int    `json:"ring_events"`
	RingBytes      int    `json:"ring_bytes"`
	RingEvicted    int64  `json:"ring_evicted"`
}

// Snapshot returns the sink's counters.
func (s *Sink) Snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	byType := make(map[string]int64, len(s.tally.byType))
	for k, v := range s.tally.byType {
		byType[k] = v
	}
	backlog := 0
	for _, c := range s.clients {
		backlog = max(backlog, len(c.queue))
	}
	return Stats{
		Backlog:          backlog,
		Events:           s.tally.events,
		ByType:           byType,
		PromptTokens:     s.tally.promptTokens,
		CompletionTokens: s.tally.completionTokens,
		TotalTokens:      s.tally.totalTokens,
		CostUSD:          s.tally.costUSD,
		Errors:           s.tally.errors,
		EncodeErrors:     s.encodeErrors,
		Clients:          len(s.clients),
		ClientsDropped:   s.clientsDropped,
		Missed:           s.missed,
		DroppedAtClose:   s.droppedAtClose,
		LastSeq:          s.seq,
		RingFirstSeq:     s.ring.firstSeq(),
		RingEvents:       s.ring.n,
		RingBytes:        s.ring.bytes,
		RingEvicted:      s.ring.evicted,
	}
}

func (s *Sink) serveStats(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.Snapshot())
	if err != nil {
		http.Error(w, "web dashboard: encode stats: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
