package report

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// fixtureFiles are the repository's decoded fixture events: real events
// the sensor produced from real provider traffic.
func fixtureFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../../fixtures/*/*/expected.jsonl")
	if err != nil || len(files) < 50 {
		t.Fatalf("fixtures: %d files, %v", len(files), err)
	}
	return files
}

// expected is what a group should report, summed straight from the
// events as generic JSON.
type expected struct {
	calls, errors, noResponse, streamed, withUsage  int64
	input, output, cacheRead, cacheWrite, reasoning int64
	cacheInput, priced, unpriced                    int64
	cost                                            float64
	latency, ttft                                   []int64
	errorTypes                                      map[string]int64
}

type obj = map[string]any

func field(m obj, path ...string) any {
	var v any = m
	for _, p := range path {
		o, ok := v.(obj)
		if !ok {
			return nil
		}
		v = o[p]
	}
	return v
}

func str(m obj, path ...string) string { s, _ := field(m, path...).(string); return s }

func num(m obj, path ...string) (float64, bool) {
	f, ok := field(m, path...).(float64)
	return f, ok
}

func truth(m obj, path ...string) (bool, bool) {
	b, ok := field(m, path...).(bool)
	return b, ok
}

// expectFixtures computes, independently of the package, the numbers a
// report over files must show: keyed "provider/model". onCall, if not
// nil, is told each call: its group key, its request event (nil if not
// seen) and its response event (nil if not seen).
func expectFixtures(t *testing.T, files []string, onCall func(key string, req, resp obj)) (groups map[string]*expected, tools map[string][3]int64, embeddings map[string][4]int64, types map[string]int64) {
	groups = map[string]*expected{}
	tools = map[string][3]int64{}
	embeddings = map[string][4]int64{}
	types = map[string]int64{}
	group := func(key string) *expected {
		if groups[key] == nil {
			groups[key] = &expected{errorTypes: map[string]int64{}}
		}
		return groups[key]
	}
	provider := func(d obj) string {
		return cmp.Or(str(d, "provider", "id"), str(d, "provider", "name"), Unknown)
	}
	requested := func(req obj) string {
		return cmp.Or(str(req, "model", "id"), str(req, "model", "requested"), str(req, "model", "name"), Unknown)
	}
	for _, name := range files {
		pending := map[string]obj{}
		for _, ev := range readEvents(t, name) {
			typ := str(ev, "event_type")
			types[typ]++
			d, _ := ev["data"].(obj)
			switch typ {
			case "ai.request":
				pending[str(ev, "event_id")] = ev
			case "ai.response":
				var req, reqEv obj
				rels, _ := ev["related_events"].([]any)
				for _, r := range rels {
					if rel := r.(obj); rel["relationship"] == "parent" && pending[str(rel, "event_id")] != nil {
						reqEv = pending[str(rel, "event_id")]
						req, _ = reqEv["data"].(obj)
						delete(pending, str(rel, "event_id"))
					}
				}
				model := cmp.Or(str(d, "model", "id"), str(d, "model", "name"))
				if model == "" && req != nil {
					model = requested(req)
				}
				key := provider(d) + "/" + cmp.Or(model, Unknown)
				if onCall != nil {
					onCall(key, reqEv, ev)
				}
				g := group(key)
				g.calls++
				streamed, ok := truth(d, "streaming")
				if !ok && req != nil {
					streamed, _ = truth(req, "streaming")
				}
				if streamed {
					g.streamed++
				}
				status, _ := num(d, "status_code")
				if failedResponse(d) {
					g.errors++
					typ := str(d, "error", "type")
					if typ == "" && str(d, "error", "code") != "" {
						typ = "code " + str(d, "error", "code")
					}
					if typ == "" {
						typ = "http " + strconv.Itoa(int(status))
					}
					g.errorTypes[typ]++
				}
				u, _ := d["usage"].(obj)
				if _, ok := num(d, "usage", "prompt_tokens"); ok {
					g.withUsage++
				} else if _, ok := num(d, "usage", "completion_tokens"); ok {
					g.withUsage++
				}
				add := func(dst *int64, key string) {
					if v, ok := num(u, key); ok {
						*dst += int64(v)
					}
				}
				add(&g.input, "prompt_tokens")
				add(&g.output, "completion_tokens")
				add(&g.cacheRead, "cached_tokens")
				add(&g.cacheWrite, "cache_creation_tokens")
				add(&g.reasoning, "reasoning_tokens")
				if _, ok := num(u, "cached_tokens"); ok {
					add(&g.cacheInput, "prompt_tokens")
				}
				if c, ok := num(u, "total_cost_usd"); ok {
					g.cost += c
					g.priced++
				} else {
					g.unpriced++
				}
				if v, ok := num(d, "latency_ms"); ok {
					g.latency = append(g.latency, int64(v))
				}
				if v, ok := num(d, "time_to_first_token_ms"); ok {
					g.ttft = append(g.ttft, int64(v))
				}
			case "agent.tool_call", "agent.tool_result":
				name := str(d, "tool", "name")
				if name == "" {
					name = "(unnamed)"
				}
				c := tools[name]
				if typ == "agent.tool_call" {
					c[0]++
				} else {
					c[1]++
					if ok, has := truth(d, "success"); has && !ok {
						c[2]++
					}
				}
				tools[name] = c
			case "ai.embedding":
				key := provider(d) + "/" + cmp.Or(str(d, "model", "id"), str(d, "model", "name"), Unknown)
				e := embeddings[key]
				e[0]++
				in, _ := num(d, "input_count")
				vec, _ := num(d, "embedding_count")
				tok, ok := num(d, "total_tokens")
				if !ok {
					tok, _ = num(d, "usage", "prompt_tokens")
				}
				e[1] += int64(in)
				e[2] += int64(vec)
				e[3] += int64(tok)
				embeddings[key] = e
			}
		}
		for _, reqEv := range pending {
			req, _ := reqEv["data"].(obj)
			key := provider(req) + "/" + requested(req)
			if onCall != nil {
				onCall(key, reqEv, nil)
			}
			g := group(key)
			g.calls++
			g.noResponse++
			g.unpriced++
			if s, _ := truth(req, "streaming"); s {
				g.streamed++
			}
		}
	}
	return groups, tools, embeddings, types
}

// readEvents reads the events of a JSONL file as generic JSON.
func readEvents(t testing.TB, name string) []obj {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var events []obj
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev obj
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		events = append(events, ev)
	}
	return events
}

// failedResponse says whether the data of an ai.response tells of a
// failure: success false, an error, or (without success) an HTTP error.
func failedResponse(d obj) bool {
	success, hasSuccess := truth(d, "success")
	status, _ := num(d, "status_code")
	return (hasSuccess && !success) || d["error"] != nil || (!hasSuccess && status >= 400)
}

// exactPercentile is the nearest-rank percentile of samples.
func exactPercentile(samples []int64, q float64) int64 {
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	return s[max(rank, 1)-1]
}

// near says whether a histogram percentile is within its promised error.
func near(got, want int64) bool {
	return math.Abs(float64(got-want)) <= math.Max(1, float64(want)/64)
}

func readFiles(t testing.TB, rep *Report, files []string) {
	t.Helper()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Read(name, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

func TestFixturesMatchIndependentSums(t *testing.T) {
	files := fixtureFiles(t)
	want, wantTools, wantEmb, wantTypes := expectFixtures(t, files, nil)
	rep := New(Options{})
	readFiles(t, rep, files)
	res := rep.Result()

	var lines int64
	for _, n := range wantTypes {
		lines += n
	}
	if res.Lines != lines || res.Events != lines || res.BadLines != 0 {
		t.Errorf("lines %d events %d bad %d, want %d, %d, 0", res.Lines, res.Events, res.BadLines, lines, lines)
	}
	if !mapsEqual(res.EventTypes, wantTypes) {
		t.Errorf("event types %v, want %v", res.EventTypes, wantTypes)
	}
	if len(res.Models) != len(want) {
		t.Errorf("%d model groups, want %d", len(res.Models), len(want))
	}
	var total expected
	for _, g := range res.Models {
		key := g.Provider + "/" + g.Model
		w := want[key]
		if w == nil {
			t.Errorf("group %s not in the events", key)
			continue
		}
		checkStats(t, key, &g.Stats, w)
		total.calls += w.calls
		total.cost += w.cost
		total.input += w.input
		total.unpriced += w.unpriced
		total.latency = append(total.latency, w.latency...)
	}
	if res.Total.Calls != total.calls || res.Total.InputTokens != total.input || res.Total.Unpriced != total.unpriced ||
		math.Abs(res.Total.CostUSD-total.cost) > 1e-9 {
		t.Errorf("total %+v, want calls %d input %d unpriced %d cost %g", res.Total, total.calls, total.input, total.unpriced, total.cost)
	}
	if res.Total.Latency == nil || !near(res.Total.Latency.P95, exactPercentile(total.latency, 0.95)) {
		t.Errorf("total latency %+v, want p95 %d", res.Total.Latency, exactPercentile(total.latency, 0.95))
	}
	// Providers and apps regroup the same calls.
	var provCalls, appCalls int64
	for _, g := range res.Providers {
		provCalls += g.Calls
	}
	for _, g := range res.Apps {
		appCalls += g.Calls
	}
	if provCalls != total.calls || appCalls != total.calls {
		t.Errorf("providers sum %d calls, apps %d, want %d", provCalls, appCalls, total.calls)
	}
	if len(res.Tools) != len(wantTools) {
		t.Errorf("%d tools, want %d", len(res.Tools), len(wantTools))
	}
	for _, tool := range res.Tools {
		if got := [3]int64{tool.Calls, tool.Results, tool.FailedResults}; got != wantTools[tool.Name] {
			t.Errorf("tool %s: %v, want %v", tool.Name, got, wantTools[tool.Name])
		}
	}
	if len(res.Embeddings) != len(wantEmb) {
		t.Errorf("%d embedding groups, want %d", len(res.Embeddings), len(wantEmb))
	}
	for _, e := range res.Embeddings {
		key := e.Provider + "/" + e.Model
		if got := [4]int64{e.Events, e.Inputs, e.Vectors, e.Tokens}; got != wantEmb[key] {
			t.Errorf("embedding %s: %v, want %v", key, got, wantEmb[key])
		}
	}
	if res.First == nil || res.Last.Before(*res.First) {
		t.Errorf("period %v – %v", res.First, res.Last)
	}
	// The fixtures do have what the report is for.
	if res.Total.Errors == 0 || res.Total.Streamed == 0 || res.Total.CacheReadTokens == 0 || res.Total.Unpriced == 0 || len(res.Tools) == 0 {
		t.Errorf("fixtures lack errors, streams, cache reads, unpriced calls or tools: %+v", res.Total)
	}
}

func checkStats(t *testing.T, key string, got *Stats, w *expected) {
	t.Helper()
	ints := []struct {
		name      string
		got, want int64
	}{
		{"calls", got.Calls, w.calls}, {"errors", got.Errors, w.errors}, {"no response", got.NoResponse, w.noResponse},
		{"streamed", got.Streamed, w.streamed}, {"with usage", got.WithUsage, w.withUsage},
		{"input", got.InputTokens, w.input}, {"output", got.OutputTokens, w.output},
		{"cache read", got.CacheReadTokens, w.cacheRead}, {"cache write", got.CacheCreationTokens, w.cacheWrite},
		{"reasoning", got.ReasoningTokens, w.reasoning}, {"priced", got.Priced, w.priced}, {"unpriced", got.Unpriced, w.unpriced},
	}
	for _, c := range ints {
		if c.got != c.want {
			t.Errorf("%s: %s %d, want %d", key, c.name, c.got, c.want)
		}
	}
	if math.Abs(got.CostUSD-w.cost) > 1e-12 {
		t.Errorf("%s: cost %g, want %g", key, got.CostUSD, w.cost)
	}
	if !mapsEqual(got.ErrorTypes, w.errorTypes) {
		t.Errorf("%s: error types %v, want %v", key, got.ErrorTypes, w.errorTypes)
	}
	switch {
	case w.cacheInput == 0 && got.CacheHitRate != nil:
		t.Errorf("%s: cache hit rate %g with no cache counts", key, *got.CacheHitRate)
	case w.cacheInput > 0 && (got.CacheHitRate == nil || math.Abs(*got.CacheHitRate-float64(w.cacheRead)/float64(w.cacheInput)) > 1e-12):
		t.Errorf("%s: cache hit rate %v, want %d/%d", key, got.CacheHitRate, w.cacheRead, w.cacheInput)
	}
	for _, p := range []struct {
		name    string
		got     *Percentiles
		samples []int64
	}{{"latency", got.Latency, w.latency}, {"ttft", got.TTFT, w.ttft}} {
		if len(p.samples) == 0 {
			if p.got != nil {
				t.Errorf("%s: %s %+v with no samples", key, p.name, p.got)
			}
			continue
		}
		p50, p95 := exactPercentile(p.samples, 0.5), exactPercentile(p.samples, 0.95)
		if p.got == nil || p.got.Samples != int64(len(p.samples)) || !near(p.got.P50, p50) || !near(p.got.P95, p95) {
			t.Errorf("%s: %s %+v, want %d samples p50 %d p95 %d", key, p.name, p.got, len(p.samples), p50, p95)
		}
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// ev builds one event line; data and extra are merged into the envelope.
func ev(id, typ, ts string, data obj, extra obj) string {
	m := obj{"oisp_version": "0.1", "event_id": id, "event_type": typ, "ts": ts,
		"source": obj{"collector": "test"}, "data": data}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func parent(id string) obj {
	return obj{"related_events": []any{obj{"event_id": id, "relationship": "parent"}}}
}

func addAll(t *testing.T, rep *Report, lines ...string) {
	t.Helper()
	if err := rep.Read("t.jsonl", strings.NewReader(strings.Join(lines, "\n"))); err != nil {
		t.Fatal(err)
	}
}

func model(res *Result, provider, name string) *Stats {
	for i := range res.Models {
		if res.Models[i].Provider == provider && res.Models[i].Model == name {
			return &res.Models[i].Stats
		}
	}
	return nil
}

const ts0 = "2026-01-02T10:00:00Z"

func TestEdgeCases(t *testing.T) {
	openai := obj{"name": "openai"}
	rep := New(Options{})
	addAll(t, rep,
		// answered by a different model id than requested; process names the app
		ev("r1", "ai.request", ts0, obj{"provider": openai, "model": obj{"id": "gpt-4o"}, "streaming": true}, obj{"process": obj{"name": "cursor", "pid": 7}}),
		ev("p1", "ai.response", "2026-01-02T10:00:01Z", obj{"provider": openai, "model": obj{"id": "gpt-4o-2024-08-06", "requested": "gpt-4o"},
			"success": true, "latency_ms": 900, "usage": obj{"prompt_tokens": 100, "completion_tokens": 10, "total_cost_usd": 0.5}}, parent("r1")),
		// no usage at all: unpriced, not $0
		ev("r2", "ai.request", ts0, obj{"provider": openai, "model": obj{"id": "gpt-4o"}}, obj{"process": obj{"exe": "/usr/bin/python3"}}),
		ev("p2", "ai.response", ts0, obj{"provider": openai, "model": obj{"id": "gpt-4o-2024-08-06"}, "success": true}, parent("r2")),
		// tokens but no price known
		ev("r3", "ai.request", ts0, obj{"provider": openai, "model": obj{"id": "gpt-4o"}}, nil),
		ev("p3", "ai.response", ts0, obj{"provider": openai, "model": obj{"id": "gpt-4o-2024-08-06"}, "success": true,
			"usage": obj{"prompt_tokens": 50, "cost": "unknown"}}, parent("r3")),
		// a failure
		ev("r4", "ai.request", ts0, obj{"provider": openai, "model": obj{"id": "gpt-4o"}}, nil),
		ev("p4", "ai.response", ts0, obj{"provider": openai, "model": obj{"id": "gpt-4o"}, "success": false, "status_code": 429,
			"error": obj{"type": "rate_limit_error"}}, parent("r4")),
		ev("r6", "ai.request", ts0, obj{"provider": openai, "model": obj{"id": "gpt-4o"}}, nil),
		ev("p6", "ai.response", ts0, obj{"provider": openai, "status_code": 503}, parent("r6")),
		// a request never answered
		ev("r5", "ai.request", "2026-01-02T10:00:05Z", obj{"provider": obj{"name": "anthropic"}, "model": obj{"id": "claude-x"}, "streaming": true}, nil),
		// an event type the report does not read, whose data would not fit
		ev("x1", "process.exec", ts0, obj{"model": "not an object", "tool": []any{1}}, nil),
	)
	res := rep.Result()
	if res.BadLines != 0 {
		t.Fatalf("bad lines %v", res.BadLineSamples)
	}
	answered := model(res, "openai", "gpt-4o-2024-08-06")
	if answered == nil || answered.Calls != 3 || answered.Streamed != 1 || answered.InputTokens != 150 || answered.OutputTokens != 10 ||
		answered.CostUSD != 0.5 || answered.Priced != 1 || answered.Unpriced != 2 || answered.WithUsage != 2 {
		t.Errorf("answered model %+v", answered)
	}
	if answered != nil && (answered.Latency == nil || answered.Latency.Samples != 1 || !near(answered.Latency.P50, 900)) {
		t.Errorf("latency %+v", answered.Latency)
	}
	failed := model(res, "openai", "gpt-4o")
	if failed == nil || failed.Calls != 2 || failed.Errors != 2 || failed.ErrorTypes["rate_limit_error"] != 1 || failed.ErrorTypes["http 503"] != 1 {
		t.Errorf("failed model %+v", failed)
	}
	unanswered := model(res, "anthropic", "claude-x")
	if unanswered == nil || unanswered.Calls != 1 || unanswered.NoResponse != 1 || unanswered.Unpriced != 1 || unanswered.Streamed != 1 {
		t.Errorf("unanswered %+v", unanswered)
	}
	apps := map[string]int64{}
	for _, a := range res.Apps {
		apps[a.App] = a.Calls
	}
	if apps["cursor"] != 1 || apps["python3"] != 1 || apps[Unknown] != 4 {
		t.Errorf("apps %v", apps)
	}
	if res.First.Format(time.RFC3339) != ts0 || res.Last.Format(time.RFC3339) != "2026-01-02T10:00:05Z" {
		t.Errorf("period %v – %v", res.First, res.Last)
	}
	if res.Total.Calls != 6 || res.Total.Priced+res.Total.Unpriced != res.Total.Calls {
		t.Errorf("total %+v", res.Total)
	}

	// Result does not consume: the unanswered request is still waiting,
	// and its late response pairs with it.
	addAll(t, rep, ev("p5", "ai.response", ts0, obj{"provider": obj{"name": "anthropic"}, "success": true}, parent("r5")))
	res = rep.Result()
	if s := model(res, "anthropic", "claude-x"); s == nil || s.Calls != 1 || s.NoResponse != 0 || s.Streamed != 1 {
		t.Errorf("after the late response: %+v", s)
	}
}

func TestBadLines(t *testing.T) {
	rep := New(Options{MaxBadLineSamples: 3})
	good := ev("e1", "agent.tool_call", ts0, obj{"tool": obj{"name": "grep"}}, nil)
	input := strings.Join([]string{
		good,
		"not json at all",
		"",
		`{"hello":"world"}`,
		`[1,2,3]`,
		ev("e2", "ai.response", ts0, obj{"usage": "lots"}, nil),
		ev("e3", "ai.request", "yesterday", obj{}, nil),
		good,
	}, "\n")
	if err := rep.Read("in.jsonl", strings.NewReader(input)); err != nil {
		t.Fatal(err)
	}
	res := rep.Result()
	if res.Lines != 7 || res.Events != 2 || res.BadLines != 5 {
		t.Errorf("lines %d events %d bad %d, want 7, 2, 5", res.Lines, res.Events, res.BadLines)
	}
	var got []string
	for _, e := range res.BadLineSamples {
		got = append(got, e.Error())
	}
	want := []string{"in.jsonl:2: not JSON", "in.jsonl:4: not an OISP event", "in.jsonl:5: not an OISP event"}
	if len(got) != len(want) {
		t.Fatalf("samples %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("sample %d: %q, want %q…", i, got[i], want[i])
		}
	}
	if len(res.Tools) != 1 || res.Tools[0].Calls != 2 {
		t.Errorf("tools %+v", res.Tools)
	}
	// Add reports the same as a *LineError.
	var le *LineError
	if err := rep.Add([]byte("{")); !errors.As(err, &le) || le.Line != 9 {
		t.Errorf("Add: %v", err)
	}
}

func TestReadLongLinesAndErrors(t *testing.T) {
	rep := New(Options{MaxLineBytes: 1000})
	good := ev("e1", "agent.tool_call", ts0, obj{"tool": obj{"name": "grep"}}, nil)
	long := ev("e2", "agent.tool_call", ts0, obj{"tool": obj{"name": "grep"}, "arguments": obj{"x": strings.Repeat("a", 600<<10)}}, nil)
	// No newline at the end: the last line still counts.
	if err := rep.Read("in", strings.NewReader(good+"\n"+long+"\n"+good)); err != nil {
		t.Fatal(err)
	}
	res := rep.Result()
	if res.Events != 2 || res.BadLines != 1 || res.BadLineSamples[0].Line != 2 || !strings.Contains(res.BadLineSamples[0].Reason, "longer than 1000") {
		t.Errorf("events %d bad %+v", res.Events, res.BadLineSamples)
	}
	// A line longer than the read buffer but under the cap is read whole.
	rep = New(Options{})
	if err := rep.Read("in", strings.NewReader(long+"\n")); err != nil || rep.Result().Events != 1 {
		t.Errorf("long line: %v, %+v", err, rep.Result())
	}
	// A reader that fails is the one fatal error.
	boom := errors.New("disk on fire")
	err := rep.Read("in", io.MultiReader(strings.NewReader(good+"\n"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "in") {
		t.Errorf("read error: %v", err)
	}
}

func TestCaps(t *testing.T) {
	rep := New(Options{MaxGroups: 2, MaxPending: 2, MaxTools: 1})
	var lines []string
	for i, m := range []string{"a", "b", "c", "d"} {
		id := "r" + m
		lines = append(lines, ev(id, "ai.request", ts0, obj{"provider": obj{"name": "openai"}, "model": obj{"id": m}}, nil))
		_ = i
	}
	// rd answers; ra and rb were given up on when rc and rd arrived.
	lines = append(lines,
		ev("pd", "ai.response", ts0, obj{"provider": obj{"name": "openai"}, "model": obj{"id": "d"}}, parent("rd")),
		ev("pa", "ai.response", ts0, obj{"provider": obj{"name": "openai"}, "model": obj{"id": "a"}}, parent("ra")),
		ev("t1", "agent.tool_call", ts0, obj{"tool": obj{"name": "x"}}, nil),
		ev("t2", "agent.tool_call", ts0, obj{"tool": obj{"name": "y"}}, nil),
	)
	addAll(t, rep, lines...)
	res := rep.Result()
	if res.PendingEvicted != 2 {
		t.Errorf("evicted %d, want 2", res.PendingEvicted)
	}
	// groups a, b kept; c and d (and their calls) fold into (other).
	calls := map[string]int64{}
	noResp := map[string]int64{}
	for _, g := range res.Models {
		calls[g.Model] = g.Calls
		noResp[g.Model] = g.NoResponse
	}
	// a: given-up request + the late response (now unpaired); b: given up;
	// c: pending at the end; d: answered.
	if len(res.Models) != 3 || calls["a"] != 2 || calls["b"] != 1 || calls[OtherGroup] != 2 || noResp[OtherGroup] != 1 {
		t.Errorf("models %v no response %v", calls, noResp)
	}
	if res.Overflow.Models == 0 || res.Overflow.Tools != 1 || len(res.Tools) != 2 {
		t.Errorf("overflow %+v tools %+v", res.Overflow, res.Tools)
	}
}

func TestSinceUntil(t *testing.T) {
	since, _ := time.Parse(time.RFC3339, "2026-01-02T10:00:00Z")
	rep := New(Options{Since: since, Until: since.Add(time.Hour)})
	addAll(t, rep,
		ev("a", "agent.tool_call", "2026-01-02T09:59:59Z", obj{"tool": obj{"name": "early"}}, nil),
		ev("b", "agent.tool_call", "2026-01-02T10:00:00Z", obj{"tool": obj{"name": "in"}}, nil),
		ev("c", "agent.tool_call", "2026-01-02T11:00:00Z", obj{"tool": obj{"name": "late"}}, nil),
	)
	res := rep.Result()
	if res.Events != 1 || res.Filtered != 2 || len(res.Tools) != 1 || res.Tools[0].Name != "in" {
		t.Errorf("events %d filtered %d tools %+v", res.Events, res.Filtered, res.Tools)
	}
}

func TestDuplicateRequestIDs(t *testing.T) {
	// Two recordings concatenated whose ids restart: the first request's
	// response is not in the input, so it is reported as unanswered.
	rep := New(Options{})
	p := obj{"name": "openai"}
	addAll(t, rep,
		ev("ev-1", "ai.request", ts0, obj{"provider": p, "model": obj{"id": "m1"}}, nil),
		ev("ev-1", "ai.request", ts0, obj{"provider": p, "model": obj{"id": "m2"}}, nil),
		ev("ev-2", "ai.response", ts0, obj{"provider": p, "success": true}, parent("ev-1")),
	)
	res := rep.Result()
	if s := model(res, "openai", "m1"); s == nil || s.NoResponse != 1 {
		t.Errorf("m1 %+v", s)
	}
	if s := model(res, "openai", "m2"); s == nil || s.Calls != 1 || s.NoResponse != 0 {
		t.Errorf("m2 %+v", s)
	}
}

func TestWriteText(t *testing.T) {
	rep := New(Options{})
	readFiles(t, rep, fixtureFiles(t))
	rep.Add([]byte("garbage"))
	res := rep.Result()
	for _, by := range []string{ByModel, ByProvider, ByApp} {
		var b bytes.Buffer
		if err := WriteText(&b, res, TextOptions{By: by, Top: -1}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		wantHas := []string{
			"Calls by ", "Tokens and estimated cost by ", "Tools the models called", "Embeddings",
			count(res.Total.Unpriced) + " of " + count(res.Total.Calls) + " calls unpriced",
			"1 line is not an OISP event", ": not JSON",
		}
		for _, s := range wantHas {
			if !strings.Contains(out, s) {
				t.Errorf("--by %s: no %q in\n%s", by, s, out)
			}
		}
		// Every row of a table has the same width up to its last column:
		// the columns line up.
		checkAligned(t, out)
		if by == ByModel {
			// every model row is there, with its calls
			for _, g := range res.Models {
				if !strings.Contains(out, g.Model) {
					t.Errorf("model %s missing", g.Model)
				}
			}
		}
	}
	var b bytes.Buffer
	if err := WriteText(&b, res, TextOptions{By: "colour"}); err == nil || b.Len() > 0 {
		t.Errorf("--by colour: %v, wrote %q", err, b.String())
	}
	// Top caps the rows and says how many are left out.
	b.Reset()
	WriteText(&b, res, TextOptions{Top: 3})
	if !strings.Contains(b.String(), count(int64(len(res.Models)-3))+" more rows") {
		t.Errorf("top 3:\n%s", b.String())
	}
}

// checkAligned checks that every row of each table (the indented lines
// under a title) is as wide as its header: cells are padded to their
// column, text left and numbers right.
func checkAligned(t *testing.T, out string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	width := -1
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "  ") || strings.Contains(line, ": ") {
			width = -1 // a title, a summary line or a bad-line sample
			continue
		}
		n := len([]rune(line))
		if width == -1 {
			width = n
		} else if n != width {
			t.Errorf("row %q is %d wide, its header %d", line, n, width)
		}
	}
}

func TestJSONFieldNames(t *testing.T) {
	rep := New(Options{})
	readFiles(t, rep, fixtureFiles(t)[:20])
	b, err := json.Marshal(rep.Result())
	if err != nil {
		t.Fatal(err)
	}
	var m obj
	json.Unmarshal(b, &m)
	for _, k := range []string{"first", "last", "lines", "events", "bad_lines", "event_types", "total", "providers", "models", "apps",
		"conversations", "calls_without_conversation", "tools", "embeddings", "overflow"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	row := field(m, "total").(obj)
	for _, k := range []string{"calls", "errors", "no_response", "streamed", "input_tokens", "output_tokens", "cache_read_tokens",
		"cache_creation_tokens", "reasoning_tokens", "cost_usd", "priced", "unpriced", "latency_ms"} {
		if _, ok := row[k]; !ok {
			t.Errorf("no %q in total %v", k, row)
		}
	}
	convs, _ := field(m, "conversations").([]any)
	if len(convs) == 0 {
		t.Fatalf("no conversations in %s", b)
	}
	conv := convs[0].(obj)
	for _, k := range []string{"id", "app", "provider", "model", "other_models", "models", "calls", "errors", "no_response",
		"input_tokens", "output_tokens", "cache_read_tokens", "cost_usd", "priced", "unpriced", "tool_calls", "first", "last", "duration_ms"} {
		if _, ok := conv[k]; !ok {
			t.Errorf("no %q in conversation %v", k, conv)
		}
	}
}
