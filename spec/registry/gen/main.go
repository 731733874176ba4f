//go:build ignore

// Command gen derives spec/registry/models.json, the sensor's model metadata
// and price table, from the OISP provider bundles (format v2 for models and
// prices, format v1 for its model-family prefix rules and the few models v2
// lacks). The output is a fact file: regenerate it, never edit it by hand.
//
//	go run ./spec/registry/gen/main.go \
//	    -v2 ../shared/oisp-spec/bundle-v2/bundle.json \
//	    -v1 ../shared/oisp-spec/spec/v0.1/bundle.json \
//	    -out spec/registry/models.json
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
)

// bundleModel is a model entry of either bundle format.
type bundleModel struct {
	ID              string   `json:"id"`
	Provider        string   `json:"provider"`
	Name            string   `json:"name"`
	Family          string   `json:"family"`
	Mode            string   `json:"mode"`
	MaxInputTokens  *int     `json:"max_input_tokens"`
	MaxOutputTokens *int     `json:"max_output_tokens"`
	InputPer1K      *float64 `json:"input_cost_per_1k"`
	OutputPer1K     *float64 `json:"output_cost_per_1k"`
	CacheReadPer1K  *float64 `json:"cache_read_cost_per_1k"`
	CacheWritePer1K *float64 `json:"cache_write_cost_per_1k"`
}

type bundle struct {
	BundleVersion   string                  `json:"bundle_version"`
	GeneratedAt     string                  `json:"generated_at"`
	SourceURL       string                  `json:"source_url"`
	Models          map[string]*bundleModel `json:"models"`
	ExtractionRules map[string]struct {
		ModelFamilies map[string]struct {
			Pattern string `json:"pattern"`
		} `json:"model_families"`
	} `json:"extraction_rules"`
}

// outModel is one line of models.json (the provider package's ModelInfo).
type outModel struct {
	ID              string   `json:"id"`
	Provider        string   `json:"provider"`
	Name            string   `json:"name,omitempty"`
	Family          string   `json:"family,omitempty"`
	Mode            string   `json:"mode,omitempty"`
	ContextWindow   int      `json:"context_window,omitempty"`
	MaxOutputTokens int      `json:"max_output_tokens,omitempty"`
	InputPer1K      *float64 `json:"input_cost_per_1k,omitempty"`
	OutputPer1K     *float64 `json:"output_cost_per_1k,omitempty"`
	CacheReadPer1K  *float64 `json:"cache_read_cost_per_1k,omitempty"`
	CacheWritePer1K *float64 `json:"cache_write_cost_per_1k,omitempty"`
}

type familyRule struct {
	Provider string `json:"provider"`
	Prefix   string `json:"prefix"`
	Family   string `json:"family"`
}

// providerIDs renames bundle provider keys to the sensor registry's ids
// (spec/registry/providers.json).
var providerIDs = map[string]string{"togetherai": "together"}

func main() {
	v2 := flag.String("v2", "../shared/oisp-spec/bundle-v2/bundle.json", "bundle format v2")
	v1 := flag.String("v1", "../shared/oisp-spec/spec/v0.1/bundle.json", "bundle format v1")
	out := flag.String("out", "spec/registry/models.json", "output file")
	flag.Parse()
	if err := run(*v2, *v1, *out); err != nil {
		slog.Error("gen models.json", "err", err)
		os.Exit(1)
	}
}

func load(path string) (*bundle, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	var b bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("parse bundle %s: %w", path, err)
	}
	return &b, nil
}

func run(v2Path, v1Path, outPath string) error {
	b2, err := load(v2Path)
	if err != nil {
		return err
	}
	b1, err := load(v1Path)
	if err != nil {
		return err
	}
	models := map[string]outModel{}
	add := func(key string, m *bundleModel) {
		if m == nil {
			return
		}
		prov, id, _ := strings.Cut(key, "/")
		if m.Provider != "" {
			prov = m.Provider
		}
		if m.ID != "" {
			id = m.ID
		}
		if p, ok := providerIDs[prov]; ok {
			prov = p
		}
		o := outModel{ID: id, Provider: prov, Name: m.Name, Family: m.Family, Mode: m.Mode,
			InputPer1K: m.InputPer1K, OutputPer1K: m.OutputPer1K,
			CacheReadPer1K: m.CacheReadPer1K, CacheWritePer1K: m.CacheWritePer1K}
		if m.MaxInputTokens != nil {
			o.ContextWindow = *m.MaxInputTokens
		}
		if m.MaxOutputTokens != nil {
			o.MaxOutputTokens = *m.MaxOutputTokens
		}
		models[prov+"/"+id] = o
	}
	for k, m := range b1.Models { // v1 first: v2 overrides every model it has
		add(k, m)
	}
	for k, m := range b2.Models {
		add(k, m)
	}
	keys := make([]string, 0, len(models))
	for k := range models {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	families := familyRules(b1)

	var buf bytes.Buffer
	buf.WriteString("{\n")
	fmt.Fprintf(&buf, "  \"comment\": %q,\n", "Model metadata and prices (USD per 1K tokens) derived by spec/registry/gen from the OISP provider bundles; do not edit by hand. A missing price is unknown, not zero. families: prefix rules from the v1 bundle's model_families for models not listed.")
	fmt.Fprintf(&buf, "  \"source\": %q,\n", fmt.Sprintf("oisp-spec bundle v%s generated %s from %s; bundle v%s generated %s", b2.BundleVersion, b2.GeneratedAt, b2.SourceURL, b1.BundleVersion, b1.GeneratedAt))
	buf.WriteString("  \"models\": [\n")
	for i, k := range keys {
		line, err := json.Marshal(models[k])
		if err != nil {
			return fmt.Errorf("encode %s: %w", k, err)
		}
		buf.WriteString("    ")
		buf.Write(line)
		if i < len(keys)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("  ],\n  \"families\": [\n")
	for i, f := range families {
		line, _ := json.Marshal(f)
		buf.WriteString("    ")
		buf.Write(line)
		if i < len(families)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("  ]\n}\n")
	if !json.Valid(buf.Bytes()) {
		return fmt.Errorf("generated models.json is not valid JSON")
	}
	if err := os.WriteFile(outPath, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", outPath, err)
	}
	slog.Info("wrote models.json", "models", len(keys), "families", len(families), "path", outPath)
	return nil
}

// reAnchoredPrefix matches one "^literal" alternative of a family pattern,
// optionally followed by a negative lookahead (which RE2 cannot compile;
// longest-prefix-first ordering of the rules replaces it).
var reAnchoredPrefix = regexp.MustCompile(`^\^([A-Za-z0-9.\\_-]+)(\(\?![^)]*\))?$`)

// familyRules turns the v1 model_families patterns into prefix rules.
// Unanchored alternatives ("embed|minilm") are not prefixes and are
// skipped.
func familyRules(b *bundle) []familyRule {
	var out []familyRule
	for prov, rules := range b.ExtractionRules {
		for fam, r := range rules.ModelFamilies {
			for _, alt := range strings.Split(r.Pattern, "|") {
				m := reAnchoredPrefix.FindStringSubmatch(alt)
				if m == nil {
					continue
				}
				prefix := strings.ReplaceAll(m[1], `\.`, ".")
				if strings.Contains(prefix, `\`) {
					continue
				}
				out = append(out, familyRule{Provider: prov, Prefix: prefix, Family: fam})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Prefix < out[j].Prefix
	})
	return out
}
