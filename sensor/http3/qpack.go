package http3

import (
	"errors"
	"fmt"
	"io"

	"github.com/quic-go/qpack"
	"golang.org/x/net/http2/hpack"

	"github.com/oisp/oisp-sensor/sensor/http2/assemble"
)

// QPACK (RFC 9204) in this package: header sections whose Required Insert
// Count is zero use only the static table and are decoded by
// github.com/quic-go/qpack. That library (v0.6.0, the latest) has no dynamic
// table, so sections that refer to one, and the encoder-stream instructions
// that fill it, are decoded here, on top of qpack's static table and
// x/net/hpack's Huffman decoder.

const (
	// qpackEntryOverhead is the per-entry size overhead (RFC 9204 §3.2.1).
	qpackEntryOverhead = 32
	// maxTableCapacity caps the dynamic table a peer may make us keep,
	// whatever SETTINGS_QPACK_MAX_TABLE_CAPACITY says.
	maxTableCapacity = 1 << 18
	// staticTableSize is the number of QPACK static table entries
	// (RFC 9204 Appendix A).
	staticTableSize = 99
)

// staticTable is RFC 9204 Appendix A, read once from qpack's decoder by
// decoding an indexed static field line for every index. It is never
// modified after init.
var staticTable = loadStaticTable()

func loadStaticTable() [staticTableSize]assemble.Field {
	var t [staticTableSize]assemble.Field
	dec := qpack.NewDecoder()
	for i := range t {
		// Prefix 0x00 0x00 (no dynamic references), then an indexed field
		// line with T=1 (static) and a 6-bit prefix index.
		blk := []byte{0, 0}
		if i < 63 {
			blk = append(blk, 0xc0|byte(i))
		} else {
			blk = append(blk, 0xff, byte(i-63))
		}
		hf, err := dec.Decode(blk)()
		if err != nil {
			panic(fmt.Sprintf("http3: qpack static entry %d: %v", i, err))
		}
		t[i] = assemble.Field{Name: hf.Name, Value: hf.Value}
	}
	return t
}

var (
	errQPACKTruncated = errors.New("qpack: truncated representation")
	errQPACKInteger   = errors.New("qpack: integer overflow")
	errQPACKIndex     = errors.New("qpack: invalid index")
	errQPACKPrefix    = errors.New("qpack: invalid field section prefix")
	errQPACKEntry     = errors.New("qpack: entry larger than table capacity")
	errQPACKCapacity  = errors.New("qpack: capacity over the allowed maximum")
)

// readInt decodes an RFC 7541 §5.1 prefix integer with an n-bit prefix from
// p. ok is false when p ends before the integer does.
func readInt(p []byte, n uint8) (v uint64, rest []byte, ok bool, err error) {
	if len(p) == 0 {
		return 0, p, false, nil
	}
	mask := uint64(1)<<n - 1
	v = uint64(p[0]) & mask
	if v < mask {
		return v, p[1:], true, nil
	}
	var m uint
	for i := 1; i < len(p); i++ {
		b := p[i]
		if m > 56 {
			return 0, p, false, errQPACKInteger
		}
		v += uint64(b&0x7f) << m
		m += 7
		if b&0x80 == 0 {
			return v, p[i+1:], true, nil
		}
	}
	return 0, p, false, nil
}

// readString decodes a string literal whose length has an n-bit prefix and
// whose Huffman flag is the bit just above it. limit bounds the length.
func readString(p []byte, n uint8, limit int) (s string, rest []byte, ok bool, err error) {
	if len(p) == 0 {
		return "", p, false, nil
	}
	huff := p[0]&(1<<n) != 0
	l, rest, ok, err := readInt(p, n)
	if !ok || err != nil {
		return "", p, ok, err
	}
	if l > uint64(limit) {
		return "", p, false, errQPACKEntry
	}
	if uint64(len(rest)) < l {
		return "", p, false, nil
	}
	raw := rest[:l]
	rest = rest[l:]
	if huff {
		s, err = hpack.HuffmanDecodeToString(raw)
		if err != nil {
			return "", p, false, fmt.Errorf("qpack: %w", err)
		}
		return s, rest, true, nil
	}
	return string(raw), rest, true, nil
}

// dynTable is the dynamic table one peer's encoder keeps, as seen through
// its encoder stream. Absolute indices start at 0 with the first insertion.
type dynTable struct {
	entries []assemble.Field // entries[0] has absolute index dropped
	dropped uint64           // entries evicted so far
	size    uint64
	// capacity is set by Set Dynamic Table Capacity; maxCapacity is the
	// decoder's SETTINGS_QPACK_MAX_TABLE_CAPACITY (capped).
	capacity    uint64
	maxCapacity uint64
	// settingsKnown is set once the decoding peer's SETTINGS were seen;
	// until then maxCapacity is our cap.
	settingsKnown bool
	// broken is set when the encoder stream lost sync (bytes lost, bad
	// instruction): later references to entries not yet seen can never
	// be resolved.
	broken bool
	// pending holds an encoder instruction split across chunks.
	pending []byte
}

func newDynTable() *dynTable {
	return &dynTable{maxCapacity: maxTableCapacity}
}

func (t *dynTable) insertCount() uint64 { return t.dropped + uint64(len(t.entries)) }

// maxEntries is MaxEntries of RFC 9204 §4.5.1.1.
func (t *dynTable) maxEntries() uint64 { return t.maxCapacity / qpackEntryOverhead }

// lookup returns the entry with absolute index abs; ok is false when it is
// evicted or not inserted yet. A known entry with an empty name is a
// placeholder for one whose name could not be resolved.
func (t *dynTable) lookup(abs uint64) (assemble.Field, bool) {
	if abs < t.dropped || abs >= t.insertCount() {
		return assemble.Field{}, false
	}
	return t.entries[abs-t.dropped], true
}

func (t *dynTable) insert(f assemble.Field) error {
	sz := uint64(len(f.Name)+len(f.Value)) + qpackEntryOverhead
	if sz > t.capacity {
		return errQPACKEntry
	}
	t.evictTo(t.capacity - sz)
	t.entries = append(t.entries, f)
	t.size += sz
	return nil
}

func (t *dynTable) evictTo(limit uint64) {
	n := 0
	for t.size > limit && n < len(t.entries) {
		e := t.entries[n]
		t.size -= uint64(len(e.Name)+len(e.Value)) + qpackEntryOverhead
		n++
	}
	if n == 0 {
		return
	}
	t.dropped += uint64(n)
	clear(t.entries[:n])
	t.entries = t.entries[n:]
	if cap(t.entries) > 64 && len(t.entries) < cap(t.entries)/4 {
		t.entries = append([]assemble.Field(nil), t.entries...)
	}
}

func (t *dynTable) setCapacity(c uint64) error {
	if c > t.maxCapacity {
		return errQPACKCapacity
	}
	t.capacity = c
	t.evictTo(c)
	return nil
}

// feedEncoder applies encoder-stream instructions (RFC 9204 §4.3); a split
// instruction waits in pending. It returns the number of insertions.
func (t *dynTable) feedEncoder(p []byte) (inserted int, err error) {
	if t.broken {
		return 0, nil
	}
	if len(t.pending) > 0 {
		t.pending = append(t.pending, p...)
		p = t.pending
	}
	for len(p) > 0 {
		rest, n, ok, err := t.instruction(p)
		if err != nil {
			t.broken = true
			t.pending = nil
			return inserted, err
		}
		if !ok {
			break
		}
		inserted += n
		p = rest
	}
	// Bounded: an instruction holds at most two strings no longer than
	// the capacity plus their length prefixes.
	t.pending = append(t.pending[:0], p...)
	return inserted, nil
}

// instruction applies one encoder instruction from p.
func (t *dynTable) instruction(p []byte) (rest []byte, inserted int, ok bool, err error) {
	limit := int(min(t.maxCapacity, maxTableCapacity))
	b := p[0]
	switch {
	case b&0x80 != 0: // Insert with Name Reference: 1 T index(6)
		idx, r, ok, err := readInt(p, 6)
		if !ok || err != nil {
			return p, 0, ok, err
		}
		val, r, ok, err := readString(r, 7, limit)
		if !ok || err != nil {
			return p, 0, ok, err
		}
		var name string
		if b&0x40 != 0 {
			if idx >= staticTableSize {
				return p, 0, false, errQPACKIndex
			}
			name = staticTable[idx].Name
		} else {
			// Relative to the insert count (RFC 9204 §3.2.5). An evicted
			// name becomes a placeholder so absolute indices stay right.
			if idx >= t.insertCount() {
				return p, 0, false, errQPACKIndex
			}
			e, _ := t.lookup(t.insertCount() - 1 - idx)
			name = e.Name
		}
		return r, 1, true, t.insert(assemble.Field{Name: name, Value: val})
	case b&0x40 != 0: // Insert with Literal Name: 01 H len(5)
		name, r, ok, err := readString(p, 5, limit)
		if !ok || err != nil {
			return p, 0, ok, err
		}
		val, r, ok, err := readString(r, 7, limit)
		if !ok || err != nil {
			return p, 0, ok, err
		}
		return r, 1, true, t.insert(assemble.Field{Name: name, Value: val})
	case b&0x20 != 0: // Set Dynamic Table Capacity: 001 capacity(5)
		c, r, ok, err := readInt(p, 5)
		if !ok || err != nil {
			return p, 0, ok, err
		}
		return r, 0, true, t.setCapacity(c)
	default: // Duplicate: 000 index(5)
		idx, r, ok, err := readInt(p, 5)
		if !ok || err != nil {
			return p, 0, ok, err
		}
		if idx >= t.insertCount() {
			return p, 0, false, errQPACKIndex
		}
		e, _ := t.lookup(t.insertCount() - 1 - idx)
		return r, 1, true, t.insert(e)
	}
}

// sectionPrefix is the decoded field section prefix (RFC 9204 §4.5.1).
type sectionPrefix struct {
	requiredInsertCount uint64
	base                uint64
	rest                []byte // the field lines
}

// parsePrefix decodes the prefix of a field section against table t.
func (t *dynTable) parsePrefix(p []byte) (sectionPrefix, error) {
	enc, r, ok, err := readInt(p, 8)
	if err == nil && !ok {
		err = errQPACKTruncated
	}
	if err != nil {
		return sectionPrefix{}, err
	}
	if len(r) == 0 {
		return sectionPrefix{}, errQPACKTruncated
	}
	sign := r[0]&0x80 != 0
	delta, r, ok, err := readInt(r, 7)
	if err == nil && !ok {
		err = errQPACKTruncated
	}
	if err != nil {
		return sectionPrefix{}, err
	}
	ric, err := t.decodeRequiredInsertCount(enc)
	if err != nil {
		return sectionPrefix{}, err
	}
	var base uint64
	if !sign {
		base = ric + delta
		if base < ric {
			return sectionPrefix{}, errQPACKPrefix
		}
	} else {
		if delta >= ric {
			return sectionPrefix{}, errQPACKPrefix
		}
		base = ric - delta - 1
	}
	return sectionPrefix{requiredInsertCount: ric, base: base, rest: r}, nil
}

// decodeRequiredInsertCount undoes the modulo encoding of RFC 9204
// §4.5.1.1 using the table's current insert count.
func (t *dynTable) decodeRequiredInsertCount(enc uint64) (uint64, error) {
	if enc == 0 {
		return 0, nil
	}
	maxEntries := t.maxEntries()
	if maxEntries == 0 {
		return 0, errQPACKPrefix
	}
	fullRange := 2 * maxEntries
	if enc > fullRange {
		return 0, errQPACKPrefix
	}
	maxValue := t.insertCount() + maxEntries
	maxWrapped := (maxValue / fullRange) * fullRange
	ric := maxWrapped + enc - 1
	if ric > maxValue {
		if ric <= fullRange {
			return 0, errQPACKPrefix
		}
		ric -= fullRange
	}
	if ric == 0 {
		return 0, errQPACKPrefix
	}
	return ric, nil
}

// sectionResult is a decoded field section.
type sectionResult struct {
	fields    []assemble.Field
	unknown   int  // references to entries whose content is unknown
	truncated bool // the decoded list exceeded the header size cap
	err       error
}

// decodeSection decodes field lines against t (which must hold every entry
// below the Required Insert Count unless it is broken or the flow ended).
// maxBytes caps the decoded list (name+value+32 per field, as
// MAX_FIELD_SECTION_SIZE counts it).
func (t *dynTable) decodeSection(pre sectionPrefix, maxBytes int, fields []assemble.Field) sectionResult {
	res := sectionResult{fields: fields}
	size := 0
	add := func(f assemble.Field, known bool) {
		if !known || f.Name == "" {
			res.unknown++
			return
		}
		if res.truncated {
			return
		}
		sz := len(f.Name) + len(f.Value) + qpackEntryOverhead
		if size+sz > maxBytes {
			res.truncated = true
			return
		}
		size += sz
		res.fields = append(res.fields, f)
	}
	dyn := func(abs uint64) (assemble.Field, bool, error) {
		if abs >= pre.requiredInsertCount {
			return assemble.Field{}, false, errQPACKIndex
		}
		f, ok := t.lookup(abs)
		return f, ok, nil
	}
	p := pre.rest
	for len(p) > 0 {
		b := p[0]
		var f assemble.Field
		known := true
		var err error
		var ok bool
		switch {
		case b&0x80 != 0: // Indexed Field Line: 1 T index(6)
			var idx uint64
			idx, p, ok, err = readInt(p, 6)
			if err == nil && ok {
				if b&0x40 != 0 {
					if idx >= staticTableSize {
						err = errQPACKIndex
					} else {
						f = staticTable[idx]
					}
				} else if idx >= pre.base {
					err = errQPACKIndex
				} else {
					f, known, err = dyn(pre.base - 1 - idx)
				}
			}
		case b&0xf0 == 0x10: // Indexed Field Line with Post-Base Index: 0001 index(4)
			var idx uint64
			idx, p, ok, err = readInt(p, 4)
			if err == nil && ok {
				f, known, err = dyn(pre.base + idx)
			}
		case b&0xc0 == 0x40: // Literal Field Line with Name Reference: 01 N T index(4)
			var idx uint64
			idx, p, ok, err = readInt(p, 4)
			if err == nil && ok {
				if b&0x10 != 0 {
					if idx >= staticTableSize {
						err = errQPACKIndex
					} else {
						f.Name = staticTable[idx].Name
					}
				} else if idx >= pre.base {
					err = errQPACKIndex
				} else {
					var e assemble.Field
					e, known, err = dyn(pre.base - 1 - idx)
					f.Name = e.Name
				}
				if err == nil {
					f.Value, p, ok, err = readString(p, 7, maxBytes)
				}
			}
		case b&0xf0 == 0x00: // Literal Field Line with Post-Base Name Reference: 0000 N index(3)
			var idx uint64
			idx, p, ok, err = readInt(p, 3)
			if err == nil && ok {
				var e assemble.Field
				e, known, err = dyn(pre.base + idx)
				f.Name = e.Name
				if err == nil {
					f.Value, p, ok, err = readString(p, 7, maxBytes)
				}
			}
		default: // Literal Field Line with Literal Name: 001 N H len(3)
			f.Name, p, ok, err = readString(p, 3, maxBytes)
			if err == nil && ok {
				f.Value, p, ok, err = readString(p, 7, maxBytes)
			}
		}
		if err == nil && !ok {
			err = errQPACKTruncated
		}
		if err != nil {
			res.err = err
			return res
		}
		add(f, known)
	}
	return res
}

// decodeStatic decodes a section without dynamic references with qpack.
func decodeStatic(p []byte, maxBytes int, fields []assemble.Field) sectionResult {
	res := sectionResult{fields: fields}
	size := 0
	next := qpack.NewDecoder().Decode(p)
	for {
		hf, err := next()
		if err == io.EOF {
			return res
		}
		if err != nil {
			res.err = fmt.Errorf("qpack: %w", err)
			return res
		}
		if res.truncated {
			continue
		}
		sz := len(hf.Name) + len(hf.Value) + qpackEntryOverhead
		if size+sz > maxBytes {
			res.truncated = true
			continue
		}
		size += sz
		res.fields = append(res.fields, assemble.Field{Name: hf.Name, Value: hf.Value})
	}
}
