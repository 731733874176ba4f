package provider

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// TestLentTargetsKeepNothing decodes the recorded OpenAI-format and
// Anthropic exchanges, and bodies the scan declines (decoded by the
// reflection decoder into the same lent targets), twice in opposite
// orders: a decode must not depend on what the lent body targets held
// before, and a result must not point into a target that a later decode
// reuses.
func TestLentTargetsKeepNothing(t *testing.T) {
	reg := coreRegistry(t)
	var files []string
	for _, dir := range []string{"openai", "anthropic"} {
		found, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil || len(found) == 0 {
			t.Fatalf("no recordings in testdata/%s: %v", dir, err)
		}
		files = append(files, found...)
	}
	var exchanges []func() *httpmsg.Exchange
	for _, file := range files {
		r := loadCoreRecording(t, strings.TrimPrefix(file, "testdata"+string(filepath.Separator)))
		exchanges = append(exchanges, r.exchange)
	}
	const url = "https://api.openai.com/v1/chat/completions"
	declined := [][2]string{
		// A member named twice: the scan leaves these to the decoder.
		{`{"model":"a","model":"gpt-4o","messages":[{"role":"user","content":"one"}],"temperature":0.5}`,
			`{"id":"x","id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"two"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`},
		{`{"model":"gpt-4o","messages":[{"role":"user","content":"three"},{"role":"assistant","content":"four"}],"stop":["x"]}`,
			`{"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"five","content":"six"},"finish_reason":"length"},{"index":1,"message":{"role":"assistant","content":"seven"}}]}`},
	}
	for _, d := range declined {
		exchanges = append(exchanges, func() *httpmsg.Exchange { return coreExchange(url, d[0], 200, d[1]) })
	}
	const anthropicURL = "https://api.anthropic.com/v1/messages"
	for _, d := range [][2]string{
		{`{"model":"x","model":"claude-sonnet-4","max_tokens":9,"system":"be brief","messages":[{"role":"user","content":"eight"}],"tools":[{"name":"get_time","description":"now"}]}`,
			`{"id":"msg_1","id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4","content":[{"type":"text","text":"nine"},{"type":"tool_use","id":"toolu_1","name":"get_time","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":2}}`},
		{`{"model":"claude-sonnet-4","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":"ten"}]},{"role":"assistant","content":"eleven"},{"role":"user","content":"twelve","content":"thirteen"}]}`,
			`{"type":"message","model":"claude-sonnet-4","content":[{"type":"text","text":"fourteen","text":"fifteen"}],"stop_reason":"end_turn"}`},
	} {
		exchanges = append(exchanges, func() *httpmsg.Exchange { return coreExchange(anthropicURL, d[0], 200, d[1]) })
	}
	decodeBothWays(t, reg, exchanges)
}

// decodeBothWays decodes the exchanges in order, then in reverse order,
// and fails when an exchange decodes differently after the others, or
// when a result changed while later exchanges were decoded (it pointed
// into a lent target they reused). It returns the first pass's results.
func decodeBothWays(t *testing.T, reg *Registry, exchanges []func() *httpmsg.Exchange) []*Result {
	t.Helper()
	decodeAll := func(order []int) (results []*Result, encoded []string) {
		results, encoded = make([]*Result, len(order)), make([]string, len(order))
		for _, i := range order {
			results[i] = coreDecode(t, reg, exchanges[i]())
			encoded[i] = mustJSON(t, results[i])
		}
		return results, encoded
	}
	order := make([]int, len(exchanges))
	for i := range order {
		order[i] = i
	}
	first, firstJSON := decodeAll(order)
	slices.Reverse(order)
	_, secondJSON := decodeAll(order)
	for i := range exchanges {
		if secondJSON[i] != firstJSON[i] {
			t.Errorf("exchange %d decodes differently after others:\n%s\nthen\n%s", i, firstJSON[i], secondJSON[i])
		}
		if again := mustJSON(t, first[i]); again != firstJSON[i] {
			t.Errorf("exchange %d's result changed when later exchanges were decoded:\n%s\nthen\n%s", i, firstJSON[i], again)
		}
	}
	return first
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// TestAnthropicContentRoom flattens contents one after the other in one
// room, as a request's messages are: each must flatten as it does alone,
// whatever the room held, and a tool result's blocks (read into the
// room's second array, or past it into their own) must not disturb the
// blocks that hold them.
func TestAnthropicContentRoom(t *testing.T) {
	contents := []string{
		`[{"type":"text","text":"a"},{"type":"text","text":"b"},{"type":"image"},{"type":"text","text":"c"},{"type":"text","text":"d"},{"type":"text","text":"e"}]`,
		`[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"r1"},{"type":"text","text":"r2"},{"type":"text","text":"r3"}]},{"type":"text","text":"after"}]`,
		`[{"type":"text","text":"only"}]`,
		`[{"type":"tool_result","tool_use_id":"t2","is_error":true,"content":[{"type":"tool_result","tool_use_id":"t3","content":[{"type":"text","text":"deep"},{"type":"image"}]},{"type":"text","text":"mid"}]},{"type":"tool_result","tool_use_id":"t4","content":"plain result"}]`,
		`"a plain string"`,
		`[{"type":"text","text":"x","text":"twice"},{"type":"document","source":{"media_type":"image/png"}}]`,
		`[{"type":"text","text":"broken"`,
		`[]`,
		`[{"type":"text","text":"last"},{"type":"tool_result","tool_use_id":"t5","content":[{"type":"text","text":"r"}]}]`,
	}
	type flat struct {
		text    string
		images  int
		results []ToolResult
	}
	flatten := func(content string, room []anthropicContentList) flat {
		var f flat
		f.text, f.images = flattenAnthropicContent(json.RawMessage(content), &f.results, room)
		return f
	}
	var room anthropicContentRoom
	for pass := range 2 {
		for i, c := range contents {
			if pass == 1 {
				c = contents[len(contents)-1-i]
			}
			want := flatten(c, nil)
			if got := flatten(c, room[:]); got.text != want.text || got.images != want.images || !slices.Equal(got.results, want.results) {
				t.Errorf("%s in a used room: %+v; alone: %+v", c, got, want)
			}
		}
	}
}

// TestGeminiContentsRoom reads contents one request after the other into
// one room, as lent rooms are: each request's contents and system
// instruction must read as they do into a new room, whatever the room
// held (contents in the places of longer or shorter ones, parts arrays
// kept, a single content object, a broken array the decoder finishes).
func TestGeminiContentsRoom(t *testing.T) {
	contents := []string{
		`[{"role":"user","parts":[{"text":"a"},{"text":"b"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}},{"text":"c"},{"text":"d"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{"x":1}}}]},{"role":"user","parts":[{"functionResponse":{"id":"1","name":"f","response":{"y":2}}}]}]`,
		`[{"role":"user","parts":[{"text":"only"}]}]`,
		`{"role":"user","parts":[{"text":"one object"},{"text":"thought","thought":true}]}`,
		`[{"role":"user"},{"parts":[]},{"role":"model","parts":null},{"role":"user","parts":[{"fileData":{"mimeType":"image/jpeg","fileUri":"gs://x"}},{"text":"e"}]}]`,
		`[{"role":"user","parts":[{"text":"x","text":"twice"}]},{"role":"model","parts":[{"text":"y"}]}]`,
		`[{"role":"user","parts":[{"text":1}]}]`,
		`[{"role":"user","parts":[{"text":"broken"`,
		`[]`,
		`null`,
	}
	type flat struct {
		role          string
		text          string
		images        int
		onlyResults   bool
		results       []ToolResult
		partsPresent  bool
		contentsCount int
	}
	read := func(raw string, room *geminiContentList, system *geminiContent) []flat {
		var out []flat
		list := geminiContents(json.RawMessage(raw), room)
		for i := range list {
			f := flat{role: string(list[i].Role), partsPresent: len(list[i].Parts) > 0, contentsCount: len(list)}
			f.text, f.images, f.onlyResults = geminiFlatten(list[i].Parts, &f.results)
			out = append(out, f)
		}
		if text, images, ok := geminiSystem(json.RawMessage(raw), system); ok {
			out = append(out, flat{role: "system", text: text, images: images})
		}
		return out
	}
	var room geminiRequestRoom
	for pass := range 2 {
		for i := range contents {
			c := contents[i]
			if pass == 1 {
				c = contents[len(contents)-1-i]
			}
			var fresh geminiRequestRoom
			want := read(c, &fresh.contents, &fresh.system)
			got := read(c, &room.contents, &room.system)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s in a used room: %+v; in a new one: %+v", c, got, want)
			}
			if pass == 0 {
				room.reset() // as decodeGeminiRequest does; the scan needs it not
			}
		}
	}
}

// TestGeminiAccumulatorsKeepNothing decodes Gemini responses (whole
// bodies, a JSON-array stream, an error, tool calls and thoughts) twice
// in opposite orders through the lent accumulators: a response must not
// depend on the ones before, nor change when later ones are decoded.
func TestGeminiAccumulatorsKeepNothing(t *testing.T) {
	reg := coreRegistry(t)
	const url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
	const req = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	bodies := []struct {
		status int
		body   string
	}{
		{200, `{"candidates":[{"content":{"role":"model","parts":[{"text":"one"},{"text":"two"}]},"finishReason":"STOP","index":0},{"content":{"parts":[{"text":"other"}]},"index":1}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5},"modelVersion":"gemini-2.5-flash","responseId":"r1"}`},
		{200, `[{"candidates":[{"content":{"parts":[{"text":"think","thought":true},{"text":"a"}]},"index":0}],"responseId":"r2"},{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"x":1}}}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1,"totalTokenCount":2}}]`},
		{400, `{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}`},
		{200, `{"candidates":[],"promptFeedback":{"blockReason":"SAFETY"}}`},
		{200, `{"candidates":[{"content":{"parts":[{"text":"x","text":"twice"}]},"finishReason":"MAX_TOKENS"}]}`},
	}
	var exchanges []func() *httpmsg.Exchange
	for _, b := range bodies {
		exchanges = append(exchanges, func() *httpmsg.Exchange { return coreExchange(url, req, b.status, b.body) })
	}
	first := decodeBothWays(t, reg, exchanges)
	if r := first[1].Response; r == nil || len(r.ToolCalls) != 1 || r.Thinking == nil || r.Choices[0].Message.Content != "a" {
		t.Errorf("stream response %+v", r)
	}
}
