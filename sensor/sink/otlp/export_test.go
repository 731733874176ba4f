package otlp

import (
	"time"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Encoder is the per-event encoding Record does, for the benchmark: it
// reuses its space as Record does.
type Encoder struct{ record, body []byte }

// Encode encodes ev as a LogRecord.
func (x *Encoder) Encode(ev *oisp.Event) ([]byte, error) {
	var e encoder
	var err error
	x.record, x.body, err = e.encode(x.record[:0], x.body, ev, time.Now(), nil)
	return x.record, err
}
