package report

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// wantConversation is what a conversation row should report, summed from
// the events as generic JSON.
type wantConversation struct {
	calls, errors, noResponse, input, output, cacheRead int64
	priced, unpriced, toolCalls                         int64
	cost                                                float64
	first, last                                         time.Time
	models                                              map[string]int64 // "provider/model" → calls
	hasApp                                              bool             // an event names a process or app
}

// expectConversations sums the calls of files per data.conversation_id,
// independently of the package: a call's conversation is the one its
// response or request names; its tool calls are the agent.tool_call
// events caused by its response; its time span runs from the earliest to
// the latest of its events. It also returns the calls that name none.
func expectConversations(t *testing.T, files []string) (map[string]*wantConversation, int64) {
	t.Helper()
	convs := map[string]*wantConversation{}
	var none int64
	for _, name := range files {
		// agent.tool_call events per response event id, in this file
		// (event ids repeat across fixture files).
		toolCalls := map[string]int64{}
		for _, ev := range readEvents(t, name) {
			if str(ev, "event_type") != "agent.tool_call" {
				continue
			}
			rels, _ := ev["related_events"].([]any)
			for _, r := range rels {
				if rel := r.(obj); rel["relationship"] == "caused_by" {
					toolCalls[str(rel, "event_id")]++
				}
			}
		}
		expectFixtures(t, []string{name}, func(key string, req, resp obj) {
			id := str(resp, "data", "conversation_id")
			if id == "" {
				id = str(req, "data", "conversation_id")
			}
			if id == "" {
				none++
				return
			}
			c := convs[id]
			if c == nil {
				c = &wantConversation{models: map[string]int64{}}
				convs[id] = c
			}
			c.calls++
			c.models[key]++
			for _, ev := range []obj{req, resp} {
				if ev == nil {
					continue
				}
				ts, err := time.Parse(time.RFC3339Nano, str(ev, "ts"))
				if err != nil {
					t.Fatal(err)
				}
				if c.first.IsZero() || ts.Before(c.first) {
					c.first = ts
				}
				if ts.After(c.last) {
					c.last = ts
				}
				if ev["process"] != nil || ev["app"] != nil {
					c.hasApp = true
				}
			}
			if resp == nil {
				c.noResponse++
				c.unpriced++
				return
			}
			d, _ := resp["data"].(obj)
			if failedResponse(d) {
				c.errors++
			}
			for _, f := range []struct {
				dst *int64
				key string
			}{{&c.input, "prompt_tokens"}, {&c.output, "completion_tokens"}, {&c.cacheRead, "cached_tokens"}} {
				if v, ok := num(d, "usage", f.key); ok {
					*f.dst += int64(v)
				}
			}
			if v, ok := num(d, "usage", "total_cost_usd"); ok {
				c.cost += v
				c.priced++
			} else {
				c.unpriced++
			}
			c.toolCalls += toolCalls[str(resp, "event_id")]
		})
	}
	return convs, none
}

func checkConversation(t *testing.T, got *Conversation, w *wantConversation) {
	t.Helper()
	ints := []struct {
		name      string
		got, want int64
	}{
		{"calls", got.Calls, w.calls}, {"errors", got.Errors, w.errors}, {"no response", got.NoResponse, w.noResponse},
		{"input", got.InputTokens, w.input}, {"output", got.OutputTokens, w.output}, {"cache read", got.CacheReadTokens, w.cacheRead},
		{"priced", got.Priced, w.priced}, {"unpriced", got.Unpriced, w.unpriced}, {"tool calls", got.ToolCalls, w.toolCalls},
		{"duration", got.DurationMS, w.last.Sub(w.first).Milliseconds()},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("%s: %s %d, want %d", got.ID, c.name, c.got, c.want)
		}
	}
	if math.Abs(got.CostUSD-w.cost) > 1e-12 {
		t.Errorf("%s: cost %g, want %g", got.ID, got.CostUSD, w.cost)
	}
	if !got.First.Equal(w.first) || !got.Last.Equal(w.last) {
		t.Errorf("%s: %v – %v, want %v – %v", got.ID, got.First, got.Last, w.first, w.last)
	}
	if !w.hasApp && got.App != Unknown {
		t.Errorf("%s: app %q, but no event names one", got.ID, got.App)
	}
	models := map[string]int64{}
	for i, m := range got.Models {
		models[m.Provider+"/"+m.Model] = m.Calls
		if i > 0 && m.Calls > got.Models[i-1].Calls {
			t.Errorf("%s: models not most used first: %+v", got.ID, got.Models)
		}
	}
	if !mapsEqual(models, w.models) {
		t.Errorf("%s: models %v, want %v", got.ID, models, w.models)
	}
	top := slices.MaxFunc(got.Models, func(a, b ConversationModel) int { return int(a.Calls - b.Calls) })
	if got.Provider+"/"+got.Model == "/" || w.models[got.Provider+"/"+got.Model] != top.Calls || got.OtherModels != len(w.models)-1 {
		t.Errorf("%s: most used %s/%s +%d, want one with %d calls +%d", got.ID, got.Provider, got.Model, got.OtherModels, top.Calls, len(w.models)-1)
	}
}

func TestConversationsMatchIndependentSums(t *testing.T) {
	files := fixtureFiles(t)
	want, none := expectConversations(t, files)
	rep := New(Options{})
	readFiles(t, rep, files)
	res := rep.Result()
	if len(res.Conversations) != len(want) || res.CallsWithoutConversation != none {
		t.Errorf("%d conversations, %d calls in none; want %d, %d", len(res.Conversations), res.CallsWithoutConversation, len(want), none)
	}
	var calls int64
	var toolCalls int64
	for i := range res.Conversations {
		c := &res.Conversations[i]
		calls += c.Calls
		toolCalls += c.ToolCalls
		w := want[c.ID]
		if w == nil {
			t.Errorf("conversation %s not in the events", c.ID)
			continue
		}
		checkConversation(t, c, w)
		if i > 0 {
			p := &res.Conversations[i-1]
			if p.CostUSD < c.CostUSD || (p.CostUSD == c.CostUSD && p.InputTokens+p.OutputTokens < c.InputTokens+c.OutputTokens) {
				t.Errorf("row %d (%s, $%g, %d tokens) sorts after row %d (%s, $%g, %d tokens)", i, c.ID, c.CostUSD,
					c.InputTokens+c.OutputTokens, i-1, p.ID, p.CostUSD, p.InputTokens+p.OutputTokens)
			}
		}
	}
	// Every call is in one conversation or counted as in none.
	if calls+res.CallsWithoutConversation != res.Total.Calls {
		t.Errorf("conversations hold %d calls and %d are in none, of %d", calls, res.CallsWithoutConversation, res.Total.Calls)
	}
	// The fixtures have what the table is for.
	if len(want) < 50 || toolCalls == 0 || none == 0 || res.Conversations[0].Priced == 0 {
		t.Errorf("fixtures lack conversations, tool calls, calls in none or a priced top row: %d, %d, %d", len(want), toolCalls, none)
	}
}

// TestCompactionChainIsOneConversation: pydantic-ai's Responses session
// that compacts its history three times (openai.responses_compact) and
// continues each compaction with previous_response_id is one
// conversation holding every call, compactions included.
func TestCompactionChainIsOneConversation(t *testing.T) {
	for _, dir := range []string{"pai-openai-responses-compact-with-auto-previous-response-id-chain", "pai-openai-responses-compact-messages"} {
		t.Run(dir, func(t *testing.T) {
			name := filepath.Join("../../fixtures/openai", dir, "expected.jsonl")
			// From the events: the calls, the compactions among them,
			// and the cost.
			var responses, compactions int64
			var cost float64
			for _, ev := range readEvents(t, name) {
				switch str(ev, "event_type") {
				case "ai.request":
					if str(ev, "data", "endpoint") == "openai.responses_compact" {
						compactions++
					}
				case "ai.response":
					responses++
					c, _ := num(ev, "data", "usage", "total_cost_usd")
					cost += c
				}
			}
			if compactions == 0 || responses < compactions+2 {
				t.Fatalf("%s: %d calls, %d compactions: not a compaction chain", dir, responses, compactions)
			}
			want, _ := expectConversations(t, []string{name})
			rep := New(Options{})
			readFiles(t, rep, []string{name})
			res := rep.Result()
			if len(res.Conversations) != 1 {
				t.Fatalf("%d conversations, want 1: %+v", len(res.Conversations), res.Conversations)
			}
			c := &res.Conversations[0]
			if c.Calls != responses || c.Calls != res.Total.Calls || math.Abs(c.CostUSD-cost) > 1e-12 || c.Priced != responses {
				t.Errorf("conversation %+v, want all %d calls costing $%g", c, responses, cost)
			}
			// The compactions answer with the model as requested, the
			// turns with its dated version: two models, the compactions
			// all on one.
			if c.OtherModels != 1 || len(c.Models) != 2 || !slices.ContainsFunc(c.Models, func(m ConversationModel) bool { return m.Calls == compactions }) {
				t.Errorf("models %+v, want two, one with the %d compactions", c.Models, compactions)
			}
			checkConversation(t, c, want[c.ID])
		})
	}
}

// TestOnlyConversation restricts a report over every fixture to one
// conversation that called tools: it holds that conversation's calls and
// the tool events related to them, and nothing else.
func TestOnlyConversation(t *testing.T) {
	files := fixtureFiles(t)
	all := New(Options{})
	readFiles(t, all, files)
	full := all.Result()
	var pick *Conversation
	for i := range full.Conversations {
		if c := &full.Conversations[i]; c.ToolCalls > 0 && (pick == nil || c.Calls > pick.Calls) {
			pick = c
		}
	}
	if pick == nil {
		t.Fatal("no conversation with tool calls in the fixtures")
	}
	// From the events, in order: those naming the conversation, and
	// those naming none but related to one taken.
	taken := map[string]bool{}
	var events int64
	tools := map[string]int64{}
	for _, name := range files {
		for _, ev := range readEvents(t, name) {
			conv := str(ev, "data", "conversation_id")
			related := false
			rels, _ := ev["related_events"].([]any)
			for _, r := range rels {
				related = related || taken[str(r.(obj), "event_id")]
			}
			if conv == pick.ID || (conv == "" && related) {
				taken[str(ev, "event_id")] = true
				events++
				if str(ev, "event_type") == "agent.tool_call" {
					tools[str(ev, "data", "tool", "name")]++
				}
			}
		}
		// Event ids repeat across fixture files: an id taken in one
		// file is not the same event in the next.
		clear(taken)
	}
	rep := New(Options{Conversation: pick.ID})
	readFiles(t, rep, files)
	res := rep.Result()
	if res.Conversation != pick.ID || len(res.Conversations) != 1 || res.Conversations[0].ID != pick.ID {
		t.Fatalf("restricted to %q: conversations %+v", res.Conversation, res.Conversations)
	}
	got := res.Conversations[0]
	if got.Calls != pick.Calls || got.CostUSD != pick.CostUSD || got.ToolCalls != pick.ToolCalls || res.Total.Calls != pick.Calls ||
		!got.First.Equal(pick.First) || !got.Last.Equal(pick.Last) {
		t.Errorf("restricted %+v, want the row of the full report %+v", got, *pick)
	}
	if res.Events != events || res.Filtered != full.Events-events || res.CallsWithoutConversation != 0 {
		t.Errorf("events %d filtered %d in none %d, want %d, %d, 0", res.Events, res.Filtered, res.CallsWithoutConversation, events, full.Events-events)
	}
	var toolCalls int64
	for _, tool := range res.Tools {
		toolCalls += tool.Calls
		if tools[tool.Name] != tool.Calls {
			t.Errorf("tool %s: %d calls, want %d", tool.Name, tool.Calls, tools[tool.Name])
		}
	}
	if toolCalls != pick.ToolCalls {
		t.Errorf("%d agent.tool_call events kept, the conversation's responses made %d", toolCalls, pick.ToolCalls)
	}
	// A conversation no event names leaves an empty report.
	rep = New(Options{Conversation: "conv_none"})
	readFiles(t, rep, files[:10])
	if res := rep.Result(); res.Events != 0 || len(res.Conversations) != 0 || res.Total.Calls != 0 {
		t.Errorf("conv_none: %+v", res)
	}
}

func TestConversationEdgesAndCaps(t *testing.T) {
	rep := New(Options{MaxConversations: 2})
	openai := obj{"name": "openai"}
	req := func(id, conv, ts, model string, extra obj) string {
		return ev(id, "ai.request", ts, obj{"provider": openai, "model": obj{"id": model}, "conversation_id": conv}, extra)
	}
	resp := func(id, reqID, conv, ts, model string, cost float64, tools int) string {
		d := obj{"provider": openai, "model": obj{"id": model}, "success": true, "tool_calls_count": tools,
			"usage": obj{"prompt_tokens": 100, "completion_tokens": 10, "cached_tokens": 40, "total_cost_usd": cost}}
		if conv != "" {
			d["conversation_id"] = conv
		}
		return ev(id, "ai.response", ts, d, parent(reqID))
	}
	var lines []string
	// conv_a: nine models (one more than a conversation lists), from the
	// request of the first call to the response of the last; the app is
	// the first one named.
	models := []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"}
	for i, m := range models {
		at := time.Date(2026, 1, 2, 10, i, 0, 0, time.UTC)
		var extra obj
		if i > 0 {
			extra = obj{"process": obj{"name": "agent" + m}}
		}
		// The first response leaves the conversation out: its
		// request's counts.
		conv := "conv_a"
		if i == 0 {
			conv = ""
		}
		lines = append(lines, req("ra"+m, "conv_a", at.Format(time.RFC3339), m, extra),
			resp("pa"+m, "ra"+m, conv, at.Add(30*time.Second).Format(time.RFC3339), m, 0.01, 1))
	}
	lines = append(lines,
		// m0 again: the most used model
		req("ra-again", "conv_a", "2026-01-02T10:20:00Z", "m0", nil),
		resp("pa-again", "ra-again", "conv_a", "2026-01-02T10:20:01Z", "m0", 0.01, 2),
		// conv_b: a failure, unpriced
		req("rb", "conv_b", "2026-01-02T11:00:00Z", "gpt", nil),
		ev("pb", "ai.response", "2026-01-02T11:00:02Z", obj{"provider": openai, "model": obj{"id": "gpt"}, "conversation_id": "conv_b",
			"success": false, "status_code": 500}, parent("rb")),
		// conv_c and conv_d are past the cap: (other)
		req("rc", "conv_c", "2026-01-02T12:00:00Z", "gpt", nil),
		resp("pc", "rc", "conv_c", "2026-01-02T12:00:01Z", "gpt", 0.5, 0),
		// conv_d is never answered
		req("rd", "conv_d", "2026-01-02T13:00:00Z", "gpt", nil),
		// an embedding names no conversation
		req("re", "", "2026-01-02T14:00:00Z", "emb", nil),
		resp("pe", "re", "", "2026-01-02T14:00:01Z", "emb", 0.001, 0),
	)
	addAll(t, rep, lines...)
	res := rep.Result()
	rows := map[string]*Conversation{}
	for i := range res.Conversations {
		rows[res.Conversations[i].ID] = &res.Conversations[i]
	}
	a, b, other := rows["conv_a"], rows["conv_b"], rows[OtherGroup]
	if len(res.Conversations) != 3 || a == nil || b == nil || other == nil {
		t.Fatalf("conversations %+v", res.Conversations)
	}
	if a.Calls != 10 || a.ToolCalls != 11 || a.InputTokens != 1000 || a.OutputTokens != 100 || a.CacheReadTokens != 400 ||
		math.Abs(a.CostUSD-0.1) > 1e-12 || a.Priced != 10 || a.Unpriced != 0 || a.App != "agentm1" {
		t.Errorf("conv_a %+v", a)
	}
	if a.Provider != "openai" || a.Model != "m0" || a.OtherModels != 8 || len(a.Models) != 9 ||
		a.Models[len(a.Models)-1] != (ConversationModel{OtherGroup, OtherGroup, 1}) {
		t.Errorf("conv_a models %s %s +%d: %+v", a.Provider, a.Model, a.OtherModels, a.Models)
	}
	if a.First.Format(time.RFC3339) != "2026-01-02T10:00:00Z" || a.Last.Format(time.RFC3339) != "2026-01-02T10:20:01Z" || a.DurationMS != (20*time.Minute+time.Second).Milliseconds() {
		t.Errorf("conv_a %v – %v (%d ms)", a.First, a.Last, a.DurationMS)
	}
	if b.Calls != 1 || b.Errors != 1 || b.Priced != 0 || b.Unpriced != 1 || b.App != Unknown || b.DurationMS != 2000 {
		t.Errorf("conv_b %+v", b)
	}
	if other.Calls != 2 || other.NoResponse != 1 || other.CostUSD != 0.5 || other.App != OtherGroup || res.Overflow.Conversations != 1 {
		t.Errorf("(other) %+v, overflow %+v", other, res.Overflow)
	}
	if res.CallsWithoutConversation != 1 {
		t.Errorf("calls in none %d, want 1", res.CallsWithoutConversation)
	}
	// Sorted by cost: (other) $0.5, conv_a $0.1, conv_b unpriced.
	if res.Conversations[0].ID != OtherGroup || res.Conversations[1].ID != "conv_a" || res.Conversations[2].ID != "conv_b" {
		t.Errorf("order %s, %s, %s", res.Conversations[0].ID, res.Conversations[1].ID, res.Conversations[2].ID)
	}
	// Result does not consume: conv_d's late response lands in (other).
	addAll(t, rep, resp("pd", "rd", "conv_d", "2026-01-02T13:00:05Z", "gpt", 0.25, 0))
	res = rep.Result()
	if o := res.Conversations[0]; o.ID != OtherGroup || o.Calls != 2 || o.NoResponse != 0 || o.CostUSD != 0.75 || res.Overflow.Conversations != 2 {
		t.Errorf("after the late response: (other) %+v overflow %+v", o, res.Overflow)
	}

	// In the text, after the application table: the most used model
	// with +N, cost, unpriced like the other tables, top N.
	var out bytes.Buffer
	if err := WriteText(&out, res, TextOptions{Top: 2}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	i, j := strings.Index(text, "By application"), strings.Index(text, "Top conversations by estimated cost, then tokens")
	if i < 0 || j < i {
		t.Fatalf("no conversations table after the application table:\n%s", text)
	}
	for _, re := range []string{
		`(?m)^  CONVERSATION +APP +MODEL +CALLS +FAILED +INPUT +OUTPUT +CACHE READ +COST \(EST.\) +UNPRICED +TOOL CALLS +FIRST +LAST +DURATION$`,
		`(?m)^  \(other\) +\(other\) +openai gpt +2 +0 +200 +20 +80 +\$0\.7500 +0 +0 +2026-01-02 12:00:00\.000Z +13:00:05\.000Z +1h0m0s$`,
		`(?m)^  conv_a +agentm1 +openai m0 \+8 +10 +0 +1,000 +100 +400 +\$0\.1000 +0 +11 +2026-01-02 10:00:00\.000Z +10:20:01\.000Z +20m1s$`,
		`(?m)^… 1 more row \(--top -1 shows all\)$`,
		`(?m)^Calls with no conversation_id, in no row above: 1$`,
	} {
		if !regexp.MustCompile(re).MatchString(text[j:]) {
			t.Errorf("no %s in\n%s", re, text[j:])
		}
	}
	checkAligned(t, text)
}

func TestEmptyTablesAreEmptyArrays(t *testing.T) {
	b, err := json.Marshal(New(Options{}).Result())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"providers", "models", "apps", "conversations", "tools", "embeddings"} {
		if !strings.Contains(string(b), `"`+k+`":[]`) {
			t.Errorf("%s is not [] in %s", k, b)
		}
	}
	if !strings.Contains(string(b), `"calls_without_conversation":0`) {
		t.Errorf("no calls_without_conversation in %s", b)
	}
}
