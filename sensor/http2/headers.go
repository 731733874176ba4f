package http2

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/oisp/oisp-sensor/sensor/http2/assemble"
)

const (
	// initialHeaderTableSize is SETTINGS_HEADER_TABLE_SIZE before SETTINGS
	// (RFC 9113 §6.5.2).
	initialHeaderTableSize = 4096
	// maxHeaderTableSize caps the HPACK dynamic table a peer may make us
	// keep, whatever SETTINGS it advertises (browsers use 64 KiB).
	maxHeaderTableSize = 1 << 18
	// placeholderTableSize is the table assumed when the real one is
	// unknown: large enough for any common peer setting. See forget.
	placeholderTableSize = 1 << 16
	// hpackEntryOverhead is the per-entry size overhead of RFC 7541 §4.1.
	hpackEntryOverhead = 32
	// maxHPACKResets bounds how often a direction rebuilds its placeholder
	// table; each rebuild costs ~2k insertions, which a peer could otherwise
	// trigger with every tiny broken header block.
	maxHPACKResets = 16
	// maxBlockFrames bounds the CONTINUATION frames of one header block.
	maxBlockFrames = 4096
)

// placeholderBlock is an HPACK block of "literal with incremental indexing,
// empty name, empty value" lines that fills a placeholderTableSize table
// with 32-byte entries. It is never modified.
var placeholderBlock = bytes.Repeat([]byte{0x40, 0x00, 0x00}, placeholderTableSize/hpackEntryOverhead)

var (
	errBlockFlood = errors.New("header block exceeds CONTINUATION bounds")
	errGaveUp     = errors.New("HPACK decoding abandoned for this direction")
)

// headerState is one direction's HPACK decoding context and the header
// block being read.
type headerState struct {
	dir *direction
	dec *hpack.Decoder
	// allowed is the largest table size the receiving peer advertised.
	allowed uint32
	// unknownNote is set while the table is placeholder-filled; exchanges
	// whose headers referred to unknown entries get it as their note.
	unknownNote string
	resets      int
	// stale is set when the table became unknown and the placeholder
	// context has not been built yet.
	stale bool

	// The block in progress. RFC 9113 §4.3: a header block is HEADERS or
	// PUSH_PROMISE plus CONTINUATION frames, with nothing in between.
	inBlock   bool
	streamID  uint32
	target    *assemble.Exchange
	endStream bool
	fields    []assemble.Field
	size      int
	truncated bool
	unknown   int
	failed    error
	flooded   bool
	frames    int
	wire      int
}

func (h *headerState) init(dir *direction) {
	h.dir = dir
	h.allowed = initialHeaderTableSize
	h.dec = hpack.NewDecoder(initialHeaderTableSize, h.emit)
	h.dec.SetMaxStringLength(dir.d.lim.MaxHeaderBytes)
}

func (h *headerState) active() bool { return h.inBlock }

// allowTableSize applies SETTINGS_HEADER_TABLE_SIZE advertised by the peer
// that receives this direction's header blocks. The largest value seen is
// kept: until the SETTINGS are acknowledged the encoder may still use the
// older, larger size.
func (h *headerState) allowTableSize(v uint32) {
	if v > maxHeaderTableSize {
		h.dir.d.rec.Count("http2.header_table_size_capped", 1)
		v = maxHeaderTableSize
	}
	if v > h.allowed {
		h.allowed = v
		if h.unknownNote == "" && h.dec != nil && !h.stale {
			h.dec.SetAllowedMaxDynamicTableSize(v)
		}
	}
}

// forget replaces the decoding context by one whose dynamic table is full
// of placeholder entries (empty name and value), because the real table is
// unknown: the decoder joined mid-connection, bytes were lost, or a block
// failed half-way.
//
// Why placeholders work: the peer's entries are at least 32 bytes, so a
// table of placeholderTableSize holds at least as many placeholders as the
// peer has unknown entries. Entries the peer inserts from now on are
// inserted here too, in front, at the same indices; they evict placeholders
// first. An index the peer uses therefore lands on the right new entry or on
// a placeholder, which emits an empty name that emit counts as unknown.
//
// The placeholder table is built when the next header block starts, so a
// direction that loses sync repeatedly without sending headers costs
// nothing.
func (h *headerState) forget(note string) {
	h.unknownNote = note
	if h.dec != nil {
		h.stale = true
	}
}

// rebuild makes the placeholder-filled decoding context forget promised.
func (h *headerState) rebuild() {
	h.stale = false
	h.resets++
	if h.resets > maxHPACKResets {
		h.dir.d.rec.Count("http2.hpack_gave_up", 1)
		h.dec = nil
		return
	}
	dec := hpack.NewDecoder(placeholderTableSize, h.emit)
	dec.SetAllowedMaxDynamicTableSize(maxHeaderTableSize)
	dec.SetMaxStringLength(h.dir.d.lim.MaxHeaderBytes)
	dec.SetEmitEnabled(false)
	if _, err := dec.Write(placeholderBlock); err != nil {
		panic(fmt.Sprintf("http2: placeholder table rejected: %v", err)) // a constant input
	}
	_ = dec.Close()
	dec.SetEmitEnabled(true)
	h.dec = dec
}

// emit collects one decoded field, enforcing the header list size the way
// Framer.MaxHeaderListSize does (RFC 9113 §6.5.2 sizes).
func (h *headerState) emit(f hpack.HeaderField) {
	if f.Name == "" {
		h.unknown++
		return
	}
	sz := len(f.Name) + len(f.Value) + hpackEntryOverhead
	if h.size+sz > h.dir.d.lim.MaxHeaderBytes {
		h.truncated = true
		h.dec.SetEmitEnabled(false)
		return
	}
	h.size += sz
	h.fields = append(h.fields, assemble.Field{Name: f.Name, Value: f.Value})
}

// begin starts a header block (HEADERS or PUSH_PROMISE). target is nil when
// the block belongs to no tracked exchange; it is still decoded to keep the
// table in step.
func (h *headerState) begin(streamID uint32, target *assemble.Exchange, endStream bool, frag []byte, ended bool) {
	h.inBlock = true
	h.streamID = streamID
	h.target = target
	h.endStream = endStream
	h.fields = h.fields[:0]
	h.size, h.unknown, h.frames, h.wire = 0, 0, 1, len(frag)
	h.truncated = false
	h.flooded = false
	h.failed = nil
	if h.stale {
		h.rebuild()
	}
	if h.dec == nil {
		h.failed = errGaveUp
	} else {
		h.dec.SetEmitEnabled(target != nil)
		h.write(frag)
	}
	if ended {
		h.end()
	}
}

func (h *headerState) continuation(f *http2.ContinuationFrame) {
	if f.StreamID != h.streamID {
		h.dir.d.rec.Count("http2.continuation_missing", 1)
		h.abandon()
		h.forget("header block interrupted: headers partly unknown")
		return
	}
	h.frames++
	h.wire += len(f.HeaderBlockFragment())
	// A legitimate block that fits MaxHeaderBytes decoded is at most a few
	// times that on the wire (Huffman expands by at most 30/8); more is a
	// CONTINUATION flood (CVE-2024-27316 style). It is read to its end but
	// no longer decoded.
	if !h.flooded && (h.frames > maxBlockFrames || h.wire > 4*h.dir.d.lim.MaxHeaderBytes+defaultMaxFrameSize) {
		h.dir.d.rec.Count("http2.continuation_flood", 1)
		h.flooded = true
		if h.failed == nil {
			h.failed = errBlockFlood
		}
	}
	h.write(f.HeaderBlockFragment())
	if f.HeadersEnded() {
		h.end()
	}
}

func (h *headerState) write(frag []byte) {
	if h.failed != nil || len(frag) == 0 {
		return
	}
	if _, err := h.dec.Write(frag); err != nil {
		h.failed = err
	}
}

// end finishes the block and hands its fields to the exchange.
func (h *headerState) end() {
	h.inBlock = false
	if h.failed == nil {
		if err := h.dec.Close(); err != nil {
			h.failed = err
		}
	}
	x := h.target
	h.target = nil
	d := h.dir.d
	h.countFailure()
	if x != nil {
		side := h.dir.side
		if h.failed != nil && len(h.fields) == 0 {
			x.HeadersUnknown(side, "header block undecodable ("+h.failed.Error()+")", h.dir.at)
		} else {
			x.Headers(side, assemble.Block{Fields: h.fields, EndStream: h.endStream, Unknown: h.unknown}, h.dir.at)
			if h.failed != nil {
				x.Note("header block partly undecodable (" + h.failed.Error() + ")")
			}
		}
		if h.unknown > 0 {
			d.rec.Count("http2.hpack_unknown_index", int64(h.unknown))
			note := h.unknownNote
			if note == "" {
				note = "headers partly unknown"
			}
			x.Note(note)
		}
		if h.truncated {
			d.rec.Count("http2.header_list_truncated", 1)
			x.Note(side.String() + " header list truncated")
		}
	}
	if h.failed != nil && h.failed != errGaveUp {
		// A block that failed half-way may have changed the table in ways
		// we did not follow.
		h.forget("HPACK state lost: headers partly unknown")
	}
	if x != nil && h.endStream {
		h.dir.endStream(x)
	}
}

// countFailure counts why the block could not be decoded.
func (h *headerState) countFailure() {
	if h.failed == nil {
		return
	}
	var idx hpack.InvalidIndexError
	var de hpack.DecodingError
	switch {
	case errors.As(h.failed, &idx) || errors.As(h.failed, &de) && errors.As(de.Err, &idx):
		h.dir.d.rec.Count("http2.hpack_unknown_index", 1)
	case h.failed == errBlockFlood || h.failed == errGaveUp:
	default:
		h.dir.d.rec.Count("http2.hpack_error", 1)
	}
}

// abandon ends a block that will never be completed (interrupted, bytes
// lost, connection over). Callers that keep decoding must forget the table.
func (h *headerState) abandon() {
	if !h.inBlock {
		return
	}
	h.inBlock = false
	if h.dec != nil {
		_ = h.dec.Close()
	}
	h.countFailure()
	x := h.target
	h.target = nil
	if x == nil {
		return
	}
	side := h.dir.side
	if len(h.fields) == 0 {
		x.HeadersUnknown(side, side.String()+" header block cut off", h.dir.at)
	} else {
		x.Headers(side, assemble.Block{Fields: h.fields, EndStream: h.endStream, Unknown: h.unknown}, h.dir.at)
		x.Note(side.String() + " header block cut off")
	}
	if h.endStream {
		h.dir.endStream(x)
	}
}
