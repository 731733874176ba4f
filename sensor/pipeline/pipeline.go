// Package pipeline owns the sensor's data path from flows to events: it
// receives flows from any capture source, picks the HTTP decoder for each
// (HTTP/1.1, HTTP/2 or HTTP/3), hands finished exchanges to the provider
// decoders, builds OISP events (envelope, process, confidence, links between
// requests, responses, tool calls and tool results) and delivers them to a
// Recorder. It owns the run's counters: every drop, truncation and decode
// error is counted in Stats.
package pipeline

import (
	"bytes"
	"log/slog"
	"sync"

	"github.com/oisp/oisp-sensor/sensor/content"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http1"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Recorder receives events. Implementations must be safe for concurrent
// use; Record must not retain the event after returning unless it copies it.
type Recorder interface {
	Record(ev *oisp.Event)
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ev *oisp.Event)

// Record calls f(ev).
func (f RecorderFunc) Record(ev *oisp.Event) { f(ev) }

// ContentMode says how much prompt and response text events carry.
type ContentMode string

const (
	// ContentFull keeps message text, tool arguments and tool results.
	ContentFull ContentMode = "full"
	// ContentMetadata replaces text with its length and hash.
	ContentMetadata ContentMode = "metadata"
)

// Config configures a Pipeline.
type Config struct {
	Registry *provider.Registry
	// APIs defaults to provider.BuiltinAPIs().
	APIs    []provider.API
	Builder *oisp.Builder
	Out     Recorder
	Limits  httpmsg.Limits
	// Stats receives every counter; a new set is made when nil.
	Stats   *stats.Counters
	Content ContentMode
	Logger  *slog.Logger
	// NewDecoder, when set, picks the HTTP decoder for a flow instead of
	// the pipeline's own choice (HTTP/1.1 with WebSocket sessions followed,
	// HTTP/2 by ALPN or preface, HTTP/3 for QUIC).
	NewDecoder DecoderFactory
}

// DecoderFactory returns the HTTP decoder for a flow, given its first chunk.
type DecoderFactory func(info *flow.Info, first []byte, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder

// Pipeline is a flow.Handler and flow.SystemHandler. Calls for one flow must
// be serialised (sources guarantee it); different flows may be delivered
// concurrently.
type Pipeline struct {
	cfg   Config
	stats *stats.Counters
	log   *slog.Logger
	links *linker
	// chains holds the conversations of answers a later request may
	// continue by id.
	chains chains
	// readers lends decompressors to the HTTP/1 decoders of all flows.
	readers   content.Readers
	targets   targetCache
	toolTypes toolTypeCache

	mu    sync.Mutex
	flows map[string]*flowState
}

type flowState struct {
	p       *Pipeline
	mu      sync.Mutex
	info    *flow.Info
	dec     httpmsg.Decoder
	pending []flow.Chunk // QUIC/TCP chunks before the decoder was chosen
	events  int
	bytes   int64

	// The process, actor and attributes every event of the flow carries,
	// made for its first AI exchange and shared by all its events
	// (nothing modifies them after).
	sharedDone bool
	proc       *oisp.Process
	actor      *oisp.Actor
	attrs      *oisp.Attrs

	// h1 is the flow's decoder when it speaks HTTP/1 (most flows), kept
	// here to save its allocation.
	h1 http1.Decoder
}

// Done receives the flow's finished exchanges from its decoder.
func (fs *flowState) Done(x *httpmsg.Exchange) { fs.p.exchange(fs, x) }

// shared returns the per-flow parts of the flow's events.
func (fs *flowState) shared() (*oisp.Process, *oisp.Actor, *oisp.Attrs) {
	if !fs.sharedDone {
		fs.sharedDone = true
		fs.proc, fs.actor, fs.attrs = processOf(fs.info), actorOf(fs.info), flowAttrs(fs.info)
	}
	return fs.proc, fs.actor, fs.attrs
}

// New returns a pipeline.
func New(cfg Config) *Pipeline {
	if cfg.APIs == nil {
		cfg.APIs = provider.BuiltinAPIs()
	}
	if cfg.Stats == nil {
		cfg.Stats = &stats.Counters{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Content == "" {
		cfg.Content = ContentFull
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	return &Pipeline{
		cfg:    cfg,
		stats:  cfg.Stats,
		log:    cfg.Logger,
		links:  newLinker(4096),
		chains: newChains(4096),
		flows:  map[string]*flowState{},
	}
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() *stats.Counters { return p.stats }

// Open starts a flow.
func (p *Pipeline) Open(info *flow.Info) {
	p.stats.Count("flows.opened", 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.flows[info.ID]; dup {
		p.stats.Count("flows.duplicate_id", 1)
	}
	p.flows[info.ID] = &flowState{p: p, info: info}
}

func (p *Pipeline) flow(id string) *flowState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flows[id]
}

// Data delivers a chunk of a flow.
func (p *Pipeline) Data(id string, c flow.Chunk) {
	fs := p.flow(id)
	if fs == nil {
		p.stats.Count("flows.data_for_unknown_flow", 1)
		p.stats.Count("bytes.dropped", int64(len(c.Data)))
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	p.stats.Count("bytes.captured", int64(len(c.Data)))
	fs.bytes += int64(len(c.Data))
	if c.Gap > 0 {
		p.stats.Count("bytes.lost_by_source", c.Gap)
	}
	if fs.dec == nil {
		first := c.Data
		if fs.info.Transport == flow.TCP && c.Dir == flow.ServerToClient && fs.info.ALPN == "" {
			// Wait for the client's first bytes to choose the decoder.
			if len(fs.pending) < 64 {
				fs.pending = append(fs.pending, c)
				return
			}
			first = nil
		}
		fs.dec = p.newDecoder(fs, first)
		for _, pc := range fs.pending {
			fs.dec.Feed(pc)
		}
		fs.pending = nil
	}
	fs.dec.Feed(c)
}

// Close ends a flow: decoders deliver what is still open.
func (p *Pipeline) Close(id string, ci flow.CloseInfo) {
	p.mu.Lock()
	fs := p.flows[id]
	delete(p.flows, id)
	p.mu.Unlock()
	if fs == nil {
		p.stats.Count("flows.close_for_unknown_flow", 1)
		return
	}
	p.stats.Count("flows.closed", 1)
	if ci.Dropped > 0 {
		p.stats.Count("bytes.lost_by_source", ci.Dropped)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.dec == nil && len(fs.pending) > 0 {
		fs.dec = p.newDecoder(fs, nil)
		for _, pc := range fs.pending {
			fs.dec.Feed(pc)
		}
		fs.pending = nil
	}
	if fs.dec != nil {
		fs.dec.Close(ci)
	}
}

// Flush closes every open flow (at shutdown), delivering what they hold.
func (p *Pipeline) Flush(ci flow.CloseInfo) {
	p.mu.Lock()
	ids := make([]string, 0, len(p.flows))
	for id := range p.flows {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.Close(id, ci)
	}
}

// OpenFlows returns the number of flows in progress.
func (p *Pipeline) OpenFlows() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.flows)
}

// IsHTTP2Preface reports whether b starts like the HTTP/2 client preface.
func IsHTTP2Preface(b []byte) bool {
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	n := min(len(b), len(preface))
	return n >= 3 && bytes.Equal(b[:n], []byte(preface[:n]))
}
