package provider

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/cassette"
)

// Recorded Cohere exchanges (testdata/cohere/README.md lists the sources).
// Raw token counts win over billed units.
func TestCohereRecorded(t *testing.T) {
	runWants(t, []recWant{
		{ // v1 chat streamed as NDJSON; stream-end carries the response
			file: "cohere/test_cohere_chat_legacy_with_streaming.yaml", api: apiCohereChatV1,
			providerName: "cohere", model: "command", answeredModel: "command",
			streaming: true, status: 200, finish: "stop",
			prompt: iptr(69), completion: iptr(116), total: iptr(185),
			messages: 1, ttft: true,
		},
		{ // v2 named SSE events with tool-call-start/delta/end and tool-plan
			file: "cohere/test_cohere_v2_chat_legacy_with_tool_calls_and_streaming.yaml", api: apiCohereChatV2,
			providerName: "cohere", model: "command-r", answeredModel: "command-r",
			streaming: true, status: 200, finish: "tool_calls",
			prompt: iptr(968), completion: iptr(83), total: iptr(1051), tools: []string{"get_time", "get_weather"},
			messages: 1, ttft: true,
		},
		{ // v2 whole response, cached tokens
			file: "cohere/test_tool_choice_matrix[required-cohere].yaml", api: apiCohereChatV2,
			providerName: "cohere", model: "command-r7b-12-2024", answeredModel: "command-r7b-12-2024",
			status: 200, finish: "tool_calls",
			prompt: iptr(1452), completion: iptr(33), total: iptr(1485), cached: iptr(144), tools: []string{"get_weather"},
			messages: 1, cost: "priced",
		},
		{ // v1 generate, billed units only, no model named
			file: "cohere/TestCallbacksHandler.httprr", api: apiCohereGenerate,
			providerName: "cohere", status: 200, finish: "stop",
			prompt: iptr(1), completion: iptr(46), total: iptr(47),
			messages: 1,
		},
		{
			file: "cohere/TestCohere.test_embed_error.yaml", api: apiCohereEmbed,
			providerName: "cohere", model: "nonexistent", status: 404, failed: true, errType: "http_error",
			embedding: true, inputCount: 1,
		},
	})
}

func FuzzCohere(f *testing.F) {
	for _, p := range []string{"cohere/test_cohere_v2_chat_legacy_with_tool_calls_and_streaming.yaml", "cohere/test_cohere_chat_legacy_with_streaming.yaml", "cohere/TestCallbacksHandler.httprr", "cohere/TestCohere.test_embed_error.yaml"} {
		moreSeedBodies(f, "testdata/"+p, func(req, resp []byte) { f.Add(req, resp, uint8(0)) })
	}
	reg := moreRegistry(f)
	urls := []string{"https://api.cohere.com/v2/chat", "https://api.cohere.com/v1/chat", "https://api.cohere.ai/v1/generate", "https://api.cohere.com/v2/embed"}
	f.Fuzz(func(t *testing.T, req, resp []byte, variant uint8) {
		u := urls[int(variant)%len(urls)]
		ct := []string{"application/json", "text/event-stream", "application/stream+json"}[int(variant>>2)%3]
		moreFuzzDecode(t, reg, "POST", u, ct, req, resp, 200+int(variant>>6)*100)
	})
}

// TestCohereCallsReplacedMidStream: when a stream's tool calls are replaced
// (a v1 tool-calls-generation event after v2 tool-call deltas), the
// arguments streamed for the calls it dropped go with them: they neither
// land on the calls that replace them nor index past them (which panicked).
func TestCohereCallsReplacedMidStream(t *testing.T) {
	reg := moreRegistry(t)
	start := `{"type":"tool-call-start","index":%d,"delta":{"message":{"tool_calls":{"id":"c%d","type":"function","function":{"name":"f","arguments":""}}}}}`
	delta := `{"type":"tool-call-delta","index":%d,"delta":{"message":{"tool_calls":{"function":{"arguments":"{\"streamed\":%d}"}}}}}`
	events := func(streamed int, tail string) []byte {
		var b strings.Builder
		for i := range streamed {
			fmt.Fprintf(&b, "event: tool-call-start\ndata: "+start+"\n\n", i, i)
			fmt.Fprintf(&b, "event: tool-call-delta\ndata: "+delta+"\n\n", i, i)
		}
		b.WriteString("data: " + tail + "\n\n")
		return []byte(b.String())
	}
	for _, tc := range []struct {
		name     string
		streamed int
		tail     string
		want     []string // the arguments of the calls answered
	}{
		{"all dropped", 2, `{"event_type":"tool-calls-generation","tool_calls":[]}`, nil},
		{"one replaces two", 2, `{"event_type":"tool-calls-generation","tool_calls":[{"name":"g","parameters":{"own":true}}]}`, []string{`{"own":true}`}},
		{"one replaces one", 1, `{"event_type":"tool-calls-generation","tool_calls":[{"name":"g","parameters":{"own":true}}]}`, []string{`{"own":true}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := cassette.Interaction{
				Request:  cassette.Request{Method: "POST", URL: "https://api.cohere.com/v2/chat", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"model":"command-r","stream":true,"messages":[{"role":"user","content":"hi"}]}`)},
				Response: cassette.Response{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: events(tc.streamed, tc.tail)},
			}
			res, _ := moreDecode(t, reg, moreExchange(t, in))
			if res == nil || res.Response == nil {
				t.Fatal("no response decoded")
			}
			var got []string
			for _, c := range res.Response.ToolCalls {
				got = append(got, c.Arguments)
			}
			if !slices.Equal(got, tc.want) || res.Response.ToolCallsCount != len(tc.want) {
				t.Fatalf("tool call arguments %q (count %d), want %q", got, res.Response.ToolCallsCount, tc.want)
			}
		})
	}
}
