package provider

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Fuzz targets for the OpenAI-format and Anthropic decoders. Seeds are the
// real recorded exchanges in testdata; every input must decode without
// panicking into a result whose invariants hold and that marshals to JSON.

// maxFuzzSeed bounds the size of a seed exchange.
const maxFuzzSeed = 8 << 10

func addCoreSeeds(f *testing.F, dir string) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, file := range files {
		r := loadCoreRecording(f, strings.TrimPrefix(file, "testdata"+string(filepath.Separator)))
		// Large recordings make every mutation and minimisation slow; the
		// unit tests cover them whole.
		if len(r.ReqBody)+len(r.RespBody) > maxFuzzSeed {
			continue
		}
		f.Add(r.ReqBody, r.RespBody, uint16(r.Status))
	}
}

func fuzzDecode(t *testing.T, api API, url, reqBody, respBody string, status uint16) {
	x := coreExchange(url, reqBody, int(status%600), respBody)
	if strings.HasPrefix(strings.TrimSpace(respBody), "data:") || strings.HasPrefix(strings.TrimSpace(respBody), "event:") {
		x.Response.Header.Set("Content-Type", "text/event-stream")
	}
	reg := fuzzRegistry(t)
	for _, known := range []bool{true, false} {
		tg := Target{ProviderID: "openai", Host: x.Host(), Known: known}
		if !known {
			tg.ProviderID = "other"
			api.Match(tg, x) // must not panic on any body
		}
		res, err := api.Decode(tg, x, Env{Registry: reg})
		if err != nil {
			continue
		}
		checkResult(t, res)
	}
}

func checkResult(t *testing.T, res *Result) {
	t.Helper()
	if res.Request == nil {
		t.Fatal("nil request")
	}
	if res.Request.MessagesCount != len(res.Request.Messages) || res.Request.ToolsCount != len(res.Request.Tools) {
		t.Fatalf("counts disagree: %+v", res.Request)
	}
	if r := res.Response; r != nil {
		if r.ToolCallsCount != len(r.ToolCalls) {
			t.Fatalf("tool_calls_count %d for %d calls", r.ToolCallsCount, len(r.ToolCalls))
		}
		if r.Success == nil || (*r.Success && r.Error != nil) {
			t.Fatalf("success %v with error %+v", r.Success, r.Error)
		}
		checkUsage(t, r.Usage)
		if r.LatencyMS != nil && *r.LatencyMS < 0 || r.TimeToFirstTokenMS != nil && *r.TimeToFirstTokenMS < 0 {
			t.Fatal("negative timing")
		}
	}
	if e := res.Embedding; e != nil {
		checkUsage(t, e.Usage)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("result does not marshal: %v", err)
	}
}

func checkUsage(t *testing.T, u *oisp.Usage) {
	t.Helper()
	if u == nil {
		return
	}
	if u.Cost == "unknown" && (u.InputCostUSD != nil || u.TotalCostUSD != nil) {
		t.Fatal("unknown cost with cost numbers")
	}
	if u.TotalCostUSD != nil && (*u.TotalCostUSD != *u.TotalCostUSD) {
		t.Fatal("NaN cost")
	}
}

var fuzzReg *Registry

func fuzzRegistry(t testing.TB) *Registry {
	if fuzzReg == nil {
		fuzzReg = coreRegistry(t)
	}
	return fuzzReg
}

func FuzzOpenAIChat(f *testing.F) {
	addCoreSeeds(f, "openai")
	f.Fuzz(func(t *testing.T, reqBody, respBody string, status uint16) {
		fuzzDecode(t, openaiChatAPI{}, "https://api.openai.com/v1/chat/completions", reqBody, respBody, status)
		fuzzDecode(t, openaiCompletionsAPI{}, "https://api.openai.com/v1/completions", reqBody, respBody, status)
		fuzzDecode(t, writerChatAPI{}, "https://api.writer.com/v1/chat", reqBody, respBody, status)
		fuzzDecode(t, writerCompletionsAPI{}, "https://api.writer.com/v1/completions", reqBody, respBody, status)
	})
}

func FuzzOpenAIResponses(f *testing.F) {
	addCoreSeeds(f, "openai")
	f.Fuzz(func(t *testing.T, reqBody, respBody string, status uint16) {
		fuzzDecode(t, openaiResponsesAPI{}, "https://api.openai.com/v1/responses", reqBody, respBody, status)
		fuzzDecode(t, openaiResponsesCompactAPI{}, "https://api.openai.com/v1/responses/compact", reqBody, respBody, status)
		fuzzDecode(t, openaiInputTokensAPI{}, "https://api.openai.com/v1/responses/input_tokens", reqBody, respBody, status)
	})
}

func FuzzOpenAIEmbeddings(f *testing.F) {
	addCoreSeeds(f, "openai")
	f.Fuzz(func(t *testing.T, reqBody, respBody string, status uint16) {
		fuzzDecode(t, openaiEmbeddingsAPI{}, "https://api.openai.com/v1/embeddings", reqBody, respBody, status)
	})
}

func FuzzAnthropicMessages(f *testing.F) {
	addCoreSeeds(f, "anthropic")
	f.Fuzz(func(t *testing.T, reqBody, respBody string, status uint16) {
		fuzzDecode(t, anthropicMessagesAPI{}, "https://api.anthropic.com/v1/messages", reqBody, respBody, status)
		fuzzDecode(t, anthropicCompleteAPI{}, "https://api.anthropic.com/v1/complete", reqBody, respBody, status)
		fuzzDecode(t, anthropicCountTokensAPI{}, "https://api.anthropic.com/v1/messages/count_tokens", reqBody, respBody, status)
	})
}

// FuzzAnthropicStreamEvents feeds event payloads one by one to the
// reusable stream accumulator (as Bedrock and Vertex do), split at
// newlines.
func FuzzAnthropicStreamEvents(f *testing.F) {
	addCoreSeeds(f, "anthropic")
	f.Fuzz(func(t *testing.T, _, respBody string, _ uint16) {
		s := newAnthropicStream()
		at := time.Unix(0, 0)
		for _, line := range strings.Split(respBody, "\n") {
			s.add("", []byte(strings.TrimPrefix(line, "data:")), at)
		}
		res := &Result{Request: &oisp.AIRequest{}}
		resp := &oisp.AIResponse{Success: oisp.Ptr(true)}
		s.finish(res, resp)
		if resp.ToolCallsCount != len(resp.ToolCalls) {
			t.Fatal("tool call count")
		}
	})
}

func FuzzCountArray(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[[1],[2]]`, `["a,]",{"b":[1,2]}]`, `[`, `[1,`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := countArray([]byte(s))
		if n < -1 {
			t.Fatalf("countArray = %d", n)
		}
		var arr []json.RawMessage
		if json.Unmarshal([]byte(s), &arr) == nil && n != len(arr) {
			t.Fatalf("countArray(%q) = %d, encoding/json says %d", s, n, len(arr))
		}
	})
}

func FuzzOpenAIMedia(f *testing.F) {
	addCoreSeeds(f, "openai")
	apis := openaiMediaAPIs()
	f.Fuzz(func(t *testing.T, reqBody, respBody string, status uint16) {
		fuzzDecode(t, apis[0], "https://api.openai.com/v1/images/generations", reqBody, respBody, status)
		fuzzDecode(t, apis[1], "https://api.openai.com/v1/audio/transcriptions", reqBody, respBody, status)
		fuzzDecode(t, apis[2], "https://api.openai.com/v1/moderations", reqBody, respBody, status)
	})
}
