package report

import (
	"cmp"
	"slices"
	"time"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Result is a Report's summary. Its JSON field names are stable: the
// `report --json` output is this struct.
type Result struct {
	// First and Last are the earliest and latest event times counted.
	First *time.Time `json:"first,omitempty"`
	Last  *time.Time `json:"last,omitempty"`
	// Lines counts non-blank lines read; Events the OISP events among them
	// inside the time filter; Filtered the events outside it; BadLines the
	// lines that were not OISP events, the first few in BadLineSamples.
	Lines          int64       `json:"lines"`
	Events         int64       `json:"events"`
	Filtered       int64       `json:"filtered,omitempty"`
	BadLines       int64       `json:"bad_lines"`
	BadLineSamples []LineError `json:"bad_line_samples,omitempty"`
	// EventTypes counts the events by event_type.
	EventTypes map[string]int64 `json:"event_types"`

	// Total sums every call; Models has one row per provider and model
	// (the model as answered when a response was seen, else as
	// requested), Providers one per provider, Apps one per application.
	// Rows are sorted by calls, most first.
	Total     Stats   `json:"total"`
	Providers []Group `json:"providers"`
	Models    []Group `json:"models"`
	Apps      []Group `json:"apps"`

	// Conversations has one row per data.conversation_id (the sensor's:
	// same process, provider, system prompt and first user message, or a
	// request continuing provider-held state), sorted by estimated cost,
	// then input plus output tokens, then calls, most first.
	// CallsWithoutConversation counts the calls whose events name none
	// (embeddings do not); they are in no row. Conversation is the one
	// conversation the report was restricted to, if any.
	Conversations            []Conversation `json:"conversations"`
	CallsWithoutConversation int64          `json:"calls_without_conversation"`
	Conversation             string         `json:"conversation,omitempty"`

	Tools      []Tool      `json:"tools"`
	Embeddings []Embedding `json:"embeddings"`

	// PendingEvicted counts requests given up on (reported as no
	// response seen) because too many were waiting for a response.
	PendingEvicted int64    `json:"pending_evicted,omitempty"`
	Overflow       Overflow `json:"overflow"`
}

// Overflow counts the events folded into an "(other)" row because their
// table was at its cap (Options.MaxGroups, MaxTools, MaxConversations).
type Overflow struct {
	Models        int64 `json:"models,omitempty"`
	Apps          int64 `json:"apps,omitempty"`
	Tools         int64 `json:"tools,omitempty"`
	Embeddings    int64 `json:"embeddings,omitempty"`
	Conversations int64 `json:"conversations,omitempty"`
}

// Group is one row: a provider, a provider and model, or an application.
type Group struct {
	Provider string `json:"provider,omitempty"`
	Model    string `json:"model,omitempty"`
	App      string `json:"app,omitempty"`
	Stats
}

// Stats are the calls of a group. A call is an ai.request with its
// ai.response, a response whose request was not seen, or a request whose
// response was not seen (NoResponse).
type Stats struct {
	Calls      int64 `json:"calls"`
	Errors     int64 `json:"errors"`
	NoResponse int64 `json:"no_response"`
	Streamed   int64 `json:"streamed"`
	// ErrorTypes counts failed responses by the provider's error type
	// (else "code C", else "http S").
	ErrorTypes map[string]int64 `json:"error_types,omitempty"`

	// WithUsage counts the responses that reported token usage. Input
	// tokens include cache reads and writes; CacheHitRate is cache read
	// over input tokens, of the calls that reported a cache read count.
	WithUsage           int64    `json:"with_usage"`
	InputTokens         int64    `json:"input_tokens"`
	OutputTokens        int64    `json:"output_tokens"`
	CacheReadTokens     int64    `json:"cache_read_tokens"`
	CacheCreationTokens int64    `json:"cache_creation_tokens"`
	ReasoningTokens     int64    `json:"reasoning_tokens"`
	CacheHitRate        *float64 `json:"cache_hit_rate,omitempty"`

	// CostUSD sums the sensor's own estimates (usage.total_cost_usd) of
	// Priced calls; Unpriced calls had none (no price known for the model,
	// no usage reported, or no response) and are not in CostUSD.
	CostUSD  float64 `json:"cost_usd"`
	Priced   int64   `json:"priced"`
	Unpriced int64   `json:"unpriced"`

	// Latency is response latency_ms, TTFT time_to_first_token_ms, read
	// from a fixed-bucket histogram: within 1/64 of the exact value.
	Latency *Percentiles `json:"latency_ms,omitempty"`
	TTFT    *Percentiles `json:"ttft_ms,omitempty"`

	cacheInput int64 // input tokens of calls that reported cache reads
	latency    histogram
	ttft       histogram
}

// Percentiles are nearest-rank percentiles in milliseconds.
type Percentiles struct {
	Samples int64 `json:"samples"`
	P50     int64 `json:"p50"`
	P95     int64 `json:"p95"`
}

// Tool counts one tool name's agent.tool_call and agent.tool_result events.
type Tool struct {
	Name          string `json:"name"`
	Calls         int64  `json:"calls"`
	Results       int64  `json:"results"`
	FailedResults int64  `json:"failed_results"`
}

// Embedding counts the ai.embedding events of one provider and model.
// Their calls, tokens and cost are in Models too (each embedding call has
// its ai.request and ai.response); these are what only embeddings have.
type Embedding struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Events   int64  `json:"events"`
	Errors   int64  `json:"errors"`
	Inputs   int64  `json:"inputs"`
	Vectors  int64  `json:"vectors"`
	Tokens   int64  `json:"tokens"`
}

// Conversation is the calls of one conversation: what an agent session
// cost. Calls, Errors, NoResponse, tokens, cost, Priced and Unpriced count
// as in Stats. Provider and Model are its most used model, OtherModels
// how many more it used; Models lists them all, most used first (at most
// maxConversationModels, the rest folded into an "(other)" entry).
type Conversation struct {
	ID          string              `json:"id"`
	App         string              `json:"app"`
	Provider    string              `json:"provider"`
	Model       string              `json:"model"`
	OtherModels int                 `json:"other_models"`
	Models      []ConversationModel `json:"models"`

	Calls           int64   `json:"calls"`
	Errors          int64   `json:"errors"`
	NoResponse      int64   `json:"no_response"`
	InputTokens     int64   `json:"input_tokens"`
	OutputTokens    int64   `json:"output_tokens"`
	CacheReadTokens int64   `json:"cache_read_tokens"`
	CostUSD         float64 `json:"cost_usd"`
	Priced          int64   `json:"priced"`
	Unpriced        int64   `json:"unpriced"`
	// ToolCalls sums the responses' tool_calls_count.
	ToolCalls int64 `json:"tool_calls"`

	// First is the earliest request (or response) time of its calls, Last
	// the latest response (or request) time.
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	DurationMS int64     `json:"duration_ms"`
}

// ConversationModel is a provider and model a conversation called, and
// how often.
type ConversationModel struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Calls    int64  `json:"calls"`
}

// maxConversationModels caps the models listed per conversation: an
// agent uses a few.
const maxConversationModels = 8

// call counts one call of the conversation, from its request time to its
// response time.
func (c *Conversation) call(app, provider, model string, from, to time.Time) {
	c.Calls++
	if c.App == "" || c.App == Unknown {
		c.App = app
	}
	for _, at := range [...]time.Time{from, to} { // a clock may step back between them
		if c.First.IsZero() || at.Before(c.First) {
			c.First = at
		}
		if at.After(c.Last) {
			c.Last = at
		}
	}
	if c.countModel(provider, model) {
		return
	}
	if len(c.Models) >= maxConversationModels {
		provider, model = OtherGroup, OtherGroup
		if c.countModel(provider, model) {
			return
		}
	}
	c.Models = append(c.Models, ConversationModel{Provider: provider, Model: model, Calls: 1})
}

// countModel counts a call of a model already listed, if it is.
func (c *Conversation) countModel(provider, model string) bool {
	for i := range c.Models {
		if m := &c.Models[i]; m.Provider == provider && m.Model == model {
			m.Calls++
			return true
		}
	}
	return false
}

func (c *Conversation) addUsage(u *oisp.Usage) {
	if u == nil {
		c.Unpriced++
		return
	}
	addTokens(&c.InputTokens, u.PromptTokens)
	addTokens(&c.OutputTokens, u.CompletionTokens)
	addTokens(&c.CacheReadTokens, u.CachedTokens)
	if u.TotalCostUSD != nil {
		c.CostUSD += *u.TotalCostUSD
		c.Priced++
	} else {
		c.Unpriced++
	}
}

// finish fills the derived fields of a row named id.
func (c *Conversation) finish(id string) {
	c.ID = id
	switch {
	case id == OtherGroup:
		c.App = OtherGroup // the calls of many conversations
	case c.App == "":
		c.App = Unknown
	}
	slices.SortStableFunc(c.Models, func(a, b ConversationModel) int { return cmp.Compare(b.Calls, a.Calls) })
	if len(c.Models) > 0 {
		c.Provider, c.Model, c.OtherModels = c.Models[0].Provider, c.Models[0].Model, len(c.Models)-1
	}
	c.DurationMS = c.Last.Sub(c.First).Milliseconds()
}

type toolStats struct {
	Calls, Results, FailedResults int64
}

func (s *Stats) errorType(t string, max int) {
	if s.ErrorTypes == nil {
		s.ErrorTypes = map[string]int64{}
	}
	if _, ok := s.ErrorTypes[t]; !ok && len(s.ErrorTypes) >= max {
		t = OtherGroup
	}
	s.ErrorTypes[t]++
}

func (s *Stats) addUsage(u *oisp.Usage) {
	if u == nil {
		s.Unpriced++
		return
	}
	if u.PromptTokens != nil || u.CompletionTokens != nil || u.TotalTokens != nil {
		s.WithUsage++
	}
	addTokens(&s.InputTokens, u.PromptTokens)
	addTokens(&s.OutputTokens, u.CompletionTokens)
	addTokens(&s.CacheReadTokens, u.CachedTokens)
	addTokens(&s.CacheCreationTokens, u.CacheCreationTokens)
	addTokens(&s.ReasoningTokens, u.ReasoningTokens)
	if u.CachedTokens != nil {
		addTokens(&s.cacheInput, u.PromptTokens)
	}
	if u.TotalCostUSD != nil {
		s.CostUSD += *u.TotalCostUSD
		s.Priced++
	} else {
		s.Unpriced++
	}
}

// addTokens adds a token count a usage may leave out.
func addTokens(dst *int64, v *int) {
	if v != nil {
		*dst += int64(*v)
	}
}

// merge adds o into s (for the provider rows and the total).
func (s *Stats) merge(o *Stats) {
	s.Calls += o.Calls
	s.Errors += o.Errors
	s.NoResponse += o.NoResponse
	s.Streamed += o.Streamed
	for t, n := range o.ErrorTypes {
		if s.ErrorTypes == nil {
			s.ErrorTypes = map[string]int64{}
		}
		s.ErrorTypes[t] += n
	}
	s.WithUsage += o.WithUsage
	s.InputTokens += o.InputTokens
	s.OutputTokens += o.OutputTokens
	s.CacheReadTokens += o.CacheReadTokens
	s.CacheCreationTokens += o.CacheCreationTokens
	s.ReasoningTokens += o.ReasoningTokens
	s.cacheInput += o.cacheInput
	s.CostUSD += o.CostUSD
	s.Priced += o.Priced
	s.Unpriced += o.Unpriced
	s.latency.merge(&o.latency)
	s.ttft.merge(&o.ttft)
}

// finish fills the derived fields.
func (s *Stats) finish() {
	s.CacheHitRate = nil
	if s.cacheInput > 0 {
		rate := float64(s.CacheReadTokens) / float64(s.cacheInput)
		s.CacheHitRate = &rate
	}
	s.Latency = s.latency.percentiles()
	s.TTFT = s.ttft.percentiles()
}

// copyStats returns a deep copy of s, so that a Result shares nothing with
// the Report that goes on adding.
func copyStats(s *Stats) Stats {
	var c Stats
	c.merge(s)
	return c
}

// Result summarises what was added so far. Requests still waiting for
// their response count as "no response seen". The Report can go on.
func (r *Report) Result() *Result {
	res := &Result{
		Lines: r.lines, Events: r.events, Filtered: r.filtered,
		BadLines: r.badLines, BadLineSamples: slices.Clone(r.badSamples),
		EventTypes:     make(map[string]int64, len(r.eventTypes)),
		PendingEvicted: r.evicted, Overflow: r.overflow,
		// Empty tables are [] in JSON, not null.
		Providers: []Group{}, Models: []Group{}, Apps: []Group{}, Tools: []Tool{}, Embeddings: []Embedding{},
		Conversations: []Conversation{}, CallsWithoutConversation: r.noConversation, Conversation: r.opts.Conversation,
	}
	if r.events > 0 {
		first, last := r.first, r.last
		res.First, res.Last = &first, &last
	}
	for t, n := range r.eventTypes {
		res.EventTypes[t] = n
	}

	models := make(map[groupKey]*Stats, len(r.models))
	for k, s := range r.models {
		c := copyStats(s)
		models[k] = &c
	}
	apps := make(map[string]*Stats, len(r.apps))
	for k, s := range r.apps {
		c := copyStats(s)
		apps[k] = &c
	}
	convs := make(map[string]*Conversation, len(r.conversations))
	for id, c := range r.conversations {
		cc := *c
		cc.Models = slices.Clone(c.Models)
		convs[id] = &cc
	}
	// Requests still waiting count as unanswered, in groups capped as
	// modelStats, appStats and conversation cap them.
	for el := r.pendingOrder.Front(); el != nil; el = el.Next() {
		p := el.Value.(*pendingRequest)
		var conv *Conversation
		if p.conversation != "" {
			conv = capped(convs, p.conversation, OtherGroup, r.opts.MaxConversations)
		} else {
			res.CallsWithoutConversation++
		}
		r.noResponse(p, capped(models, groupKey{p.provider, p.model}, groupKey{OtherGroup, OtherGroup}, r.opts.MaxGroups),
			capped(apps, p.app, OtherGroup, r.opts.MaxGroups), conv)
	}
	for id, c := range convs {
		c.finish(id)
		res.Conversations = append(res.Conversations, *c)
	}
	slices.SortFunc(res.Conversations, func(a, b Conversation) int {
		return cmp.Or(cmp.Compare(b.CostUSD, a.CostUSD), cmp.Compare(b.InputTokens+b.OutputTokens, a.InputTokens+a.OutputTokens),
			cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.ID, b.ID))
	})

	providers := map[string]*Stats{}
	for k, s := range models {
		res.Total.merge(s)
		p := providers[k.provider]
		if p == nil {
			p = &Stats{}
			providers[k.provider] = p
		}
		p.merge(s)
		s.finish()
		res.Models = append(res.Models, Group{Provider: k.provider, Model: k.model, Stats: *s})
	}
	res.Total.finish()
	for name, s := range providers {
		s.finish()
		res.Providers = append(res.Providers, Group{Provider: name, Stats: *s})
	}
	for name, s := range apps {
		s.finish()
		res.Apps = append(res.Apps, Group{App: name, Stats: *s})
	}
	for _, rows := range [][]Group{res.Models, res.Providers, res.Apps} {
		slices.SortFunc(rows, func(a, b Group) int {
			return cmp.Or(cmp.Compare(b.Calls, a.Calls),
				cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Model, b.Model), cmp.Compare(a.App, b.App))
		})
	}

	for name, t := range r.tools {
		res.Tools = append(res.Tools, Tool{Name: name, Calls: t.Calls, Results: t.Results, FailedResults: t.FailedResults})
	}
	slices.SortFunc(res.Tools, func(a, b Tool) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(b.Results, a.Results), cmp.Compare(a.Name, b.Name))
	})
	for k, e := range r.embedding {
		row := *e
		row.Provider, row.Model = k.provider, k.model
		res.Embeddings = append(res.Embeddings, row)
	}
	slices.SortFunc(res.Embeddings, func(a, b Embedding) int {
		return cmp.Or(cmp.Compare(b.Events, a.Events), cmp.Compare(a.Provider, b.Provider), cmp.Compare(a.Model, b.Model))
	})
	return res
}

// capped returns m's row for key, made if m is under max rows, else the
// row for other.
func capped[K comparable, V any](m map[K]*V, key, other K, max int) *V {
	if s, ok := m[key]; ok {
		return s
	}
	if len(m) >= max {
		key = other
		if s, ok := m[key]; ok {
			return s
		}
	}
	s := new(V)
	m[key] = s
	return s
}
