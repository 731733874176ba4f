package stream

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

type item struct {
	Data       string
	Start, End int
}

func readNDJSON(pieces [][]byte, opts ...Option) ([]item, map[string]int64) {
	return readItems(newNDJSON, pieces, opts)
}

func readJSONArray(pieces [][]byte, opts ...Option) ([]item, map[string]int64) {
	return readItems(newJSONArray, pieces, opts)
}

// readItems feeds pieces at t0 to the reader newReader makes and returns
// what it emitted and counted.
func readItems[R interface {
	Feed([]byte, time.Time)
	Close()
}](newReader func(func([]byte, int, int, time.Time), []Option) R, pieces [][]byte, opts []Option) ([]item, map[string]int64) {
	var rec stats.Counters
	var out []item
	r := newReader(func(b []byte, start, end int, _ time.Time) {
		out = append(out, item{string(b), start, end})
	}, append(opts, WithRecorder(&rec)))
	counts := feedAll(r, pieces, &rec)
	return out, counts
}

// checkSplits asserts that every split of in reads the same as in whole.
func checkSplits(t *testing.T, in []byte, read func([][]byte) ([]item, map[string]int64)) {
	t.Helper()
	want, wantCounts := read([][]byte{in})
	check := func(what string, p [][]byte) {
		t.Helper()
		got, counts := read(p)
		if reflect.DeepEqual(want, got) && reflect.DeepEqual(wantCounts, counts) {
			return
		}
		t.Fatalf("%s: differs from the whole input:\n%s\n%s", what, cmp.Diff(want, got), cmp.Diff(wantCounts, counts))
	}
	for what, p := range splits(in, 3, 30, 30) {
		check(what, p)
	}
}

func TestNDJSON(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opts   []Option
		want   []item
		counts map[string]int64
	}{
		{"LF separated", "{\"a\":1}\n{\"b\":2}\n", nil, []item{{`{"a":1}`, 0, 8}, {`{"b":2}`, 8, 16}}, nil},
		{"CRLF separated", "{\"a\":1}\r\n{\"b\":2}\r\n", nil, []item{{`{"a":1}`, 0, 9}, {`{"b":2}`, 9, 18}}, nil},
		{"blank lines are skipped", "\n{\"a\":1}\n\n  \r\n{\"b\":2}\n", nil, []item{{`{"a":1}`, 1, 9}, {`{"b":2}`, 14, 22}}, nil},
		{"a last line without LF is delivered at Close", "{\"a\":1}\n{\"done\":true}", nil, []item{{`{"a":1}`, 0, 8}, {`{"done":true}`, 8, 21}}, nil},
		{"a leading BOM is dropped", "\xEF\xBB\xBF{\"a\":1}\n", nil, []item{{`{"a":1}`, 3, 11}}, nil},
		{"a partial BOM is data", "\xEF\xBB", nil, []item{{"\xEF\xBB", 0, 2}}, nil},
		{"a line over the cap is dropped and counted", "{\"long\":\"" + strings.Repeat("x", 30) + "\"}\n{\"a\":1}\n",
			[]Option{WithMaxLine(16)}, []item{{`{"a":1}`, 42, 50}}, map[string]int64{TokenNDJSONLineTooLong: 41}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, counts := readNDJSON([][]byte{[]byte(tt.in)}, tt.opts...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			checkCounters(t, tt.counts, counts)
			checkSplits(t, []byte(tt.in), func(p [][]byte) ([]item, map[string]int64) { return readNDJSON(p, tt.opts...) })
		})
	}
}

func TestNDJSONRecordedOllamaStream(t *testing.T) {
	body := realBodies(t, "ollama-chat.ndjson")["ollama-chat.ndjson"]
	lines, counts := readNDJSON([][]byte{body})
	if len(lines) != bytes.Count(body, []byte("\n")) || len(counts) != 0 {
		t.Fatalf("%d lines, counters %v", len(lines), counts)
	}
	for _, l := range lines {
		var v struct {
			Model string `json:"model"`
			Done  bool   `json:"done"`
		}
		if err := json.Unmarshal([]byte(l.Data), &v); err != nil || v.Model != "gemma3:1b" {
			t.Fatalf("line at %d: %v %+v", l.Start, err, v)
		}
	}
	if !strings.Contains(lines[len(lines)-1].Data, `"done":true`) {
		t.Errorf("last line is not the final one: %s", lines[len(lines)-1].Data)
	}
	checkSplits(t, body, func(p [][]byte) ([]item, map[string]int64) { return readNDJSON(p) })
}

func TestJSONArray(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opts   []Option
		want   []string
		counts map[string]int64
	}{
		{"objects with CRLF between", "[{\"a\":1}\r\n,\r\n{\"b\":[1,2,{\"c\":\"]}\"}]}]", nil, []string{`{"a":1}`, `{"b":[1,2,{"c":"]}"}]}`}, nil},
		{"empty array", " [ ] ", nil, nil, nil},
		{"scalars and strings", `[1, -2.5e3, true, null, "x,]\"y", []]`, nil, []string{"1", "-2.5e3", "true", "null", `"x,]\"y"`, "[]"}, nil},
		{"escaped backslash before a quote", `[{"s":"a\\"}, 2]`, nil, []string{`{"s":"a\\"}`, "2"}, nil},
		{"braces inside strings do not count", `[{"s":"{{[["}]`, nil, []string{`{"s":"{{[["}`}, nil},
		{"a leading BOM is dropped", "\xEF\xBB\xBF[1]", nil, []string{"1"}, nil},
		{"a missing comma is counted, both elements kept", `[{"a":1} {"b":2}]`, nil, []string{`{"a":1}`, `{"b":2}`}, map[string]int64{TokenJSONMissingComma: 1}},
		{"stray commas and junk are counted", `[,1,,}2]`, nil, []string{"1", "2"}, map[string]int64{TokenJSONMalformed: 3}},
		{"bytes after the closing bracket are counted", "[1]\n x", nil, []string{"1"}, map[string]int64{TokenJSONTrailingGarbage: 1}},
		{"a body that is not an array is counted", `{"error":{}}`, nil, nil, map[string]int64{TokenJSONNotArray: 12}},
		{"an element over the cap is dropped and counted", `[{"a":"0123456789"},{"b":1}]`, []Option{WithMaxElement(10)}, []string{`{"b":1}`}, map[string]int64{TokenJSONElementTooLong: 18}},
		{"an array cut inside an element", `[{"a":1},{"b":`, nil, []string{`{"a":1}`}, map[string]int64{TokenJSONIncomplete: 5, TokenJSONUnterminated: 1}},
		{"an array cut after a number keeps the number", `[1,23`, nil, []string{"1", "23"}, map[string]int64{TokenJSONUnterminated: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, counts := readJSONArray([][]byte{[]byte(tt.in)}, tt.opts...)
			var gotData []string
			for _, e := range got {
				gotData = append(gotData, e.Data)
				if tt.in[e.Start:e.End] != e.Data {
					t.Errorf("element %q has offsets %d..%d", e.Data, e.Start, e.End)
				}
			}
			if diff := cmp.Diff(tt.want, gotData); diff != "" {
				t.Errorf("elements (-want +got):\n%s", diff)
			}
			checkCounters(t, tt.counts, counts)
			checkSplits(t, []byte(tt.in), func(p [][]byte) ([]item, map[string]int64) { return readJSONArray(p, tt.opts...) })
		})
	}
}

// TestJSONArrayAgainstEncodingJSON reads the recorded Gemini stream and
// compares the elements with what encoding/json finds in the same bytes.
func TestJSONArrayAgainstEncodingJSON(t *testing.T) {
	body := realBodies(t, "gemini-stream.json")["gemini-stream.json"]
	var want []json.RawMessage
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	got, counts := readJSONArray([][]byte{body})
	if len(got) != len(want) || len(counts) != 0 {
		t.Fatalf("%d elements, counters %v; encoding/json found %d", len(got), counts, len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], []byte(got[i].Data)) {
			t.Errorf("element %d differs from encoding/json's", i)
		}
	}
	checkSplits(t, body, func(p [][]byte) ([]item, map[string]int64) { return readJSONArray(p) })
}

func TestParseHelpersUseArrivalMarks(t *testing.T) {
	nd := []byte("{\"n\":1}\n{\"n\":2}\r\n{\"n\":3}")
	marks := []httpmsg.Mark{{Offset: 8, At: t0.Add(time.Second)}, {Offset: 20, At: t0.Add(2 * time.Second)}, {Offset: len(nd), At: t0.Add(3 * time.Second)}}
	items := ParseNDJSON(nd, marks)
	want := []Item{
		{Data: nd[0:7], Offset: 0, End: 7, At: t0.Add(time.Second)},
		{Data: nd[8:15], Offset: 8, End: 15, At: t0.Add(2 * time.Second)},
		{Data: nd[17:24], Offset: 17, End: 24, At: t0.Add(3 * time.Second)},
	}
	if diff := cmp.Diff(want, items); diff != "" {
		t.Errorf("NDJSON items (-want +got):\n%s", diff)
	}
	arr := []byte(`[{"n":1},{"n":2}]`)
	b := httpmsg.Body{Data: arr, Marks: []httpmsg.Mark{{Offset: 8, At: t0.Add(time.Second)}, {Offset: len(arr), At: t0.Add(2 * time.Second)}}}
	els := ParseJSONArrayBody(&b)
	if len(els) != 2 || !els[0].At.Equal(t0.Add(time.Second)) || !els[1].At.Equal(t0.Add(2*time.Second)) || string(els[1].Data) != `{"n":2}` {
		t.Errorf("array items %+v", els)
	}
	if &els[0].Data[0] != &arr[1] {
		t.Errorf("items should alias the body")
	}
}

func FuzzNDJSON(f *testing.F) {
	f.Add(realBodies(f, "ollama-chat.ndjson")["ollama-chat.ndjson"], uint64(3))
	f.Add([]byte("\xEF\xBB\xBF{}\r\n\r\n {} \n"), uint64(1))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		opts := []Option{WithMaxLine(64)}
		want, wantCounts := readNDJSON([][]byte{body}, opts...)
		got, counts := readNDJSON(pieces(rand.New(rand.NewPCG(seed, 4)), body, int(seed%16)), opts...)
		if !reflect.DeepEqual(want, got) || !reflect.DeepEqual(wantCounts, counts) {
			t.Fatalf("split input reads differently:\n%s\n%s", cmp.Diff(want, got), cmp.Diff(wantCounts, counts))
		}
		for _, l := range want {
			if len(l.Data) > 64 || isBlank([]byte(l.Data)) || !bytes.HasPrefix(body[l.Start:], []byte(l.Data)) {
				t.Fatalf("bad line %+v", l)
			}
		}
	})
}

func FuzzJSONArray(f *testing.F) {
	f.Add(realBodies(f, "gemini-stream.json")["gemini-stream.json"], uint64(5))
	f.Add([]byte(`[1,"a\"]",{"b":[{}]},true] x`), uint64(2))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		opts := []Option{WithMaxElement(256)}
		want, wantCounts := readJSONArray([][]byte{body}, opts...)
		got, counts := readJSONArray(pieces(rand.New(rand.NewPCG(seed, 5)), body, int(seed%16)), opts...)
		if !reflect.DeepEqual(want, got) || !reflect.DeepEqual(wantCounts, counts) {
			t.Fatalf("split input reads differently:\n%s\n%s", cmp.Diff(want, got), cmp.Diff(wantCounts, counts))
		}
		for _, e := range want {
			if len(e.Data) > 256 || string(body[e.Start:e.End]) != e.Data {
				t.Fatalf("bad element %+v", e)
			}
		}
		// On a valid array whose elements fit, the reader agrees with
		// encoding/json exactly.
		var raw []json.RawMessage
		if json.Unmarshal(body, &raw) == nil && len(wantCounts) == 0 {
			if len(raw) != len(want) {
				t.Fatalf("%d elements; encoding/json found %d", len(want), len(raw))
			}
			for i := range raw {
				if string(raw[i]) != want[i].Data {
					t.Fatalf("element %d: %q; encoding/json %q", i, want[i].Data, raw[i])
				}
			}
		}
	})
}

func BenchmarkNDJSON(b *testing.B) {
	body := bytes.Repeat(realBodies(b, "ollama-chat.ndjson")["ollama-chat.ndjson"], 100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		r := NewNDJSON(func([]byte, time.Time) { n++ })
		for p := body; len(p) > 0; {
			k := min(512, len(p))
			r.Feed(p[:k], t0)
			p = p[k:]
		}
		r.Close()
	}
}

func BenchmarkJSONArray(b *testing.B) {
	one := realBodies(b, "gemini-stream.json")["gemini-stream.json"]
	inner := bytes.TrimSpace(one)
	inner = inner[1 : len(inner)-1]
	body := append(append([]byte("["), bytes.Repeat(append(bytes.Clone(inner), ','), 50)...), "{}]"...)
	b.Run("incremental", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			r := NewJSONArray(func([]byte, time.Time) { n++ })
			for p := body; len(p) > 0; {
				k := min(512, len(p))
				r.Feed(p[:k], t0)
				p = p[k:]
			}
			r.Close()
		}
	})
	// Baseline: encoding/json splitting the complete body, which cannot
	// deliver anything before the last byte.
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var raw []json.RawMessage
			if err := json.Unmarshal(body, &raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
