package pipeline

import (
	"github.com/oisp/oisp-sensor/sensor/content"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http1"
	"github.com/oisp/oisp-sensor/sensor/http2"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/websocket"
)

// DefaultDecoder chooses HTTP/3 for QUIC flows, HTTP/2 when ALPN says h2 or
// the client's first bytes are the HTTP/2 preface, and HTTP/1.1 otherwise
// (which hands over to HTTP/2 if the preface shows up first anyway).
// Upgrades to WebSocket are not followed: the pipeline's own decoder choice
// adds that.
func DefaultDecoder(info *flow.Info, first []byte, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder {
	return chooseDecoder(info, first, sink, lim, rec, nil, nil, nil)
}

// chooseDecoder is DefaultDecoder with upgrades followed by upgrade, the
// HTTP/1 decoders' decompressors lent by readers, and an HTTP/1 decoder
// readied in h1 when it is not nil.
func chooseDecoder(info *flow.Info, first []byte, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder, upgrade func(httpmsg.Sink, *httpmsg.Exchange) httpmsg.Decoder, readers *content.Readers, h1 *http1.Decoder) httpmsg.Decoder {
	switch {
	case info.Transport == flow.QUIC:
		return newHTTP3(info, sink, lim, rec)
	case info.ALPN == "h2" || IsHTTP2Preface(first):
		return newHTTP2(info, sink, lim, rec)
	default:
		if h1 == nil {
			h1 = new(http1.Decoder)
		}
		h1.Init(info, sink, lim, rec, http1.Options{
			Upgrade:   upgrade,
			H2Preface: newHTTP2,
			Readers:   readers,
		})
		return h1
	}
}

// newHTTP2 is http2.New as an httpmsg.Decoder constructor.
func newHTTP2(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder {
	return http2.New(info, sink, lim, rec)
}

// newDecoder is the pipeline's decoder for a flow: the configured factory,
// or the default choice with WebSocket sessions of AI APIs followed.
func (p *Pipeline) newDecoder(fs *flowState, first []byte) httpmsg.Decoder {
	var sink httpmsg.Sink = fs
	if p.cfg.NewDecoder != nil {
		return p.cfg.NewDecoder(fs.info, first, sink, p.cfg.Limits, p.stats)
	}
	return chooseDecoder(fs.info, first, sink, p.cfg.Limits, p.stats, upgradeFlow, &p.readers, &fs.h1)
}

// upgradeFlow is the HTTP/1 decoders' Upgrade for every flow: the sink is
// the flow's state (newDecoder makes it so), which names its pipeline. A
// decoder given another sink follows no upgrade rather than fail.
func upgradeFlow(sink httpmsg.Sink, x *httpmsg.Exchange) httpmsg.Decoder {
	fs, ok := sink.(*flowState)
	if !ok {
		return nil
	}
	return fs.p.upgrade(fs, x)
}

// upgrade follows a WebSocket connection when it opens a session of an AI
// API the providers decode (OpenAI Realtime, Responses over WebSocket).
func (p *Pipeline) upgrade(fs *flowState, x *httpmsg.Exchange) httpmsg.Decoder {
	if !websocket.IsUpgrade(x) {
		return nil
	}
	t := p.target(fs, x)
	if !provider.IsRealtimeUpgrade(t, x) {
		p.stats.Count("websocket.not_ai", 1)
		return nil
	}
	env := provider.Env{Registry: p.cfg.Registry, Stats: p.stats}
	ws := &wsSession{p: p, fs: fs, t: t, sess: provider.NewRealtimeSession(t, x, env)}
	return websocket.NewDecoder(x, ws, p.stats, websocket.Options{MaxMessage: p.cfg.Limits.MaxBody})
}

// wsSession turns a WebSocket session's messages into events, turn by turn.
type wsSession struct {
	p    *Pipeline
	fs   *flowState
	t    provider.Target
	sess *provider.RealtimeSession
}

func (w *wsSession) Message(_ *httpmsg.Exchange, m websocket.Message) {
	w.emit(w.sess.Message(m))
}

func (w *wsSession) Closed(up *httpmsg.Exchange, s websocket.Summary) {
	at := w.fs.info.Started
	if up.Response != nil && !up.Response.End.IsZero() {
		at = up.Response.End
	}
	if s.ClientErr != nil || s.ServerErr != nil {
		w.p.stats.Count("websocket.sessions_with_errors", 1)
	}
	w.emit(w.sess.Close(at))
}

func (w *wsSession) emit(turns []provider.RealtimeTurn) {
	for _, turn := range turns {
		if turn.Result == nil || turn.Result.Request == nil {
			continue
		}
		if turn.Exchange.Flow == nil {
			turn.Exchange.Flow = w.fs.info
		}
		w.p.stats.Count("ai.exchanges", 1)
		w.p.stats.Count("ai.websocket_turns", 1)
		w.p.emitAI(w.fs, turn.Exchange, w.t, turn.Result.API(), turn.Result)
	}
}
