package stream

import (
	"bytes"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// readSSE feeds pieces (all at t0 unless times are given) and returns the
// events and counters.
func readSSE(pieces [][]byte, opts ...Option) ([]SSEEvent, map[string]int64) {
	var rec stats.Counters
	var evs []SSEEvent
	r := NewSSE(func(ev SSEEvent) { evs = append(evs, ev) }, append(opts, WithRecorder(&rec))...)
	counts := feedAll(r, pieces, &rec)
	return evs, counts
}

// feedAll feeds pieces at t0 to r, closes it and returns what it counted
// in rec.
func feedAll(r interface {
	Feed([]byte, time.Time)
	Close()
}, pieces [][]byte, rec *stats.Counters) map[string]int64 {
	for _, p := range pieces {
		r.Feed(p, t0)
	}
	r.Close()
	return rec.Snapshot()
}

type ev struct {
	Event, ID, Data string
	Offset, End     int
	Unterminated    bool
}

func simplify(evs []SSEEvent) []ev {
	var out []ev
	for _, e := range evs {
		out = append(out, ev{e.Event, e.ID, string(e.Data), e.Offset, e.End, e.Unterminated})
	}
	return out
}

func TestSSE(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opts   []Option
		want   []ev
		counts map[string]int64
	}{
		{
			name: "LF line ends, two events",
			in:   "data: a\n\ndata: b\n\n",
			want: []ev{{"", "", "a", 0, 9, false}, {"", "", "b", 9, 18, false}},
		},
		{
			name: "CRLF line ends (Gemini)",
			in:   "data: a\r\n\r\ndata: b\r\n\r\n",
			want: []ev{{"", "", "a", 0, 10, false}, {"", "", "b", 11, 21, false}},
		},
		{
			name: "bare CR line ends",
			in:   "data: a\r\rdata: b\r\r",
			want: []ev{{"", "", "a", 0, 9, false}, {"", "", "b", 9, 18, false}},
		},
		{
			name: "multi-line data is joined with LF",
			in:   "data: line one\ndata:line two\ndata\ndata: \n\n",
			want: []ev{{"", "", "line one\nline two\n\n", 0, 42, false}},
		},
		{
			name: "named events and ids; the id persists",
			in:   "event: message_start\nid: 1\ndata: {}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
			want: []ev{{"message_start", "1", "{}", 0, 37, false}, {"ping", "1", `{"type": "ping"}`, 37, 73, false}},
		},
		{
			name:   "comments are skipped and counted",
			in:     ": keep-alive\n\n:\ndata: x\n: inside\n\n",
			want:   []ev{{"", "", "x", 16, 34, false}},
			counts: map[string]int64{TokenSSEComment: 3},
		},
		{
			name:   "retry is ignored; unknown fields are counted",
			in:     "retry: 3000\nfoo: bar\ndata: x\n\n",
			want:   []ev{{"", "", "x", 0, 30, false}},
			counts: map[string]int64{TokenSSEUnknownField: 1},
		},
		{
			name: "a leading BOM is dropped but counted in offsets",
			in:   "\xEF\xBB\xBFdata: x\n\n",
			want: []ev{{"", "", "x", 3, 12, false}},
		},
		{
			name: "only the first space after the colon is removed",
			in:   "data:  two spaces\ndata:no space\n\n",
			want: []ev{{"", "", " two spaces\nno space", 0, 33, false}},
		},
		{
			name: "colons in the value stay",
			in:   "data: {\"a\":\"b:c\"}\n\n",
			want: []ev{{"", "", `{"a":"b:c"}`, 0, 19, false}},
		},
		{
			name: "an event with no data is not dispatched; its name does not leak",
			in:   "event: lonely\n\ndata: x\n\n",
			want: []ev{{"", "", "x", 15, 24, false}},
		},
		{
			name: "a field line without a colon is a field with an empty value",
			in:   "event\ndata\n\n",
			want: []ev{{"", "", "", 0, 12, false}},
		},
		{
			name: "an id with NUL is ignored",
			in:   "id: a\x00b\ndata: x\n\n",
			want: []ev{{"", "", "x", 0, 17, false}},
		},
		{
			name:   "a line over the cap drops its event and is counted",
			in:     "data: " + strings.Repeat("x", 40) + "\ndata: more\n\ndata: ok\n\n",
			opts:   []Option{WithMaxLine(32)},
			want:   []ev{{"", "", "ok", 59, 69, false}},
			counts: map[string]int64{TokenSSELineTooLong: 46, TokenSSEEventDropped: 1},
		},
		{
			name:   "data over the event cap drops the event",
			in:     "data: 0123456789\ndata: 0123456789\n\ndata: ok\n\n",
			opts:   []Option{WithMaxEvent(15)},
			want:   []ev{{"", "", "ok", 35, 45, false}},
			counts: map[string]int64{TokenSSEEventTooLong: 22, TokenSSEEventDropped: 1},
		},
		{
			name:   "an event cut off by the end of the stream is delivered, flagged",
			in:     "data: a\n\ndata: b\ndata: c",
			want:   []ev{{"", "", "a", 0, 9, false}, {"", "", "b\nc", 9, 24, true}},
			counts: map[string]int64{TokenSSEUnterminated: 1},
		},
		{
			name: "Anthropic-style stream with ping",
			in:   "event: content_block_delta\ndata: {\"delta\":{\"text\":\"Hi\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			want: []ev{
				{"content_block_delta", "", `{"delta":{"text":"Hi"}}`, 0, 58, false},
				{"ping", "", `{"type": "ping"}`, 58, 94, false},
				{"message_stop", "", `{"type":"message_stop"}`, 94, 145, false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, counts := readSSE([][]byte{[]byte(tt.in)}, tt.opts...)
			if diff := cmp.Diff(tt.want, simplify(evs)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			checkCounters(t, tt.counts, counts)
			// The same at every split point.
			for i := 1; i < len(tt.in); i++ {
				got, gotCounts := readSSE([][]byte{[]byte(tt.in[:i]), []byte(tt.in[i:])}, tt.opts...)
				if diff := cmp.Diff(simplify(evs), simplify(got)); diff != "" {
					t.Fatalf("split at %d: events differ (-whole +split):\n%s", i, diff)
				}
				if diff := cmp.Diff(counts, gotCounts); diff != "" {
					t.Fatalf("split at %d: counters differ:\n%s", i, diff)
				}
			}
		})
	}
}

// realSSE returns the recorded SSE bodies in testdata.
func realBodies(t testing.TB, glob string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata matches %s", glob)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// splitStep keeps split-everywhere tests on long bodies affordable on a
// shared machine: every offset up to 4 KiB, then a spread of 4096 offsets.
func splitStep(n int) int { return max(1, n/4096) }

// pieces cuts b at sorted random offsets.
func pieces(rng *rand.Rand, b []byte, n int) [][]byte {
	cuts := make([]int, 0, n)
	for range n {
		if len(b) > 1 {
			cuts = append(cuts, 1+rng.IntN(len(b)-1))
		}
	}
	sort.Ints(cuts)
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		out = append(out, b[prev:c])
		prev = c
	}
	return append(out, b[prev:])
}

func oneByteEach(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// checkCounters compares what a reader counted with what a test wants
// (nil: nothing).
func checkCounters(t *testing.T, want, got map[string]int64) {
	t.Helper()
	if want == nil {
		want = map[string]int64{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
}

// splits yields ways to cut b, each with a name: in two at every offset
// (splitStep apart), one byte at a time, then random times cuts into at
// most maxPieces pieces from a generator seeded with seed and len(b).
func splits(b []byte, seed uint64, random, maxPieces int) iter.Seq2[string, [][]byte] {
	return func(yield func(string, [][]byte) bool) {
		for i := 1; i < len(b); i += splitStep(len(b)) {
			if !yield(fmt.Sprintf("split at %d", i), [][]byte{b[:i], b[i:]}) {
				return
			}
		}
		if !yield("one byte at a time", oneByteEach(b)) {
			return
		}
		rng := rand.New(rand.NewPCG(seed, uint64(len(b))))
		for i := range random {
			if !yield(fmt.Sprintf("random split %d", i), pieces(rng, b, 1+rng.IntN(maxPieces))) {
				return
			}
		}
	}
}

func TestSSESplitAnywhereOnRecordedStreams(t *testing.T) {
	for name, body := range realBodies(t, "*.sse") {
		t.Run(name, func(t *testing.T) {
			want, wantCounts := readSSE([][]byte{body})
			if len(want) < 3 {
				t.Fatalf("only %d events in a recorded stream", len(want))
			}
			for i, e := range want {
				last := i == len(want)-1
				if e.Unterminated && !(last && !bytes.HasSuffix(body, []byte("\n\n"))) || len(e.Data) == 0 {
					t.Errorf("event at %d: unterminated=%v data=%q", e.Offset, e.Unterminated, e.Data)
				}
			}
			check := func(what string, p [][]byte) {
				t.Helper()
				got, counts := readSSE(p)
				if reflect.DeepEqual(simplify(want), simplify(got)) && reflect.DeepEqual(wantCounts, counts) {
					return
				}
				if diff := cmp.Diff(simplify(want), simplify(got)); diff != "" {
					t.Fatalf("%s: events differ (-whole +split):\n%s", what, diff)
				}
				if diff := cmp.Diff(wantCounts, counts); diff != "" {
					t.Fatalf("%s: counters differ:\n%s", what, diff)
				}
			}
			for what, p := range splits(body, 1, 50, 40) {
				check(what, p)
			}
		})
	}
}

func TestSSEEventTimes(t *testing.T) {
	// Each event's At is the arrival of the piece holding its final line
	// end, whatever the split.
	body := "event: a\ndata: 1\n\nevent: b\ndata: 2\r\n\r\ndata: 3\r\r"
	var evs []SSEEvent
	r := NewSSE(func(e SSEEvent) { evs = append(evs, e) })
	r.Feed([]byte(body[:18]), t0.Add(1*time.Second)) // through the first blank line
	r.Feed([]byte(body[18:39]), t0.Add(2*time.Second))
	r.Feed([]byte(body[39:]), t0.Add(3*time.Second))
	r.Close()
	var got []time.Duration
	for _, e := range evs {
		got = append(got, e.At.Sub(t0))
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}; !cmp.Equal(want, got) {
		t.Errorf("event times %v; want %v", got, want)
	}
}

func TestParseSSEUsesArrivalMarks(t *testing.T) {
	body := []byte("data: 1\n\ndata: 2\n\ndata: 3\n\n")
	marks := []httpmsg.Mark{
		{Offset: 5, At: t0.Add(1 * time.Second)},  // "data:"
		{Offset: 12, At: t0.Add(2 * time.Second)}, // first event complete, part of the second
		{Offset: 27, At: t0.Add(3 * time.Second)},
	}
	evs := ParseSSE(body, marks)
	var got []time.Duration
	for _, e := range evs {
		got = append(got, e.At.Sub(t0))
	}
	if want := []time.Duration{2 * time.Second, 3 * time.Second, 3 * time.Second}; !cmp.Equal(want, got) {
		t.Errorf("event times %v; want %v", got, want)
	}
	b := httpmsg.Body{Data: body, Marks: marks}
	for _, e := range ParseSSEBody(&b) {
		if !e.At.Equal(b.TimeAt(e.End - 1)) {
			t.Errorf("event at %d: At %v; Body.TimeAt says %v", e.Offset, e.At, b.TimeAt(e.End-1))
		}
	}
}

func FuzzSSE(f *testing.F) {
	for _, b := range realBodies(f, "*.sse") {
		f.Add(b, uint64(len(b)))
	}
	f.Add([]byte("\xEF\xBB\xBFdata: x\r\r: c\r\nevent\rdata:\r\n\r\n"), uint64(1))
	f.Add([]byte(manyNamesStream), uint64(3))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		opts := []Option{WithMaxLine(64), WithMaxEvent(128)}
		want, wantCounts := readSSE([][]byte{body}, opts...)
		got, counts := readSSE(pieces(rand.New(rand.NewPCG(seed, 2)), body, int(seed%16)), opts...)
		if diff := cmp.Diff(simplify(want), simplify(got)); diff != "" {
			t.Fatalf("events differ between whole and split input:\n%s", diff)
		}
		if diff := cmp.Diff(wantCounts, counts); diff != "" {
			t.Fatalf("counters differ between whole and split input:\n%s", diff)
		}
		// ParseSSE slices the body for one-line events instead of copying,
		// and copies a data line only when a second one comes.
		var parseCounts stats.Counters
		parsed := ParseSSE(body, nil, append(opts, WithRecorder(&parseCounts))...)
		if diff := cmp.Diff(simplify(want), simplify(parsed)); diff != "" {
			t.Fatalf("ParseSSE differs from the reader:\n%s", diff)
		}
		if diff := cmp.Diff(wantCounts, parseCounts.Snapshot()); diff != "" {
			t.Fatalf("ParseSSE's counters differ from the reader's:\n%s", diff)
		}
		prevEnd := 0
		for _, e := range want {
			if len(e.Data) > 128 || e.Offset < prevEnd || e.End <= e.Offset || e.End > len(body) {
				t.Fatalf("bad event %+v (previous end %d, body %d)", e, prevEnd, len(body))
			}
			if !bytes.Contains(body, e.Data[:min(len(e.Data), 1)]) {
				t.Fatalf("event data not from the body")
			}
			prevEnd = e.End
		}
	})
}

// manyNamesStream has more event names than the reader remembers, coming
// back in turn, events of one and of several data lines, an empty data
// line, and an event over the cap of FuzzSSE.
var manyNamesStream = func() string {
	var sb strings.Builder
	for round := range 3 {
		for i := range 11 {
			fmt.Fprintf(&sb, "event: name%d\n", i)
			for line := range (i + round) % 4 {
				fmt.Fprintf(&sb, "data: {\"round\":%d,\"line\":%d}\n", round, line)
			}
			if i == 5 {
				sb.WriteString("data:\n")
			}
			sb.WriteString("\n")
		}
	}
	sb.WriteString("event: big\ndata: " + strings.Repeat("x", 70) + "\ndata: " + strings.Repeat("y", 70) + "\ndata: z\n\n")
	return sb.String()
}()

func TestParseSSEAgreesWithTheReader(t *testing.T) {
	body := []byte(manyNamesStream)
	opts := []Option{WithMaxEvent(128)}
	want, wantCounts := readSSE(oneByteEach(body), opts...)
	var names []string // of the events with data, in order
	for round := range 3 {
		for i := range 11 {
			if (i+round)%4 > 0 || i == 5 {
				names = append(names, fmt.Sprintf("name%d", i))
			}
		}
	}
	if len(want) != len(names) || wantCounts[TokenSSEEventTooLong] == 0 {
		t.Fatalf("%d events, counts %v: the stream is not what this test needs", len(want), wantCounts)
	}
	for i, e := range want {
		if e.Event != names[i] {
			t.Fatalf("event %d is %q, want %q", i, e.Event, names[i])
		}
	}
	var counts stats.Counters
	got := ParseSSE(body, nil, append(opts, WithRecorder(&counts))...)
	if diff := cmp.Diff(simplify(want), simplify(got)); diff != "" {
		t.Fatalf("ParseSSE differs from the reader fed a byte at a time:\n%s", diff)
	}
	if diff := cmp.Diff(wantCounts, counts.Snapshot()); diff != "" {
		t.Fatalf("counters differ:\n%s", diff)
	}
}

// BenchmarkParseSSE parses the recorded streams of the test data, one
// ParseSSE each, as a provider decoder does per response.
func BenchmarkParseSSE(b *testing.B) {
	bodies := realBodies(b, "*.sse")
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range bodies {
			if ParseSSE(body, nil) == nil {
				b.Fatal("no events")
			}
		}
	}
}

func BenchmarkSSE(b *testing.B) {
	body := bytes.Repeat(realBodies(b, "openai-chat.sse")["openai-chat.sse"], 50)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		r := NewSSE(func(SSEEvent) { n++ })
		for p := body; len(p) > 0; { // 512-byte reads, like small TLS records
			k := min(512, len(p))
			r.Feed(p[:k], t0)
			p = p[k:]
		}
		r.Close()
		if n == 0 {
			b.Fatal("no events")
		}
	}
}
