package provider

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/websocket"
)

// transcriptMessages reads a recorded WebSocket transcript as the messages
// sensor/websocket would deliver, 10 ms apart.
func transcriptMessages(t testing.TB, path string) []websocket.Message {
	t.Helper()
	tr, err := cassette.ReadWebSocketTranscript(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []websocket.Message
	at := moreT0
	for _, m := range tr.Messages {
		if m.Exchange != nil || m.Close {
			continue
		}
		at = at.Add(10 * time.Millisecond)
		dir := flow.ServerToClient
		if m.Sent {
			dir = flow.ClientToServer
		}
		op := websocket.OpText
		if m.Binary {
			op = websocket.OpBinary
		}
		out = append(out, websocket.Message{Dir: dir, Opcode: op, Data: m.Data, Start: at, End: at, Frames: 1})
	}
	return out
}

// turnWant is what a test expects of one realtime turn.
type turnWant struct {
	api                      string
	model                    string
	messages, toolResults    int
	system                   bool
	tools                    int // tool definitions in the request
	calls                    []string
	finish                   string
	text                     string
	prompt, completion       *int
	total, cached            *int
	ttft                     bool
	providerName, providerID string
}

func checkTurns(t *testing.T, turns []RealtimeTurn, wants []turnWant) {
	t.Helper()
	if len(turns) != len(wants) {
		t.Fatalf("%d turns; want %d", len(turns), len(wants))
	}
	for i, w := range wants {
		res := turns[i].Result
		req, resp := res.Request, res.Response
		where := fmt.Sprintf("turn %d", i)
		if res.API() != w.api || req.Model == nil || req.Model.ID != w.model || req.Streaming == nil || !*req.Streaming {
			t.Errorf("%s: api %q model %+v streaming %v", where, res.API(), req.Model, req.Streaming)
		}
		if req.Provider.Name != w.providerName || req.Provider.ID != w.providerID {
			t.Errorf("%s: provider %+v", where, req.Provider)
		}
		if len(req.Messages) != w.messages || len(res.ToolResults) != w.toolResults || req.HasSystemPrompt != w.system || len(req.Tools) != w.tools {
			t.Errorf("%s: messages %d tool results %d system %v tools %d; want %d %d %v %d", where,
				len(req.Messages), len(res.ToolResults), req.HasSystemPrompt, len(req.Tools), w.messages, w.toolResults, w.system, w.tools)
		}
		var names []string
		for _, c := range resp.ToolCalls {
			names = append(names, c.Name)
			if c.ID == "" || c.ArgumentsHash != oisp.Hash(c.Arguments) {
				t.Errorf("%s: tool call %+v", where, c)
			}
		}
		if fmt.Sprint(names) != fmt.Sprint(w.calls) || resp.FinishReason != w.finish {
			t.Errorf("%s: calls %v finish %q; want %v %q", where, names, resp.FinishReason, w.calls, w.finish)
		}
		if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != w.text {
			t.Errorf("%s: answer %+v; want %q", where, resp.Choices, w.text)
		}
		u := resp.Usage
		if u == nil {
			u = &oisp.Usage{}
		}
		if intString(u.PromptTokens) != intString(w.prompt) || intString(u.CompletionTokens) != intString(w.completion) ||
			intString(u.TotalTokens) != intString(w.total) || intString(u.CachedTokens) != intString(w.cached) {
			t.Errorf("%s: usage %s/%s/%s cached %s", where, intString(u.PromptTokens), intString(u.CompletionTokens), intString(u.TotalTokens), intString(u.CachedTokens))
		}
		if resp.Success == nil || !*resp.Success || resp.Error != nil || resp.StatusCode != 0 {
			t.Errorf("%s: success %v error %+v status %d", where, resp.Success, resp.Error, resp.StatusCode)
		}
		if resp.LatencyMS == nil || (resp.TimeToFirstTokenMS != nil) != w.ttft {
			t.Errorf("%s: latency %v ttft %v", where, resp.LatencyMS, resp.TimeToFirstTokenMS)
		}
		x := turns[i].Exchange
		if x == nil || x.Request.Start.IsZero() || x.Response == nil || x.Response.End.Before(x.Request.Start) {
			t.Errorf("%s: turn exchange times %+v", where, x)
		}
	}
}

func realtimeEnv(t testing.TB) Env { return Env{Registry: moreRegistry(t), Stats: stats.Discard{}} }

// Realtime sessions recorded from OpenAI, Azure OpenAI and xAI: each model
// response is a turn with its own request (session instructions and tools,
// the items added since the previous turn) and response.
func TestRealtimeTranscripts(t *testing.T) {
	openai := Target{ProviderID: "openai", Host: "api.openai.com", Known: true}
	const toolAnswer = "It is foggy and 12 degrees in London."
	cases := []struct {
		file  string
		t     Target
		wants []turnWant
	}{
		{"openai_tool_call_round.yaml", openai, []turnWant{
			{api: apiOpenAIRealtime, model: "gpt-realtime", providerName: "openai", messages: 2, system: true, tools: 1,
				calls: []string{"get_weather"}, finish: "tool_calls", prompt: iptr(63), completion: iptr(22), total: iptr(85), cached: iptr(0), ttft: true},
			{api: apiOpenAIRealtime, model: "gpt-realtime", providerName: "openai", messages: 2, toolResults: 1, system: true, tools: 1,
				finish: "stop", text: toolAnswer, prompt: iptr(103), completion: iptr(13), total: iptr(116), cached: iptr(64), ttft: true},
		}},
		{"azure_tool_call_round.yaml", Target{ProviderID: "azure_openai", Host: "x.openai.azure.com", Known: true}, []turnWant{
			{api: apiOpenAIRealtime, model: "gpt-realtime", providerName: "azure_openai", messages: 2, system: true, tools: 1,
				calls: []string{"get_weather"}, finish: "tool_calls", prompt: iptr(63), completion: iptr(22), total: iptr(85), cached: iptr(0), ttft: true},
			{api: apiOpenAIRealtime, model: "gpt-realtime", providerName: "azure_openai", messages: 2, toolResults: 1, system: true, tools: 1,
				finish: "stop", text: toolAnswer, prompt: iptr(96), completion: iptr(13), total: iptr(109), cached: iptr(64), ttft: true},
		}},
		{"xai_tool_call_round.yaml", Target{ProviderID: "xai", Host: "api.x.ai", Known: true}, []turnWant{
			// xAI reports no usage; the answer is an audio transcript.
			{api: apiOpenAIRealtime, model: "grok-voice-latest", providerName: "other", providerID: "xai", messages: 2, system: true, tools: 1,
				calls: []string{"get_weather"}, finish: "tool_calls", text: "I'll check the weather for London right away.", ttft: true},
			{api: apiOpenAIRealtime, model: "grok-voice-latest", providerName: "other", providerID: "xai", messages: 2, toolResults: 1, system: true, tools: 1,
				finish: "stop", text: "It is foggy and 12 degrees in London. The weather is foggy and 12 degrees.", ttft: true},
		}},
		{"openai_audio_in_server_vad_turn.yaml", openai, []turnWant{
			// Server VAD opens the turn: no response.create; the user's
			// audio transcript completes after the turn started.
			{api: apiOpenAIRealtime, model: "gpt-realtime", providerName: "openai", messages: 2, system: true,
				finish: "stop", text: "Hello, Marcelo! Great to meet you. How can I help you today?", prompt: iptr(41), completion: iptr(164), total: iptr(205), cached: iptr(0), ttft: true},
		}},
		{"openai_message_history_seeding.yaml", openai, []turnWant{
			{api: apiOpenAIRealtime, model: "gpt-realtime", providerName: "openai", messages: 4, system: true,
				finish: "stop", text: "Your name is Alice, and your favorite color is teal!", prompt: iptr(149), completion: iptr(14), total: iptr(163), cached: iptr(0), ttft: true},
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			msgs := transcriptMessages(t, "testdata/realtime/"+c.file)
			turns := DecodeRealtimeTranscript(c.t, nil, msgs, realtimeEnv(t))
			checkTurns(t, turns, c.wants)
		})
	}
}

// The user's spoken words reach the request once transcribed.
func TestRealtimeAudioTranscript(t *testing.T) {
	msgs := transcriptMessages(t, "testdata/realtime/openai_audio_in_server_vad_turn.yaml")
	turns := DecodeRealtimeTranscript(Target{ProviderID: "openai", Known: true}, nil, msgs, realtimeEnv(t))
	var transcript string
	for _, m := range msgs {
		var ev struct{ Type, Transcript string }
		if json.Unmarshal(m.Data, &ev) == nil && ev.Type == "conversation.item.input_audio_transcription.completed" {
			transcript = ev.Transcript
		}
	}
	if transcript == "" {
		t.Fatal("the recording has no transcription")
	}
	user := turns[0].Result.Request.Messages[1]
	if user.Role != "user" || user.Content != transcript || user.ContentHash != oisp.Hash(transcript) {
		t.Errorf("user message %+v; want the transcript %q", user, transcript)
	}
}

// A session cut off mid-response yields a partial turn, not nothing.
func TestRealtimeUnfinished(t *testing.T) {
	msgs := transcriptMessages(t, "testdata/realtime/openai_tool_call_round.yaml")
	var cut []websocket.Message
	for _, m := range msgs {
		cut = append(cut, m)
		if len(cut) > 10 && m.Dir == flow.ServerToClient && string(m.Data[:min(40, len(m.Data))]) != "" &&
			json.Valid(m.Data) && bytesHasType(m.Data, "response.function_call_arguments.delta") {
			break
		}
	}
	turns := DecodeRealtimeTranscript(Target{ProviderID: "openai", Known: true}, nil, cut, realtimeEnv(t))
	if len(turns) != 1 || !turns[0].Result.Partial || turns[0].Result.Response.Usage != nil {
		t.Fatalf("turns %d partial %v", len(turns), len(turns) > 0 && turns[0].Result.Partial)
	}
}

func bytesHasType(b []byte, typ string) bool {
	var ev struct{ Type string }
	return json.Unmarshal(b, &ev) == nil && ev.Type == typ
}

// The Responses API over WebSocket: the request and events of a recorded
// Responses SSE exchange, re-framed as the messages a WebSocket client and
// server exchange ({"type":"response.create", …request} and one message
// per event).
func TestResponsesOverWebSocket(t *testing.T) {
	rec := moreRecording(t, "testdata/realtime/responses_stream_sse.yaml")
	up := &httpmsg.Exchange{
		Request:  httpmsg.Request{Method: "GET", Scheme: "https", Authority: "api.openai.com", Target: "/v1/responses", Header: httpmsg.Header{{Name: "Upgrade", Value: "websocket"}}},
		Response: &httpmsg.Response{Status: 101},
	}
	tg := Target{ProviderID: "openai", Host: "api.openai.com", Known: true}
	if !IsRealtimeUpgrade(tg, up) {
		t.Fatal("the upgrade is not recognised")
	}
	var msgs []websocket.Message
	at := moreT0
	for _, in := range rec.Interactions {
		var body map[string]any
		if err := json.Unmarshal(in.Request.Body, &body); err != nil {
			t.Fatal(err)
		}
		body["type"] = "response.create"
		delete(body, "stream")
		create, _ := json.Marshal(body)
		at = at.Add(time.Millisecond)
		msgs = append(msgs, websocket.Message{Dir: flow.ClientToServer, Opcode: websocket.OpText, Data: create, Start: at, End: at})
		x := moreExchange(t, in)
		for _, ev := range sseEvents(&x.Response.Body) {
			at = at.Add(time.Millisecond)
			msgs = append(msgs, websocket.Message{Dir: flow.ServerToClient, Opcode: websocket.OpText, Data: ev.Data, Start: at, End: at})
		}
	}
	turns := DecodeRealtimeTranscript(tg, up, msgs, realtimeEnv(t))
	if len(turns) != 2 {
		t.Fatalf("%d turns", len(turns))
	}
	for i, w := range []struct {
		prompt, completion int
		calls              []string
		results            int
	}{{255, 16, []string{"get_capital"}, 0}, {278, 9, nil, 1}} {
		res := turns[i].Result
		r := res.Response
		var names []string
		for _, c := range r.ToolCalls {
			names = append(names, c.Name)
		}
		if res.API() != apiOpenAIResponsesWS || res.Request.Model == nil || res.Request.Model.ID != "gpt-4o" ||
			r.Model == nil || r.Model.ID != "gpt-4o-2024-08-06" || !*res.Request.Streaming {
			t.Errorf("turn %d: api %q request model %+v answered %+v", i, res.API(), res.Request.Model, r.Model)
		}
		if r.Usage == nil || *r.Usage.PromptTokens != w.prompt || *r.Usage.CompletionTokens != w.completion ||
			fmt.Sprint(names) != fmt.Sprint(w.calls) || len(res.ToolResults) != w.results || r.TimeToFirstTokenMS == nil {
			t.Errorf("turn %d: usage %+v calls %v results %d ttft %v", i, r.Usage, names, len(res.ToolResults), r.TimeToFirstTokenMS)
		}
	}
}

// FuzzRealtimeSession feeds arbitrary messages to a session: it must never
// panic and every turn it returns must have a request and a response.
func FuzzRealtimeSession(f *testing.F) {
	for _, name := range []string{"openai_tool_call_round.yaml", "xai_tool_call_round.yaml"} {
		msgs := transcriptMessages(f, "testdata/realtime/"+name)
		for _, m := range msgs[:min(len(msgs), 12)] {
			f.Add(m.Data, m.Dir == flow.ClientToServer)
		}
	}
	f.Add([]byte(`{"type":"response.done","response":{"id":"r","status":"failed","output":[{"type":"function_call"}]}}`), false)
	f.Add([]byte(`{"type":"response.create","model":"gpt-5","input":"hi"}`), true)
	env := Env{Stats: stats.Discard{}}
	f.Fuzz(func(t *testing.T, data []byte, client bool) {
		dir := flow.ServerToClient
		if client {
			dir = flow.ClientToServer
		}
		s := NewRealtimeSession(Target{ProviderID: "openai", Known: true}, nil, env)
		var turns []RealtimeTurn
		for i := 0; i < 3; i++ { // the same message repeated: starts, deltas, ends
			turns = append(turns, s.Message(websocket.Message{Dir: dir, Opcode: websocket.OpText, Data: data, End: moreT0.Add(time.Duration(i) * time.Second)})...)
		}
		turns = append(turns, s.Close(moreT0.Add(time.Minute))...)
		for _, tr := range turns {
			if tr.Result == nil || tr.Result.Request == nil || tr.Result.Response == nil || tr.Exchange == nil {
				t.Fatalf("incomplete turn %+v", tr)
			}
		}
	})
}
