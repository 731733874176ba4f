package pipeline

import (
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http1"
	"github.com/oisp/oisp-sensor/sensor/http2"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// DefaultDecoder chooses HTTP/3 for QUIC flows, HTTP/2 when ALPN says h2 or
// the client's first bytes are the HTTP/2 preface, and HTTP/1.1 otherwise.
func DefaultDecoder(info *flow.Info, first []byte, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder {
	switch {
	case info.Transport == flow.QUIC:
		return newHTTP3(info, sink, lim, rec)
	case info.ALPN == "h2" || IsHTTP2Preface(first):
		return http2.New(info, sink, lim, rec)
	default:
		return http1.New(info, sink, lim, rec)
	}
}
