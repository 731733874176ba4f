package oisp

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

func TestFinishReasonMapsProviderVocabulary(t *testing.T) {
	cases := map[string]string{
		"":                   "",
		"stop":               FinishStop,
		"end_turn":           FinishStop,
		"STOP":               FinishStop,
		"COMPLETE":           FinishStop,
		"stop_sequence":      FinishStop,
		"max_tokens":         FinishLength,
		"MAX_TOKENS":         FinishLength,
		"length":             FinishLength,
		"tool_use":           FinishToolCalls,
		"function_call":      FinishToolCalls,
		"SAFETY":             FinishContentFilter,
		"refusal":            FinishContentFilter,
		"content_filtered":   FinishContentFilter,
		"pause_turn":         FinishOther,
		"something_new_2027": FinishOther,
	}
	for raw, want := range cases {
		if got := FinishReason(raw); got != want {
			t.Errorf("FinishReason(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestRoleKeepsOriginalWhenMapped(t *testing.T) {
	cases := []struct{ raw, role, orig string }{
		{"user", "user", ""},
		{"assistant", "assistant", ""},
		{"developer", "system", "developer"},
		{"model", "assistant", "model"},
		{"CHATBOT", "assistant", "CHATBOT"},
		{"tool", "tool", ""},
		{"system", "system", ""},
		{"function", "function", ""},
		{"System", "system", "System"},
		{"USER", "user", "USER"},
		{"ipython", "tool", "ipython"},
		{"narrator", "user", "narrator"},
		{"", "", ""},
	}
	for _, c := range cases {
		role, orig := Role(c.raw)
		if role != c.role || orig != c.orig {
			t.Errorf("Role(%q) = %q, %q; want %q, %q", c.raw, role, orig, c.role, c.orig)
		}
	}
}

func TestProviderNameOutsideEnumBecomesOther(t *testing.T) {
	p := NewProvider("deepseek", "https://api.deepseek.com/chat/completions")
	if p.Name != "other" || p.ID != "deepseek" {
		t.Errorf("deepseek: got name %q id %q", p.Name, p.ID)
	}
	p = NewProvider("openai", "")
	if p.Name != "openai" || p.ID != "" {
		t.Errorf("openai: got name %q id %q", p.Name, p.ID)
	}
	if got := ProviderName("google_vertex"); got != "google" {
		t.Errorf("google_vertex → %q", got)
	}
}

func TestToolChoiceRendersObjects(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"auto", "auto"},
		{"any", "required"},
		{map[string]any{"type": "any"}, "required"},
		{map[string]any{"type": "tool", "name": "get_weather"}, "get_weather"},
		{map[string]any{"type": "function", "function": map[string]any{"name": "lookup"}}, "lookup"},
		{map[string]any{"type": "function"}, "specific"},
	}
	for _, c := range cases {
		if got := ToolChoice(c.in); got != c.want {
			t.Errorf("ToolChoice(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestKeyPrefixNeverRevealsTheKey(t *testing.T) {
	if got := KeyPrefix("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"); got != "sk-proj-" {
		t.Errorf("openai project key prefix = %q", got)
	}
	if got := KeyPrefix("short-key"); got != "" {
		t.Errorf("a short credential must give no prefix, got %q", got)
	}
	for _, k := range []string{"sk-ant-api03-" + "x0123456789abcdefghij", "AIzaSyA0123456789abcdefghijklmnop"} {
		if p := KeyPrefix(k); len(p) > 8 {
			t.Errorf("prefix %q longer than the schema's 8 characters", p)
		}
	}
}

func TestHashIsStableAndShort(t *testing.T) {
	h := Hash("hello")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{16}$`).MatchString(h) {
		t.Fatalf("Hash = %q", h)
	}
	if Hash("hello") != h || Hash("hello!") == h {
		t.Fatal("hash not stable or not content-dependent")
	}
}

func TestHashIsSHA256Prefix(t *testing.T) {
	// The known digest of "hello" pins the format, not just its shape.
	if got, want := Hash("hello"), "sha256:2cf24dba5fb0a30e"; got != want {
		t.Fatalf("Hash(hello) = %q, want %q", got, want)
	}
}

func TestAppendHashAppendsWhatHashReturns(t *testing.T) {
	dst := []byte("keep")
	for _, s := range []string{"", "hello", strings.Repeat("x", 1000)} {
		n := len(dst)
		dst = AppendHash(dst, s)
		if got := string(dst[n:]); got != Hash(s) || len(got) != HashLen {
			t.Errorf("AppendHash(%q) appended %q, Hash gives %q", s, got, Hash(s))
		}
	}
	if string(dst[:4]) != "keep" {
		t.Errorf("AppendHash changed dst's prefix: %q", dst[:4])
	}
}

func TestHostNamesFollowTheSchemaEnums(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "riscv64": "other"} {
		if got := ArchName(goarch); got != want {
			t.Errorf("ArchName(%s) = %s, want %s", goarch, got, want)
		}
	}
	for goos, want := range map[string]string{"darwin": "darwin", "linux": "linux", "plan9": "other"} {
		if got := OSName(goos); got != want {
			t.Errorf("OSName(%s) = %s, want %s", goos, got, want)
		}
	}
}

func TestBuilderFillsTheEnvelope(t *testing.T) {
	b := NewBuilder(BuilderOptions{CollectorVersion: "9.9.9", Host: &Host{OS: "linux", Arch: "x86_64"}})
	at := time.Date(2025, 12, 22, 14, 30, 15, 123456789, time.FixedZone("x", 3600))
	ev := b.New(TypeAIRequest, at, "mitm_proxy", &AIRequest{RequestType: RequestChat})
	if ev.TS != "2025-12-22T13:30:15.123456Z" {
		t.Errorf("ts = %s, want UTC with microseconds", ev.TS)
	}
	id, err := ulid.ParseStrict(ev.EventID)
	if err != nil {
		t.Fatalf("event_id %q is not a ULID: %v", ev.EventID, err)
	}
	if id.Time() != ulid.Timestamp(at) {
		t.Errorf("ULID time %d, want %d", id.Time(), ulid.Timestamp(at))
	}
	if ev.OISPVersion != "0.1" || ev.Source.Collector != "oisp-sensor" || ev.Source.CollectorVersion != "9.9.9" {
		t.Errorf("envelope: %+v", ev)
	}
	// ids from one builder are unique and increase within a millisecond
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := b.NewID(at)
		if seen[id] || id <= prev {
			t.Fatalf("id %s repeats or does not increase after %s", id, prev)
		}
		seen[id] = true
		prev = id
	}
}

// No field of any data type may serialise as null: the schema accepts null
// nowhere.
func TestZeroValuesSerialiseWithoutNull(t *testing.T) {
	values := []any{
		&AIRequest{}, &AIResponse{}, &AIEmbedding{}, &ToolCallEvent{}, &ToolResultEvent{},
		&ProcessExec{}, &ProcessExit{}, &ProcessFork{}, &NetworkConnect{}, &FileOpen{Flags: []string{}}, &FileWrite{},
		&Event{}, &Usage{}, &Parameters{}, &Choice{}, &Message{},
	}
	for _, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("null")) {
			t.Errorf("%T serialises a null: %s", v, b)
		}
	}
}
