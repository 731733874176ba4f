package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// unmarshalArguments is what argumentsObject must agree with: the map
// encoding/json makes, nil when it fails.
func unmarshalArguments(s string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil
	}
	return m
}

// checkArguments fails when argumentsObject differs from Unmarshal on s, in
// value or in the JSON a sink writes of it (which also tells -0 from 0).
func checkArguments(t *testing.T, s string) {
	t.Helper()
	got, want := argumentsObject(s), unmarshalArguments(s)
	if (got == nil) != (want == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("argumentsObject(%q) = %#v, Unmarshal makes %#v", s, got, want)
	}
	if want == nil {
		return
	}
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("argumentsObject(%q) marshals to %s, Unmarshal's map to %s", s, gotJSON, wantJSON)
	}
}

// recordedArguments returns the tool-call arguments of the fixtures'
// expected responses, as the models wrote them.
func recordedArguments(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "fixtures", "*", "*", "expected.jsonl"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	var out []string
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var ev struct {
				Data struct {
					ToolCalls []struct {
						Arguments string `json:"arguments"`
					} `json:"tool_calls"`
				} `json:"data"`
			}
			if !bytes.Contains(sc.Bytes(), []byte(`"tool_calls"`)) || json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			for _, c := range ev.Data.ToolCalls {
				if c.Arguments != "" {
					out = append(out, c.Arguments)
				}
			}
		}
		f.Close()
	}
	if len(out) == 0 {
		tb.Fatal("the fixtures carry no tool-call arguments")
	}
	return out
}

func TestArgumentsObjectRecorded(t *testing.T) {
	for _, s := range recordedArguments(t) {
		checkArguments(t, s)
	}
}

// oddArguments are texts at the edges of what Unmarshal takes.
var oddArguments = []string{
	``, ` `, `null`, ` null `, `{}`, ` {} `, `{ }`, `[]`, `"x"`, `1`, `true`, `{"a":1}x`, `{"a":1} {}`,
	`{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{"a":1`, `{"a":[1,2}`, `{"a":[1,]}`,
	`{"a":[,1]}`, `{"a":[]}`, `{"a":[ ]}`, `{"a":{}}`, `{"a":null,"b":true,"c":false}`, `{"a":nul}`, `{"a":tru}`,
	`{"a":1,"a":2}`, `{"a":{"x":1},"a":{"y":2}}`, `{"a":[1],"a":"s"}`, "{\t\"a\"\r\n:\n1 }",
	"\xef\xbb\xbf{}", "{\"a\":1}\x00", "{\"a\":\v1}", "{\"a\":\u00a01}",
	`{"n":0}`, `{"n":-0}`, `{"n":-0.0}`, `{"n":00}`, `{"n":01}`, `{"n":-}`, `{"n":+1}`, `{"n":1.}`, `{"n":.5}`,
	`{"n":1.5e}`, `{"n":1e+}`, `{"n":1E-2}`, `{"n":1e400}`, `{"n":-1e400}`, `{"n":1e-400}`, `{"n":4.9e-324}`,
	`{"n":1.7976931348623157e308}`, `{"n":1.7976931348623159e308}`, `{"n":12345678901234567890}`,
	`{"n":0.1}`, `{"n":1.0}`, `{"n":100}`, `{"n":1e21}`, `{"n":1e20}`, `{"n":1e-7}`, `{"n":123456789.123456789}`,
	`{"n":NaN}`, `{"n":Infinity}`, `{"n":0x10}`, `{"n":1_000}`,
	`{"s":""}`, `{"":1}`, `{"s":"\""}`, `{"s":"\\"}`, `{"s":"\/"}`, `{"s":"\b\f\n\r\t"}`, `{"s":"\'"}`,
	`{"s":"\a"}`, `{"s":"\u00e9"}`, `{"s":"\u00E9"}`, `{"s":"\u00g9"}`, `{"s":"\u00"}`, `{"s":"\u"}`,
	`{"s":"\ud83d\ude00"}`, `{"s":"\ud83d"}`, `{"s":"\ude00"}`, `{"s":"\ud83dx"}`, `{"s":"\ud83d\u0041"}`,
	`{"s":"\ud83d\ud83d\ude00"}`, `{"s":"\ud83d\"}`, `{"s":"\ud83d\u12"}`, `{"s":"\u0000"}`, `{"s":"\u2028\u2029"}`,
	`{"s":"<&>"}`, "{\"s\":\"\x01\"}", "{\"s\":\"a\nb\"}", "{\"s\":\"\x7f\"}",
	"{\"s\":\"\xff\"}", "{\"s\":\"a\xc3\"}", "{\"s\":\"\xc3\xa9\"}", "{\"s\":\"\xed\xa0\x80\"}", "{\"s\":\"\xf4\x90\x80\x80\"}",
	"{\"s\":\"\xe2\x82\"}", "{\"s\":\"\\n\xff\"}", "{\"\xff\":1}", `{"k\u00e9":1,"ké":2}`, `{"a\"b":1}`,
	`{"s":"unterminated}`, `{"s":"x\`, `{"a":[[[[]]]]}`, `{"a":[{"b":[{"c":null}]}]}`,
	`{"location": "Paris", "unit": "celsius"}`, `{"command": "echo $((37170 * 12390))"}`,
}

func TestArgumentsObjectOdd(t *testing.T) {
	for _, s := range oddArguments {
		checkArguments(t, s)
	}
}

func TestArgumentsObjectDepth(t *testing.T) {
	for _, depth := range []int{maxArgsDepth - 1, maxArgsDepth, maxArgsDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			// depth levels of nesting in all: the outer object and
			// depth-1 nested values.
			inner := strings.Repeat(open, depth-1)
			close := strings.Repeat(map[string]string{"[": "]", `{"a":`: "}"}[open], depth-1)
			s := `{"x":` + inner + "1" + close + `}`
			checkArguments(t, s)
			if got := argumentsObject(s); (got != nil) != (depth <= maxArgsDepth) {
				t.Fatalf("depth %d (%s): got %v", depth, open, got != nil)
			}
		}
	}
}

func FuzzArgumentsObject(f *testing.F) {
	for _, s := range recordedArguments(f) {
		f.Add(s)
	}
	for _, s := range oddArguments {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkArguments(t, s)
	})
}

func BenchmarkArgumentsObject(b *testing.B) {
	args := recordedArguments(b)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, s := range args {
				argumentsObject(s)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, s := range args {
				unmarshalArguments(s)
			}
		}
	})
}
