// Package kafka owns exporting OISP events to Apache Kafka: one record per
// event (the event's JSON as the value, its flow id as the key so that a
// flow's events stay in order within one partition, its type and OISP
// version as headers), produced through franz-go with a bounded buffer that
// drops and counts rather than ever blocking the pipeline.
package kafka

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Defaults of Config.
const (
	DefaultTopic              = "oisp-events"
	DefaultClientID           = "oisp-sensor"
	DefaultMaxBufferedRecords = 10000
	DefaultMaxBufferedBytes   = 64 << 20
)

// Counter tokens, counted per event.
const (
	// TokenSent counts events the broker acknowledged.
	TokenSent = "sink.kafka.sent"
	// TokenDropped counts events never handed to the broker: the buffer
	// was full, or the exporter was closing or closed.
	TokenDropped = "sink.kafka.dropped"
	// TokenErrors counts events that failed after the client's retries
	// (delivery timeout, a record the broker refuses, a failed login),
	// and events that could not be encoded.
	TokenErrors = "sink.kafka.errors"
)

// Header names every record carries.
const (
	HeaderEventType = "oisp-event-type"
	HeaderVersion   = "oisp-version"
)

// SASL mechanisms Config.SASL.Mechanism accepts.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// Password is a credential. It prints, logs and marshals as REDACTED so
// that a config dumped by mistake does not carry it out of the sensor.
type Password string

// redacted replaces a password wherever it would be printed.
const redacted = "REDACTED"

// String returns REDACTED.
func (Password) String() string { return redacted }

// GoString returns REDACTED (for %#v).
func (Password) GoString() string { return redacted }

// LogValue returns REDACTED for slog.
func (Password) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns REDACTED.
func (Password) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// SASL is an optional login. An empty Mechanism means none.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	User      string
	Password  Password
}

// Config configures an Exporter.
type Config struct {
	// Brokers are the seed brokers, host:port each. Required.
	Brokers []string
	// Topic receives every event (DefaultTopic when empty). The client
	// asks the broker to create it if missing; the broker's
	// auto.create.topics.enable decides.
	Topic string
	// ClientID names the sensor to the brokers (DefaultClientID when
	// empty).
	ClientID string
	SASL     SASL
	// TLS dials the brokers over TLS, verified against the system roots,
	// or against CAFile alone when it is set (which implies TLS).
	TLS    bool
	CAFile string
	// MaxBufferedRecords and MaxBufferedBytes bound the events waiting
	// for the broker (DefaultMaxBufferedRecords, DefaultMaxBufferedBytes
	// when 0). An event that would pass either bound is dropped and
	// counted: the oldest waiting events are kept.
	MaxBufferedRecords int
	MaxBufferedBytes   int
	// DeliveryTimeout fails an event still unacknowledged this long after
	// it was recorded (counted as an error); 0 retries until Close.
	DeliveryTimeout time.Duration
	// Stats receives the counters (stats.Discard when nil).
	Stats stats.Recorder
	// Logger receives delivery failures and the client's warnings (none
	// when nil).
	Logger *slog.Logger
}

// Exporter publishes events to a Kafka topic. It is safe for concurrent
// use; Record never blocks on the broker.
type Exporter struct {
	client   *kgo.Client
	topic    string
	maxRecs  int64
	maxBytes int64
	rec      stats.Recorder
	log      *slog.Logger

	// waiting and waitingBytes are the events recorded and not yet
	// finished (acknowledged or failed): the bound Record enforces.
	waiting      atomic.Int64
	waitingBytes atomic.Int64
	// closing is set once Close starts; lost counts events that failed
	// from then on.
	closing atomic.Bool
	lost    atomic.Int64
	limit   *warnLimiter

	records sync.Pool // of *pending
}

// pending is one event's record with the memory it points into, reused
// once the client has finished with it.
type pending struct {
	record  kgo.Record
	buf     bytes.Buffer
	enc     *json.Encoder
	headers [2]kgo.RecordHeader
	size    int64
	// finish is this pending's promise, made once so that producing
	// allocates no closure.
	finish func(*kgo.Record, error)
}

// maxPooledBuffer is the largest buffer kept for reuse: a rare huge
// event does not pin its memory in the pool.
const maxPooledBuffer = 1 << 20

// failureLogEvery is how often each kind of failure is logged at most.
const failureLogEvery = 30 * time.Second

// New returns an Exporter connecting to cfg.Brokers. It does not wait for
// a broker: events are buffered (within bounds) until one answers.
func New(cfg Config) (*Exporter, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers given: name at least one host:port")
	}
	for _, b := range cfg.Brokers {
		if strings.TrimSpace(b) == "" || strings.Contains(b, "@") {
			// Someone may have written user:password@host.
			return nil, errors.New("kafka: a broker address is empty or carries credentials: give host:port, and the login through the SASL settings")
		}
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.MaxBufferedRecords <= 0 {
		cfg.MaxBufferedRecords = DefaultMaxBufferedRecords
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if cfg.Stats == nil {
		cfg.Stats = stats.Discard{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	limit := &warnLimiter{}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ClientID(cfg.ClientID),
		kgo.AllowAutoTopicCreation(),
		// The exporter's own bound (checked in Record) is the one that
		// drops; the client's is a backstop with room for the events it
		// still counts while their promises run.
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords + 1024),
		kgo.MaxBufferedBytes(cfg.MaxBufferedBytes + 1<<20),
		kgo.WithLogger(clientLogger{cfg.Logger, limit}),
		kgo.WithHooks(connectHook{cfg.Logger, limit}),
	}
	if cfg.DeliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout))
	}
	mech, err := saslMechanism(cfg.SASL)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, mech)
	}
	if cfg.TLS || cfg.CAFile != "" {
		tc, err := tlsConfig(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: configure the client: %w", err)
	}
	e := &Exporter{
		client:   client,
		topic:    cfg.Topic,
		maxRecs:  int64(cfg.MaxBufferedRecords),
		maxBytes: int64(cfg.MaxBufferedBytes),
		rec:      cfg.Stats,
		log:      cfg.Logger,
		limit:    limit,
	}
	e.records.New = func() any {
		p := &pending{}
		// Most events fit: no regrowth while the first one is encoded.
		p.buf.Grow(2 << 10)
		p.enc = json.NewEncoder(&p.buf)
		p.finish = func(_ *kgo.Record, err error) { e.finish(p, err) }
		return p
	}
	return e, nil
}

// saslMechanism returns the client option for s, or nil for no login.
func saslMechanism(s SASL) (kgo.Opt, error) {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		if s.User != "" || s.Password != "" {
			return nil, errors.New("kafka: a SASL user or password is set without a mechanism: choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		return nil, nil
	case MechanismPlain:
		return kgo.SASL(plain.Auth{User: s.User, Pass: string(s.Password)}.AsMechanism()), nil
	case MechanismSCRAMSHA256:
		return kgo.SASL(scram.Auth{User: s.User, Pass: string(s.Password)}.AsSha256Mechanism()), nil
	case MechanismSCRAMSHA512:
		return kgo.SASL(scram.Auth{User: s.User, Pass: string(s.Password)}.AsSha512Mechanism()), nil
	default:
		return nil, fmt.Errorf("kafka: unknown SASL mechanism %q: choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
}

// tlsConfig verifies brokers against caFile's certificates, or the system
// roots when caFile is empty.
func tlsConfig(caFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("kafka: read the TLS CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("kafka: the TLS CA file %s holds no PEM certificate", caFile)
	}
	tc.RootCAs = pool
	return tc, nil
}

// Record encodes ev and queues it for the broker, or drops and counts it
// when the buffer is full. It does not retain ev.
func (e *Exporter) Record(ev *oisp.Event) {
	// Reserve a place first: when the broker is away and the buffer is
	// full, an event costs no encoding.
	if e.waiting.Add(1) > e.maxRecs || e.closing.Load() {
		e.waiting.Add(-1)
		e.rec.Count(TokenDropped, 1)
		return
	}
	p := e.records.Get().(*pending)
	p.buf.Reset()
	// The same encoding as the JSONL sink, whose newline is cut.
	if err := p.enc.Encode(ev); err != nil {
		e.unreserve()
		e.records.Put(p)
		e.rec.Count(TokenErrors, 1)
		e.logFailure("encode an event for Kafka", err, "event_type", ev.EventType)
		return
	}
	valueEnd := p.buf.Len() - 1
	p.buf.WriteString(ev.EventType)
	typeEnd := p.buf.Len()
	p.buf.WriteString(ev.OISPVersion)
	versionEnd := p.buf.Len()
	if ev.Attrs != nil && ev.Attrs.FlowID != "" {
		p.buf.WriteString(ev.Attrs.FlowID)
	} else {
		p.buf.WriteString(ev.EventID)
	}
	b := p.buf.Bytes()
	p.headers[0] = kgo.RecordHeader{Key: HeaderEventType, Value: b[valueEnd+1 : typeEnd]}
	p.headers[1] = kgo.RecordHeader{Key: HeaderVersion, Value: b[typeEnd:versionEnd]}
	p.record = kgo.Record{
		Topic:   e.topic,
		Key:     b[versionEnd:],
		Value:   b[:valueEnd],
		Headers: p.headers[:],
	}
	// What the client counts against its own byte bound.
	p.size = int64(len(b) - 1 + len(HeaderEventType) + len(HeaderVersion))
	if e.waitingBytes.Add(p.size) > e.maxBytes {
		e.waitingBytes.Add(-p.size)
		e.unreserve()
		e.release(p)
		e.rec.Count(TokenDropped, 1)
		return
	}
	e.client.TryProduce(context.Background(), &p.record, p.finish)
}

// unreserve gives back a place Record reserved for an event it then
// dropped. An event reserved before Close started is one Close may be
// waiting for, so its loss is counted first, as finish does.
func (e *Exporter) unreserve() {
	if e.closing.Load() {
		e.lost.Add(1)
	}
	e.waiting.Add(-1)
}

// finish is called by the client once it is done with p's record.
func (e *Exporter) finish(p *pending, err error) {
	// A loss during Close is counted before the event stops waiting:
	// Close reads lost once nothing waits, and must not miss this one.
	if err != nil && e.closing.Load() {
		e.lost.Add(1)
	}
	e.waitingBytes.Add(-p.size)
	e.waiting.Add(-1)
	e.release(p)
	switch {
	case err == nil:
		e.rec.Count(TokenSent, 1)
	case errors.Is(err, kgo.ErrMaxBuffered) || errors.Is(err, kgo.ErrClientClosed):
		// Never handed to a broker: the client's backstop bound, or
		// still buffered when Close gave up.
		e.rec.Count(TokenDropped, 1)
	default:
		e.rec.Count(TokenErrors, 1)
		e.logFailure("deliver an event to Kafka", err, "topic", e.topic)
	}
}

// release returns p to the pool unless its buffer grew too large to keep.
func (e *Exporter) release(p *pending) {
	p.record = kgo.Record{}
	p.headers = [2]kgo.RecordHeader{}
	if p.buf.Cap() <= maxPooledBuffer {
		e.records.Put(p)
	}
}

// logFailure logs a failed event through the limiter.
func (e *Exporter) logFailure(what string, err error, attrs ...any) {
	e.limit.warn(e.log, "kafka: could not "+what+" (counted in "+TokenErrors+")", append(attrs, "err", err)...)
}

// Buffered returns the number of events waiting for the broker.
func (e *Exporter) Buffered() int64 { return e.waiting.Load() }

// Flush waits until every event recorded so far is acknowledged or
// failed, or ctx ends.
func (e *Exporter) Flush(ctx context.Context) error {
	if err := e.client.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: %d events still wait for the broker: %w", e.waiting.Load(), err)
	}
	return nil
}

// Close delivers what is buffered until ctx ends, then closes the client.
// Events recorded after Close starts are dropped. The error says how many
// events were lost (counted as dropped or errors); nil means none.
func (e *Exporter) Close(ctx context.Context) error {
	if e.closing.Swap(true) {
		return errors.New("kafka: exporter already closed")
	}
	flushErr := e.client.Flush(ctx)
	// Close fails whatever is still buffered; the failures reach finish
	// from the client's promise goroutine, possibly after Close returns,
	// so wait for the count to settle.
	e.client.Close()
	for i := 0; e.waiting.Load() > 0 && i < 1000; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	lost := e.lost.Load() + e.waiting.Load()
	if lost == 0 {
		return nil
	}
	if flushErr != nil {
		return fmt.Errorf("kafka: %d events not delivered before the deadline (is the broker down or refusing the login? see the log): %w", lost, flushErr)
	}
	return fmt.Errorf("kafka: %d events failed while closing (see the %s counter and the log)", lost, TokenErrors)
}

// warnLimiter lets each kind of warning through at most once per
// failureLogEvery and counts the ones held back: a broker that stays down
// (or a refused login) fails again on every retry, and the sensor's log
// must not be flooded by it.
type warnLimiter struct {
	mu   sync.Mutex
	next map[string]time.Time
	held map[string]int
}

// allow reports whether a warning of this kind may be logged now, and how
// many were held back since the last one. The kinds are a fixed set of
// constant strings (ours and the client's messages).
func (w *warnLimiter) allow(kind string) (ok bool, held int) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Before(w.next[kind]) {
		w.held[kind]++
		return false, 0
	}
	if w.next == nil {
		w.next, w.held = map[string]time.Time{}, map[string]int{}
	}
	w.next[kind] = now.Add(failureLogEvery)
	held = w.held[kind]
	w.held[kind] = 0
	return true, held
}

// warn logs msg at warn level if the limiter lets it through, else at
// debug level.
func (w *warnLimiter) warn(log *slog.Logger, msg string, attrs ...any) {
	lv := slog.LevelDebug
	if ok, held := w.allow(msg); ok {
		lv = slog.LevelWarn
		attrs = append(attrs, "like_lines_not_logged", held)
	}
	log.Log(context.Background(), lv, msg, attrs...)
}

// clientLogger passes the Kafka client's log lines to slog, its warnings
// and errors through the limiter.
type clientLogger struct {
	log   *slog.Logger
	limit *warnLimiter
}

// Level tells the client the most detailed level worth producing.
func (l clientLogger) Level() kgo.LogLevel {
	switch ctx := context.Background(); {
	case l.log.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case l.log.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelNone
	}
}

// Log writes one client line.
func (l clientLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level == kgo.LogLevelWarn || level == kgo.LogLevelError {
		l.limit.warn(l.log, "kafka client: "+msg, keyvals...)
		return
	}
	l.log.Debug("kafka client: "+msg, keyvals...)
}

// connectHook warns when a broker cannot be reached or refuses the login:
// the client retries quietly, and without this a wrong password or a
// broker that never came up would only show as events piling up.
type connectHook struct {
	log   *slog.Logger
	limit *warnLimiter
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h connectHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		return
	}
	h.limit.warn(h.log, "kafka: cannot connect to or log in to a broker; events wait in the buffer (dropped and counted once it is full)",
		"broker", net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), "err", err)
}
