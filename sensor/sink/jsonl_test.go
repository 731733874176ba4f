package sink_test

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"io"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
)

// fixtureEvents decodes every fixture's synthesized traffic into events.
func fixtureEvents(tb testing.TB) []*oisp.Event {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "fixtures", "*", "*", "cassette.yaml"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	var events []*oisp.Event
	for _, path := range paths {
		rec, err := cassette.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		evs, _, err := session.Replay(context.Background(), rec, replay.Options{IDPrefix: filepath.Base(filepath.Dir(path))})
		if err != nil {
			tb.Fatal(err)
		}
		events = append(events, evs...)
	}
	mem := &sink.Memory{}
	s, err := session.New(session.Options{Out: mem})
	if err != nil {
		tb.Fatal(err)
	}
	p := s.Pipeline
	// Host activity too, as eBPF capture reports it.
	proc := flow.Process{PID: 10, PPID: 1, UID: 1000, Exe: "/usr/bin/python3", Name: "python3", Cmdline: []string{"python3", "agent.py"}}
	for _, se := range []flow.SystemEvent{
		{Kind: flow.SysExec, At: time.Unix(1e9, 0), Process: proc, Exe: "/usr/bin/python3", Args: []string{"python3", "agent.py", "<&>\u2028", "bad\xff\xfeutf8", "nul\x00ctl\x1f"}, Cwd: "/home/u"},
		{Kind: flow.SysConnect, At: time.Unix(1e9, 0), Process: proc, Remote: netip.MustParseAddrPort("[2001:db8::1]:443"), Success: true},
		{Kind: flow.SysFileOpen, At: time.Unix(1e9, 0), Process: proc, Path: "/tmp/out \"x\".txt", Flags: []string{"write", "create"}},
		{Kind: flow.SysFileWrite, At: time.Unix(1e9, 0), Process: proc, Path: "/tmp/out.txt", BytesWritten: 12, Created: true},
		{Kind: flow.SysExit, At: time.Unix(1e9, 0), Process: proc, ExitCode: 1, Runtime: 1500 * time.Millisecond},
	} {
		p.System(se)
	}
	return append(events, mem.Events()...)
}

// TestJSONLMatchesEncodingJSON: the sink writes every fixture event byte
// for byte as encoding/json would.
func TestJSONLMatchesEncodingJSON(t *testing.T) {
	evs := fixtureEvents(t)
	var buf bytes.Buffer
	s := sink.NewJSONL(&buf, 0)
	for _, ev := range evs {
		s.Record(ev)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != len(evs) {
		t.Fatalf("%d lines for %d events", len(lines), len(evs))
	}
	for i, ev := range evs {
		want, err := stdjson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(lines[i], want) {
			t.Fatalf("event %d (%s) differs from encoding/json:\n got %s\nwant %s", i, ev.EventType, lines[i], want)
		}
	}
}

// BenchmarkJSONL writes every fixture event, as record does, side by side
// with encoding/json.
func BenchmarkJSONL(b *testing.B) {
	evs := fixtureEvents(b)
	b.Run("sink", func(b *testing.B) {
		s := sink.NewJSONL(io.Discard, 0)
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range evs {
				s.Record(ev)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range evs {
				stdjson.Marshal(ev)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	})
}

// TestJSONLFlushWithin: with a bound, an event reaches the writer without
// a Flush call; without one, only Flush writes it.
func TestJSONLFlushWithin(t *testing.T) {
	ev := fixtureEvents(t)[0]
	var timed testutil.SyncBuffer
	s := sink.NewJSONL(&timed, 20*time.Millisecond)
	s.Record(ev)
	deadline := time.Now().Add(10 * time.Second)
	for timed.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if timed.Len() == 0 {
		t.Fatal("the event did not reach the writer without Flush")
	}

	var held testutil.SyncBuffer
	s = sink.NewJSONL(&held, 0)
	s.Record(ev)
	time.Sleep(50 * time.Millisecond)
	if held.Len() != 0 {
		t.Fatal("an unbounded sink wrote before Flush")
	}
	if err := s.Flush(); err != nil || held.Len() == 0 {
		t.Fatalf("Flush: %v, %d bytes", err, held.Len())
	}
}
