package otlp_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/sink/otlp"
)

// FuzzEncode: whatever the strings and numbers of an event, the record
// written by hand in the wire format decodes with the official OTLP type,
// repeats no key and keeps the values (as UTF-8).
func FuzzEncode(f *testing.F) {
	f.Add("ai.response", "/usr/bin/python3", "arg\xff", "gpt-4o", "tool_calls", "2026-11-30T12:00:00Z", 1200, -1, "4bf92f3577b34da6a3ce929d0e0e4736")
	f.Add("", "", "", "", "", "", 0, 0, "")
	f.Fuzz(func(t *testing.T, typ, exe, arg, model, finish, ts string, in, out int, trace string) {
		ev := &oisp.Event{OISPVersion: oisp.Version, EventID: "id", EventType: typ, TS: ts,
			Process:      &oisp.Process{PID: in, Exe: exe, CmdlineArgs: []string{arg, exe}},
			TraceContext: &oisp.TraceContext{TraceID: trace, SpanID: trace},
			Data: &oisp.AIResponse{Model: &oisp.Model{ID: model, Requested: arg}, FinishReason: finish,
				Usage: &oisp.Usage{PromptTokens: &in, CompletionTokens: &out}, Provider: &oisp.Provider{Name: model, Endpoint: exe}},
		}
		if typ == "" {
			ev.Data = &oisp.ProcessExec{Exe: exe, Args: []string{arg}, Cwd: finish}
		}
		var enc otlp.Encoder
		b, err := enc.Encode(ev)
		if err != nil {
			if _, jerr := json.Marshal(ev.Data); jerr == nil {
				t.Fatalf("encode failed where JSON did not: %v", err)
			}
			return
		}
		var r logspb.LogRecord
		if err := proto.Unmarshal(b, &r); err != nil {
			t.Fatalf("the record does not decode: %v", err)
		}
		if r.EventName != strings.ToValidUTF8(typ, "\uFFFD") {
			t.Errorf("event name %q for %q", r.EventName, typ)
		}
		seen := map[string]bool{}
		for _, kv := range r.Attributes {
			if seen[kv.Key] {
				t.Errorf("key %q repeated", kv.Key)
			}
			seen[kv.Key] = true
			if s := kv.Value.GetStringValue(); !utf8.ValidString(s) {
				t.Errorf("%s is not UTF-8", kv.Key)
			}
		}
		a := attrMap(r.Attributes)
		if typ != "" {
			if a["gen_ai.usage.input_tokens"] != int64(in) || a["gen_ai.usage.output_tokens"] != int64(out) {
				t.Errorf("tokens %v/%v, want %d/%d", a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"], in, out)
			}
			if model != "" && a["gen_ai.response.model"] != strings.ToValidUTF8(model, "\uFFFD") {
				t.Errorf("model %v, want %q", a["gen_ai.response.model"], model)
			}
		}
		if exe != "" && a["process.executable.path"] != strings.ToValidUTF8(exe, "\uFFFD") {
			t.Errorf("exe %v, want %q", a["process.executable.path"], exe)
		}
	})
}
