package pipeline

import (
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// newHTTP3 is replaced by the HTTP/3 decoder when it lands; until then QUIC
// flows are counted and dropped.
func newHTTP3(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder {
	return dropDecoder{rec: rec}
}

type dropDecoder struct{ rec stats.Recorder }

func (d dropDecoder) Feed(c flow.Chunk)       { d.rec.Count("http3.unsupported_bytes", int64(len(c.Data))) }
func (d dropDecoder) Close(ci flow.CloseInfo) {}
