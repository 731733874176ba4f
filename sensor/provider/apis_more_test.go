package provider

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/content"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Test helpers shared by the tests of the Gemini, Vertex, Bedrock, Cohere,
// Ollama and realtime decoders: recorded interactions become exchanges the
// way the pipeline builds them (content decoding done, marks set), and the
// registry picks the decoder.

var moreT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// moreExchange builds the exchange of a recorded interaction. The request
// leaves at moreT0, the response starts 100 ms later and every body byte
// arrives 1 ms after the previous 64-byte piece, so time-to-first-token
// and latency are deterministic.
func moreExchange(t testing.TB, in cassette.Interaction) *httpmsg.Exchange {
	t.Helper()
	u, err := url.Parse(in.Request.URL)
	if err != nil {
		t.Fatalf("recorded URL %q: %v", in.Request.URL, err)
	}
	target := u.EscapedPath()
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	x := &httpmsg.Exchange{
		Proto: "HTTP/1.1",
		Request: httpmsg.Request{
			Method:    in.Request.Method,
			Scheme:    u.Scheme,
			Authority: u.Host,
			Target:    target,
			Header:    httpmsg.HeaderOf(in.Request.Header),
			Body:      httpmsg.Body{Data: in.Request.Body, WireLength: int64(len(in.Request.Body))},
			Start:     moreT0,
			End:       moreT0.Add(time.Millisecond),
		},
	}
	if x.Request.Header == nil {
		x.Request.Header = httpmsg.Header{}
	}
	start := moreT0.Add(100 * time.Millisecond)
	body := httpmsg.Body{Data: in.Response.Body, WireLength: int64(len(in.Response.Body))}
	for off := 64; ; off += 64 {
		if off > len(body.Data) {
			off = len(body.Data)
		}
		body.Marks = append(body.Marks, httpmsg.Mark{Offset: off, At: start.Add(time.Duration(off/64) * time.Millisecond)})
		if off == len(body.Data) {
			break
		}
	}
	h := httpmsg.HeaderOf(in.Response.Header)
	if h == nil {
		h = httpmsg.Header{}
	}
	if enc := h.Get("Content-Encoding"); enc != "" && content.Known(enc) {
		if _, err := content.DecodeBody(&body, enc, httpmsg.DefaultLimits(), stats.Discard{}); err != nil {
			t.Logf("content decoding %s: %v", enc, err)
		}
	}
	x.Response = &httpmsg.Response{
		Status: in.Response.Status, Reason: in.Response.Reason, Header: h, Body: body,
		Start: start, End: body.TimeAt(len(body.Data)), Complete: true,
	}
	if len(body.Marks) > 0 {
		x.Response.End = body.Marks[len(body.Marks)-1].At
	}
	return x
}

// moreRegistry loads the embedded registry once per test.
func moreRegistry(t testing.TB) *Registry {
	t.Helper()
	reg, err := LoadRegistry(RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// moreDecode finds the API for x the way the pipeline does (registry
// target, then the first matching API) and decodes it; nil when no API
// matches.
func moreDecode(t testing.TB, reg *Registry, x *httpmsg.Exchange) (*Result, Target) {
	t.Helper()
	tg, _ := reg.Lookup(x.Request.Authority, 0)
	for _, api := range BuiltinAPIs() {
		if api.Match(tg, x) {
			res, err := api.Decode(tg, x, Env{Registry: reg, Stats: stats.Discard{}})
			if err != nil {
				t.Fatalf("%s: %v", api.Name(), err)
			}
			return res, tg
		}
	}
	return nil, tg
}

// moreRecording reads a recording from testdata.
func moreRecording(t testing.TB, path string) *cassette.Recording {
	t.Helper()
	rec, err := cassette.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// ---------------------------------------------------------------- oracle cross-check

// oracleFacts are the facts the independent checker (shared tools,
// oracle.py) derives from a recorded exchange.
type oracleFacts struct {
	AI           bool     `json:"ai"`
	Provider     string   `json:"provider"`
	API          string   `json:"api"`
	RequestType  string   `json:"request_type"`
	Models       []string `json:"models"`
	Streaming    bool     `json:"streaming"`
	Error        bool     `json:"error"`
	Status       int      `json:"status"`
	InputTokens  []int    `json:"input_tokens"`
	OutputTokens []int    `json:"output_tokens"`
	ToolNames    []string `json:"tool_names"`
}

type oracleExchange struct {
	File        string      `json:"file"`
	Index       int         `json:"index"`
	Method      string      `json:"method"`
	URL         string      `json:"url"`
	ReqHeaders  [][2]string `json:"req_headers"`
	ReqBody     []byte      `json:"req_body"`
	Status      int         `json:"status"`
	RespHeaders [][2]string `json:"resp_headers"`
	RespBody    []byte      `json:"resp_body"`
	Facts       oracleFacts `json:"facts"`
}

func moreHeader(kv [][2]string) http.Header {
	h := http.Header{}
	for _, p := range kv {
		h.Add(p[0], p[1])
	}
	return h
}

// TestOracleCrossCheck compares the decoders with the independent
// checker's facts over recorded exchanges. The facts file is produced from
// the shared cassettes (not part of user checkouts) by running oracle.py;
// set OISP_ORACLE_JSONL to its path to run this check.
func TestOracleCrossCheck(t *testing.T) {
	path := os.Getenv("OISP_ORACLE_JSONL")
	if path == "" {
		t.Skip("OISP_ORACLE_JSONL not set (facts from the shared cassettes' oracle)")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	reg := moreRegistry(t)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	total, matched := map[string]int{}, map[string]int{}
	reasons := map[string]int{}
	var lines []string
	for sc.Scan() {
		var oe oracleExchange
		if err := json.Unmarshal(sc.Bytes(), &oe); err != nil {
			t.Fatal(err)
		}
		in := cassette.Interaction{
			Request:  cassette.Request{Method: oe.Method, URL: oe.URL, Header: moreHeader(oe.ReqHeaders), Body: oe.ReqBody},
			Response: cassette.Response{Status: oe.Status, Header: moreHeader(oe.RespHeaders), Body: oe.RespBody},
		}
		x := moreExchange(t, in)
		res, _ := moreDecode(t, reg, x)
		fam := oe.Facts.Provider
		total[fam]++
		why := compareOracle(oe.Facts, res)
		if len(why) == 0 {
			matched[fam]++
			continue
		}
		for _, w := range why {
			reasons[strings.SplitN(w, ":", 2)[0]]++
		}
		lines = append(lines, fmt.Sprintf("%s #%d %s: %s", oe.File, oe.Index, oe.URL, strings.Join(why, "; ")))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var fams []string
	for k := range total {
		fams = append(fams, k)
	}
	sort.Strings(fams)
	for _, k := range fams {
		t.Logf("%s: matched %d/%d", k, matched[k], total[k])
	}
	for k, v := range reasons {
		t.Logf("reason %s: %d", k, v)
	}
	for i, l := range lines {
		if i >= 200 {
			t.Logf("… %d more", len(lines)-i)
			break
		}
		t.Error(l)
	}
}

// compareOracle mirrors the checker's matching rules (fidelity.py compare).
func compareOracle(o oracleFacts, res *Result) []string {
	if res == nil {
		return []string{"no decoder matched"}
	}
	var why []string
	embedding := o.RequestType == "embedding"
	model := ""
	if res.Request != nil && res.Request.Model != nil {
		model = res.Request.Model.ID
	}
	if model == "" && res.Response != nil && res.Response.Model != nil {
		model = res.Response.Model.ID
	}
	if model == "" && res.Embedding != nil && res.Embedding.Model != nil {
		model = res.Embedding.Model.ID
	}
	model = strings.TrimPrefix(model, "models/")
	if len(o.Models) > 0 {
		ok := false
		for _, m := range o.Models {
			if strings.TrimPrefix(m, "models/") == model {
				ok = true
			}
		}
		if !ok {
			why = append(why, fmt.Sprintf("model: got %q, want one of %v", model, o.Models))
		}
	}
	streaming := res.Request != nil && res.Request.Streaming != nil && *res.Request.Streaming
	if streaming != o.Streaming {
		why = append(why, fmt.Sprintf("streaming: got %v, want %v", streaming, o.Streaming))
	}
	var status int
	var failed bool
	var prompt, completion *int
	tools := map[string]bool{}
	switch {
	case res.Response != nil:
		r := res.Response
		status = r.StatusCode
		failed = (r.Success != nil && !*r.Success) || r.Error != nil || r.FinishReason == "error"
		if r.Usage != nil {
			prompt, completion = r.Usage.PromptTokens, r.Usage.CompletionTokens
			if embedding && prompt == nil {
				prompt = r.Usage.TotalTokens
			}
		}
		for _, tc := range r.ToolCalls {
			if tc.Name != "" {
				tools[tc.Name] = true
			}
		}
	case res.Embedding != nil:
		e := res.Embedding
		status = e.StatusCode
		failed = (e.Success != nil && !*e.Success) || e.Error != nil
		if embedding {
			if e.Usage != nil {
				prompt = e.Usage.PromptTokens
			}
			if prompt == nil {
				prompt = e.TotalTokens
			}
		}
	default:
		return append(why, "no response")
	}
	if o.Error {
		if status != 0 && status != o.Status {
			why = append(why, fmt.Sprintf("status: got %d, want %d", status, o.Status))
		} else if o.Status >= 400 && status == 0 && !failed {
			why = append(why, "error: not indicated")
		} else if o.Status < 400 && !failed {
			why = append(why, "error: in-band error not indicated")
		}
		return why
	}
	if status != 0 && status != o.Status {
		why = append(why, fmt.Sprintf("status: got %d, want %d", status, o.Status))
	}
	if failed {
		why = append(why, "error: reported for a successful exchange")
	}
	check := func(name string, want []int, got *int) {
		if want == nil {
			return
		}
		if got == nil {
			for _, w := range want {
				if w == 0 {
					return
				}
			}
			why = append(why, fmt.Sprintf("%s: missing, want %v", name, want))
			return
		}
		for _, w := range want {
			if w == *got {
				return
			}
		}
		why = append(why, fmt.Sprintf("%s: got %d, want %v", name, *got, want))
	}
	check("prompt_tokens", o.InputTokens, prompt)
	if !embedding {
		check("completion_tokens", o.OutputTokens, completion)
	}
	if o.ToolNames != nil {
		want := map[string]bool{}
		for _, n := range o.ToolNames {
			want[n] = true
		}
		if fmt.Sprint(moreSortedSet(want)) != fmt.Sprint(moreSortedSet(tools)) {
			why = append(why, fmt.Sprintf("tool calls: got %v, want %v", moreSortedSet(tools), o.ToolNames))
		}
	}
	return why
}

func moreSortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------- recorded-exchange tables

// recWant is what a test expects of one recorded exchange. Counts are
// pointers (iptr(…)) so that "absent" is checked too; nil means absent.
type recWant struct {
	file  string // under testdata/
	index int    // interaction index
	api   string // decoder name
	// provider
	providerName, providerID string
	model, answeredModel     string
	streaming                bool
	status                   int
	failed                   bool
	errType                  string
	finish                   string
	prompt, completion       *int
	total, cached, reasoning *int
	tools                    []string // tool-call names in order
	toolResults              int
	messages                 int
	systemPrompt             bool
	ttft                     bool // time_to_first_token_ms set
	embedding                bool
	inputCount, dims         int
	vectors                  int
	// cost: "priced" (input and output cost set), "unknown" (no price:
	// usage.cost "unknown", no zero costs) or "" (not checked).
	cost string
}

func iptr(v int) *int { return &v }

func intString(p *int) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

// runWants decodes every listed exchange and checks it field by field.
func runWants(t *testing.T, wants []recWant) {
	reg := moreRegistry(t)
	for _, w := range wants {
		t.Run(fmt.Sprintf("%s#%d", w.file, w.index), func(t *testing.T) {
			rec := moreRecording(t, "testdata/"+w.file)
			if w.index >= len(rec.Interactions) {
				t.Fatalf("recording has %d interactions", len(rec.Interactions))
			}
			x := moreExchange(t, rec.Interactions[w.index])
			res, _ := moreDecode(t, reg, x)
			if res == nil {
				t.Fatal("no decoder matched")
			}
			checkWant(t, w, res)
		})
	}
}

func checkWant(t *testing.T, w recWant, res *Result) {
	t.Helper()
	req := res.Request
	if res.API() != w.api {
		t.Errorf("API = %q; want %q", res.API(), w.api)
	}
	if req.Provider == nil || req.Provider.Name != w.providerName || req.Provider.ID != w.providerID {
		t.Errorf("provider = %+v; want name %q id %q", req.Provider, w.providerName, w.providerID)
	}
	if (req.Model == nil && w.model != "") || (req.Model != nil && req.Model.ID != w.model) {
		t.Errorf("request model = %+v; want %q", req.Model, w.model)
	}
	if req.Streaming == nil || *req.Streaming != w.streaming {
		t.Errorf("request streaming = %v; want %v", req.Streaming, w.streaming)
	}
	if len(req.Messages) != w.messages || req.MessagesCount != w.messages {
		t.Errorf("messages = %d (count %d); want %d", len(req.Messages), req.MessagesCount, w.messages)
	}
	if req.HasSystemPrompt != w.systemPrompt {
		t.Errorf("has_system_prompt = %v; want %v", req.HasSystemPrompt, w.systemPrompt)
	}
	if len(res.ToolResults) != w.toolResults {
		t.Errorf("tool results = %d; want %d", len(res.ToolResults), w.toolResults)
	}
	if w.embedding {
		e := res.Embedding
		if e == nil || res.Response != nil {
			t.Fatalf("embedding = %v, response = %v; want an embedding only", e, res.Response)
		}
		if req.RequestType != "embedding" {
			t.Errorf("request_type = %q", req.RequestType)
		}
		if e.StatusCode != w.status || (e.Success != nil && *e.Success) == w.failed {
			t.Errorf("status %d success %v; want %d failed %v", e.StatusCode, e.Success, w.status, w.failed)
		}
		if e.InputCount != w.inputCount || e.Dimensions != w.dims || e.EmbeddingCount != w.vectors {
			t.Errorf("inputs %d dims %d vectors %d; want %d %d %d", e.InputCount, e.Dimensions, e.EmbeddingCount, w.inputCount, w.dims, w.vectors)
		}
		var got *int
		if e.Usage != nil {
			got = e.Usage.PromptTokens
		}
		if intString(got) != intString(w.prompt) || intString(e.TotalTokens) != intString(w.prompt) {
			t.Errorf("embedding tokens = %s (total %s); want %s", intString(got), intString(e.TotalTokens), intString(w.prompt))
		}
		if w.errType != "" && (e.Error == nil || e.Error.Type != w.errType) {
			t.Errorf("error = %+v; want type %q", e.Error, w.errType)
		}
		return
	}
	r := res.Response
	if r == nil {
		t.Fatal("no response")
	}
	if r.StatusCode != w.status {
		t.Errorf("status = %d; want %d", r.StatusCode, w.status)
	}
	failed := (r.Success != nil && !*r.Success) || r.Error != nil
	if failed != w.failed {
		t.Errorf("failed = %v (error %+v); want %v", failed, r.Error, w.failed)
	}
	if w.errType != "" && (r.Error == nil || r.Error.Type != w.errType) {
		t.Errorf("error = %+v; want type %q", r.Error, w.errType)
	}
	if r.FinishReason != w.finish {
		t.Errorf("finish_reason = %q; want %q", r.FinishReason, w.finish)
	}
	am := ""
	if r.Model != nil {
		am = r.Model.ID
	}
	if am != w.answeredModel {
		t.Errorf("answered model = %q; want %q", am, w.answeredModel)
	}
	u := r.Usage
	if u == nil {
		u = &oisp.Usage{}
	}
	for _, c := range []struct {
		name      string
		got, want *int
	}{
		{"prompt_tokens", u.PromptTokens, w.prompt},
		{"completion_tokens", u.CompletionTokens, w.completion},
		{"total_tokens", u.TotalTokens, w.total},
		{"cached_tokens", u.CachedTokens, w.cached},
		{"reasoning_tokens", u.ReasoningTokens, w.reasoning},
	} {
		if intString(c.got) != intString(c.want) {
			t.Errorf("%s = %s; want %s", c.name, intString(c.got), intString(c.want))
		}
	}
	// Usage arithmetic: nothing counted twice. prompt + completion is the
	// total whenever all three are known; cached and reasoning tokens are
	// parts of prompt and completion.
	if u.PromptTokens != nil && u.CompletionTokens != nil && u.TotalTokens != nil && *u.PromptTokens+*u.CompletionTokens != *u.TotalTokens {
		t.Errorf("prompt %d + completion %d != total %d", *u.PromptTokens, *u.CompletionTokens, *u.TotalTokens)
	}
	if u.CachedTokens != nil && (u.PromptTokens == nil || *u.CachedTokens > *u.PromptTokens) {
		t.Errorf("cached %d not within prompt %s", *u.CachedTokens, intString(u.PromptTokens))
	}
	if u.ReasoningTokens != nil && (u.CompletionTokens == nil || *u.ReasoningTokens > *u.CompletionTokens) {
		t.Errorf("reasoning %d not within completion %s", *u.ReasoningTokens, intString(u.CompletionTokens))
	}
	switch w.cost {
	case "priced":
		if u.InputCostUSD == nil || u.OutputCostUSD == nil || u.TotalCostUSD == nil || u.Cost == "unknown" {
			t.Errorf("cost not priced: %+v", u)
		}
	case "unknown":
		if u.Cost != "unknown" || u.InputCostUSD != nil || u.TotalCostUSD != nil {
			t.Errorf("cost = %q input %v; want unknown, never zero", u.Cost, u.InputCostUSD)
		}
	}
	var names []string
	for _, tc := range r.ToolCalls {
		names = append(names, tc.Name)
		if tc.Arguments != "" && tc.ArgumentsHash != oisp.Hash(tc.Arguments) {
			t.Errorf("tool call %q: arguments hash does not match", tc.Name)
		}
	}
	if fmt.Sprint(names) != fmt.Sprint(w.tools) || r.ToolCallsCount != len(w.tools) {
		t.Errorf("tool calls = %v (count %d); want %v", names, r.ToolCallsCount, w.tools)
	}
	if (r.TimeToFirstTokenMS != nil) != w.ttft {
		t.Errorf("time_to_first_token_ms = %v; want set %v", r.TimeToFirstTokenMS, w.ttft)
	}
	if w.ttft && (r.Streaming == nil || !*r.Streaming) {
		t.Errorf("response streaming flag not set")
	}
	if r.LatencyMS == nil {
		t.Errorf("latency_ms not set")
	}
	if w.finish != "" && len(r.Choices) != 1 {
		t.Errorf("choices = %d; want 1", len(r.Choices))
	}
}

// ---------------------------------------------------------------- fuzzing

// moreFuzzDecode decodes an exchange built from fuzzed bodies and checks what
// every decoder promises: no panic, a request, and a response (or
// embedding) whenever a response came.
func moreFuzzDecode(t *testing.T, reg *Registry, method, rawURL, contentType string, reqBody, respBody []byte, status int) {
	in := cassette.Interaction{
		Request:  cassette.Request{Method: method, URL: rawURL, Header: http.Header{"Content-Type": {"application/json"}}, Body: reqBody},
		Response: cassette.Response{Status: status, Header: http.Header{"Content-Type": {contentType}}, Body: respBody},
	}
	x := moreExchange(t, in)
	res, _ := moreDecode(t, reg, x)
	if res == nil {
		t.Fatalf("no decoder for %s", rawURL)
	}
	if res.Request == nil || (res.Response == nil && res.Embedding == nil) {
		t.Fatalf("result without request or response: %+v", res)
	}
	if r := res.Response; r != nil {
		if r.ToolCallsCount != len(r.ToolCalls) {
			t.Fatalf("tool_calls_count %d for %d calls", r.ToolCallsCount, len(r.ToolCalls))
		}
	}
}

// fuzzDecodeVariant is moreFuzzDecode of a POST to one of urls, all
// picked by variant: the URL (variant mod len(urls)), the response's
// content type (JSON, or streamType when bit 0x10 is set) and its status
// (200 + 100 × the top two bits).
func fuzzDecodeVariant(t *testing.T, reg *Registry, urls []string, streamType string, req, resp []byte, variant uint8) {
	t.Helper()
	ct := "application/json"
	if variant&0x10 != 0 {
		ct = streamType
	}
	moreFuzzDecode(t, reg, "POST", urls[int(variant)%len(urls)], ct, req, resp, 200+int(variant>>6)*100)
}

// moreSeedBodies adds the request and response bodies of a recording's
// exchanges as fuzz seeds.
func moreSeedBodies(f *testing.F, path string, add func(req, resp []byte)) {
	rec := moreRecording(f, path)
	for _, in := range rec.Interactions {
		x := moreExchange(f, in)
		add(x.Request.Body.Data, x.Response.Body.Data)
	}
}
