package provider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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
