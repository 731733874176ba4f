package http3

import (
	"github.com/quic-go/quic-go/quicvarint"
)

// HTTP/3 frame types (RFC 9114 §7.2) and the HTTP/2 types it reserves.
const (
	frameData           = 0x0
	frameHeaders        = 0x1
	frameCancelPush     = 0x3
	frameSettings       = 0x4
	framePushPromise    = 0x5
	frameGoAway         = 0x7
	frameMaxPushID      = 0xd
	framePriorityUpdate = 0xf0700 // RFC 9218, request streams
	framePriorityPush   = 0xf0701 // RFC 9218, push streams
)

// reservedFrameType reports the HTTP/2 frame types RFC 9114 §7.2.8 forbids.
func reservedFrameType(t uint64) bool { return t == 0x2 || t == 0x6 || t == 0x8 || t == 0x9 }

// greaseType reports the reserved 0x1f*N+0x21 values used to exercise
// unknown-type handling (RFC 9114 §7.2.8, §6.2.3, §7.2.4.1).
func greaseType(t uint64) bool { return t >= 0x21 && (t-0x21)%0x1f == 0 }

// frameMode says what a frame parser does with a frame's payload.
type frameMode uint8

const (
	modeSkip   frameMode = iota // discard
	modeStream                  // hand over as it arrives (DATA)
	modeBuffer                  // collect, hand over when complete
)

// frameSink receives a stream's frames from a frameParser.
type frameSink interface {
	// begin announces a frame and chooses its mode.
	begin(ftype, length uint64) frameMode
	// data passes payload bytes of a streamed frame.
	data(p []byte)
	// end completes a frame; payload is set for buffered frames only and
	// is valid only during the call.
	end(ftype uint64, payload []byte)
	// lost reports that n payload bytes of the current frame were lost.
	lost(ftype uint64, n uint64)
}

// maxFrameHeaderLen is two 8-byte varints.
const maxFrameHeaderLen = 16

// frameParser splits one direction of an HTTP/3 stream into frames (a
// varint type and a varint length, then the payload), incrementally. It
// returns only type and length; the sink decides what to do with the
// payload.
type frameParser struct {
	hdr       [maxFrameHeaderLen]byte
	hdrN      int
	inFrame   bool
	ftype     uint64
	mode      frameMode
	remaining uint64
	payload   []byte
}

// feed consumes p.
func (fp *frameParser) feed(p []byte, sink frameSink) {
	for len(p) > 0 {
		if !fp.inFrame {
			n, ok := fp.header(p, sink)
			p = p[n:]
			if !ok {
				return
			}
			continue
		}
		n := min(fp.remaining, uint64(len(p)))
		switch fp.mode {
		case modeStream:
			sink.data(p[:n])
		case modeBuffer:
			fp.payload = append(fp.payload, p[:n]...)
		}
		fp.remaining -= n
		p = p[n:]
		if fp.remaining == 0 {
			fp.finish(sink)
		}
	}
}

// header reads a frame header from p (continuing a split one); it returns
// how many bytes of p it used and whether a header was completed.
func (fp *frameParser) header(p []byte, sink frameSink) (int, bool) {
	var buf []byte
	if fp.hdrN == 0 {
		buf = p
	} else {
		buf = append(fp.hdr[:fp.hdrN], p[:min(len(p), maxFrameHeaderLen-fp.hdrN)]...)
	}
	t, n1, err := quicvarint.Parse(buf)
	if err == nil {
		var l uint64
		var n2 int
		l, n2, err = quicvarint.Parse(buf[n1:])
		if err == nil {
			used := n1 + n2 - fp.hdrN
			fp.hdrN = 0
			fp.start(t, l, sink)
			return used, true
		}
	}
	// Incomplete: fewer than 16 bytes in all, keep them.
	if fp.hdrN == 0 {
		fp.hdrN = copy(fp.hdr[:], p)
	} else {
		fp.hdrN = len(buf)
	}
	return len(p), false
}

func (fp *frameParser) start(t, l uint64, sink frameSink) {
	fp.ftype = t
	fp.remaining = l
	fp.inFrame = true
	fp.mode = sink.begin(t, l)
	if fp.mode == modeBuffer {
		fp.payload = make([]byte, 0, l)
	}
	if l == 0 {
		fp.finish(sink)
	}
}

func (fp *frameParser) finish(sink frameSink) {
	fp.inFrame = false
	var payload []byte
	if fp.mode == modeBuffer {
		payload = fp.payload
	}
	sink.end(fp.ftype, payload)
	// A stream buffers a frame or two in its life (HEADERS, trailers);
	// keeping the buffer would pin it for every open stream.
	fp.payload = nil
}

// lose accounts for n lost bytes; it reports whether frame sync survived
// (the loss fell inside the current frame's payload).
func (fp *frameParser) lose(n uint64, sink frameSink) bool {
	if !fp.inFrame || n > fp.remaining {
		return false
	}
	fp.remaining -= n
	sink.lost(fp.ftype, n)
	if fp.mode == modeBuffer {
		// A buffered frame with a hole is useless; drop the rest.
		fp.mode = modeSkip
	}
	if fp.remaining == 0 {
		fp.finish(sink)
	}
	return true
}

// idle reports whether the parser is between frames with nothing pending.
func (fp *frameParser) idle() bool { return !fp.inFrame && fp.hdrN == 0 }
