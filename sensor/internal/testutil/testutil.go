// Package testutil owns the helpers that tests of more than one sensor
// package share: cutting a flow's chunks (at given positions, or to a
// prefix), measuring the heap a live decoder holds, and building WebSocket
// frames by hand, and a buffer read while another goroutine writes it.
// Only tests import it.
package testutil

import (
	"bytes"
	"encoding/binary"
	"runtime"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// SplitChunks cuts every chunk of two bytes or more at the positions
// cut(i, len) gives for chunk i; a position not past the previous cut or
// beyond the chunk is skipped. Every piece keeps its chunk's arrival time,
// the first piece its gap and the last its FIN: decoding must not depend
// on where chunks end.
func SplitChunks(chunks []flow.Chunk, cut func(i, n int) []int) []flow.Chunk {
	var out []flow.Chunk
	for i, c := range chunks {
		if len(c.Data) < 2 {
			out = append(out, c)
			continue
		}
		prev := 0
		for _, p := range append(cut(i, len(c.Data)), len(c.Data)) {
			if p <= prev || p > len(c.Data) {
				continue
			}
			part := c
			part.Data = c.Data[prev:p]
			part.Fin = c.Fin && p == len(c.Data)
			if prev > 0 {
				part.Gap = 0
			}
			out = append(out, part)
			prev = p
		}
	}
	return out
}

// Prefix returns the chunks that carry the first n bytes of a flow: the
// chunk holding byte n is cut there and keeps its FIN only when whole.
func Prefix(chunks []flow.Chunk, n int) []flow.Chunk {
	var out []flow.Chunk
	for _, c := range chunks {
		if n == 0 {
			break
		}
		k := min(n, len(c.Data))
		part := c
		part.Data = c.Data[:k]
		part.Fin = c.Fin && k == len(c.Data)
		out = append(out, part)
		n -= k
	}
	return out
}

// HeapHeld feeds the chunks build returns to the decoder newDecoder makes
// and returns the heap that the live decoder holds afterwards, before its
// Close. build runs before the baseline is taken, so whatever made the
// input is garbage by then.
func HeapHeld(build func() []flow.Chunk, newDecoder func() httpmsg.Decoder) uint64 {
	chunks := build()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := newDecoder()
	for _, c := range chunks {
		d.Feed(c)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(d)
	runtime.KeepAlive(chunks)
	d.Close(flow.CloseInfo{})
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// WebSocketFrame builds one WebSocket frame (RFC 6455 §5.2) of opcode op
// carrying payload, masked with the 4-byte mask unless mask is nil.
func WebSocketFrame(fin, rsv1 bool, op byte, mask, payload []byte) []byte {
	var b bytes.Buffer
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	b.WriteByte(b0)
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b.WriteByte(m | byte(n))
	case n < 1<<16:
		b.WriteByte(m | 126)
		binary.Write(&b, binary.BigEndian, uint16(n)) //nolint:errcheck // bytes.Buffer
	default:
		b.WriteByte(m | 127)
		binary.Write(&b, binary.BigEndian, uint64(n)) //nolint:errcheck // bytes.Buffer
	}
	p := bytes.Clone(payload)
	if mask != nil {
		b.Write(mask)
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	b.Write(p)
	return b.Bytes()
}
