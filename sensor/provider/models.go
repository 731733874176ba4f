package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
)

// ModelInfo is metadata and pricing for one model. Prices are USD per 1,000
// tokens; a nil price is unknown (never zero by default).
type ModelInfo struct {
	ID              string   `json:"id"`
	Provider        string   `json:"provider"`
	Family          string   `json:"family,omitempty"`
	ContextWindow   int      `json:"context_window,omitempty"`
	MaxOutputTokens int      `json:"max_output_tokens,omitempty"`
	InputPer1K      *float64 `json:"input_cost_per_1k,omitempty"`
	OutputPer1K     *float64 `json:"output_cost_per_1k,omitempty"`
	CacheReadPer1K  *float64 `json:"cache_read_cost_per_1k,omitempty"`
	CacheWritePer1K *float64 `json:"cache_write_cost_per_1k,omitempty"`
}

type modelTable struct {
	byKey map[string]*ModelInfo // "provider/model_id"
}

func loadModels(fsys fs.FS, dir string) (*modelTable, error) {
	t := &modelTable{byKey: map[string]*ModelInfo{}}
	raw, err := fs.ReadFile(fsys, dir+"/models.json")
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("provider registry: %w", err)
	}
	var doc struct {
		Models []*ModelInfo `json:"models"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("provider registry: models.json: %w", err)
	}
	for _, m := range doc.Models {
		t.byKey[m.Provider+"/"+m.ID] = m
	}
	return t, nil
}

// Model looks up model metadata for a provider. The lookup order (exact id,
// date suffix stripped, region prefix stripped, other providers serving the
// same id) is implemented in lookupModel.
func (r *Registry) Model(providerID, modelID string) (*ModelInfo, bool) {
	m, ok := r.models.lookup(providerID, modelID)
	return m, ok
}

func (t *modelTable) lookup(providerID, modelID string) (*ModelInfo, bool) {
	m, ok := t.byKey[providerID+"/"+modelID]
	return m, ok
}
