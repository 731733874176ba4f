package http2

import (
	"golang.org/x/net/http2"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// hunter finds a frame boundary in bytes that did not start at one (the
// decoder joined mid-connection, or bytes were lost). A candidate offset
// must hold a plausible frame header for this direction, and is confirmed
// when the next frame header is plausible too, or when the candidate frame
// ends exactly where the chunk ends (captured chunks are write() or
// SSL_write() calls, which usually carry whole frames).
type hunter struct{}

func (hunter) reset() {}

// find returns how many leading bytes of p cannot start a frame and
// whether a confirmed frame starts right after them. When found is false
// the bytes after skip are kept until more data arrives.
func (hunter) find(dir *direction, p []byte) (skip int, found bool) {
	for i := 0; i+frameHeaderLen <= len(p); i++ {
		if !dir.plausible(p[i:]) {
			continue
		}
		fh := dir.peekHeader(p[i:])
		end := i + frameHeaderLen + int(fh.Length)
		switch {
		case end == len(p):
			return i, true
		case end+frameHeaderLen <= len(p):
			if dir.plausible(p[end:]) {
				return i, true
			}
		default:
			// Plausible but not yet confirmable: wait for more bytes.
			// This holds at most one frame (maxFrame) plus a header.
			return i, false
		}
	}
	// Keep the last bytes: they may be the start of a frame header.
	return max(0, len(p)-(frameHeaderLen-1)), false
}

// plausible reports whether p starts with a frame header this direction
// could send: a defined type whose flags, stream id and length agree with
// RFC 9113 §6. Extension frame types are not accepted while hunting.
func (dir *direction) plausible(p []byte) bool {
	if p[5]&0x80 != 0 { // the reserved bit of the stream id
		return false
	}
	fh := dir.peekHeader(p)
	if fh.Length > dir.maxFrame {
		return false
	}
	client := dir.dir == flow.ClientToServer
	id := fh.StreamID
	// Clients only send on their own (odd) streams; servers answer on
	// those or push on even ones.
	streamOK := id != 0 && (!client || id%2 == 1)
	flags := fh.Flags
	switch fh.Type {
	case http2.FrameData:
		return streamOK && flags&^(http2.FlagDataEndStream|http2.FlagDataPadded) == 0 &&
			(flags&http2.FlagDataPadded == 0 || fh.Length >= 1)
	case http2.FrameHeaders:
		minLen := uint32(0)
		if flags.Has(http2.FlagHeadersPadded) {
			minLen++
		}
		if flags.Has(http2.FlagHeadersPriority) {
			minLen += 5
		}
		return streamOK && flags&^(http2.FlagHeadersEndStream|http2.FlagHeadersEndHeaders|http2.FlagHeadersPadded|http2.FlagHeadersPriority) == 0 &&
			fh.Length >= minLen
	case http2.FramePriority:
		return id != 0 && flags == 0 && fh.Length == 5
	case http2.FrameRSTStream:
		return id != 0 && flags == 0 && fh.Length == 4
	case http2.FrameSettings:
		if flags.Has(http2.FlagSettingsAck) {
			return id == 0 && flags == http2.FlagSettingsAck && fh.Length == 0
		}
		return id == 0 && flags == 0 && fh.Length%6 == 0
	case http2.FramePushPromise:
		return !client && id != 0 && id%2 == 1 &&
			flags&^(http2.FlagPushPromiseEndHeaders|http2.FlagPushPromisePadded) == 0 && fh.Length >= 4
	case http2.FramePing:
		return id == 0 && flags&^http2.FlagPingAck == 0 && fh.Length == 8
	case http2.FrameGoAway:
		return id == 0 && flags == 0 && fh.Length >= 8
	case http2.FrameWindowUpdate:
		return flags == 0 && fh.Length == 4
	case http2.FrameContinuation:
		return streamOK && flags&^http2.FlagContinuationEndHeaders == 0
	}
	return false
}
