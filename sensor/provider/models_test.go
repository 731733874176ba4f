package provider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// TestModelsMatchBundle cross-checks the embedded models.json against the
// OISP v2 bundle it was generated from (reference material outside user
// checkouts: skipped when absent). Every bundle model must be present with
// the same prices, context window and output limit.
func TestModelsMatchBundle(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "oisp-spec", "bundle-v2", "bundle.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("bundle not available: %v", err)
	}
	var bundle struct {
		Models map[string]struct {
			ID              string   `json:"id"`
			Provider        string   `json:"provider"`
			Family          string   `json:"family"`
			MaxInputTokens  int      `json:"max_input_tokens"`
			MaxOutputTokens int      `json:"max_output_tokens"`
			Input           *float64 `json:"input_cost_per_1k"`
			Output          *float64 `json:"output_cost_per_1k"`
			CacheRead       *float64 `json:"cache_read_cost_per_1k"`
			CacheWrite      *float64 `json:"cache_write_cost_per_1k"`
		} `json:"models"`
	}
	if err := json.Unmarshal(raw, &bundle); err != nil {
		t.Fatal(err)
	}
	reg := coreRegistry(t)
	same := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	for key, m := range bundle.Models {
		prov := m.Provider
		if prov == "togetherai" {
			prov = "together"
		}
		got, ok := reg.models.byKey[prov+"/"+m.ID]
		if !ok {
			t.Errorf("%s missing", key)
			continue
		}
		if !same(got.InputPer1K, m.Input) || !same(got.OutputPer1K, m.Output) || !same(got.CacheReadPer1K, m.CacheRead) ||
			!same(got.CacheWritePer1K, m.CacheWrite) || got.ContextWindow != m.MaxInputTokens ||
			got.MaxOutputTokens != m.MaxOutputTokens || got.Family != m.Family {
			t.Errorf("%s differs from the bundle: %+v", key, got)
		}
	}
	if len(bundle.Models) < 2000 {
		t.Errorf("bundle has only %d models", len(bundle.Models))
	}
}

// TestDescribeModelFamilyMemo checks that a model the table lacks gets the
// family of the prefix rules, on the first (memo made) and later (memo
// read) descriptions alike, and that known models still get their entry.
func TestDescribeModelFamilyMemo(t *testing.T) {
	reg := coreRegistry(t)
	cases := []struct{ provider, id string }{
		{"openai", "gpt-4o-2099-01-01-experimental"}, {"openai", "GPT-4-Turbo-Preview-X"}, {"anthropic", "claude-sonnet-9-9"},
		{"google", "models/gemini-99-pro"}, {"groq", "llama-9-70b"}, {"ollama", "gemma3:1b"}, {"openai", "no-such-family"},
		{"openai", "gpt-4o-mini"}, {"anthropic", "claude-3-5-sonnet-20241022"},
	}
	families := 0
	for _, c := range cases {
		want := oisp.Model{ID: c.id}
		if info, ok := reg.models.search(c.provider, c.id); ok {
			want.Family, want.Name, want.ContextWindow, want.MaxOutputTokens = info.Family, info.Name, info.ContextWindow, info.MaxOutputTokens
		} else {
			want.Family = reg.models.family(c.provider, c.id)
		}
		if want.Family != "" {
			families++
		}
		for i := range 2 {
			got := oisp.Model{ID: c.id}
			reg.DescribeModel(&got, c.provider)
			if got != want {
				t.Fatalf("%s %q, description %d: %+v; want %+v", c.provider, c.id, i+1, got, want)
			}
		}
		kept := oisp.Model{ID: c.id, Family: "given"}
		reg.DescribeModel(&kept, c.provider)
		if kept.Family != "given" {
			t.Fatalf("%s %q: a given family became %q", c.provider, c.id, kept.Family)
		}
	}
	if families < len(cases)/2 {
		t.Fatalf("only %d of %d cases have a family: the test checks little", families, len(cases))
	}
}
