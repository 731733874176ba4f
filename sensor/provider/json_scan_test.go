package provider

import (
	"bytes"
	stdjson "encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/content"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// ignoreScanMarks leaves out of comparisons what only the scan sets.
var ignoreScanMarks = cmp.Options{
	cmpopts.IgnoreUnexported(openaiMessage{}, openaiChoiceMessage{}, openaiChatResponseBody{}, responsesRequestBody{}),
	cmp.AllowUnexported(embeddingsResponseBody{}), // its embedded error fields
}

// checkPlainMarks: content the scan marks plain is what plainStringBytes
// reads as plain text.
func checkPlainMarks(t *testing.T, v any) {
	t.Helper()
	check := func(content []byte, plain bool) {
		if !plain {
			return
		}
		if text, ok := plainStringBytes(content); !ok || !bytes.Equal(text, content[1:len(content)-1]) {
			t.Fatalf("content %.100q marked plain, plainStringBytes %v", content, ok)
		}
	}
	switch b := v.(type) {
	case *openaiChatRequestBody:
		for _, m := range b.Messages {
			check(m.Content, m.contentPlain)
		}
	case *openaiChatResponseBody:
		for _, c := range b.Choices {
			for _, m := range []*openaiChoiceMessage{c.Message, c.Delta} {
				if m != nil {
					check(m.Content, m.contentPlain)
				}
			}
		}
	}
}

// scanAgrees scans data into a new T and, when the scan takes it, decodes
// data into another with the decoder alone: the decoder must report
// neither a syntax nor a type error, and both values must be equal. It
// reports whether the scan took data.
func scanAgrees[T any, PT interface {
	*T
	scannedBody
}](t *testing.T, data []byte) bool {
	t.Helper()
	var scanned, decoded T
	if !PT(&scanned).scanJSON(bytes.TrimSpace(data), nil) {
		return false
	}
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatalf("scan took %.200q, which the decoder rejects: %v", data, err)
	}
	if d := cmp.Diff(decoded, scanned, ignoreScanMarks); d != "" {
		t.Fatalf("scan of %.200q differs from the decoder (-decoder +scan):\n%s", data, d)
	}
	checkPlainMarks(t, PT(&scanned))
	// A stream's events are scanned with a memo of their strings: scanned
	// twice with one memo, data's second scan takes its strings from it,
	// and must read the same.
	var strs memo.Strings
	for range 2 {
		var withMemo T
		if !PT(&withMemo).scanJSON(bytes.TrimSpace(data), &strs) {
			t.Fatalf("scan of %.200q with a memo declines", data)
		}
		if d := cmp.Diff(decoded, withMemo, ignoreScanMarks); d != "" {
			t.Fatalf("scan of %.200q with a memo differs from the decoder (-decoder +scan):\n%s", data, d)
		}
	}
	return true
}

// checkBothShapes runs scanAgrees for the OpenAI request and response
// shapes (and, for their agreement only, the Anthropic ones).
func checkBothShapes(t *testing.T, data []byte) (request, response bool) {
	t.Helper()
	checkAnthropicShapes(t, data)
	return scanAgrees[openaiChatRequestBody](t, data), scanAgrees[openaiChatResponseBody](t, data)
}

// checkAnthropicShapes runs scanAgrees for the Anthropic request, response
// and stream event shapes; it returns how many took data.
func checkAnthropicShapes(t *testing.T, data []byte) (taken int) {
	t.Helper()
	for _, ok := range []bool{scanAgrees[anthropicRequestBody](t, data), scanAgrees[anthropicResponseBody](t, data), scanAgrees[anthropicEvent](t, data)} {
		if ok {
			taken++
		}
	}
	return taken
}

// recordedBodies returns every request body, whole response body, SSE
// data payload and JSON-array stream element of the provider testdata
// recordings (and cassettes).
func recordedBodies(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata recordings: %v", err)
	}
	var out [][]byte
	add := func(req, resp []byte) {
		out = append(out, req, resp)
		for line := range strings.SplitSeq(string(resp), "\n") {
			if data, ok := strings.CutPrefix(line, "data:"); ok {
				out = append(out, []byte(strings.TrimSpace(data)))
			} else if strings.HasPrefix(line, "{") && line != string(resp) {
				out = append(out, []byte(line)) // an NDJSON line
			}
		}
		var elems []json.RawMessage
		if bytes.HasPrefix(bytes.TrimSpace(resp), []byte("[")) && json.Unmarshal(resp, &elems) == nil {
			for _, e := range elems {
				out = append(out, e)
			}
		}
	}
	fixtures, _ := filepath.Glob(filepath.Join("..", "..", "fixtures", "*", "*", "cassette.yaml"))
	for _, f := range fixtures {
		rec, err := cassette.ReadFile(f)
		if err != nil {
			t.Fatalf("fixture %s: %v", f, err)
		}
		for _, in := range rec.Interactions {
			add(decodedBody(in.Request.Header, in.Request.Body), decodedBody(in.Response.Header, in.Response.Body))
		}
	}
	for _, f := range files {
		switch filepath.Ext(f) {
		case ".json":
			r := loadCoreRecording(t, strings.TrimPrefix(f, "testdata"+string(filepath.Separator)))
			add([]byte(r.ReqBody), []byte(r.RespBody))
		case ".md":
		default:
			rec, err := cassette.ReadFile(f)
			if err != nil {
				continue // a folder, or not a cassette
			}
			for _, in := range rec.Interactions {
				add(in.Request.Body, in.Response.Body)
			}
		}
	}
	return out
}

// decodedBody is a recorded body without its content encoding (as
// recorded when the encoding is unknown or the body does not decode).
func decodedBody(h http.Header, body []byte) []byte {
	enc := h.Get("Content-Encoding")
	if enc == "" || !content.Known(enc) {
		return body
	}
	out, _, err := content.Decode(enc, body, 64<<20, nil)
	if err != nil {
		return body
	}
	return out
}

// checkMoreShapes runs scanAgrees for the Gemini shapes and the arrays
// decoded apart from their bodies (found in data, or in its members); it
// returns how many Gemini bodies and arrays the scans took, and how many
// Responses API requests had their input items checked.
func checkMoreShapes(t *testing.T, data []byte) (gemini, responses, arrays int) {
	t.Helper()
	count := func(oks ...bool) (n int) {
		for _, ok := range oks {
			if ok {
				n++
			}
		}
		return n
	}
	// Only bodies of the family count as taken (any object is taken by
	// shapes whose members it lacks).
	named := func(names ...string) bool {
		for _, n := range names {
			if bytes.Contains(data, []byte(`"`+n+`"`)) {
				return true
			}
		}
		return false
	}
	var req geminiRequestBody
	if scanAgrees[geminiRequestBody](t, data) && named("contents") {
		gemini++
		if req.scanJSON(bytes.TrimSpace(data), nil) {
			arrays += checkArrays(t, req.Contents, req.SystemInstruction, req.SystemInstructionSnake)
		}
	}
	gemini += count(scanAgrees[geminiResponseBody](t, data) && named("candidates"), scanAgrees[geminiContent](t, data) && named("parts"))
	// A Responses API request is scanned with its input item list; the
	// response object is the decoder's, its items and contents are
	// scanned.
	if named("input") && scanAgrees[responsesRequestBody](t, data) {
		checkResponsesInput(t, data)
	}
	var rreq responsesRequestBody
	if named("input") && json.Unmarshal(data, &rreq) == nil && rawKind(rreq.Input) == '[' {
		responses++
		arrays += checkArrays(t, rreq.Input)
		var items responsesItemList
		if items.scanJSON(rreq.Input, nil) {
			for _, it := range items {
				arrays += checkArrays(t, it.Content, it.Output)
			}
		}
	}
	// Responses stream events are scanned when small (a response or an
	// item makes the scan decline).
	if scanAgrees[responsesEvent](t, data) && named("item_id") {
		responses++
	}
	var robj responsesObject
	if named("output") && json.Unmarshal(data, &robj) == nil {
		for _, it := range robj.Output {
			arrays += checkArrays(t, it.Content)
		}
	}
	// Ollama lines and bodies.
	scanAgrees[ollamaLine](t, data)
	// OpenAI-style error objects and embeddings requests.
	scanAgrees[openaiErrorObject](t, data)
	scanAgrees[embeddingsRequestBody](t, data)
	scanAgrees[embeddingsResponseBody](t, data)
	// Message contents of the other request shapes.
	var chat openaiChatRequestBody
	if chat.scanJSON(bytes.TrimSpace(data), nil) {
		for _, m := range chat.Messages {
			arrays += checkArrays(t, m.Content)
		}
	}
	var anthropic anthropicRequestBody
	if anthropic.scanJSON(bytes.TrimSpace(data), nil) {
		arrays += checkArrays(t, anthropic.System)
		for _, m := range anthropic.Messages {
			arrays += checkArrays(t, m.Content)
		}
	}
	arrays += checkArrays(t, data)
	return gemini, responses, arrays
}

// checkResponsesInput: a Responses API request the scan takes has its
// input item list read in place when it is a list, and the items are the
// ones the decoder reads from the input it returns.
func checkResponsesInput(t *testing.T, data []byte) {
	t.Helper()
	var b responsesRequestBody
	if !b.scanJSON(bytes.TrimSpace(data), nil) {
		t.Fatalf("scan of %.200q declines", data)
	}
	if b.inputScanned != (rawKind(b.Input) == '[') {
		t.Fatalf("input %.100q of %.200q: read in place %v", b.Input, data, b.inputScanned)
	}
	if !b.inputScanned {
		return
	}
	var decoded responsesItemList
	if err := json.Unmarshal(b.Input, &decoded); err != nil {
		t.Fatalf("input %.200q read in place, which the decoder rejects: %v", b.Input, err)
	}
	if d := cmp.Diff(decoded, b.inputItems); d != "" {
		t.Fatalf("input items of %.200q differ from the decoder's (-decoder +scan):\n%s", data, d)
	}
}

// checkArrays runs scanAgrees for the shapes decoded from raw members
// apart from their bodies; it returns how many took a value.
func checkArrays(t *testing.T, raws ...[]byte) (taken int) {
	t.Helper()
	for _, raw := range raws {
		if len(raw) == 0 {
			continue
		}
		for _, ok := range []bool{
			scanAgrees[geminiContentList](t, raw), scanAgrees[geminiContent](t, raw), scanAgrees[responsesItemList](t, raw),
			scanAgrees[openaiPartList](t, raw), scanAgrees[anthropicContentList](t, raw),
		} {
			if ok {
				taken++
			}
		}
	}
	return taken
}

// TestOpenAIScanAgreesOnRecordings: on real bodies the scan agrees with
// the decoder, and it does take the usual OpenAI chat bodies and chunks.
func TestOpenAIScanAgreesOnRecordings(t *testing.T) {
	requests, responses, anthropic := 0, 0, 0
	gemini, responsesAPI, arrays := 0, 0, 0
	for _, body := range recordedBodies(t) {
		req, resp := checkBothShapes(t, body)
		if req {
			requests++
		}
		if resp {
			responses++
		}
		anthropic += checkAnthropicShapes(t, body)
		g, r, a := checkMoreShapes(t, body)
		gemini, responsesAPI, arrays = gemini+g, responsesAPI+r, arrays+a
	}
	if requests < 20 || responses < 100 || anthropic < 100 {
		t.Fatalf("scan took only %d request, %d response and %d Anthropic bodies of the recordings", requests, responses, anthropic)
	}
	t.Logf("scan took %d Gemini bodies and %d arrays (%d Responses API requests)", gemini, arrays, responsesAPI)
	if gemini < 100 || responsesAPI < 20 || arrays < 500 {
		t.Fatalf("scan took only %d Gemini bodies and %d arrays of the recordings (%d Responses API requests)", gemini, arrays, responsesAPI)
	}
}

// TestOllamaScanTakesRecordedLines: the scan takes the recorded Ollama
// lines and bodies (and agrees with the decoder, see checkMoreShapes).
func TestOllamaScanTakesRecordedLines(t *testing.T) {
	taken := 0
	for _, body := range recordedBodies(t) {
		if bytes.Contains(body, []byte(`"done"`)) && scanAgrees[ollamaLine](t, body) {
			taken++
		}
	}
	if taken < 50 {
		t.Fatalf("scan took only %d recorded Ollama lines", taken)
	}
	t.Logf("scan took %d recorded Ollama lines", taken)
}

// TestOpenAIScanOddJSON: odd values either are read exactly as the decoder
// with the tolerant scalars reads them, or make the scan decline.
func TestOpenAIScanOddJSON(t *testing.T) {
	for _, tc := range []struct {
		body string
		take bool // the scan of the shape the body names must take it (else decline)
	}{
		// Tolerant scalars: numbers and booleans as strings, strings as
		// numbers, null, integral floats, huge numbers, objects.
		{`{"model":"gpt-4o","max_tokens":"256","temperature":"0.5","stream":"true"}`, true},
		{`{"model":4,"max_tokens":256.0,"temperature":1,"stream":false}`, true},
		{`{"model":null,"max_tokens":null,"temperature":null,"stream":null}`, true},
		{`{"model":true,"max_tokens":1e3,"top_p":-0.0,"stream":1}`, true},
		{`{"max_tokens":99999999999999999999,"max_completion_tokens":9007199254740993,"temperature":1e999}`, true},
		{`{"max_tokens":{"a":1},"model":["x"],"stop":{"x":[1,2,{"y":null}]}}`, true},
		{`{"model":"  padded  ","max_tokens":" 12 "}`, true},
		// Escapes, non-ASCII, surrogates.
		{`{"model":"gpt\u002d4o","messages":[{"role":"us\u0065r","content":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t"}]}`, true},
		{`{"messages":[{"role":"user","content":"日本語のテキスト ✓"}]}`, true},
		{`{"model":"\ud800 lone","messages":[{"role":"user","content":"\udc00"}]}`, true},
		// Invalid UTF-8 is the decoder's to take, and so the scan's.
		{`{"model":"a` + "\xff" + `","messages":[{"role":"user","content":"b` + "\xc3" + `"}],"user":{"x` + "\xfe" + `":1}}`, true},
		{`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:x"}}]}]}`, true},
		// Response shapes.
		{`{"id":"x","choices":[{"index":"1","message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":"5","completion_tokens":2.0,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":null}}`, true},
		{`{"choices":[{"delta":{},"text":null,"finish_reason":null},{"text":"legacy","index":1}],"usage":null}`, true},
		{`{"choices":[{"delta":{"function_call":{"name":"f","arguments":{"x":1}}}}],"error":{"message":"m"},"detail":[1]}`, true},
		{`{"choices":null,"object":"error","message":"bad","type":"invalid","code":400}`, true},
		{`{"choices":[]}`, true},
		{`{}`, true},
		{" \t\r\n{\"id\" : \"x\" , \"choices\" : [ ] } \n", true},
		// Declined: names the decoder might match differently, names given
		// twice, kinds a field does not take, x_groq, malformed JSON.
		{`{"Model":"gpt-4o"}`, false},
		{`{"MAX_TOKENS":5}`, false},
		{`{"maxtokens":5}`, false},
		{`{"max-tokens":5}`, false},
		{`{"modeł":"x"}`, false},
		{`{"mod\u0065l":"x"}`, false},
		{`{"model":"a","model":null}`, false},
		{`{"messages":"hi"}`, false},
		{`{"messages":[1]}`, false},
		{`{"choices":{}}`, false},
		{`{"usage":[1]}`, false},
		{`{"choices":[{"message":"x"}]}`, false},
		{`{"x_groq":{"id":"req_1","usage":{"prompt_tokens":1}},"usage":null}`, true},
		{`{"x_groq":{"Usage":{}}}`, false},
		{`{"model":"x",}`, false},
		{`{"model":"x"} {}`, false},
		{`{"model":"x"`, false},
		{`{"model":01}`, false},
		{`{"model":1.}`, false},
		{`{"model":-}`, false},
		{`{"model":tru}`, false},
		{`{"model":"a` + "\x01" + `"}`, false},
		{`{"model":"\x"}`, false},
		{`{"model":"\u12G4"}`, false},
		{`[{"model":"x"}]`, false},
		// Skipped members are checked as strictly as the decoder checks them.
		{`{"model":"x","extra":[01]}`, false},
		{`{"model":"x","extra":{"a":1,}}`, false},
		{`{"model":"x","extra":[1 2]}`, false},
		{`{"model":"x","extra":{"a" 1}}`, false},
		{`{"model":"x","extra":{"a":1]}`, false},
		{`{"model":"x","extra":["a` + "\x01" + `"]}`, false},
		{`{"model":"x","extra":["\q"]}`, false},
		{`{"model":"x","extra":[tru]}`, false},
		{`{"model":"x","extra":[-]}`, false},
		{`{"model":"x","extra":{"\u00e9":[1e5,-0.5E-3,true,false,null,{},[],"\ud83d\ude00"]}}`, true},
		{`{"model":"x","extra":{"` + "\xff" + `":[" ` + "\xc3" + `"]}}`, true},
		{`null`, false},
		{`{"stop":` + strings.Repeat("[", maxScanDepth+1) + strings.Repeat("]", maxScanDepth+1) + `}`, false},
	} {
		req, resp := checkBothShapes(t, []byte(tc.body))
		// Names of the other shape are unknown to it, so skipped there.
		taken := req
		if strings.Contains(tc.body, `"choices"`) || strings.Contains(tc.body, `"usage"`) || strings.Contains(tc.body, `"x_groq"`) || strings.Contains(tc.body, `"object"`) {
			taken = resp
		}
		if taken != tc.take {
			t.Errorf("%.120q: scan took it as request %v, response %v; want taken %v", tc.body, req, resp, tc.take)
		}
	}
}

// TestAnthropicScanOddJSON: Anthropic events and bodies with odd values
// are read as the decoder reads them, or declined.
func TestAnthropicScanOddJSON(t *testing.T) {
	for _, tc := range []struct {
		body string
		take int // how many of the three Anthropic shapes must take it
	}{
		{`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \u00e9"}}`, 3},
		{`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":"12","output_tokens":1.0,"cache_read_input_tokens":null}}}`, 3},
		{`{"type":"content_block_start","index":"1","content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`, 3},
		{`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`, 3},
		{`{"completion":null,"stop_reason":"stop_sequence","model":"claude-2"}`, 3},
		{`{"content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"xx"}},{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"r"}],"is_error":"true"}]}`, 3},
		{`{"model":"claude","system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"max_tokens":"1024","stream":1}`, 3},
		{`{"type":"ping","Type":"x"}`, 1},        // the request shape has no "type"
		{`{"delta":{"text":"a","text":"b"}}`, 2}, // only the event has "delta"
		{`{"content_block":"x"}`, 2},
		{`{"message":[]}`, 2},
		{`{"error":{"type":"overloaded_error","message":"Overloaded"},"type":"error"}`, 3},
	} {
		if got := checkAnthropicShapes(t, []byte(tc.body)); got != tc.take {
			t.Errorf("%.120q: taken by %d Anthropic shapes, want %d", tc.body, got, tc.take)
		}
	}
}

// TestOpenAIScanLeavesNoTrace: a declined scan leaves the target as the
// decoder expects it (reset), so decodeLoose gives the decoder's result.
func TestOpenAIScanLeavesNoTrace(t *testing.T) {
	for _, body := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"Model":"other"}`,
		`{"id":"x","choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":1},"x_groq":{"usage":{"prompt_tokens":9}}}`,
		`{"id":"x","choices":[{"index":0,"delta":{"content":"a"}}],"choices":"twice"}`,
	} {
		var viaLoose, viaDecoder openaiChatResponseBody
		m1, err1 := decodeLoose([]byte(body), &viaLoose)
		err := json.Unmarshal([]byte(body), &viaDecoder)
		if err1 != nil || (err != nil) != m1 {
			t.Fatalf("%s: decodeLoose mismatch %v err %v; decoder %v", body, m1, err1, err)
		}
		if d := cmp.Diff(viaDecoder, viaLoose, ignoreScanMarks); d != "" {
			t.Fatalf("%s: (-decoder +decodeLoose)\n%s", body, d)
		}
		var reqLoose, reqDecoder openaiChatRequestBody
		m1, err1 = decodeLoose([]byte(body), &reqLoose)
		err = json.Unmarshal([]byte(body), &reqDecoder)
		if err1 != nil || (err != nil) != m1 {
			t.Fatalf("%s: decodeLoose mismatch %v err %v; decoder %v", body, m1, err1, err)
		}
		if d := cmp.Diff(reqDecoder, reqLoose, ignoreScanMarks); d != "" {
			t.Fatalf("%s: (-decoder +decodeLoose)\n%s", body, d)
		}
	}
}

// TestOpenAIScanStreamReuse: a chunk decoded into the stream's reused body
// after a declined and a taken one is the decoder's.
func TestOpenAIScanStreamReuse(t *testing.T) {
	s := newOpenAIChatStream()
	for _, data := range []string{
		`{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}},{"index":1,"delta":{"content":"y"}}]}`,
		`{"id":"a","choices":[{"index":0,"delta":{"content":"z"}}],"ID":"dup"}`,
		`{"id":"a","choices":[{"index":1,"delta":{"content":"w"}}]}`,
	} {
		c := s.chunk.reset()
		if _, err := decodeLoose([]byte(data), c); err != nil {
			t.Fatal(err)
		}
		var want openaiChatResponseBody
		if err := json.Unmarshal([]byte(data), &want); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, *c, ignoreScanMarks); d != "" {
			t.Fatalf("%s: (-decoder +reused)\n%s", data, d)
		}
	}
}

func FuzzJSONScan(f *testing.F) {
	for _, body := range recordedBodies(f) {
		if len(body) < 4096 {
			f.Add(body)
		}
	}
	f.Add([]byte(`{"model":"a","model":null,"max_tokens":"12","messages":[{"role":"user","content":"caf\u00e9"}]}`))
	f.Add([]byte(`{"choices":[{"index":0,"message":{"role":"assistant","content":"x","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBothShapes(t, data)
		checkMoreShapes(t, data)
	})
}

// TestScanAllocations: a scan allocates what it decodes and nothing of its
// own (the jsonScan stays on the stack): for this chunk, the choices
// array, the delta and the usage, and no string (the words are common,
// the content is read in place).
func TestScanAllocations(t *testing.T) {
	chunk := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}`)
	id := "chatcmpl-1"
	var b openaiChatResponseBody
	n := testing.AllocsPerRun(100, func() {
		b = openaiChatResponseBody{}
		if !b.scanJSON(chunk, nil) || string(b.ID) != id {
			t.Fatal("scan declined")
		}
	})
	// choices, delta, usage, and the id's string.
	if n != 4 {
		t.Fatalf("scan of a chunk allocates %.0f times, want 4", n)
	}
}

// TestScanMemo: a stream's next chunk takes the id it repeats from the
// memo (no string allocated), and a different id is copied.
func TestScanMemo(t *testing.T) {
	chunk := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"m-1","choices":[]}`)
	var (
		b    openaiChatResponseBody
		strs memo.Strings
	)
	if !b.scanJSON(chunk, &strs) {
		t.Fatal("scan declined")
	}
	n := testing.AllocsPerRun(100, func() {
		b = openaiChatResponseBody{}
		if !b.scanJSON(chunk, &strs) || b.ID != "chatcmpl-1" || b.Model != "m-1" {
			t.Fatal("scan declined or misread")
		}
	})
	if n != 0 { // (an empty choices array needs no allocation)
		t.Fatalf("scan of a repeated chunk allocates %.0f times, want 0", n)
	}
	other := bytes.Replace(chunk, []byte("chatcmpl-1"), []byte("chatcmpl-2"), 1)
	if !b.scanJSON(other, &strs) || b.ID != "chatcmpl-2" || b.Model != "m-1" {
		t.Fatalf("scan with a memo read id %q model %q", b.ID, b.Model)
	}
}

// TestGeminiScanOddJSON: Gemini bodies with odd values are read as the
// decoder reads them (with geminiTool's own method for tools), or
// declined.
func TestGeminiScanOddJSON(t *testing.T) {
	for _, tc := range []struct {
		body      string
		take      bool // the request (contents) or response (candidates) shape takes it
		isRequest bool
	}{
		{`{"contents":[{"role":"user","parts":[{"text":"hi"},{"text":null},{"thought":"true","text":"t"}]}]}`, true, true},
		{`{"contents":[],"tools":[{"functionDeclarations":[{"name":"f","description":"d","parameters":{"type":"object"}}]},{"googleSearch":{}},{"codeExecution":{},"urlContext":{}},null,"x",[1]]}`, true, true},
		{`{"contents":[],"tools":[{"function_declarations":null},{"functionDeclarations":[]}]}`, true, true},
		{`{"contents":[],"tools":[{"functionDeclarations":[{"name":"a"}],"function_declarations":[{"name":"b"}]}]}`, false, true},
		{`{"contents":[],"tools":[{"googleSearch":{},"googleSearch":{}}]}`, false, true},
		{`{"contents":[],"tools":[{"FunctionDeclarations":[{"name":"a"}]}]}`, true, true},
		{`{"contents":[],"tools":[{"functionDeclarations":[{"Name":"a"}]}]}`, false, true},
		{`{"contents":[],"tools":[{"functionDeclarations":{"name":"a"}}]}`, false, true},
		{`{"contents":[],"tools":{"functionDeclarations":[]}}`, false, true},
		{`{"contents":[],"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["f",1,null,{"x":1}]}},"tool_config":null}`, true, true},
		{`{"contents":[],"generationConfig":{"temperature":"0.5","topP":1,"top_p":0.5,"maxOutputTokens":"64","stopSequences":["x"],"stop_sequences":"y"}}`, true, true},
		{`{"contents":"hello","systemInstruction":{"parts":[{"text":"s"}]},"system_instruction":"plain","cachedContent":5}`, true, true},
		{`{"generateContentRequest":{"model":"models/g","contents":[{"parts":[{"text":"x"}]}]},"contents":null}`, true, true},
		{`{"contents":[{"parts":[{"inlineData":{"mimeType":"image/png","data":"AAAA"}},{"inline_data":{"mime_type":"image/jpeg","data":null}},{"fileData":{"fileUri":"gs://x","file_uri":"y"}},{"file_data":null}]}]}`, true, true},
		{`{"contents":[{"parts":[{"functionCall":{"id":"c","name":"f","args":{"a":[1]}}},{"function_response":{"name":"f","response":{"error":"x"}}}]}]}`, true, true},
		{`{"Contents":[]}`, false, true},
		{`{"contents":[],"contents":[]}`, false, true},
		{`{"candidates":[{"content":{"role":"model","parts":[{"text":"a","thoughtSignature":"c2ln"}]},"finishReason":"STOP","index":"0","safetyRatings":[]}],"usageMetadata":{"promptTokenCount":"3","candidatesTokenCount":1.0,"totalTokenCount":null},"modelVersion":"g","responseId":"r","promptFeedback":{"blockReason":"SAFETY"}}`, true, false},
		{`{"candidates":null,"promptFeedback":null,"usageMetadata":null,"error":{"code":400,"message":"m","status":"INVALID_ARGUMENT"}}`, true, false},
		{"{\n  \"candidates\": [\n    {\n      \"content\": {\n        \"parts\": [\n          {\n            \"text\": \"a\\nb\"\n          }\n        ]\n      }\n    }\n  ]\n}\n", true, false},
		{`{"candidates":[{"content":"x"}]}`, false, false},
		{`{"candidates":[{"Content":{}}]}`, false, false},
		{`{"candidates":[{"content":{"parts":[{"text":"a","TEXT":"b"}]}}]}`, false, false},
		{`{"candidates":{}}`, false, false},
	} {
		data := []byte(tc.body)
		checkMoreShapes(t, data)
		var taken bool
		if tc.isRequest {
			taken = scanAgrees[geminiRequestBody](t, data)
		} else {
			taken = scanAgrees[geminiResponseBody](t, data)
		}
		if taken != tc.take {
			t.Errorf("%.120q: taken %v, want %v", tc.body, taken, tc.take)
		}
	}
}

// TestGeminiScanChunkReuse: a chunk decoded into the stream's reused body
// after taken and declined ones is the decoder's.
func TestGeminiScanChunkReuse(t *testing.T) {
	var chunk geminiResponseBody
	for _, data := range []string{
		`{"candidates":[{"content":{"parts":[{"text":"a"}]},"index":0},{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]},"index":1}]}`,
		`{"candidates":[{"content":{"parts":[{"text":"b"}]}}],"Candidates":[]}`,
		`{"candidates":[{"finishReason":"STOP","index":1}],"usageMetadata":{"totalTokenCount":3}}`,
	} {
		b := chunk.reset()
		if _, err := decodeLoose([]byte(data), b); err != nil {
			t.Fatal(err)
		}
		var want geminiResponseBody
		if err := json.Unmarshal([]byte(data), &want); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, *b); d != "" {
			t.Fatalf("%s: (-decoder +reused)\n%s", data, d)
		}
	}
}

// TestArrayScanOddJSON: the arrays decoded apart from their bodies, with
// odd values, are read as the decoder reads them or declined; skipped
// strings are checked as strictly wherever their special byte falls.
func TestArrayScanOddJSON(t *testing.T) {
	type scan func(*testing.T, []byte) bool
	parts, anthropic, items := scan(scanAgrees[openaiPartList]), scan(scanAgrees[anthropicContentList]), scan(scanAgrees[responsesItemList])
	line := scan(scanAgrees[ollamaLine])
	request := func(t *testing.T, data []byte) bool {
		if !scanAgrees[responsesRequestBody](t, data) {
			return false
		}
		checkResponsesInput(t, data)
		return true
	}
	cases := []struct {
		body string
		with scan
		take bool
	}{
		{`[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"refusal","refusal":null},{"type":"thinking","thinking":[{"text":"t"}]}]`, parts, true},
		{`null`, parts, true},
		{`[]`, parts, true},
		{`[1]`, parts, false},
		{`{"type":"text"}`, parts, false},
		{`[{"type":"text","Text":"a"}]`, parts, false},
		{`[{"type":"text","_text":"a"}]`, parts, false},
		{`[{"type":"text","te-xt":"a"}]`, parts, false},
		{`[{"type":"text","xtext":"a","ttext":"b","_x":"c"}]`, parts, true},
		{`[{"type":"text","text":"a","text":"b"}]`, parts, false},
		{`[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"r"}],"is_error":"true"}]`, anthropic, true},
		{`[{"type":"image","source":"x"}]`, anthropic, false},
		{`[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]},{"type":"function_call_output","call_id":"c","output":"{\"a\":1}"},{"type":"reasoning","summary":[{"type":"summary_text","text":"s"}],"encrypted_content":"eA=="}]`, items, true},
		{`[{"type":"reasoning","summary":"s"}]`, items, false},
		{`{"model":"gpt-5","input":[{"role":"user","content":"hi"},{"type":"function_call_output","call_id":"c","output":"o"}],"instructions":null,"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"stream":"true","max_output_tokens":"64"}`, request, true},
		{`{"model":"gpt-5","input":"hi","temperature":1,"top_p":null,"tool_choice":{"type":"function","name":"f"}}`, request, true},
		{`{"input":null}`, request, true},
		{`{"input":[]}`, request, true},
		{`{"input":{"role":"user"}}`, request, true},
		{`{"input":[{"role":"user","content":"a"}],"Input":"b"}`, request, false},
		{`{"input":[{"role":"user","content":"a","Role":"x"}]}`, request, false},
		{`{"input":[{"type":"reasoning","summary":"s"}]}`, request, false},
		{`{"input":[1]}`, request, false},
		{`{"input":[{"role":"user"},]}`, request, false},
		{`{"input":[{"role":"user"}],"input":"x"}`, request, false},
		{`{"tools":{"type":"function"}}`, request, false},
		{`{"model":"gemma3:1b","created_at":"2025-08-20T13:48:22Z","response":"Okay","done":false}`, line, true},
		{`{"model":"m","message":{"role":"assistant","content":"caf\u00e9","thinking":null,"images":null,"tool_calls":null},"done":"true","done_reason":"stop","prompt_eval_count":"15","eval_count":2.0,"context":[1,2]}`, line, true},
		{`{"model":"m","response":null,"thinking":5,"error":{"message":"x"},"embeddings":[[0.1,-2e-3]],"embedding":[]}`, line, true},
		{`{"error":"model not found"}`, line, true},
		{`{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]}}`, line, false},
		{`{"message":{"images":["AAAA"]}}`, line, false},
		{`{"message":{"tool_calls":[]}}`, line, false},
		{`{"message":"x"}`, line, false},
		{`{"Model":"m"}`, line, false},
		{`{"model":"m","done":true,"done":false}`, line, false},
	}
	// A skipped string with a special byte at each offset of its first
	// three words.
	for at := 0; at < 40; at++ {
		for _, special := range []string{`\"`, `\\`, `\u00e9`, "\x01", "\t", "\xc3\xa9", `"`} {
			text := strings.Repeat("a", at) + special + strings.Repeat("b", 40-at)
			take := special != "\x01" && special != "\t" && special != `"`
			cases = append(cases, struct {
				body string
				with scan
				take bool
			}{`[{"type":"text","skipped":"` + text + `","text":"x"}]`, parts, take})
		}
	}
	for _, tc := range cases {
		if got := tc.with(t, []byte(tc.body)); got != tc.take {
			t.Errorf("%.120q: taken %v, want %v", tc.body, got, tc.take)
		}
	}
}

// TestResponsesEventScanOwnsDelta: a scanned delta is the event's own copy,
// so the decoder, which appends the next event's delta to the buffer
// reset keeps, never writes over the body the scan read.
func TestResponsesEventScanOwnsDelta(t *testing.T) {
	// (The delta comes first: bytes enough follow it in the body for the
	// decoder's append to fit, were the delta a slice of it.)
	first := []byte(`{"delta":"Hello","type":"response.output_text.delta","item_id":"msg_1","output_index":0,"sequence_number":12345}`)
	keep := string(first)
	var strs memo.Strings
	var ev responsesEvent
	if !ev.scanJSON(first, &strs) || string(ev.Delta) != `"Hello"` || string(ev.ItemID) != "msg_1" {
		t.Fatalf("delta event not scanned: %+v", ev)
	}
	ev.reset()
	if _, err := decodeLoose([]byte(`{"type":"response.output_text.delta","delta":"a longer delta than Hello","item":{}}`), &ev); err != nil {
		t.Fatal(err)
	}
	if string(first) != keep {
		t.Fatalf("the scanned body was written over: %s", first)
	}
	ev.reset()
	if ev.scanJSON([]byte(`{"type":"response.created","response":{"id":"resp_1"}}`), &strs) {
		t.Fatal("an event with a response object was scanned")
	}
}

// FuzzJSONSkip: skip, which every scan uses for the values it does not
// read, takes a document exactly when encoding/json's Valid does, but for
// nesting deeper than the scan follows (which it declines).
func FuzzJSONSkip(f *testing.F) {
	for i, body := range recordedBodies(f) {
		if i%40 == 0 && len(body) < 2048 {
			f.Add(body)
		}
	}
	for _, s := range []string{
		`{"a":[1,-0.5e+3,true,false,null,{},[],""],"b":{"c":"\u00e9\n\"","d":"` + strings.Repeat("x", 70) + `"}}`,
		`[{"a" : 1 } , [ ] ]`, `"\q"`, "\"a\x01\"", `[01]`, `[1.]`, `-`, `tru`, `fals`, `nul`, `{"a":1,}`, `[1 2]`,
		"{\n  \"a\": \"b\"\n}", `{"a"` + "\t:\t" + `1}`, "\"\xff\xfe\"", strings.Repeat("[", 70) + strings.Repeat("]", 70),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := jsonScan{b: data}
		took := s.skip() && s.end()
		valid := stdjson.Valid(data)
		if took && !valid {
			t.Fatalf("skip took %q, which is not valid JSON", data)
		}
		if valid && !took && bytes.Count(data, []byte("["))+bytes.Count(data, []byte("{")) < maxScanDepth-1 {
			t.Fatalf("skip declined valid JSON %q", data)
		}
	})
}

// TestOpenAIErrorObjectScan: the usual error objects (a numeric or null
// code, an inner error, a param) are scanned as the decoder reads them,
// and a name given twice or one only loosely equal declines.
func TestOpenAIErrorObjectScan(t *testing.T) {
	for _, tc := range []struct {
		body  string
		taken bool
	}{
		{`{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}`, true},
		{`{"message":"Bad \"model\"\n","type":"invalid_request_error","code":400}`, true},
		{`{"code":null,"message":"","error":{"message":"inner","type":"t"}}`, true},
		{` {"type":"x","extra":[1,{"a":2}]} `, true},
		{`{"type":"x","type":"y"}`, false},
		{`{"Message":"loose"}`, false},
	} {
		var e openaiErrorObject
		if got := e.scanJSON(trimSpace([]byte(tc.body)), nil); got != tc.taken {
			t.Errorf("%s: scan took it %v, want %v", tc.body, got, tc.taken)
		}
		if tc.taken {
			scanAgrees[openaiErrorObject](t, []byte(tc.body))
		}
	}
	if e := openaiErrorMember(json.RawMessage(`{"code":null,"message":"","error":{"message":"inner","type":"t"}}`)); e == nil || e.Message != "inner" || e.Type != "t" {
		t.Errorf("inner error: %+v", e)
	}
}

// TestEmbeddingsScan: embeddings requests and responses of the usual
// shapes (inputs of every kind, float and base64 vectors, no data, an
// error body) are scanned as the decoder reads them.
func TestEmbeddingsScan(t *testing.T) {
	for _, body := range []string{
		`{"model":"text-embedding-3-small","input":"hello","encoding_format":"float"}`,
		`{"model":"m","input":["a","b\n"],"dimensions":"256"}`,
		`{"model":"m","input":[[1,2,3],[4]],"dimensions":64,"user":"u"}`,
	} {
		if !scanAgrees[embeddingsRequestBody](t, []byte(body)) {
			t.Errorf("%s: request not scanned", body)
		}
	}
	for _, body := range []string{
		`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2e-3,3]},{"embedding":[1]}],"model":"m","usage":{"prompt_tokens":5,"total_tokens":5}}`,
		`{"object":"list","data":[{"embedding":"AACAPwAAAEA="}],"model":"m"}`,
		`{"data":null,"usage":null}`,
		`{"error":{"message":"bad","type":"invalid_request_error","code":null}}`,
		`{"object":"error","message":"Too many tokens","type":"BadRequestError","code":400}`,
		`{"detail":"Not found"}`,
	} {
		if !scanAgrees[embeddingsResponseBody](t, []byte(body)) {
			t.Errorf("%s: response not scanned", body)
		}
	}
}
