package http3

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/quic-go/qpack"

	"github.com/oisp/oisp-sensor/sensor/http2/assemble"
)

// RFC 9204 Appendix B.1: a literal field line with a static name reference.
func TestQPACKRFC9204B1(t *testing.T) {
	blk := []byte{0x00, 0x00, 0x51, 0x0b, 0x2f, 0x69, 0x6e, 0x64, 0x65, 0x78, 0x2e, 0x68, 0x74, 0x6d, 0x6c}
	tab := newDynTable()
	pre, err := tab.parsePrefix(blk)
	if err != nil {
		t.Fatal(err)
	}
	res := tab.decodeSection(pre, 1<<16, nil)
	if res.err != nil || len(res.fields) != 1 || res.fields[0] != (assemble.Field{Name: ":path", Value: "/index.html"}) {
		t.Fatalf("%+v", res)
	}
}

// RFC 9204 Appendix B.2: dynamic table inserts, then a section with a
// relative and a post-base index.
func TestQPACKRFC9204B2(t *testing.T) {
	tab := newDynTable()
	tab.maxCapacity = 220
	// Encoder stream: Set Dynamic Table Capacity=220, Insert With Name
	// Reference static 0 ":authority" = "www.example.com", static 1
	// ":path" = "/sample/path".
	enc := []byte{0x3f, 0xbd, 0x01, 0xc0, 0x0f, 0x77, 0x77, 0x77, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d,
		0xc1, 0x0c, 0x2f, 0x73, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2f, 0x70, 0x61, 0x74, 0x68}
	if n, err := tab.feedEncoder(enc); err != nil || n != 2 {
		t.Fatalf("inserted %d: %v", n, err)
	}
	if tab.size != 106 {
		t.Errorf("table size %d; want 106", tab.size)
	}
	// Required Insert Count 2 (encoded 3), Base 0 (sign 1, delta 1):
	// post-base index 0 and 1.
	blk := []byte{0x03, 0x81, 0x10, 0x11}
	pre, err := tab.parsePrefix(blk)
	if err != nil {
		t.Fatal(err)
	}
	if pre.requiredInsertCount != 2 || pre.base != 0 {
		t.Fatalf("prefix %+v", pre)
	}
	res := tab.decodeSection(pre, 1<<16, nil)
	want := []assemble.Field{{Name: ":authority", Value: "www.example.com"}, {Name: ":path", Value: "/sample/path"}}
	if res.err != nil || len(res.fields) != 2 || res.fields[0] != want[0] || res.fields[1] != want[1] {
		t.Fatalf("%+v", res)
	}
}

func TestQPACKEviction(t *testing.T) {
	tab := newDynTable()
	tab.maxCapacity = 100
	e := newQenc(100)
	ins := append(e.setCapacity(100), e.insertLiteral("a", strings.Repeat("x", 30), false)...) // 63 bytes
	ins = append(ins, e.insertLiteral("b", strings.Repeat("y", 30), false)...)                 // evicts a
	if _, err := tab.feedEncoder(ins); err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.lookup(0); ok {
		t.Error("entry 0 not evicted")
	}
	if f, ok := tab.lookup(1); !ok || f.Name != "b" {
		t.Errorf("entry 1 %v %v", f, ok)
	}
	// A name reference to an evicted entry inserts a placeholder so later
	// absolute indices stay right.
	if _, err := tab.feedEncoder(e.insertDynamicName(0, "v")); err != nil {
		t.Fatal(err)
	}
	if f, ok := tab.lookup(2); !ok || f.Name != "" || f.Value != "v" {
		t.Errorf("placeholder %v %v", f, ok)
	}
	// An entry over the capacity is an encoder stream error.
	if _, err := tab.feedEncoder(e.insertLiteral("c", strings.Repeat("z", 100), false)); !errors.Is(err, errQPACKEntry) || !tab.broken {
		t.Errorf("oversized insert: %v broken %v", err, tab.broken)
	}
}

func TestQPACKCapacityOverSettings(t *testing.T) {
	tab := newDynTable()
	tab.maxCapacity = 64
	if _, err := tab.feedEncoder(appendInt(nil, 0x20, 5, 4096)); !errors.Is(err, errQPACKCapacity) {
		t.Errorf("capacity over SETTINGS accepted: %v", err)
	}
}

func TestQPACKIntegerOverflow(t *testing.T) {
	blk := append([]byte{0xff}, bytes.Repeat([]byte{0xff}, 12)...)
	if _, err := newDynTable().parsePrefix(blk); err == nil {
		t.Error("overlong integer accepted")
	}
}

// FuzzQPACKStatic checks the dynamic-capable section decoder against
// quic-go/qpack on sections qpack can decode (no dynamic references), and
// that neither panics on arbitrary bytes.
func FuzzQPACKStatic(f *testing.F) {
	f.Add(staticSection(f, reqFields("POST", "/v1/chat/completions", "content-type", "application/json", "x-custom", "v")...))
	f.Add(staticSection(f, ":status", "200", "content-type", "text/event-stream", "server", "oisp"))
	f.Add([]byte{0x00, 0x00, 0x51, 0x0b, 0x2f, 0x69, 0x6e, 0x64, 0x65, 0x78, 0x2e, 0x68, 0x74, 0x6d, 0x6c})
	f.Add(section([]byte{0, 0}, lineLiteral("x-huff", "huffman value", true), lineStaticName(1, "/h", true)))
	f.Fuzz(func(t *testing.T, blk []byte) {
		var want []assemble.Field
		next := qpack.NewDecoder().Decode(blk)
		qerr := false
		empty := 0
		for {
			hf, err := next()
			if err != nil {
				qerr = !errors.Is(err, io.EOF)
				break
			}
			if hf.Name == "" {
				// An empty name is no header; the decoder drops it
				// like a field it cannot resolve.
				empty++
				continue
			}
			want = append(want, assemble.Field{Name: hf.Name, Value: hf.Value})
		}
		tab := newDynTable()
		pre, err := tab.parsePrefix(blk)
		if err != nil {
			// qpack ignores the Sign bit; RFC 9204 §4.5.1.2 makes a
			// negative Base invalid, which this decoder enforces.
			negativeBase := len(blk) > 1 && blk[0] == 0 && blk[1]&0x80 != 0
			if !qerr && !negativeBase {
				t.Fatalf("prefix rejected (%v) where qpack decoded %v", err, want)
			}
			return
		}
		res := tab.decodeSection(pre, 1<<20, nil)
		if qerr || pre.requiredInsertCount != 0 {
			return
		}
		if res.err != nil || res.unknown != empty || len(res.fields) != len(want) {
			t.Fatalf("got %v (%v, %d unknown); qpack %v", res.fields, res.err, res.unknown, want)
		}
		for i := range want {
			if res.fields[i] != want[i] {
				t.Fatalf("field %d: %v; qpack %v", i, res.fields[i], want[i])
			}
		}
	})
}

// FuzzQPACKEncoderStream feeds arbitrary encoder-stream bytes, split in
// two, then decodes a section against the table: no panic, and the table
// stays within its capacity.
func FuzzQPACKEncoderStream(f *testing.F) {
	e := newQenc(4096)
	f.Add(append(e.setCapacity(4096), e.insertLiteral("user-agent", "x", true)...), []byte{0x02, 0x00, 0x80}, uint8(3))
	f.Add([]byte{0x3f, 0xbd, 0x01, 0xc0, 0x0f, 0x77, 0x77, 0x77, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d}, []byte{0x02, 0x81, 0x10}, uint8(7))
	f.Fuzz(func(t *testing.T, enc, blk []byte, cut uint8) {
		tab := newDynTable()
		tab.maxCapacity = 4096
		c := min(int(cut), len(enc))
		_, _ = tab.feedEncoder(enc[:c])
		_, _ = tab.feedEncoder(enc[c:])
		if tab.size > tab.capacity || tab.capacity > tab.maxCapacity || len(tab.pending) > 2*4096+32 {
			t.Fatalf("table size %d capacity %d pending %d", tab.size, tab.capacity, len(tab.pending))
		}
		if pre, err := tab.parsePrefix(blk); err == nil {
			tab.decodeSection(pre, 1<<16, nil)
		}
	})
}
