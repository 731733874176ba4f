package proxy

import (
	"bytes"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// TestTapGapsPerStream: overflow is charged to the direction and stream it
// happened on, and reported on that stream's next chunk or FIN.
func TestTapGapsPerStream(t *testing.T) {
	rec := newRecorder()
	gate := make(chan struct{})
	rec.SetGate(gate)
	st := &stats.Counters{}
	tap := newFlowTap(rec, &flow.Info{ID: "f"}, 10, st, quiet(), nil, nil)
	tap.Chunk(flow.Chunk{Dir: flow.ClientToServer, StreamID: 0, Data: []byte("0123456789")}) // fills the queue
	tap.Chunk(flow.Chunk{Dir: flow.ClientToServer, StreamID: 0, Data: []byte("lost")})
	tap.Chunk(flow.Chunk{Dir: flow.ServerToClient, StreamID: 4, Data: []byte("lost too")})
	tap.Chunk(flow.Chunk{Dir: flow.ServerToClient, StreamID: 4, Fin: true})
	rec.SetGate(nil)
	close(gate)
	rec.WaitFor(t, "first chunk", func() bool { return len(rec.Chunks["f"]) >= 2 })
	tap.Chunk(flow.Chunk{Dir: flow.ClientToServer, StreamID: 0, Data: []byte("after")})
	tap.Close(flow.CloseInfo{Reason: "eof"})
	tap.Wait()
	chunks := rec.Chunks["f"]
	if len(chunks) != 3 {
		t.Fatalf("chunks %+v", chunks)
	}
	if fin := chunks[1]; !fin.Fin || fin.StreamID != 4 || fin.Gap != 8 || len(fin.Data) != 0 {
		t.Errorf("FIN chunk %+v", fin)
	}
	if a := chunks[2]; !bytes.Equal(a.Data, []byte("after")) || a.Gap != 4 || a.StreamID != 0 {
		t.Errorf("chunk after overflow %+v", a)
	}
	if ci := rec.Closes["f"]; ci.Dropped != 12 || st.Get("proxy.queue_overflow_bytes") != 12 {
		t.Errorf("close %+v, counter %d", ci, st.Get("proxy.queue_overflow_bytes"))
	}
}

func TestTailReaderAndPlaintextAlert(t *testing.T) {
	alert := []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 48}
	src := bytes.NewReader(append(bytes.Repeat([]byte{0x17}, 200), alert...))
	tr := &tailReader{r: src}
	buf := make([]byte, 23)
	for {
		if _, err := tr.Read(buf); err != nil {
			break
		}
	}
	if !bytes.HasSuffix(tr.tail(), alert) || len(tr.tail()) != 64 {
		t.Fatalf("tail %x", tr.tail())
	}
	if !plaintextCertAlert(tr.tail()) {
		t.Error("unknown_ca alert not recognised")
	}
	other := append([]byte(nil), alert...)
	other[6] = 40 // handshake_failure
	if plaintextCertAlert(other) || plaintextCertAlert(nil) {
		t.Error("unrelated alert recognised")
	}
}

func FuzzPlaintextCertAlert(f *testing.F) {
	f.Add([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 48})
	f.Add([]byte{0x17, 0x03, 0x03, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := &tailReader{r: bytes.NewReader(b)}
		buf := make([]byte, 5)
		for {
			if _, err := tr.Read(buf); err != nil {
				break
			}
		}
		if want := b[max(0, len(b)-64):]; !bytes.Equal(tr.tail(), want) {
			t.Fatalf("tail %x, want %x", tr.tail(), want)
		}
		plaintextCertAlert(tr.tail())
	})
}

// TestTapSharedBudget: taps drawing on one budget stop queueing when the
// budget is spent and resume when the handler catches up.
func TestTapSharedBudget(t *testing.T) {
	rec := newRecorder()
	gate := make(chan struct{})
	rec.SetGate(gate)
	b := &budget{max: 10}
	st := &stats.Counters{}
	a := newFlowTap(rec, &flow.Info{ID: "a"}, 100, st, quiet(), nil, nil)
	c := newFlowTap(rec, &flow.Info{ID: "c"}, 100, st, quiet(), nil, nil)
	a.shared, c.shared = b, b
	a.Chunk(flow.Chunk{Data: []byte("12345678")})
	c.Chunk(flow.Chunk{Data: []byte("abc")}) // over the shared budget
	c.Chunk(flow.Chunk{Data: []byte("ab")})
	rec.SetGate(nil)
	close(gate)
	a.Close(flow.CloseInfo{})
	c.Close(flow.CloseInfo{})
	a.Wait()
	c.Wait()
	if got := rec.Chunks["c"]; len(got) != 1 || string(got[0].Data) != "ab" || got[0].Gap != 3 {
		t.Errorf("second tap chunks %+v", got)
	}
	if b.used.Load() != 0 {
		t.Errorf("budget not returned: %d", b.used.Load())
	}
}
