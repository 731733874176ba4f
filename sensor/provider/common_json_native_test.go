package provider

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// nativeTwinsOK reports whether native is tolerant with every jStr a
// string: the layout decodeLooseNative relies on.
func nativeTwinsOK(native, tolerant reflect.Type) bool {
	jstr := reflect.TypeFor[jStr]()
	if native == tolerant {
		return true
	}
	if tolerant == jstr {
		return native.Kind() == reflect.String && native.Name() == "string"
	}
	if native.Kind() != tolerant.Kind() || native.Size() != tolerant.Size() {
		return false
	}
	switch native.Kind() {
	case reflect.Pointer, reflect.Slice:
		return nativeTwinsOK(native.Elem(), tolerant.Elem())
	case reflect.Array:
		return native.Len() == tolerant.Len() && nativeTwinsOK(native.Elem(), tolerant.Elem())
	case reflect.Struct:
		if native.NumField() != tolerant.NumField() {
			return false
		}
		for i := range native.NumField() {
			n, t := native.Field(i), tolerant.Field(i)
			if n.Name != t.Name || n.Tag != t.Tag || n.Offset != t.Offset || n.Anonymous != t.Anonymous ||
				!nativeTwinsOK(n.Type, t.Type) {
				return false
			}
		}
		return true
	}
	return false
}

// nativeTwins are the (native, tolerant) pairs decodeLooseNative is called
// with.
var nativeTwins = [][2]reflect.Type{
	{reflect.TypeFor[openaiChatRequestBodyOf[string]](), reflect.TypeFor[openaiChatRequestBody]()},
	{reflect.TypeFor[[]openaiPartOf[string]](), reflect.TypeFor[[]openaiPart]()},
	{reflect.TypeFor[anthropicRequestBodyOf[string]](), reflect.TypeFor[anthropicRequestBody]()},
	{reflect.TypeFor[[]anthropicContentBlockOf[string]](), reflect.TypeFor[[]anthropicContentBlock]()},
	{reflect.TypeFor[geminiContentOf[string]](), reflect.TypeFor[geminiContent]()},
	{reflect.TypeFor[[]geminiContentOf[string]](), reflect.TypeFor[[]geminiContent]()},
	{reflect.TypeFor[geminiResponseBodyOf[string]](), reflect.TypeFor[geminiResponseBody]()},
	{reflect.TypeFor[anthropicEventOf[string]](), reflect.TypeFor[anthropicEvent]()},
	{reflect.TypeFor[anthropicResponseBodyOf[string]](), reflect.TypeFor[anthropicResponseBody]()},
}

func TestNativeTwinLayout(t *testing.T) {
	for _, p := range nativeTwins {
		if !nativeTwinsOK(p[0], p[1]) {
			t.Errorf("%v is not the native twin of %v", p[0], p[1])
		}
	}
	if nativeTwinsOK(reflect.TypeFor[openaiMessageOf[string]](), reflect.TypeFor[openaiToolOf[jStr]]()) {
		t.Error("different types pass as twins")
	}
}

// nativeOddBodies are bodies on which the native decode must give way to
// the tolerant one, or agree with it.
var nativeOddBodies = []string{
	`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`,
	`{"model":5,"messages":[{"role":"user","content":"hi"}]}`,
	`{"model":true,"messages":[{"role":1.5,"content":"hi"}]}`,
	`{"model":{"x":1},"messages":[{"role":["a"],"content":"hi"}]}`,
	`{"model":"a","model":null}`,
	`{"model":"a","model":"b"}`,
	`{"model":null}`,
	"{\"model\":\"a\xffb\"}",
	"{\"model\":\"a\xffb\\n\"}",
	`{"model":"\ud800"}`,
	`{"model":"caf\u00e9","system":"s","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
	`{"model":"m","messages":"x"}`,
	`{"model":"m","messages":[1,2]}`,
	`{"model":"m","tools":[{"type":"function","function":{"name":"f","description":"d"}}]}`,
	`{"model":"m","tools":[{"type":"function","function":"f"}]}`,
	`{"model":"m",`,
	`[{"type":"text","text":"a"},{"type":"image_url"},{"type":"refusal","refusal":"no"}]`,
	`[{"type":"text","text":7},{"type":"tool_result","tool_use_id":"t","content":"r","is_error":"true"}]`,
	`[{"type":"document","source":{"media_type":"image/png"}},{"type":"document","source":"x"}]`,
	`[null,{"type":"text","text":"a"}]`,
	`["a"]`,
	`{"role":"user","parts":[{"text":"hi"},{"inlineData":{"mimeType":"image/png","data":"AAAA"}},{"functionCall":{"name":"f","args":{"a":1}}}]}`,
	`[{"role":"user","parts":[{"text":"hi"}]},{"role":"model","parts":[{"text":5}]}]`,
	`{"role":"user","parts":[{"text":"a","text":null}]}`,
	`{"role":"user","parts":[{"fileData":{"fileUri":7}}]}`,
	`{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3},"modelVersion":"gemini-2.0-flash","responseId":"r1"}`,
	`{"candidates":[{"content":{"parts":[{"text":"x","thought":true}]},"finishReason":1}],"promptFeedback":{"blockReason":"SAFETY"}}`,
	`{"candidates":[{"content":"x"}]}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`,
	`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}`,
	`{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"claude","content":[],"usage":{"input_tokens":3}}}`,
	`{"type":"content_block_delta","index":"0","delta":{"type":"text_delta","text":12}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":"9"}}`,
	`{"id":"m","type":"message","content":[{"type":"text","text":"a"},{"type":"thinking","thinking":"t","data":5}],"stop_reason":"end_turn"}`,
	`{"type":"completion","completion":"x","stop_reason":"stop_sequence","model":"claude-2"}`,
	`{"type":"completion","completion":7}`,
	``,
	`   `,
}

func compareNative[N, T any](t *testing.T, body []byte) {
	t.Helper()
	var want, got T
	wantMismatch, wantErr := decodeLoose(body, &want)
	gotMismatch, gotErr := decodeLooseNative[N](body, &got)
	if wantMismatch != gotMismatch || (wantErr == nil) != (gotErr == nil) {
		t.Errorf("%T %q: native-first gives mismatch=%v err=%v, tolerant mismatch=%v err=%v",
			got, body, gotMismatch, gotErr, wantMismatch, wantErr)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%T %q: native-first decode differs (-tolerant +native-first):\n%s", got, body, d)
	}
}

func compareNativeAll(t *testing.T, body []byte) {
	t.Helper()
	compareNative[openaiChatRequestBodyOf[string], openaiChatRequestBody](t, body)
	compareNative[[]openaiPartOf[string], []openaiPart](t, body)
	compareNative[anthropicRequestBodyOf[string], anthropicRequestBody](t, body)
	compareNative[[]anthropicContentBlockOf[string], []anthropicContentBlock](t, body)
	compareNative[geminiContentOf[string], geminiContent](t, body)
	compareNative[[]geminiContentOf[string], []geminiContent](t, body)
	compareNative[geminiResponseBodyOf[string], geminiResponseBody](t, body)
	compareNative[anthropicEventOf[string], anthropicEvent](t, body)
	compareNative[anthropicResponseBodyOf[string], anthropicResponseBody](t, body)
}

// TestNativeFirstDecode checks that trying the native twin first gives
// exactly the tolerant decode, on odd bodies and on every recorded request.
func TestNativeFirstDecode(t *testing.T) {
	for _, body := range nativeOddBodies {
		compareNativeAll(t, []byte(body))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	n := 0
	for _, file := range files {
		dir := filepath.Base(filepath.Dir(file))
		if dir != "openai" && dir != "anthropic" && dir != "gemini" && dir != "vertex" {
			continue
		}
		r := loadCoreRecording(t, strings.TrimPrefix(file, "testdata"+string(filepath.Separator)))
		compareNativeAll(t, []byte(r.ReqBody))
		compareNativeAll(t, []byte(r.RespBody))
		n++
	}
	if n == 0 {
		t.Fatal("no recorded requests")
	}
}

func FuzzNativeFirstDecode(f *testing.F) {
	for _, body := range nativeOddBodies {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		compareNativeAll(t, []byte(body))
	})
}
