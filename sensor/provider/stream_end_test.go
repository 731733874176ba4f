package provider

import (
	"bytes"
	"testing"

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
