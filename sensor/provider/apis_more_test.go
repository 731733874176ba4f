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
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Test helpers shared by the tests of the Gemini, Vertex, Bedrock, Cohere,
// Ollama and realtime decoders: recorded interactions become exchanges the
// way the pipeline builds them (content decoding done, marks set), and the
// registry picks the decoder.

var testT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// exchangeOf builds the exchange of a recorded interaction. The request
// leaves at testT0, the response starts 100 ms later and every body byte
// arrives 1 ms after the previous 64-byte piece, so time-to-first-token
// and latency are deterministic.
func exchangeOf(t testing.TB, in cassette.Interaction) *httpmsg.Exchange {
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
			Header:    in.Request.Header.Clone(),
			Body:      httpmsg.Body{Data: in.Request.Body, WireLength: int64(len(in.Request.Body))},
			Start:     testT0,
			End:       testT0.Add(time.Millisecond),
		},
	}
	if x.Request.Header == nil {
		x.Request.Header = http.Header{}
	}
	start := testT0.Add(100 * time.Millisecond)
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
	h := in.Response.Header.Clone()
	if h == nil {
		h = http.Header{}
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

// testRegistry loads the embedded registry once per test.
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	reg, err := LoadRegistry(RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// decodeExchange finds the API for x the way the pipeline does (registry
// target, then the first matching API) and decodes it; nil when no API
// matches.
func decodeExchange(t testing.TB, reg *Registry, x *httpmsg.Exchange) (*Result, Target) {
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

// loadRecording reads a recording from testdata.
func loadRecording(t testing.TB, path string) *cassette.Recording {
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

func headerOf(kv [][2]string) http.Header {
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
	reg := testRegistry(t)
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
			Request:  cassette.Request{Method: oe.Method, URL: oe.URL, Header: headerOf(oe.ReqHeaders), Body: oe.ReqBody},
			Response: cassette.Response{Status: oe.Status, Header: headerOf(oe.RespHeaders), Body: oe.RespBody},
		}
		x := exchangeOf(t, in)
		res, _ := decodeExchange(t, reg, x)
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
		if fmt.Sprint(sortedSet(want)) != fmt.Sprint(sortedSet(tools)) {
			why = append(why, fmt.Sprintf("tool calls: got %v, want %v", sortedSet(tools), o.ToolNames))
		}
	}
	return why
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
