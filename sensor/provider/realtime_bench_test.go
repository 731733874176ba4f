package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream/eventstream"
	"github.com/oisp/oisp-sensor/sensor/websocket"
)

// Decode cost per byte of the streamed encodings, side by side on the same
// events: Anthropic Messages events as SSE (api.anthropic.com) and inside
// Bedrock's eventstream chunks; OpenAI Responses events as SSE and as
// WebSocket messages. b.SetBytes is the body (or wire) size of each path,
// so MB/s compares the per-byte cost of the whole decode.

// wsFrame builds one unfragmented text frame (masked when key is set).
func wsFrame(key []byte, payload []byte) []byte {
	return testutil.WebSocketFrame(true, false, 0x1, key, payload)
}

func benchDecode(b *testing.B, reg *Registry, x *httpmsg.Exchange) {
	b.Helper()
	tg, _ := reg.Lookup(x.Request.Authority, 0)
	var api API
	for _, a := range BuiltinAPIs() {
		if a.Match(tg, x) {
			api = a
			break
		}
	}
	if api == nil {
		b.Fatal("no decoder")
	}
	env := Env{Registry: reg, Stats: stats.Discard{}}
	b.SetBytes(int64(len(x.Response.Body.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := api.Decode(tg, x, env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStreamPaths(b *testing.B) {
	reg := moreRegistry(b)

	// Anthropic events: Bedrock eventstream vs SSE.
	rec := moreRecording(b, "testdata/bedrock/test_anthropic_3_completion_streaming.yaml")
	bx := moreExchange(b, rec.Interactions[0])
	frames, err := eventstream.DecodeAll(bx.Response.Body.Data, nil, eventstream.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var sse bytes.Buffer
	for _, f := range frames {
		ev, err := eventstream.ChunkBytes(f.Payload, nil)
		if err != nil {
			b.Fatal(err)
		}
		var head struct{ Type string }
		json.Unmarshal(ev, &head) //nolint:errcheck // recorded JSON
		fmt.Fprintf(&sse, "event: %s\ndata: %s\n\n", head.Type, ev)
	}
	var body map[string]any
	json.Unmarshal(rec.Interactions[0].Request.Body, &body) //nolint:errcheck // recorded JSON
	delete(body, "anthropic_version")
	body["model"], body["stream"] = "claude-3-sonnet-20240229", true
	reqBody, _ := json.Marshal(body)
	ax := moreExchange(b, cassette.Interaction{
		Request:  cassette.Request{Method: "POST", URL: "https://api.anthropic.com/v1/messages", Header: http.Header{"Content-Type": {"application/json"}}, Body: reqBody},
		Response: cassette.Response{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: sse.Bytes()},
	})
	b.Run("anthropic-events/sse", func(b *testing.B) { benchDecode(b, reg, ax) })
	b.Run("anthropic-events/bedrock-eventstream", func(b *testing.B) { benchDecode(b, reg, bx) })

	cs := moreRecording(b, "testdata/bedrock/test_bedrock_model_stream.yaml")
	b.Run("converse-stream/eventstream", func(b *testing.B) { benchDecode(b, reg, moreExchange(b, cs.Interactions[0])) })
	gs := moreRecording(b, "testdata/gemini/test_google_model_iter_stream.yaml")
	b.Run("gemini/sse", func(b *testing.B) { benchDecode(b, reg, moreExchange(b, gs.Interactions[2])) })
	ga := moreRecording(b, "testdata/gemini/TestGoogleAIWithStreaming.httprr")
	b.Run("gemini/json-array", func(b *testing.B) { benchDecode(b, reg, moreExchange(b, ga.Interactions[0])) })

	// OpenAI Responses events: SSE vs WebSocket (frames → websocket.Conn →
	// RealtimeSession), the same request and events.
	rs := moreRecording(b, "testdata/realtime/responses_stream_sse.yaml")
	rx := moreExchange(b, rs.Interactions[0])
	b.Run("responses-events/sse", func(b *testing.B) { benchDecode(b, reg, rx) })
	var reqMap map[string]any
	json.Unmarshal(rs.Interactions[0].Request.Body, &reqMap) //nolint:errcheck // recorded JSON
	reqMap["type"] = "response.create"
	create, _ := json.Marshal(reqMap)
	clientWire := wsFrame([]byte{1, 2, 3, 4}, create)
	var serverWire []byte
	for _, ev := range sseEvents(&rx.Response.Body) {
		serverWire = append(serverWire, wsFrame(nil, ev.Data)...)
	}
	up := &httpmsg.Exchange{
		Request:  httpmsg.Request{Method: "GET", Scheme: "https", Authority: "api.openai.com", Target: "/v1/responses", Header: httpmsg.Header{{Name: "Upgrade", Value: "websocket"}}},
		Response: &httpmsg.Response{Status: 101, Header: httpmsg.Header{}},
	}
	tg := Target{ProviderID: "openai", Host: "api.openai.com", Known: true}
	b.Run("responses-events/websocket", func(b *testing.B) {
		env := Env{Registry: reg, Stats: stats.Discard{}}
		b.SetBytes(int64(len(serverWire)))
		b.ReportAllocs()
		for b.Loop() {
			s := NewRealtimeSession(tg, up, env)
			turns := 0
			c := websocket.NewConn(websocket.Extensions{}, func(m websocket.Message) { turns += len(s.Message(m)) }, stats.Discard{}, websocket.Options{})
			c.Feed(flow.Chunk{Dir: flow.ClientToServer, Data: bytes.Clone(clientWire), At: moreT0})
			c.Feed(flow.Chunk{Dir: flow.ServerToClient, Data: serverWire, At: moreT0.Add(time.Second)})
			c.Close(flow.CloseInfo{})
			if turns != 1 {
				b.Fatalf("%d turns", turns)
			}
		}
	})
}
