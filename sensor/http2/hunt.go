package http2

import (
	"encoding/binary"

	"golang.org/x/net/http2"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// huntChain is how many consecutive plausible frames confirm a boundary:
// two whole frames and the header of a third. Shifted windows of real frame
// headers (mostly zero bytes) pass one check surprisingly often; three in a
// row, with the payloads of the first two checked too, do not.
const huntChain = 3

type huntVerdict uint8

const (
	huntReject huntVerdict = iota
	huntConfirmed
	huntNeedMore
)

// hunt finds a frame boundary in bytes that did not start at one (the
// decoder joined mid-connection, or bytes were lost). chunkStart is where
// the newest chunk begins in p. It returns how many leading bytes cannot
// start a frame and whether a confirmed frame starts right after them; when
// found is false the bytes after skip are kept until more data arrives.
func (dir *direction) hunt(p []byte, chunkStart int) (skip int, found bool) {
	for i := 0; i+frameHeaderLen <= len(p); i++ {
		switch dir.chain(p, i, chunkStart) {
		case huntConfirmed:
			return i, true
		case huntNeedMore:
			// The wait is bounded: a chain of frames no longer than
			// maxFrame each.
			return i, false
		}
	}
	// Keep the last bytes: they may be the start of a frame header.
	return max(0, len(p)-(frameHeaderLen-1)), false
}

// chain checks the frames starting at i. A chain that ends exactly at the
// end of the buffered bytes also confirms when it began at the start of the
// newest chunk: captured chunks are write() or SSL_write() calls, which
// carry whole frames.
func (dir *direction) chain(p []byte, i, chunkStart int) huntVerdict {
	pos := i
	for n := 0; ; n++ {
		if pos == len(p) {
			if n >= 1 && i == chunkStart {
				return huntConfirmed
			}
			return huntNeedMore
		}
		if pos+frameHeaderLen > len(p) {
			return huntNeedMore
		}
		if !dir.plausible(p[pos:]) {
			return huntReject
		}
		if n == huntChain-1 {
			return huntConfirmed
		}
		fh := dir.peekHeader(p[pos:])
		end := pos + frameHeaderLen + int(fh.Length)
		if end > len(p) {
			return huntNeedMore
		}
		if !plausiblePayload(fh, p[pos+frameHeaderLen:end]) {
			return huntReject
		}
		pos = end
	}
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
		// An empty DATA frame only makes sense to end a stream; runs of
		// zero bytes look like one otherwise.
		return streamOK && flags&^(http2.FlagDataEndStream|http2.FlagDataPadded) == 0 &&
			(flags&http2.FlagDataPadded == 0 || fh.Length >= 1) &&
			(fh.Length > 0 || flags.Has(http2.FlagDataEndStream))
	case http2.FrameHeaders:
		minLen := uint32(0)
		if flags.Has(http2.FlagHeadersPadded) {
			minLen++
		}
		if flags.Has(http2.FlagHeadersPriority) {
			minLen += 5
		}
		// A request or response head is never empty.
		return streamOK && flags&^(http2.FlagHeadersEndStream|http2.FlagHeadersEndHeaders|http2.FlagHeadersPadded|http2.FlagHeadersPriority) == 0 &&
			fh.Length > minLen
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

// maxKnownErrCode is the highest error code RFC 9113 §7 defines.
const maxKnownErrCode = uint32(http2.ErrCodeHTTP11Required)

// plausiblePayload checks the parts of a payload whose values are
// constrained (padding, dependencies, error codes, settings), the strict
// view taken only while hunting.
func plausiblePayload(fh http2.FrameHeader, p []byte) bool {
	u31 := func(b []byte) (uint32, bool) {
		v := binary.BigEndian.Uint32(b)
		return v & 0x7fffffff, v&0x80000000 == 0
	}
	switch fh.Type {
	case http2.FrameData:
		return !fh.Flags.Has(http2.FlagDataPadded) || int(p[0]) < len(p)
	case http2.FrameHeaders:
		fixed := 0
		if fh.Flags.Has(http2.FlagHeadersPadded) {
			fixed = 1 + int(p[0])
		}
		if fh.Flags.Has(http2.FlagHeadersPriority) {
			off := 0
			if fh.Flags.Has(http2.FlagHeadersPadded) {
				off = 1
			}
			dep, _ := u31(p[off:])
			if dep == fh.StreamID {
				return false
			}
			fixed += 5
		}
		return fixed <= len(p)
	case http2.FramePriority:
		dep, _ := u31(p)
		return dep != fh.StreamID
	case http2.FrameRSTStream:
		return binary.BigEndian.Uint32(p) <= maxKnownErrCode
	case http2.FrameSettings:
		for ; len(p) >= 6; p = p[6:] {
			v := binary.BigEndian.Uint32(p[2:])
			switch http2.SettingID(binary.BigEndian.Uint16(p)) {
			case http2.SettingEnablePush:
				if v > 1 {
					return false
				}
			case http2.SettingInitialWindowSize:
				if v > 1<<31-1 {
					return false
				}
			case http2.SettingMaxFrameSize:
				if v < defaultMaxFrameSize || v > maxFrameSize {
					return false
				}
			}
		}
		return true
	case http2.FramePushPromise:
		off := 0
		if fh.Flags.Has(http2.FlagPushPromisePadded) {
			off = 1
			if 1+int(p[0])+4 > len(p) {
				return false
			}
		}
		id, ok := u31(p[off:])
		return ok && id != 0 && id%2 == 0
	case http2.FrameGoAway:
		_, ok := u31(p)
		return ok && binary.BigEndian.Uint32(p[4:]) <= maxKnownErrCode
	case http2.FrameWindowUpdate:
		inc, ok := u31(p)
		return ok && inc != 0
	}
	return true
}
