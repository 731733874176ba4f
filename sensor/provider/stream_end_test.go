package provider

import (
	"bytes"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/stream/eventstream"
)

// TestStreamEndMarkers: a recorded stream that carries its format's last
// event reports StreamEnded (so a response whose transport end went unseen
// is settled as whole), and the same stream cut just before that event
// does not.
func TestStreamEndMarkers(t *testing.T) {
	beforeLine := func(marker string) func(t *testing.T, body []byte) int {
		return func(t *testing.T, body []byte) int {
			i := bytes.LastIndex(body, []byte(marker))
			if i < 0 {
				t.Fatalf("no %q in the recorded stream", marker)
			}
			return bytes.LastIndexByte(body[:i], '\n') + 1
		}
	}
	beforeLastFrame := func(t *testing.T, body []byte) int {
		frames, err := eventstream.DecodeAll(body, nil, eventstream.Options{})
		if err != nil || len(frames) < 2 {
			t.Fatalf("eventstream: %d frames, %v", len(frames), err)
		}
		return int(frames[len(frames)-1].Start)
	}
	for _, c := range []struct {
		name, file string
		index      int
		cut        func(t *testing.T, body []byte) int
	}{
		{"cohere v1 chat stream-end", "cohere/test_cohere_chat_legacy_with_streaming.yaml", 0, beforeLine(`"stream-end"`)},
		{"cohere v2 chat message-end", "cohere/test_cohere_v2_chat_legacy_with_tool_calls_and_streaming.yaml", 0, beforeLine("event: message-end")},
		{"bedrock converse metadata", "bedrock/test_bedrock_model_stream.yaml", 0, beforeLastFrame},
		{"bedrock converse tool use metadata", "bedrock/test_bedrock_model_iter_stream.yaml", 0, beforeLastFrame},
		{"bedrock invoke titan invocation metrics", "bedrock/test_titan_invoke_stream.yaml", 0, beforeLastFrame},
		{"bedrock invoke anthropic message_stop", "bedrock/test_anthropic_3_completion_streaming.yaml", 0, beforeLastFrame},
		{"gemini JSON array closing bracket", "gemini/TestGoogleAIWithStreaming.httprr", 0, func(t *testing.T, body []byte) int {
			return bytes.LastIndexByte(body, ']')
		}},
		{"gemini SSE finishReason", "gemini/test_google_model_stream.yaml", 0, beforeLine(`"finishReason"`)},
		{"gemini SSE iterated finishReason", "gemini/test_google_model_iter_stream.yaml", 0, beforeLine(`"finishReason"`)},
		{"gemini JSON array, last element cut", "gemini/TestGoogleAIWithStreaming.httprr", 0, func(t *testing.T, body []byte) int {
			return bytes.LastIndexByte(body, '}')
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := moreRegistry(t)
			in := moreRecording(t, "testdata/"+c.file).Interactions[c.index]
			res, _ := moreDecode(t, reg, moreExchange(t, in))
			if res == nil || res.Response == nil {
				t.Fatal("not decoded")
			}
			if !res.StreamEnded {
				t.Errorf("whole stream: StreamEnded false")
			}
			in.Response.Body = in.Response.Body[:c.cut(t, in.Response.Body)]
			res, _ = moreDecode(t, reg, moreExchange(t, in))
			if res == nil {
				t.Fatal("cut stream not decoded")
			}
			if res.StreamEnded {
				t.Errorf("stream cut before its last event: StreamEnded true")
			}
		})
	}
}

// TestGeminiSSEEnd: an SSE stream ends with a chunk in which every
// candidate finished, and only when every candidate seen has finished.
func TestGeminiSSEEnd(t *testing.T) {
	chunk := func(cands string) string { return `{"candidates":[` + cands + `]}` }
	for _, c := range []struct {
		name   string
		chunks []string
		want   bool
	}{
		{"finished last", []string{chunk(`{"index":0,"content":{"parts":[{"text":"a"}]}}`), chunk(`{"index":0,"finishReason":"STOP"}`)}, true},
		{"no finish", []string{chunk(`{"index":0,"content":{"parts":[{"text":"a"}]}}`)}, false},
		{"finish not last", []string{chunk(`{"index":0,"finishReason":"STOP"}`), chunk(`{"index":0,"content":{"parts":[{"text":"a"}]}}`)}, false},
		{"other candidate still open", []string{chunk(`{"index":0},{"index":1}`), chunk(`{"index":0,"finishReason":"STOP"}`)}, false},
		{"both candidates finished", []string{chunk(`{"index":0},{"index":1}`), chunk(`{"index":1,"finishReason":"STOP"}`), chunk(`{"index":0,"finishReason":"STOP"}`)}, true},
		{"candidate index out of reach", []string{chunk(`{"index":70,"finishReason":"STOP"}`)}, false},
		{"out of reach, then 63 finishes", []string{chunk(`{"index":70},{"index":63}`), chunk(`{"index":63,"finishReason":"STOP"}`)}, false},
		{"usage-only last chunk", []string{chunk(`{"index":0,"finishReason":"STOP"}`), `{"usageMetadata":{"totalTokenCount":3}}`}, false},
		{"bad chunk", []string{chunk(`{"index":0,"finishReason":"STOP"`)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var a geminiAcc
			for _, ch := range c.chunks {
				a.add([]byte(ch), time.Time{})
			}
			if got := a.sseEnded(); got != c.want {
				t.Errorf("sseEnded = %v, want %v", got, c.want)
			}
		})
	}
}
