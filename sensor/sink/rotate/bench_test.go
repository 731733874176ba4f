package rotate_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/sensor/sink/rotate"
)

// benchEvents reads a fixture's expected events (a request and a streamed
// response, 1-2 KB each as JSON).
func benchEvents(b *testing.B) []*oisp.Event {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "fixtures", "openai", "lcg-testclient-createchatcompletionstream", "expected.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	var evs []*oisp.Event
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		ev := &oisp.Event{}
		if err := json.Unmarshal(l, ev); err != nil {
			b.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// BenchmarkRecord: events through sink.JSONL (as record writes them) to a
// plain file, to the rotating writer without a size limit (what record
// uses by default, for SIGHUP), and with one that rotates every 4 MiB and
// keeps 2 files. Also raw lines through a 64 KiB buffer, which is the
// writer's part of the cost alone.
func BenchmarkRecord(b *testing.B) {
	evs := benchEvents(b)
	outputs := []struct {
		name string
		open func(path string) (io.Writer, func())
	}{
		{"file", func(path string) (io.Writer, func()) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			return f, func() { f.Close() }
		}},
		{"rotate-nolimit", func(path string) (io.Writer, func()) {
			w, err := rotate.New(rotate.Config{Path: path})
			if err != nil {
				b.Fatal(err)
			}
			return w, func() { w.Close(context.Background()) }
		}},
		{"rotate-4MiB-keep2", func(path string) (io.Writer, func()) {
			w, err := rotate.New(rotate.Config{Path: path, MaxSize: 4 << 20, Keep: 2})
			if err != nil {
				b.Fatal(err)
			}
			return w, func() { w.Close(context.Background()) }
		}},
	}
	for _, o := range outputs {
		b.Run("jsonl/"+o.name, func(b *testing.B) {
			w, closeOut := o.open(filepath.Join(b.TempDir(), "events.jsonl"))
			defer closeOut()
			s := sink.NewJSONL(w, 0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s.Record(evs[i%len(evs)])
				i++
			}
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
	var lines [][]byte
	for _, ev := range evs {
		l, _ := json.Marshal(ev)
		lines = append(lines, append(l, '\n'))
	}
	for _, o := range outputs {
		b.Run("lines/"+o.name, func(b *testing.B) {
			w, closeOut := o.open(filepath.Join(b.TempDir(), "events.jsonl"))
			defer closeOut()
			bw := bufio.NewWriterSize(w, 64<<10)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l := lines[i%len(lines)]
				bw.Write(l)
				b.SetBytes(int64(len(l)))
				i++
			}
			if err := bw.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
