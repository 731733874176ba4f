package otlp

import (
	"math"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Counter tokens of GenAI metrics (Config.Metrics). Failed export
// attempts and retries count as sink.otlp.errors and sink.otlp.retries,
// as for logs and spans.
const (
	// CountMetricsSent counts metric exports the collector accepted.
	CountMetricsSent = "sink.otlp.metrics_sent"
	// CountMetricsFailed counts metric exports given up: the collector
	// refused them, stayed unavailable until the next export was due, or
	// Close's deadline came first. The values are cumulative, so the next
	// export carries what a failed one held (but for the last, at Close).
	CountMetricsFailed = "sink.otlp.metrics_failed"
	// CountMetricsRejected counts data points a collector refused in a
	// partial success.
	CountMetricsRejected = "sink.otlp.metrics_rejected"
	// CountMetricsOverflow counts AI calls recorded into the overflow
	// point (attribute otel.metric.overflow=true) because their attribute
	// set would have passed Config.MaxMetricSeries.
	CountMetricsOverflow = "sink.otlp.metrics_overflow"
	// CountMetricsUnpaired counts requests whose response never came
	// within the pending table's bounds when metrics are on and spans off
	// (with spans on they count as sink.otlp.spans_unpaired). Their
	// response's points then lack the operation name and request model.
	CountMetricsUnpaired = "sink.otlp.metrics_unpaired"
)

// Defaults of the metrics.
const (
	DefaultMetricsInterval = 30 * time.Second
	DefaultMaxMetricSeries = 2000
)

// Names of the GenAI client metrics.
const (
	MetricOperationDuration = "gen_ai.client.operation.duration"
	MetricTokenUsage        = "gen_ai.client.token.usage"
	MetricTimeToFirstChunk  = "gen_ai.client.operation.time_to_first_chunk"
)

// numBounds is the number of explicit bucket boundaries of each GenAI
// histogram; a histogram has one more bucket than boundaries.
const numBounds = 14

// secondsBounds are the conventions' advised boundaries of the duration
// histograms, in seconds.
func secondsBounds() *[numBounds]float64 {
	return &[numBounds]float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
}

// tokenBounds are the conventions' advised boundaries of the token usage
// histogram (powers of 4).
func tokenBounds() *[numBounds]float64 {
	return &[numBounds]float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
}

// histogram is one cumulative explicit-bucket histogram data point.
type histogram struct {
	count         uint64
	sum, min, max float64
	// buckets[i] counts values in (bounds[i-1], bounds[i]]; the last
	// counts values above every bound.
	buckets [numBounds + 1]uint64
}

func (h *histogram) add(v float64, bounds *[numBounds]float64) {
	i := 0
	for i < numBounds && v > bounds[i] {
		i++
	}
	h.buckets[i]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if h.count == 0 || v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
}

// merge adds o's values to h.
func (h *histogram) merge(o *histogram) {
	if o.count == 0 {
		return
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if h.count == 0 || o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
	for i := range h.buckets {
		h.buckets[i] += o.buckets[i]
	}
}

// seriesKey is the attribute set of a series: the attributes every
// point of the GenAI metrics carries (gen_ai.token.type apart).
type seriesKey struct {
	operation, provider, requestModel, responseModel, serverAddress, errorType string
	serverPort                                                                 int
}

// clone copies the strings, which may share the event's pooled memory.
func (k seriesKey) clone() seriesKey {
	k.operation = strings.Clone(k.operation)
	k.provider = strings.Clone(k.provider)
	k.requestModel = strings.Clone(k.requestModel)
	k.responseModel = strings.Clone(k.responseModel)
	k.serverAddress = strings.Clone(k.serverAddress)
	k.errorType = strings.Clone(k.errorType)
	return k
}

// series holds the histograms of one attribute set.
type series struct {
	duration, firstChunk, inputTokens, outputTokens histogram
}

// callMeasures is what one AI call adds to the metrics (nil: unknown).
type callMeasures struct {
	key                 seriesKey
	latencyMS, firstMS  *int64
	inputTok, outputTok *int
}

func (s *series) add(m *callMeasures) {
	if m.latencyMS != nil {
		s.duration.add(float64(*m.latencyMS)/1000, secondsBounds())
	}
	if m.firstMS != nil {
		s.firstChunk.add(float64(*m.firstMS)/1000, secondsBounds())
	}
	if m.inputTok != nil {
		s.inputTokens.add(float64(*m.inputTok), tokenBounds())
	}
	if m.outputTok != nil {
		s.outputTokens.add(float64(*m.outputTok), tokenBounds())
	}
}

// measures returns what the AI call that ev completes adds to the
// metrics; req is the call's request, nil when it was not seen. The
// attributes are those the call's log records and span carry: the
// response's where it has them, else its request's.
func measures(ev *oisp.Event, req *pendingCall) callMeasures {
	var m callMeasures
	var p *oisp.Provider
	var code int
	var success *bool
	var perr *oisp.Error
	switch d := ev.Data.(type) {
	case *oisp.AIResponse:
		p, code, success, perr = d.Provider, d.StatusCode, d.Success, d.Error
		m.latencyMS, m.firstMS = d.LatencyMS, d.TimeToFirstTokenMS
		if d.Model != nil {
			// The model as answered; Requested is set when the request
			// named another.
			m.key.responseModel, m.key.requestModel = d.Model.ID, d.Model.Requested
		}
	case *oisp.AIEmbedding:
		p, code, success, perr = d.Provider, d.StatusCode, d.Success, d.Error
		m.latencyMS = d.LatencyMS
		m.key.operation = operationName(oisp.RequestEmbedding, d.Provider)
		if d.Model != nil {
			// As its log record and span name it.
			m.key.requestModel = d.Model.ID
		}
	}
	m.inputTok, m.outputTok = tokenUsage(ev.Data)
	m.key.errorType = errorType(code, success, perr)
	switch {
	case p == nil:
	case req != nil && p.Endpoint == req.endpoint && p.Host == req.host:
		// Where the request went, known already: spare parsing the URL.
		m.key.provider = providerName(p)
		m.key.serverAddress, m.key.serverPort = req.serverAddress, req.serverPort
	default:
		m.key.provider = providerName(p)
		m.key.serverAddress, m.key.serverPort = serverOf(p)
	}
	if req != nil {
		m.key.operation = nonEmpty(req.operation, m.key.operation)
		m.key.requestModel = nonEmpty(m.key.requestModel, req.model)
		if p == nil {
			m.key.provider, m.key.serverAddress, m.key.serverPort = req.provider, req.serverAddress, req.serverPort
		}
	}
	return m
}

// aggregator accumulates the metrics of the calls recorded since the
// exporter started, bounded in attribute sets.
type aggregator struct {
	mu     sync.Mutex
	series map[seriesKey]*series
	// overflow gathers the calls past max attribute sets (nil until one).
	overflow *series
	max      int
}

func newAggregator(max int) *aggregator {
	return &aggregator{series: map[seriesKey]*series{}, max: max}
}

// add records m, reporting whether it went to the overflow point.
func (g *aggregator) add(m *callMeasures) (overflowed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.series[m.key]
	if s == nil {
		if len(g.series) >= g.max {
			if g.overflow == nil {
				g.overflow = new(series)
			}
			s, overflowed = g.overflow, true
		} else {
			s = new(series)
			g.series[m.key.clone()] = s
		}
	}
	s.add(m)
	return overflowed
}

// seriesSnapshot is one series as it was at an export.
type seriesSnapshot struct {
	key      seriesKey
	overflow bool
	series
}

// snapshot appends a copy of every series to dst, so that encoding runs
// without holding up Record.
func (g *aggregator) snapshot(dst []seriesSnapshot) []seriesSnapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, s := range g.series {
		dst = append(dst, seriesSnapshot{key: k, series: *s})
	}
	if g.overflow != nil {
		dst = append(dst, seriesSnapshot{overflow: true, series: *g.overflow})
	}
	return dst
}

// Field numbers of Metric, Histogram and HistogramDataPoint.
const (
	fieldMetricName          = 1
	fieldMetricDescription   = 2
	fieldMetricUnit          = 3
	fieldMetricHistogram     = 9
	fieldHistogramDataPoints = 1
	fieldHistogramTemporal   = 2
	temporalityCumulative    = 2 // AggregationTemporality CUMULATIVE
	fieldPointStart          = 2
	fieldPointTime           = 3
	fieldPointCount          = 4
	fieldPointSum            = 5
	fieldPointBuckets        = 6
	fieldPointBounds         = 7
	fieldPointAttributes     = 9
	fieldPointMin            = 11
	fieldPointMax            = 12
)

// metricWriter serialises the GenAI metrics of a snapshot as OTLP Metric
// messages, reusing its space from one export to the next.
type metricWriter struct {
	legacySystem bool
	snap         []seriesSnapshot
	point        []byte
	points       [3][]byte
	metrics      [3][]byte
}

// write serialises the histograms of every series with data, cumulative
// from start to now, and returns the Metric messages (none when nothing
// was recorded) and the number of data points in them.
func (w *metricWriter) write(g *aggregator, start, now time.Time) (metrics [][]byte, points int64) {
	clear(w.snap)
	w.snap = g.snapshot(w.snap[:0])
	for i := range w.points {
		w.points[i] = w.points[i][:0]
	}
	pt := pointTimes{start: uint64(start.UnixNano()), now: uint64(now.UnixNano())}
	for i := range w.snap {
		s := &w.snap[i]
		if s.duration.count > 0 {
			w.points[0] = w.appendPoint(w.points[0], s, "", &s.duration, secondsBounds(), pt)
			points++
		}
		if s.overflow {
			// The overflow set is the one attribute: input and output
			// tokens share its point, as an SDK's would.
			var tokens histogram
			tokens.merge(&s.inputTokens)
			tokens.merge(&s.outputTokens)
			if tokens.count > 0 {
				w.points[1] = w.appendPoint(w.points[1], s, "", &tokens, tokenBounds(), pt)
				points++
			}
		} else {
			for _, tt := range [...]struct {
				name string
				h    *histogram
			}{{"input", &s.inputTokens}, {"output", &s.outputTokens}} {
				if tt.h.count > 0 {
					w.points[1] = w.appendPoint(w.points[1], s, tt.name, tt.h, tokenBounds(), pt)
					points++
				}
			}
		}
		if s.firstChunk.count > 0 {
			w.points[2] = w.appendPoint(w.points[2], s, "", &s.firstChunk, secondsBounds(), pt)
			points++
		}
	}
	defs := [3]struct{ name, description, unit string }{
		{MetricOperationDuration, "GenAI operation duration.", "s"},
		{MetricTokenUsage, "Number of input and output tokens used.", "{token}"},
		{MetricTimeToFirstChunk, "Time to receive the first chunk of a streamed response.", "s"},
	}
	for i, d := range defs {
		if len(w.points[i]) == 0 {
			continue
		}
		w.metrics[i] = appendHistogramMetric(w.metrics[i][:0], d.name, d.description, d.unit, w.points[i])
		metrics = append(metrics, w.metrics[i])
	}
	return metrics, points
}

// pointTimes are the start and time of every point of an export.
type pointTimes struct{ start, now uint64 }

// appendPoint appends one HistogramDataPoint (as a Histogram.data_points
// field) of series s; tokenType, when set, is its gen_ai.token.type.
func (w *metricWriter) appendPoint(dst []byte, s *seriesSnapshot, tokenType string, h *histogram, bounds *[numBounds]float64, pt pointTimes) []byte {
	a := attrs{b: w.point[:0], field: fieldPointAttributes}
	if s.overflow {
		a.bool("otel.metric.overflow", true)
	} else {
		k := &s.key
		a.str("gen_ai.operation.name", k.operation)
		a.str("gen_ai.provider.name", k.provider)
		if w.legacySystem {
			a.str("gen_ai.system", k.provider)
		}
		a.str("gen_ai.request.model", k.requestModel)
		a.str("gen_ai.response.model", k.responseModel)
		a.str("server.address", k.serverAddress)
		if k.serverPort != 0 {
			a.int("server.port", int64(k.serverPort))
		}
		a.str("error.type", k.errorType)
		a.str("gen_ai.token.type", tokenType)
	}
	b := a.b
	b = appendFixed64(b, fieldPointStart, pt.start)
	b = appendFixed64(b, fieldPointTime, pt.now)
	b = appendFixed64(b, fieldPointCount, h.count)
	b = appendFixed64(b, fieldPointSum, math.Float64bits(h.sum))
	b = protowire.AppendTag(b, fieldPointBuckets, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(8*len(h.buckets)))
	for _, c := range h.buckets {
		b = protowire.AppendFixed64(b, c)
	}
	b = protowire.AppendTag(b, fieldPointBounds, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(8*len(bounds)))
	for _, v := range bounds {
		b = protowire.AppendFixed64(b, math.Float64bits(v))
	}
	b = appendFixed64(b, fieldPointMin, math.Float64bits(h.min))
	b = appendFixed64(b, fieldPointMax, math.Float64bits(h.max))
	w.point = b
	dst = protowire.AppendTag(dst, fieldHistogramDataPoints, protowire.BytesType)
	return protowire.AppendBytes(dst, b)
}

// appendHistogramMetric appends a Metric holding a cumulative Histogram
// of the serialised data points.
func appendHistogramMetric(dst []byte, name, description, unit string, points []byte) []byte {
	dst = appendString(dst, fieldMetricName, name)
	dst = appendString(dst, fieldMetricDescription, description)
	dst = appendString(dst, fieldMetricUnit, unit)
	histLen := len(points) + protowire.SizeTag(fieldHistogramTemporal) + protowire.SizeVarint(temporalityCumulative)
	dst = protowire.AppendTag(dst, fieldMetricHistogram, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(histLen))
	dst = append(dst, points...)
	dst = protowire.AppendTag(dst, fieldHistogramTemporal, protowire.VarintType)
	return protowire.AppendVarint(dst, temporalityCumulative)
}

func appendFixed64(b []byte, field protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, field, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}
