package provider

import (
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"io/fs"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// ModelInfo is metadata and pricing for one model. Prices are USD per 1,000
// tokens; a nil price is unknown (never zero by default).
type ModelInfo struct {
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

// FamilyRule names the family of model ids with a prefix, for models the
// table does not list (from the v1 bundle's model_families).
type FamilyRule struct {
	Provider string `json:"provider"`
	Prefix   string `json:"prefix"`
	Family   string `json:"family"`
}

type modelTable struct {
	byKey    map[string]*ModelInfo   // "provider/model_id"
	byID     map[string][]*ModelInfo // model_id -> entries, preferred provider first
	families []FamilyRule            // longest prefix first

	// found memoises lookups ("provider\x00model" -> *modelFound): every
	// exchange looks its models up several times, and the candidate ids
	// cost regular expressions. At most maxMemo entries, so hostile model
	// names cannot grow it without bound.
	found  sync.Map
	memoed atomic.Int64
}

// modelFound is a memoised lookup: the model's entry, or for a model the
// table lacks, the family the prefix rules give its id (a search of every
// rule, which every exchange with such a model would otherwise repeat).
type modelFound struct {
	info   *ModelInfo
	family string
}

// maxMemo bounds the lookup memo.
const maxMemo = 4096

// firstParty ranks providers whose entry should win when a model id is
// served by several (the vendor's own price is the reference).
var firstParty = []string{"openai", "anthropic", "google", "mistral", "cohere", "deepseek", "xai",
	"groq", "together", "fireworks", "perplexity", "cerebras", "azure_openai", "aws_bedrock", "google_vertex"}

func providerRank(id string) int {
	for i, p := range firstParty {
		if p == id {
			return i
		}
	}
	return len(firstParty)
}

func loadModels(fsys fs.FS, dir string) (*modelTable, error) {
	t := &modelTable{byKey: map[string]*ModelInfo{}, byID: map[string][]*ModelInfo{}}
	raw, err := fs.ReadFile(fsys, dir+"/models.json")
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("provider registry: %w", err)
	}
	var doc struct {
		Models   []*ModelInfo `json:"models"`
		Families []FamilyRule `json:"families"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("provider registry: models.json: %w", err)
	}
	for _, m := range doc.Models {
		if m == nil || m.ID == "" || m.Provider == "" {
			continue
		}
		t.byKey[m.Provider+"/"+m.ID] = m
		t.byID[m.ID] = append(t.byID[m.ID], m)
	}
	for _, ms := range t.byID {
		sort.SliceStable(ms, func(i, j int) bool {
			ri, rj := providerRank(ms[i].Provider), providerRank(ms[j].Provider)
			if ri != rj {
				return ri < rj
			}
			return ms[i].Provider < ms[j].Provider
		})
	}
	t.families = doc.Families
	sort.SliceStable(t.families, func(i, j int) bool { return len(t.families[i].Prefix) > len(t.families[j].Prefix) })
	return t, nil
}

// Model looks up model metadata for a provider: the exact id, then the id
// with a date suffix, region prefix or Bedrock vendor prefix and version
// stripped, first under providerID and then (except for local servers) under
// any provider that serves the same id (the model vendor's own entry
// preferred).
func (r *Registry) Model(providerID, modelID string) (*ModelInfo, bool) {
	if r == nil || r.models == nil {
		return nil, false
	}
	return r.models.lookup(providerID, modelID)
}

// providerAliases are registry ids whose models the bundle files under
// another key.
var providerAliases = map[string][]string{
	"google_vertex": {"google"},
	"google":        {"google_vertex"},
	"together":      {"togetherai"},
}

// localProviders serve models on the user's own machine: a model id they
// share with a cloud provider does not carry the cloud's price, so lookups
// stay within the provider's own entries.
var localProviders = map[string]bool{"ollama": true, "lmstudio": true, "vllm": true, "llamacpp": true, "localai": true}

func (t *modelTable) lookup(providerID, modelID string) (*ModelInfo, bool) {
	f := t.find(providerID, modelID)
	return f.info, f.info != nil
}

// find returns the memoised lookup of a model, making it on a miss.
func (t *modelTable) find(providerID, modelID string) modelFound {
	if modelID == "" {
		return modelFound{}
	}
	// The memo is probed with a key built on the stack: most lookups hit,
	// and only a miss needs a key of its own to store.
	var buf [128]byte
	probe := append(append(append(buf[:0], providerID...), 0), modelID...)
	if v, ok := t.found.Load(unsafe.String(unsafe.SliceData(probe), len(probe))); ok {
		return *v.(*modelFound)
	}
	key := string(probe)
	f := new(modelFound)
	if m, ok := t.search(providerID, modelID); ok {
		f.info = m
	} else {
		f.family = t.family(providerID, modelID)
	}
	if t.memoed.Add(1) <= maxMemo {
		if _, loaded := t.found.LoadOrStore(key, f); loaded {
			t.memoed.Add(-1)
		}
	} else {
		t.memoed.Add(-1)
	}
	return *f
}

// search runs the lookup order of Registry.Model.
func (t *modelTable) search(providerID, modelID string) (*ModelInfo, bool) {
	cands := modelCandidates(modelID)
	provs := append([]string{providerID}, providerAliases[providerID]...)
	for _, p := range provs {
		for _, c := range cands {
			if m, ok := t.byKey[p+"/"+c]; ok {
				return m, true
			}
		}
	}
	if localProviders[providerID] {
		return nil, false
	}
	for _, c := range cands {
		if ms := t.byID[c]; len(ms) > 0 {
			return ms[0], true
		}
	}
	return nil, false
}

var (
	// -2024-08-06, -20240806, @20240806, @2024-08-06
	reDateSuffix = regexp.MustCompile(`[-@](\d{4}-\d{2}-\d{2}|\d{8})$`)
	// gpt-3.5-turbo-0125, gpt-4-0613: OpenAI's MMDD snapshots.
	reShortDate = regexp.MustCompile(`-\d{4}$`)
	// Bedrock model versions: -v1:0, -v2, :0, :0:8k
	reBedrockVersion = regexp.MustCompile(`(-v\d+)?(:\d+)+(:[0-9a-z]+)?$|-v\d+$`)
	// Bedrock cross-region inference profiles.
	reRegionPrefix = regexp.MustCompile(`^(us|eu|apac|ap|jp|au|ca|us-gov|global)\.`)
	// Bedrock vendor prefixes (anthropic.claude-…, meta.llama…).
	reVendorPrefix = regexp.MustCompile(`^(anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|google|minimax|moonshot|nvidia|writer|twelvelabs|stability)\.`)
)

// modelCandidates lists the ids to try for a model, most specific first.
func modelCandidates(id string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		for _, have := range out {
			if have == s {
				return
			}
		}
		out = append(out, s)
	}
	id = strings.TrimSpace(id)
	add(id)
	base := strings.TrimPrefix(id, "models/")
	add(base)
	// Vertex writes Anthropic dates with '@': claude-sonnet-4@20250514.
	if i := strings.IndexByte(base, '@'); i > 0 {
		add(base[:i] + "-" + base[i+1:])
	}
	variants := []string{base}
	if r := reRegionPrefix.ReplaceAllString(base, ""); r != base {
		add(r)
		variants = append(variants, r)
	}
	for _, v := range append([]string(nil), variants...) {
		if r := reVendorPrefix.ReplaceAllString(v, ""); r != v {
			add(r)
			variants = append(variants, r)
		}
	}
	for _, v := range append([]string(nil), variants...) {
		if r := reBedrockVersion.ReplaceAllString(v, ""); r != v {
			add(r)
			variants = append(variants, r)
		}
	}
	for _, v := range append([]string(nil), variants...) {
		if r := reDateSuffix.ReplaceAllString(v, ""); r != v {
			add(r)
			variants = append(variants, r)
		}
	}
	// Router-style ids: openai/gpt-4o, anthropic/claude-3.5-sonnet.
	for _, v := range append([]string(nil), variants...) {
		if i := strings.LastIndexByte(v, '/'); i >= 0 && i < len(v)-1 {
			s := v[i+1:]
			add(s)
			if r := reDateSuffix.ReplaceAllString(s, ""); r != s {
				add(r)
			}
		}
	}
	for _, v := range variants {
		if r := reShortDate.ReplaceAllString(v, ""); r != v {
			add(r)
		}
	}
	return out
}

// family returns the family of an unlisted model from the prefix rules.
func (t *modelTable) family(providerID, modelID string) string {
	id := strings.ToLower(strings.TrimPrefix(modelID, "models/"))
	for _, rule := range t.families {
		if (rule.Provider == "" || rule.Provider == providerID) && strings.HasPrefix(id, rule.Prefix) {
			return rule.Family
		}
	}
	for _, rule := range t.families {
		if strings.HasPrefix(id, rule.Prefix) {
			return rule.Family
		}
	}
	return ""
}

// DescribeModel fills a model's family, display name, context window and
// output limit from the table; unknown models keep what they have (a
// family from the prefix rules at most).
func (r *Registry) DescribeModel(m *oisp.Model, providerID string) {
	if r == nil || r.models == nil || m == nil || m.ID == "" {
		return
	}
	f := r.models.find(providerID, m.ID)
	info := f.info
	if info == nil {
		if m.Family == "" {
			m.Family = f.family
		}
		return
	}
	if m.Family == "" {
		m.Family = info.Family
	}
	if m.Name == "" {
		m.Name = info.Name
	}
	if m.ContextWindow == 0 {
		m.ContextWindow = info.ContextWindow
	}
	if m.MaxOutputTokens == 0 {
		m.MaxOutputTokens = info.MaxOutputTokens
	}
}

// Price fills u's cost fields from the model's prices and reports whether
// it could. Uncached input is priced at the input price, cache reads at the
// cache-read price and cache writes at the cache-write price (each falling
// back to the input price when the table has none); completion tokens
// (reasoning included) at the output price. Without a usable price every
// cost field is cleared and u.Cost is "unknown": an unknown price is never
// reported as zero.
func (r *Registry) Price(u *oisp.Usage, providerID, modelID string) bool {
	return r.priceIn(u, providerID, modelID, nil)
}

// priceIn is Price writing the three costs to costs (allocated when nil):
// a response's are in the room allocated with its result.
func (r *Registry) priceIn(u *oisp.Usage, providerID, modelID string, costs *[3]float64) bool {
	if u == nil {
		return false
	}
	if u.PromptTokens == nil && u.CompletionTokens == nil {
		return false
	}
	u.InputCostUSD, u.OutputCostUSD, u.TotalCostUSD = nil, nil, nil
	u.Cost = "unknown"
	if r == nil || r.models == nil {
		return false
	}
	m, ok := r.models.lookup(providerID, modelID)
	if !ok {
		return false
	}
	in, out, ok := costOf(u, m)
	if !ok {
		return false
	}
	u.Cost = ""
	if costs == nil {
		costs = new([3]float64) // one allocation for the three
	}
	*costs = [3]float64{roundUSD(in), roundUSD(out), roundUSD(in + out)}
	u.InputCostUSD, u.OutputCostUSD, u.TotalCostUSD = &costs[0], &costs[1], &costs[2]
	return true
}

// costOf computes input and output cost; ok is false when a needed price is
// missing.
func costOf(u *oisp.Usage, m *ModelInfo) (in, out float64, ok bool) {
	val := func(p *int) int {
		if p == nil || *p < 0 {
			return 0
		}
		return *p
	}
	prompt, cached, written, completion := val(u.PromptTokens), val(u.CachedTokens), val(u.CacheCreationTokens), val(u.CompletionTokens)
	if cached > prompt {
		cached = prompt
	}
	if written > prompt-cached {
		written = prompt - cached
	}
	uncached := prompt - cached - written
	price := func(tokens int, p, fallback *float64) (float64, bool) {
		if tokens == 0 {
			return 0, true
		}
		if p == nil {
			p = fallback
		}
		if p == nil {
			return 0, false
		}
		return float64(tokens) / 1000 * *p, true
	}
	a, ok1 := price(uncached, m.InputPer1K, nil)
	b, ok2 := price(cached, m.CacheReadPer1K, m.InputPer1K)
	c, ok3 := price(written, m.CacheWritePer1K, m.InputPer1K)
	d, ok4 := price(completion, m.OutputPer1K, nil)
	if !(ok1 && ok2 && ok3 && ok4) || (m.InputPer1K == nil && m.OutputPer1K == nil) {
		return 0, 0, false
	}
	return a + b + c, d, true
}

// roundUSD rounds to 1e-10 USD: far below a token's price, far above
// float64 noise.
func roundUSD(v float64) float64 {
	return math.Round(v*1e10) / 1e10
}
