package pipeline

import (
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/http3"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

func newHTTP3(info *flow.Info, sink httpmsg.Sink, lim httpmsg.Limits, rec stats.Recorder) httpmsg.Decoder {
	return http3.New(info, sink, lim, rec)
}
