package assemble

import (
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// decodeContent removes the body's content coding in place of out.Data.
//
// CONTENT-DECODING CALL SITE: sensor/content (content.Decode) is being
// written in parallel; until it lands the body is kept as sent, with
// DecodeError saying why, and the miss is counted.
func (e *Exchange) decodeContent(side Side, enc string, out *httpmsg.Body) {
	e.cfg.Rec.Count(e.cfg.Prefix+".content_decoding_unavailable", 1)
	out.DecodeError = "content decoding of " + enc + " not available"
}

// rescaleMarks maps arrival marks taken on wire offsets onto offsets of the
// decoded body. Compression ratio is not uniform, so offsets in between are
// an estimate; the first mark's time (time to first byte) and the last
// mark's offset (the whole body) stay exact.
func rescaleMarks(marks []httpmsg.Mark, wireLen, decodedLen int) []httpmsg.Mark {
	if wireLen <= 0 || len(marks) == 0 {
		return marks
	}
	out := make([]httpmsg.Mark, 0, len(marks))
	prev := 0
	for i, m := range marks {
		off := int(int64(m.Offset) * int64(decodedLen) / int64(wireLen))
		if i == len(marks)-1 {
			off = decodedLen
		}
		if off < prev {
			off = prev
		}
		if len(out) > 0 && off == prev {
			// Several wire marks may map onto one decoded offset; keep the
			// earliest time for it.
			continue
		}
		out = append(out, httpmsg.Mark{Offset: off, At: m.At})
		prev = off
	}
	return out
}
