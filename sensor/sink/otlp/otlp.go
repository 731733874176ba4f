// Package otlp owns the OpenTelemetry exporter of OISP events: every event
// becomes one OTLP log record (event name = the OISP event type, body =
// the event's data as JSON, attributes = the OISP envelope plus the GenAI,
// process, network and file semantic-convention attributes its data maps
// to) sent in batches to a collector over OTLP/HTTP (protobuf) or
// OTLP/gRPC. Record encodes on the caller's goroutine and queues bytes in
// a bounded queue; one goroutine batches, sends and retries, so a
// collector that is down or slow costs dropped, counted events, never a
// stalled pipeline. With Config.Spans it also sends one GenAI client span
// per AI call (request to response) to the collector's traces endpoint,
// through the same queue and sender, and the call's log records carry the
// span's trace and span ids. With Config.Metrics it also aggregates the
// GenAI client metrics (operation duration, token usage, time to first
// chunk) in the sensor, as cumulative histograms bounded in attribute
// sets, and sends them to the metrics endpoint every MetricsInterval.
package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Protocols.
const (
	HTTPProtobuf = "http/protobuf"
	GRPC         = "grpc"
)

// Counter tokens.
const (
	// CountSent counts events the collector accepted.
	CountSent = "sink.otlp.sent"
	// CountDropped counts events that will never reach the collector: the
	// queue was full or closed, the collector refused the batch for good,
	// retries ran out, or Close's deadline came first.
	CountDropped = "sink.otlp.dropped"
	// CountErrors counts failed export attempts (each request that did
	// not succeed, retryable or not) and events that could not be encoded.
	CountErrors = "sink.otlp.errors"
	// CountRetries counts export attempts repeated after a retryable failure.
	CountRetries = "sink.otlp.retries"
	// CountRejected counts records a collector refused in a partial
	// success (they are counted as dropped too).
	CountRejected = "sink.otlp.rejected"
)

// Defaults of Config.
const (
	DefaultHTTPEndpoint  = "http://localhost:4318/v1/logs"
	DefaultGRPCEndpoint  = "http://localhost:4317"
	DefaultBatchSize     = 512
	DefaultBatchTimeout  = time.Second
	DefaultMaxQueue      = 8192
	DefaultMaxQueueBytes = 64 << 20
	DefaultTimeout       = 10 * time.Second
	DefaultMaxRetryTime  = 5 * time.Minute
	DefaultServiceName   = "oisp-sensor"
)

// Config configures an Exporter. The zero value sends OTLP/HTTP to a
// collector on localhost with the defaults above.
type Config struct {
	// Endpoint is the collector's URL, http:// or https://. For
	// http/protobuf it is the full logs URL, used as given (a URL with no
	// path gets /v1/logs); for grpc the scheme says plaintext (http) or
	// TLS (https), the path is ignored and the port defaults to 4317.
	// Credentials in it (user:password@, ?token=) are never logged.
	Endpoint string
	// Protocol is HTTPProtobuf (default) or GRPC.
	Protocol string
	// Headers are sent with every request (HTTP headers or gRPC
	// metadata), e.g. an API key. They are never logged.
	Headers map[string]string
	// CAFile is a PEM file of CAs to trust for https endpoints, beside the
	// system's.
	CAFile string
	// InsecureSkipVerify accepts any server certificate. For tests and
	// labs only.
	InsecureSkipVerify bool
	// Compression is "gzip", or "none" or "" for none.
	Compression string
	// BatchSize is the most records in one request (default 512).
	BatchSize int
	// BatchTimeout is the longest a recorded event waits for its batch to
	// fill before it is sent (default 1s).
	BatchTimeout time.Duration
	// MaxQueue is the most events waiting to be sent (default 8192);
	// MaxQueueBytes bounds their encoded size (default 64 MiB). Events
	// past either bound are dropped and counted.
	MaxQueue      int
	MaxQueueBytes int64
	// Timeout bounds one export request (default 10s).
	Timeout time.Duration
	// MaxRetryTime is how long a batch is retried before it is dropped
	// (default 5m).
	MaxRetryTime time.Duration
	// ServiceName, ServiceVersion and HostName are resource attributes
	// (defaults: "oisp-sensor", "", os.Hostname()). ResourceAttributes
	// adds more (e.g. deployment.environment.name).
	ServiceName        string
	ServiceVersion     string
	HostName           string
	ResourceAttributes map[string]string
	// LegacySystem also writes gen_ai.system (the attribute's name before
	// gen_ai.provider.name) for backends that read only the old name.
	LegacySystem bool
	// Spans also sends one GenAI client span per AI call, from its
	// ai.request to the ai.response (or ai.embedding) naming it as parent,
	// and gives the call's log records the span's trace and span ids: the
	// events' trace context where they have one, else ids derived from the
	// request's event id. Default false: logs only.
	Spans bool
	// TracesEndpoint is the collector's traces URL for http/protobuf
	// (default: Endpoint with its trailing /v1/logs replaced by
	// /v1/traces). gRPC sends spans to Endpoint's TraceService.
	TracesEndpoint string
	// MaxPendingSpans bounds the requests waiting for their response
	// (default 10000); MaxSpanWait is how long one waits (default 10m).
	// Requests past either bound are counted as sink.otlp.spans_unpaired
	// (sink.otlp.metrics_unpaired with metrics alone) and give no span;
	// their response's metrics lack the operation and requested model.
	MaxPendingSpans int
	MaxSpanWait     time.Duration
	// Metrics also aggregates, per attribute set, the GenAI client
	// histograms gen_ai.client.operation.duration, gen_ai.client.token.usage
	// and gen_ai.client.operation.time_to_first_chunk of every AI call (a
	// response, or an embedding not covered by a response), and sends all
	// of them, cumulative since New, every MetricsInterval and at Close.
	// Responses are paired with their requests for the operation name and
	// request model through the table MaxPendingSpans and MaxSpanWait
	// bound. Default false.
	Metrics bool
	// MetricsEndpoint is the collector's metrics URL for http/protobuf
	// (default: Endpoint with its trailing /v1/logs replaced by
	// /v1/metrics). gRPC sends metrics to Endpoint's MetricsService.
	MetricsEndpoint string
	// MetricsInterval is the time between metric exports (default 30s).
	MetricsInterval time.Duration
	// MaxMetricSeries bounds the attribute sets aggregated (default
	// 2000); calls that would add one more go to a single overflow set,
	// attribute otel.metric.overflow=true, and count as
	// sink.otlp.metrics_overflow.
	MaxMetricSeries int
	// Stats receives the sink.otlp.* counts (nil: discard).
	Stats stats.Recorder
	// Logger reports export failures (nil: discard).
	Logger *slog.Logger
}

// Exporter sends events to an OTLP collector. It is safe for concurrent use.
type Exporter struct {
	cfg       Config
	enc       encoder
	scratch   sync.Pool // of *scratch
	transport transport
	rec       stats.Recorder
	log       *slog.Logger
	// resource and scope are the serialised fields every batch repeats.
	resource, scope []byte

	queue       chan item
	queuedBytes atomic.Int64
	// pending holds requests waiting for their response (Config.Spans or
	// Config.Metrics); unpaired is the counter of those that wait in vain.
	pending  *pendingTable
	unpaired string
	// metrics aggregates the GenAI metrics since metricsStart
	// (Config.Metrics); metricsLost is set when the last export, at
	// Close, did not get through.
	metrics      *aggregator
	metricsStart time.Time
	metricsLost  atomic.Bool
	// closing is held shared by Record while it queues and exclusively by
	// Close to set closed, so no event is queued after Close drained.
	closing sync.RWMutex
	closed  bool
	// stop tells the senders (of logs and spans, of metrics) to flush
	// and return, done says they have; abort cancels their requests and
	// waits once Close's deadline has passed.
	stop    chan struct{}
	done    chan struct{}
	abort   context.CancelFunc
	sendCtx context.Context
	// lost counts events and spans Close's deadline cut off (they are
	// counted as dropped too); dropped counts every drop.
	lost, dropped atomic.Int64
	// warnedFull is set once a full queue was logged.
	warnedFull atomic.Bool
	closeOnce  sync.Once
}

// scratch is the space Record encodes in.
type scratch struct{ record, body []byte }

// item is one serialised LogRecord or Span in the queue (metrics are
// aggregated apart and never queued).
type item struct {
	b    []byte
	kind kind
}

// kind says what an item is, and so where it goes and what counts it.
type kind uint8

const (
	logRecord kind = iota
	span
	metric
)

// noun names what a request of kind k holds, for messages.
func (k kind) noun() string {
	if k == metric {
		return "data_points"
	}
	return "events"
}

// counters returns the sent and dropped tokens of k.
func (k kind) counters() (sent, dropped string) {
	if k == span {
		return CountSpansSent, CountSpansDropped
	}
	return CountSent, CountDropped
}

// New returns an Exporter for cfg and starts its sender. It connects
// lazily: a collector that is not up yet only costs retries.
func New(cfg Config) (*Exporter, error) {
	if cfg.Protocol == "" {
		cfg.Protocol = HTTPProtobuf
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.MaxQueueBytes <= 0 {
		cfg.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxRetryTime <= 0 {
		cfg.MaxRetryTime = DefaultMaxRetryTime
	}
	if cfg.MaxPendingSpans <= 0 {
		cfg.MaxPendingSpans = DefaultMaxPendingSpans
	}
	if cfg.MaxSpanWait <= 0 {
		cfg.MaxSpanWait = DefaultMaxSpanWait
	}
	if cfg.MetricsInterval <= 0 {
		cfg.MetricsInterval = DefaultMetricsInterval
	}
	if cfg.MaxMetricSeries <= 0 {
		cfg.MaxMetricSeries = DefaultMaxMetricSeries
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = DefaultServiceName
	}
	if cfg.HostName == "" {
		cfg.HostName, _ = os.Hostname()
	}
	switch cfg.Compression {
	case "", "none", "gzip":
	default:
		return nil, fmt.Errorf("otlp: compression %q: use gzip or none", cfg.Compression)
	}
	e := &Exporter{
		scratch: sync.Pool{New: func() any { return &scratch{} }},
		cfg:     cfg,
		enc:     encoder{legacySystem: cfg.LegacySystem, resourceHost: cfg.HostName},
		rec:     cfg.Stats,
		log:     cfg.Logger,
		queue:   make(chan item, cfg.MaxQueue),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if e.rec == nil {
		e.rec = stats.Discard{}
	}
	if cfg.Spans || cfg.Metrics {
		e.pending = newPendingTable(cfg.MaxPendingSpans, cfg.MaxSpanWait)
		e.unpaired = CountSpansUnpaired
		if !cfg.Spans {
			e.unpaired = CountMetricsUnpaired
		}
	}
	if cfg.Metrics {
		e.metrics = newAggregator(cfg.MaxMetricSeries)
		e.metricsStart = time.Now()
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	var err error
	switch cfg.Protocol {
	case HTTPProtobuf:
		if cfg.Endpoint == "" {
			cfg.Endpoint = DefaultHTTPEndpoint
		}
		e.transport, err = newHTTPTransport(cfg)
	case GRPC:
		if cfg.Endpoint == "" {
			cfg.Endpoint = DefaultGRPCEndpoint
		}
		e.transport, err = newGRPCTransport(cfg)
	default:
		return nil, fmt.Errorf("otlp: protocol %q: use %s or %s", cfg.Protocol, HTTPProtobuf, GRPC)
	}
	if err != nil {
		return nil, err
	}
	e.resource, e.scope, err = resourceAndScope(cfg)
	if err != nil {
		return nil, err
	}
	e.sendCtx, e.abort = context.WithCancel(context.Background())
	var senders sync.WaitGroup
	senders.Go(e.run)
	if e.metrics != nil {
		// Apart from the log and span sender: a metrics endpoint that
		// fails must not hold up log records for its retries, nor a log
		// batch in retry the metrics.
		senders.Go(e.runMetrics)
	}
	go func() {
		senders.Wait()
		close(e.done)
	}()
	return e, nil
}

// resourceAndScope serialises the resource and scope fields of a batch.
func resourceAndScope(cfg Config) (resource, scope []byte, err error) {
	res := &resourcepb.Resource{}
	add := func(k, v string) {
		if v != "" {
			res.Attributes = append(res.Attributes, &commonpb.KeyValue{Key: k, Value: str(v)})
		}
	}
	add("service.name", cfg.ServiceName)
	add("service.version", cfg.ServiceVersion)
	add("host.name", cfg.HostName)
	add("os.type", runtime.GOOS)
	add("host.arch", runtime.GOARCH) // Go's names are OTel's (amd64, arm64)
	add("telemetry.sdk.name", "oisp-sensor")
	add("telemetry.sdk.language", "go")
	for k, v := range cfg.ResourceAttributes {
		add(k, v)
	}
	if resource, err = proto.Marshal(&logspb.ResourceLogs{Resource: res}); err != nil {
		return nil, nil, fmt.Errorf("otlp: encode resource: %w", err)
	}
	if scope, err = proto.Marshal(&logspb.ScopeLogs{Scope: &commonpb.InstrumentationScope{Name: "github.com/oisp/oisp-sensor/sensor/sink/otlp", Version: oisp.Version}}); err != nil {
		return nil, nil, fmt.Errorf("otlp: encode scope: %w", err)
	}
	return resource, scope, nil
}

// Record encodes ev and queues it. It never blocks: when the queue is
// full or the exporter closed the event is dropped and counted. With
// Config.Spans an ai.response or ai.embedding also queues the span of its
// call; with Config.Metrics it adds to the call's histograms (a short
// map update: the metrics are encoded at export, on the sender).
func (e *Exporter) Record(ev *oisp.Event) {
	e.closing.RLock()
	defer e.closing.RUnlock()
	if e.closed {
		e.drop(logRecord, 1, false)
		return
	}
	var part callPart
	if e.pending != nil {
		// Before the queue's bound: pairing and metrics do not depend
		// on room for the record.
		part = e.call(ev)
		if part.completes && e.metrics != nil {
			m := measures(ev, part.req)
			if e.metrics.add(&m) {
				e.rec.Count(CountMetricsOverflow, 1)
			}
		}
	}
	ids, spanOf := part.ids, part.span
	if len(e.queue) == cap(e.queue) {
		// Full: spare the encoding (the check races with the sender, so
		// the send below still guards the bound).
		e.dropFull(logRecord)
		if spanOf != nil {
			e.dropFull(span)
		}
		return
	}
	scratch := e.scratch.Get().(*scratch)
	var err error
	scratch.record, scratch.body, err = e.enc.encode(scratch.record[:0], scratch.body, ev, time.Now(), ids)
	// The queue owns a copy of exactly the record's size; the scratch
	// space, grown to the largest event seen, serves the next Record.
	b := bytes.Clone(scratch.record)
	var spanBytes []byte
	if err == nil && spanOf != nil {
		scratch.record = spanOf(scratch.record[:0])
		spanBytes = bytes.Clone(scratch.record)
	}
	e.scratch.Put(scratch)
	if err != nil {
		e.rec.Count(CountErrors, 1)
		e.drop(logRecord, 1, false)
		e.log.Warn("otlp: cannot encode event", "event_type", ev.EventType, "event_id", ev.EventID, "err", err)
		return
	}
	e.enqueue(item{b: b, kind: logRecord})
	if spanBytes != nil {
		e.enqueue(item{b: spanBytes, kind: span})
	}
}

// callPart is an event's part in an AI call.
type callPart struct {
	// ids are the span ids the event's record carries, span appends the
	// call's span for the event that completes it (Config.Spans).
	ids  *spanIDs
	span func(dst []byte) []byte
	// completes says the event completes a call, whose metrics it
	// gives; req is then the call's request, nil when it was not seen.
	completes bool
	req       *pendingCall
}

// call returns ev's part in an AI call. A request is held in the pending
// table until the event that completes its call.
func (e *Exporter) call(ev *oisp.Event) callPart {
	switch d := ev.Data.(type) {
	case *oisp.AIRequest:
		var ids spanIDs
		if e.cfg.Spans {
			ids = idsFor(ev.TraceContext, ev.EventID)
		}
		if n := e.pending.put(e.enc.pendingOf(ev, d, ids, time.Now(), e.cfg.Spans)); n > 0 {
			e.rec.Count(e.unpaired, int64(n))
		}
		if !e.cfg.Spans {
			return callPart{}
		}
		own := ids // escapes, unlike ids: no allocation without spans
		return callPart{ids: &own}
	case *oisp.AIResponse, *oisp.AIEmbedding:
		parent := parentRequest(ev)
		if parent == "" {
			if ev.EventType == oisp.TypeAIEmbedding {
				// The pipeline's ai.embedding follows its ai.response
				// (caused_by), whose span and metrics cover the call. An
				// embedding that follows nothing is a call of its own for
				// the metrics (its span needs a request).
				return callPart{completes: len(ev.RelatedEvents) == 0}
			}
			// A response whose request was not seen: its own span.
			parent = ev.EventID
		}
		req := e.pending.take(parent)
		if !e.cfg.Spans {
			return callPart{completes: true, req: req}
		}
		var ids spanIDs
		if req != nil {
			ids = req.ids
		} else {
			ids = idsFor(ev.TraceContext, parent)
		}
		return callPart{ids: &ids, span: func(dst []byte) []byte { return e.enc.span(dst, ids, req, ev) }, completes: true, req: req}
	}
	return callPart{}
}

// enqueue queues it unless the queue is full.
func (e *Exporter) enqueue(it item) {
	if e.queuedBytes.Add(int64(len(it.b))) > e.cfg.MaxQueueBytes {
		e.queuedBytes.Add(-int64(len(it.b)))
		e.dropFull(it.kind)
		return
	}
	select {
	case e.queue <- it:
	default:
		e.queuedBytes.Add(-int64(len(it.b)))
		e.dropFull(it.kind)
	}
}

// dropFull drops an event the full queue has no room for, saying so once
// until the collector takes a batch again (not once per event: the
// counter has the number).
func (e *Exporter) dropFull(k kind) {
	e.drop(k, 1, false)
	if !e.warnedFull.Swap(true) {
		e.log.Warn("otlp: queue full, dropping events until the collector catches up", "max_queue", e.cfg.MaxQueue, "max_queue_bytes", e.cfg.MaxQueueBytes, "counter", CountDropped)
	}
}

// drop counts n events or spans that will not be sent; atClose says
// Close's deadline cut them off (Close reports those).
func (e *Exporter) drop(k kind, n int64, atClose bool) {
	_, dropped := k.counters()
	e.rec.Count(dropped, n)
	e.dropped.Add(n)
	if atClose {
		e.lost.Add(n)
	}
}

// run is the sender: it gathers batches from the queue (log records and
// spans apart, as they go to different services) and exports them until
// Close.
func (e *Exporter) run() {
	var batches [span + 1][][]byte
	for k := range batches {
		batches[k] = make([][]byte, 0, e.cfg.BatchSize)
	}
	var buf []byte
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func(k kind) {
		batch := batches[k]
		if len(batch) == 0 {
			return
		}
		buf = e.export(buf[:0], k, batch)
		var n int64
		for _, b := range batch {
			n += int64(len(b))
		}
		e.queuedBytes.Add(-n)
		clear(batch)
		batches[k] = batch[:0]
	}
	flushAll := func() {
		for k := range batches {
			flush(kind(k))
		}
	}
	add := func(it item) {
		batches[it.kind] = append(batches[it.kind], it.b)
		if len(batches[it.kind]) >= e.cfg.BatchSize {
			flush(it.kind)
		}
	}
	waiting := func() bool { return len(batches[logRecord])+len(batches[span]) > 0 }
	for {
		select {
		case it := <-e.queue:
			if !waiting() {
				timer.Reset(e.cfg.BatchTimeout)
			}
			add(it)
			if !waiting() {
				timer.Stop()
			}
		case <-timer.C:
			flushAll()
		case <-e.stop:
			timer.Stop()
			// Drain what was queued before Close: Record no longer adds.
			for {
				select {
				case it := <-e.queue:
					add(it)
					continue
				default:
				}
				break
			}
			flushAll()
			return
		}
	}
}

// export sends one batch of log records or spans and counts the
// outcome. It returns buf for reuse.
func (e *Exporter) export(buf []byte, k kind, batch [][]byte) []byte {
	buf = assemble(buf, e.resource, e.scope, batch)
	n := int64(len(batch))
	sent, _ := k.counters()
	rejected, d, err := e.send(k, buf, n, e.cfg.MaxRetryTime)
	switch d {
	case delivered:
		if rejected > 0 {
			e.rec.Count(CountRejected, rejected)
			e.drop(k, rejected, false)
			e.log.Warn("otlp: collector rejected records", "rejected", rejected, "of", n)
		}
		e.rec.Count(sent, n-rejected)
		e.warnedFull.Store(false)
	case cutOff:
		e.drop(k, n, true)
	case refused:
		e.drop(k, n, false)
		e.log.Error("otlp: collector refused the batch; dropped", "events", n, "err", err)
	case expired:
		e.drop(k, n, false)
		e.log.Error("otlp: collector unavailable past the retry time; batch dropped", "events", n, "retry_time", e.cfg.MaxRetryTime, "err", err)
	}
	return buf
}

// runMetrics is the metrics sender: it exports the metrics every
// MetricsInterval, and a last time at Close (Record adds no more by then).
func (e *Exporter) runMetrics() {
	w := metricWriter{legacySystem: e.cfg.LegacySystem}
	var buf []byte
	ticker := time.NewTicker(e.cfg.MetricsInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			buf = e.exportMetrics(buf[:0], &w, false)
		case <-e.stop:
			e.exportMetrics(buf[:0], &w, true)
			return
		}
	}
}

// exportMetrics sends every series aggregated so far, cumulative since
// New, unless nothing was ever recorded, and counts the outcome. An
// export that fails is not retried past the next one's time: that one
// carries the same values and more. final is the export at Close. It
// returns buf for reuse.
func (e *Exporter) exportMetrics(buf []byte, w *metricWriter, final bool) []byte {
	metrics, n := w.write(e.metrics, e.metricsStart, time.Now())
	if len(metrics) == 0 {
		return buf
	}
	buf = assemble(buf, e.resource, e.scope, metrics)
	retryTime := e.cfg.MetricsInterval
	if final {
		// Nothing comes after: retry until Close's deadline.
		retryTime = e.cfg.MaxRetryTime
	}
	rejected, d, err := e.send(metric, buf, n, retryTime)
	switch d {
	case delivered:
		if rejected > 0 {
			e.rec.Count(CountMetricsRejected, rejected)
			e.log.Warn("otlp: collector rejected metric data points", "rejected", rejected, "of", n)
		}
		e.rec.Count(CountMetricsSent, 1)
		return buf
	case refused:
		e.log.Error("otlp: collector refused the metrics", "data_points", n, "err", err)
	case expired:
		if final {
			e.log.Error("otlp: collector unavailable past the retry time; last metrics not sent", "data_points", n, "retry_time", retryTime, "err", err)
		} else {
			e.log.Warn("otlp: metrics not sent before the next export; it carries them", "data_points", n, "err", err)
		}
	}
	e.rec.Count(CountMetricsFailed, 1)
	if final {
		e.metricsLost.Store(true)
	}
	return buf
}

// delivery is how a send ended.
type delivery uint8

const (
	delivered delivery = iota
	// refused: the collector answered with a failure retrying cannot fix.
	refused
	// expired: retryable failures until the retry time ran out.
	expired
	// cutOff: Close's deadline stopped it (not the collector's failure).
	cutOff
)

// send sends one serialised request of kind k holding n items, retrying
// while the failure is retryable and retryTime allows. It counts failed
// attempts and retries; the caller counts the outcome. rejected is at
// most n.
func (e *Exporter) send(k kind, body []byte, n int64, retryTime time.Duration) (rejected int64, d delivery, err error) {
	start := time.Now()
	backoff := newBackoff()
	for attempt := 0; ; attempt++ {
		if e.sendCtx.Err() != nil {
			return 0, cutOff, e.sendCtx.Err()
		}
		ctx, cancel := context.WithTimeout(e.sendCtx, e.cfg.Timeout)
		rejected, err := e.transport.export(ctx, k, body)
		cancel()
		if err == nil {
			return min(rejected, n), delivered, nil
		}
		if e.sendCtx.Err() != nil {
			return 0, cutOff, err
		}
		e.rec.Count(CountErrors, 1)
		var re *retryableError
		if !errors.As(err, &re) {
			return 0, refused, err
		}
		wait := backoff.next()
		if re.after > 0 {
			wait = re.after
		}
		if time.Since(start)+wait > retryTime {
			return 0, expired, err
		}
		if attempt == 0 {
			e.log.Warn("otlp: export failed; retrying", k.noun(), n, "wait", wait, "err", err)
		} else {
			e.log.Debug("otlp: export failed; retrying", k.noun(), n, "attempt", attempt+1, "wait", wait, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			e.rec.Count(CountRetries, 1)
		case <-e.sendCtx.Done():
			t.Stop()
		}
	}
}

// Close stops accepting events, delivers what is queued until ctx ends,
// then stops the sender. When ctx ended first it returns an error saying
// how many events were cut off (and how many were dropped over the
// exporter's life); drops before Close are in the counters only.
func (e *Exporter) Close(ctx context.Context) error {
	var err error
	e.closeOnce.Do(func() {
		e.closing.Lock()
		e.closed = true
		e.closing.Unlock()
		close(e.stop)
		select {
		case <-e.done:
		case <-ctx.Done():
			// Stop retrying and sending: the batch in flight and what is
			// still queued are lost.
			e.abort()
			<-e.done
		}
		for {
			select {
			case it := <-e.queue:
				e.drop(it.kind, 1, true)
				continue
			default:
			}
			break
		}
		e.abort()
		e.transport.close()
		if e.pending != nil {
			if n := e.pending.clear(); n > 0 {
				e.rec.Count(e.unpaired, int64(n))
			}
		}
		var errs []error
		if lost := e.lost.Load(); lost > 0 {
			errs = append(errs, fmt.Errorf("otlp: %d events or spans not delivered to %s before the close deadline (%v; %d dropped in all, counted as %s): give Close more time or check the collector",
				lost, e.transport.target(), context.Cause(ctx), e.dropped.Load(), CountDropped))
		}
		if e.metricsLost.Load() {
			why := "it failed, counted as " + CountMetricsFailed
			if ctx.Err() != nil {
				why = context.Cause(ctx).Error()
			}
			errs = append(errs, fmt.Errorf("otlp: the last metrics export did not reach %s (%s): the values since the last delivered export are lost; give Close more time or check the collector",
				e.transport.target(), why))
		}
		err = errors.Join(errs...)
	})
	return err
}

// redactedURL is u without credentials or query (where tokens hide).
func redactedURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	return c.String()
}
