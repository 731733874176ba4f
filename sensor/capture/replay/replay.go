// Package replay owns the replay capture source: it turns a recorded
// cassette.Recording into flows of synthesized HTTP/1.1 wire bytes, as if a
// TLS boundary tap had seen a client talk to the recorded servers.
//
// Replay is deterministic. Chunks carry a virtual clock that starts at
// Options.Clock and advances one millisecond per chunk, so event latencies
// in golden files are reproducible. Streamed response bodies (SSE, NDJSON,
// AWS eventstream, streamed JSON arrays) are sent chunk-encoded, one chunk
// per event, so the decoders see the arrival marks a real stream would give.
// With a seed, every chunk is further cut at random byte positions, which is
// how decoders are tested against input split anywhere.
package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// DefaultClock is where the virtual clock starts when Options.Clock is zero.
var DefaultClock = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Tick is how far the virtual clock advances per chunk.
const Tick = time.Millisecond

// Per-flow grouping modes (Options.PerFlow).
const (
	// PerHost puts consecutive exchanges to the same scheme and host on one
	// keep-alive connection (the default).
	PerHost = "host"
	// PerExchange gives every exchange its own connection.
	PerExchange = "exchange"
)

// Stats tokens counted by the replay source.
const (
	TokenHeaderDropped = "replay.header_dropped" // a recorded header not valid on the HTTP/1.1 wire, or hop-by-hop
	TokenBodyDropped   = "replay.body_dropped"   // bytes of a recorded body a HEAD/204/304 response cannot carry
)

// Options configure a replay.
type Options struct {
	// Seed, when non-zero, splits every chunk at random byte positions
	// drawn from a PCG seeded with it. Zero keeps natural chunking: one
	// chunk per request, per response head and body, or per stream event.
	Seed int64
	// Split, when set, is used instead of Seed to draw the split positions.
	Split *rand.Rand
	// Clock is the virtual time of the first chunk (DefaultClock if zero).
	Clock time.Time
	// ProcessInfo is reported as every flow's client process. When it is the
	// zero value, UID is reported as -1 (unknown).
	ProcessInfo flow.Process
	// PerFlow is PerHost (default) or PerExchange.
	PerFlow string
	// CaptureMethod is the capture method reported for the flows
	// (flow.CaptureOther if empty).
	CaptureMethod flow.CaptureMethod
	// IDPrefix starts every flow id ("replay" if empty): replay-1, replay-2 …
	IDPrefix string
	// Stats counts what the synthesis had to drop (stats.Discard if nil).
	Stats stats.Recorder
}

// Source replays a recording. It implements flow.Source.
type Source struct {
	rec *cassette.Recording
	opt Options
}

var _ flow.Source = (*Source)(nil)

// New returns a source that replays rec.
func New(rec *cassette.Recording, opt Options) *Source {
	if opt.Clock.IsZero() {
		opt.Clock = DefaultClock
	}
	if opt.PerFlow == "" {
		opt.PerFlow = PerHost
	}
	if opt.CaptureMethod == "" {
		opt.CaptureMethod = flow.CaptureOther
	}
	if opt.IDPrefix == "" {
		opt.IDPrefix = "replay"
	}
	if opt.Stats == nil {
		opt.Stats = stats.Discard{}
	}
	if opt.Split == nil && opt.Seed != 0 {
		opt.Split = rand.New(rand.NewPCG(uint64(opt.Seed), 0x6f697370)) // "oisp"
	}
	if isZeroProcess(&opt.ProcessInfo) {
		opt.ProcessInfo.UID = -1
	}
	return &Source{rec: rec, opt: opt}
}

func isZeroProcess(p *flow.Process) bool {
	return p.PID == 0 && p.PPID == 0 && p.UID == 0 && p.Exe == "" && p.Name == "" && len(p.Cmdline) == 0 &&
		p.BundleID == "" && p.ContainerID == "" && p.Cgroup == ""
}

// Flow is one planned connection: what Run delivers for it.
type Flow struct {
	Info   flow.Info
	Chunks []flow.Chunk
	Close  flow.CloseInfo
	// Exchanges are the indexes into Recording.Interactions carried by
	// this flow, in order.
	Exchanges []int
}

// Plan synthesizes every flow without delivering it. Calling Plan again
// continues the split sequence of a seeded replay, so use a fresh Source
// to reproduce one.
func (s *Source) Plan() ([]Flow, error) {
	if s.opt.PerFlow != PerHost && s.opt.PerFlow != PerExchange {
		return nil, fmt.Errorf("replay: PerFlow %q: want %q or %q", s.opt.PerFlow, PerHost, PerExchange)
	}
	var flows []Flow
	clock := s.opt.Clock
	var cur *Flow
	curKey := ""
	finish := func() {
		if cur == nil {
			return
		}
		// The server ends the connection after the last response.
		cur.Chunks[len(cur.Chunks)-1].Fin = true
		cur.Close = flow.CloseInfo{At: clock, Reason: "eof"}
		clock = clock.Add(Tick)
		flows = append(flows, *cur)
		cur = nil
	}
	for i := range s.rec.Interactions {
		in := &s.rec.Interactions[i]
		ep, err := parseEndpoint(in.Request.URL)
		if err != nil {
			return nil, fmt.Errorf("replay: interaction %d: %w", i, err)
		}
		key := ep.scheme + "://" + strings.ToLower(ep.authority)
		if cur == nil || s.opt.PerFlow == PerExchange || key != curKey {
			finish()
			cur = &Flow{Info: s.info(len(flows)+1, ep, clock)}
			curKey = key
		}
		if st := in.Response.Status; st < 100 || st > 999 {
			return nil, fmt.Errorf("replay: interaction %d: status %d is not a three-digit code", i, st)
		}
		reqParts, err := requestParts(in, ep, s.opt.Stats)
		if err != nil {
			return nil, fmt.Errorf("replay: interaction %d: %w", i, err)
		}
		respParts := responseParts(in, s.opt.Stats)
		for _, p := range reqParts {
			clock = s.emit(cur, flow.ClientToServer, p, clock)
		}
		for _, p := range respParts {
			clock = s.emit(cur, flow.ServerToClient, p, clock)
		}
		cur.Exchanges = append(cur.Exchanges, i)
	}
	finish()
	return flows, nil
}

// emit appends one natural chunk (cut into random pieces when splitting)
// and returns the advanced clock.
func (s *Source) emit(f *Flow, dir flow.Direction, data []byte, clock time.Time) time.Time {
	for _, piece := range s.split(data) {
		f.Chunks = append(f.Chunks, flow.Chunk{Dir: dir, Data: piece, At: clock})
		clock = clock.Add(Tick)
	}
	return clock
}

// split cuts data at random positions when a split source is configured.
// Piece sizes are drawn per chunk from a random bound (1, 3, 16, 256 bytes
// or the whole chunk), so both byte-by-byte and coarse splits occur. Pieces
// have their capacity capped: a receiver appending to one cannot overwrite
// the next.
func (s *Source) split(data []byte) [][]byte {
	r := s.opt.Split
	if r == nil || len(data) <= 1 {
		return [][]byte{data[:len(data):len(data)]}
	}
	bound := []int{1, 3, 16, 256, len(data)}[r.IntN(5)]
	if floor := len(data) / 4096; bound < floor {
		bound = floor // keep a split chunk to at most ~4096 pieces
	}
	var out [][]byte
	for len(data) > 0 {
		n := 1 + r.IntN(bound)
		if n > len(data) {
			n = len(data)
		}
		out = append(out, data[:n:n])
		data = data[n:]
	}
	return out
}

func (s *Source) info(n int, ep endpoint, at time.Time) flow.Info {
	info := flow.Info{
		ID:         s.opt.IDPrefix + "-" + strconv.Itoa(n),
		Transport:  flow.TCP,
		Process:    s.opt.ProcessInfo,
		RemoteHost: ep.host,
		RemotePort: ep.port,
		ALPN:       "http/1.1",
		TLS:        ep.tls,
		Method:     s.opt.CaptureMethod,
		Started:    at,
	}
	if ip, err := netip.ParseAddr(ep.host); err == nil {
		info.Remote = netip.AddrPortFrom(ip, ep.port)
	} else if ep.tls {
		info.SNI = ep.host // SNI never carries IP literals
	}
	return info
}

// Run delivers every flow to h, one after the other, in recording order.
func (s *Source) Run(ctx context.Context, h flow.Handler) error {
	flows, err := s.Plan()
	if err != nil {
		return err
	}
	for i := range flows {
		f := &flows[i]
		if err := ctx.Err(); err != nil {
			return err
		}
		info := f.Info
		h.Open(&info)
		for _, c := range f.Chunks {
			if err := ctx.Err(); err != nil {
				h.Close(f.Info.ID, flow.CloseInfo{At: c.At, Reason: "source_closed"})
				return err
			}
			h.Data(f.Info.ID, c)
		}
		h.Close(f.Info.ID, f.Close)
	}
	return nil
}

// endpoint is where a recorded request went.
type endpoint struct {
	scheme    string // "https" or "http"
	tls       bool
	authority string // Host header value (default port left out)
	host      string // host name or IP, no brackets
	port      uint16
	target    string // origin-form request target
}

func parseEndpoint(raw string) (endpoint, error) {
	var ep endpoint
	u, err := url.Parse(raw)
	if err != nil {
		return ep, fmt.Errorf("request URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "wss":
		ep.scheme, ep.tls, ep.port = "https", true, 443
	case "http", "ws":
		ep.scheme, ep.port = "http", 80
	default:
		return ep, fmt.Errorf("request URL %q: scheme is not http or https", raw)
	}
	if u.Host == "" {
		return ep, fmt.Errorf("request URL %q: no host", raw)
	}
	ep.host = u.Hostname()
	ep.authority = u.Host
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return ep, fmt.Errorf("request URL %q: bad port", raw)
		}
		if uint16(n) == ep.port {
			ep.authority = strings.TrimSuffix(u.Host, ":"+p) // clients leave the default port out
		}
		ep.port = uint16(n)
	}
	ep.target = originForm(raw)
	return ep, nil
}

// originForm returns the path and query of an absolute URL exactly as
// recorded (no re-encoding), with bytes that cannot appear in a request
// line percent-encoded.
func originForm(raw string) string {
	rest := raw
	if i := strings.Index(raw, "://"); i >= 0 {
		rest = raw[i+3:]
	}
	t := "/"
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		t = rest[i:]
	}
	if h := strings.IndexByte(t, '#'); h >= 0 {
		t = t[:h]
	}
	if t == "" || t[0] != '/' {
		t = "/" + t
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c <= ' ' || c >= 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
