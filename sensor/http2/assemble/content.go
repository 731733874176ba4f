package assemble

import (
	"fmt"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// decodeContent removes the body's content codings with the connection's
// content.Decoder, which keeps arrival marks exact and caps the inflated
// size at MaxBody.
func (e *Exchange) decodeContent(side Side, enc string, out *httpmsg.Body) {
	capped, err := e.cfg.content.DecodeBody(out, enc, e.cfg.Limits)
	if capped {
		e.Note(fmt.Sprintf("%s body over %d bytes after content decoding; truncated", side, e.cfg.Limits.MaxBody))
	}
	if err != nil {
		e.Note(fmt.Sprintf("%s content decoding: %v", side, err))
	}
}
