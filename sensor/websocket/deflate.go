package websocket

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"
)

// permessage-deflate (RFC 7692): each message is a raw DEFLATE stream
// ending in an empty stored block whose final 00 00 ff ff the sender strips.
// With context takeover (the default) the LZ77 window carries over from one
// message to the next, so a message may refer to text of earlier ones: the
// inflater keeps the last 32 KiB of each direction's output and presets it
// as the dictionary of the next message.

// windowSize is the largest DEFLATE window (window bits 15).
const windowSize = 32 << 10

// deflateTail restores the stripped end of the sync flush.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

var errContextLost = errors.New("permessage-deflate: an earlier message of this direction could not be inflated, so the shared window is unknown")

// inflater inflates one direction's messages.
type inflater struct {
	fr     io.ReadCloser // reused through flate.Resetter
	window []byte        // last output, ≤ windowSize (context takeover)
	lost   bool          // the window is unknown
	src    bytes.Reader
	out    bytes.Buffer
}

// lose marks the shared window unknown (with context takeover only).
func (f *inflater) lose(takeover bool) {
	if takeover {
		f.lost = true
	}
}

// inflate decompresses one message payload, producing at most max bytes:
// past the cap it stops reading (a decompression bomb costs no more than
// max bytes of output) and reports capped.
func (f *inflater) inflate(payload []byte, max int, takeover bool) (out []byte, capped bool, err error) {
	if takeover && f.lost {
		return nil, false, errContextLost
	}
	in := append(payload, deflateTail...)
	f.src.Reset(in)
	var dict []byte
	if takeover {
		dict = f.window
	}
	if f.fr == nil {
		f.fr = flate.NewReaderDict(&f.src, dict)
	} else if err := f.fr.(flate.Resetter).Reset(&f.src, dict); err != nil {
		f.lose(takeover)
		return nil, false, fmt.Errorf("permessage-deflate: %w", err)
	}
	f.out.Reset()
	n, err := f.out.ReadFrom(io.LimitReader(f.fr, int64(max)+1))
	// The stream of a message normally has no final block: running out of
	// input right after the restored sync flush is its regular end.
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		f.lose(takeover)
		return nil, false, fmt.Errorf("permessage-deflate: %w", err)
	}
	if n > int64(max) {
		f.lose(takeover)
		return bytes.Clone(f.out.Bytes()[:max]), true, nil
	}
	out = bytes.Clone(f.out.Bytes())
	if takeover {
		f.remember(out)
	}
	return out, false, nil
}

// remember keeps the last windowSize bytes of output as the next
// message's dictionary.
func (f *inflater) remember(out []byte) {
	if len(out) >= windowSize {
		f.window = append(f.window[:0], out[len(out)-windowSize:]...)
		return
	}
	keep := min(len(f.window), windowSize-len(out))
	f.window = append(f.window[:0], f.window[len(f.window)-keep:]...)
	f.window = append(f.window, out...)
}
