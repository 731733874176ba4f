package provider

// WebSocket APIs: the OpenAI Realtime API (wss://…/v1/realtime, also Azure
// OpenAI and xAI, which speak the same events) and the Responses API over
// WebSocket (wss://…/v1/responses). A WebSocket session carries many model
// turns, so it is decoded by a RealtimeSession fed message by message
// (sensor/websocket delivers them); each finished model response becomes
// one Result, with an Exchange that carries the turn's own times so the
// pipeline can emit it like any HTTP exchange.
//
// Realtime turns: a response starts at response.created (after the
// client's response.create, or on its own with server VAD) and ends at
// response.done. The request of a turn is the session configuration
// (model, instructions, tools from session.created/updated and
// session.update, overridden by response.create's "response") plus the
// conversation items added since the previous turn (user text and audio
// transcripts, function_call_output → tool results). The server echoes
// every item (conversation.item.added/done), so items are taken from the
// server, by id.
//
// Responses over WebSocket: the client's {"type":"response.create", …}
// carries a Responses request (openai_responses.go decodes it); the server
// answers with the same events as the SSE stream, ending in
// response.completed / response.failed / response.incomplete.

import (
	"bytes"
	json "github.com/goccy/go-json"
	"net/url"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/websocket"
)

// API names of the WebSocket decoders.
const (
	apiOpenAIRealtime    = "openai.realtime"
	apiOpenAIResponsesWS = "openai.responses_websocket"
)

// Notes of the WebSocket decoders.
const (
	noteRealtimeUnfinished = "realtime_response_unfinished"
	noteRealtimeBadMessage = "realtime_message_not_json"
)

// maxRealtimeItems bounds the conversation items a session remembers (for
// de-duplication by id); maxRealtimeOpen bounds responses in progress.
const (
	maxRealtimeItems = 4096
	maxRealtimeOpen  = 64
)

// RealtimeTurn is one decoded model response of a WebSocket session.
// Exchange has the upgrade's request line and headers, with Request.Start
// when the turn was asked for and Response.Start/End when its answer came,
// so the pipeline can emit it as it emits HTTP exchanges.
type RealtimeTurn struct {
	Exchange *httpmsg.Exchange
	Result   *Result
}

// IsRealtimeUpgrade reports whether an upgrade exchange opens a session
// RealtimeSession decodes: a WebSocket upgrade to …/realtime or
// …/responses on a known host.
func IsRealtimeUpgrade(t Target, x *httpmsg.Exchange) bool {
	if !websocket.IsUpgrade(x) || !t.Known {
		return false
	}
	p := trimPath(x)
	return strings.HasSuffix(p, "/realtime") || strings.HasSuffix(p, "/responses")
}

// RealtimeSession decodes one WebSocket session. It is not safe for
// concurrent use.
type RealtimeSession struct {
	t           Target
	up          *httpmsg.Exchange
	env         Env
	responsesWS bool
	kindKnown   bool

	// session configuration
	model        string
	instructions string
	tools        []oisp.ToolDefinition
	toolChoice   string
	maxTokens    *int

	// conversation items since the previous turn
	items    []realtimeItem
	seen     map[string]int // item id → index in items (this turn), -1 once used
	outputs  map[string]bool
	askedAt  time.Time // the client's response.create not yet answered
	override json.RawMessage

	open map[string]*realtimeTurnAcc // realtime turns by response id
	ws   *realtimeTurnAcc            // the Responses-over-WebSocket turn in progress

	bad int
}

type realtimeItem struct {
	id     string
	msg    oisp.Message
	result *ToolResult
}

// realtimeTurnAcc accumulates one model response.
type realtimeTurnAcc struct {
	res          *Result
	askedAt      time.Time
	createdAt    time.Time
	contentClock // when the first content arrived
	text         strings.Builder
	calls        []oisp.ToolCall
	stream       *responsesStream // Responses over WebSocket
	// itemAt finds the request message of an input item, for audio
	// transcripts that complete after the turn started.
	itemAt map[string]int
}

// NewRealtimeSession starts decoding the session opened by upgrade (which
// may be nil when only the messages are known, as in recorded
// transcripts). t is the registry target of the upgrade's host.
func NewRealtimeSession(t Target, upgrade *httpmsg.Exchange, env Env) *RealtimeSession {
	s := &RealtimeSession{t: t, up: upgrade, env: env, seen: map[string]int{}, outputs: map[string]bool{}, open: map[string]*realtimeTurnAcc{}}
	if upgrade == nil {
		s.up = &httpmsg.Exchange{Request: httpmsg.Request{Method: "GET", Scheme: "https", Authority: t.Host, Target: "/v1/realtime"}}
	}
	p := trimPath(s.up)
	switch {
	case strings.HasSuffix(p, "/responses"):
		s.responsesWS, s.kindKnown = true, true
	case strings.HasSuffix(p, "/realtime") && upgrade != nil:
		s.kindKnown = true
	}
	// ?model= (OpenAI, xAI) or ?deployment= (Azure) names the model until
	// the session says otherwise.
	if q, err := url.ParseQuery(s.up.Request.Query()); err == nil {
		s.model = q.Get("model")
		if s.model == "" {
			s.model = q.Get("deployment")
		}
	}
	return s
}

// realtimeEvent is the union of the client and server events used.
type realtimeEvent struct {
	Type     jStr            `json:"type"`
	Session  *realtimeConfig `json:"session"`
	Response json.RawMessage `json:"response"`
	Item     *realtimeItemIn `json:"item"`
	Delta    json.RawMessage `json:"delta"`
	CallID   jStr            `json:"call_id"`
	Name     jStr            `json:"name"`
	Args     jStr            `json:"arguments"`
	Error    json.RawMessage `json:"error"`
	ItemID   jStr            `json:"item_id"`
	// input audio transcription
	Transcript jStr `json:"transcript"`
	// Responses over WebSocket: the request is the event itself.
	Model jStr            `json:"model"`
	Input json.RawMessage `json:"input"`
}

type realtimeConfig struct {
	Model           jStr            `json:"model"`
	Instructions    *jStr           `json:"instructions"`
	Tools           json.RawMessage `json:"tools"`
	ToolChoice      json.RawMessage `json:"tool_choice"`
	MaxOutputTokens json.RawMessage `json:"max_output_tokens"`
	MaxRespTokens   json.RawMessage `json:"max_response_output_tokens"` // beta name
}

type realtimeItemIn struct {
	ID      jStr            `json:"id"`
	Type    jStr            `json:"type"`
	Role    jStr            `json:"role"`
	Content json.RawMessage `json:"content"`
	CallID  jStr            `json:"call_id"`
	Name    jStr            `json:"name"`
	Args    jStr            `json:"arguments"`
	Output  json.RawMessage `json:"output"`
}

type realtimeResponse struct {
	ID            jStr `json:"id"`
	Status        jStr `json:"status"`
	StatusDetails *struct {
		Type   jStr            `json:"type"`
		Reason jStr            `json:"reason"`
		Error  json.RawMessage `json:"error"`
	} `json:"status_details"`
	Output []realtimeItemIn `json:"output"`
	Usage  *struct {
		TotalTokens  jInt `json:"total_tokens"`
		InputTokens  jInt `json:"input_tokens"`
		OutputTokens jInt `json:"output_tokens"`
		InputDetails *struct {
			CachedTokens jInt `json:"cached_tokens"`
		} `json:"input_token_details"`
		OutputDetails *struct {
			ReasoningTokens jInt `json:"reasoning_tokens"`
		} `json:"output_token_details"`
	} `json:"usage"`
	// response.create overrides
	Instructions    *jStr           `json:"instructions"`
	Tools           json.RawMessage `json:"tools"`
	ToolChoice      json.RawMessage `json:"tool_choice"`
	MaxOutputTokens json.RawMessage `json:"max_output_tokens"`
}

// Message consumes one WebSocket message and returns the turns it
// completed.
func (s *RealtimeSession) Message(m websocket.Message) []RealtimeTurn {
	if m.Opcode != websocket.OpText || m.Data == nil {
		return nil // audio frames of other APIs, undecodable messages
	}
	if s.kindKnown {
		// Fast paths that skip decoding the event twice: Responses
		// events go straight to the Responses stream decoder, and audio
		// deltas (base64, most of a voice session's bytes) only mark
		// content.
		typ := sniffType(m.Data)
		switch {
		case s.responsesWS && m.Dir == flow.ServerToClient:
			return s.responsesEvent(m)
		case !s.responsesWS && m.Dir == flow.ServerToClient && (typ == "response.output_audio.delta" || typ == "response.audio.delta"):
			if acc := s.current(); acc != nil {
				acc.content(m.End)
			}
			return nil
		case !s.responsesWS && m.Dir == flow.ClientToServer && typ == "input_audio_buffer.append":
			return nil
		}
	}
	var ev realtimeEvent
	if _, err := decodeLoose(m.Data, &ev); err != nil {
		s.bad++
		return nil
	}
	typ := string(ev.Type)
	if !s.kindKnown {
		switch {
		case strings.HasPrefix(typ, "session."):
			s.kindKnown = true
		case typ == "response.create" && m.Dir == flow.ClientToServer && (ev.Model != "" || len(ev.Input) > 0):
			s.responsesWS, s.kindKnown = true, true
		}
	}
	if s.responsesWS {
		return s.responsesMessage(m, typ, &ev)
	}
	if m.Dir == flow.ClientToServer {
		s.clientEvent(m, typ, &ev)
		return nil
	}
	return s.serverEvent(m, typ, &ev)
}

// Close ends the session; responses still in progress are returned as
// partial turns.
func (s *RealtimeSession) Close(at time.Time) []RealtimeTurn {
	var out []RealtimeTurn
	for id, acc := range s.open {
		acc.res.note(noteRealtimeUnfinished)
		out = append(out, s.finishTurn(acc, nil, at))
		delete(s.open, id)
	}
	if s.ws != nil {
		s.ws.res.note(noteRealtimeUnfinished)
		out = append(out, s.finishWSTurn(s.ws, at))
		s.ws = nil
	}
	return out
}

// DecodeRealtimeTranscript decodes a whole recorded session (upgrade may
// be nil) and returns its turns in order.
func DecodeRealtimeTranscript(t Target, upgrade *httpmsg.Exchange, messages []websocket.Message, env Env) []RealtimeTurn {
	s := NewRealtimeSession(t, upgrade, env)
	var out []RealtimeTurn
	var last time.Time
	for _, m := range messages {
		out = append(out, s.Message(m)...)
		last = m.End
	}
	return append(out, s.Close(last)...)
}

// ---------------------------------------------------------------- Realtime API

func (s *RealtimeSession) configure(c *realtimeConfig) {
	if c.Model != "" {
		s.model = string(c.Model)
	}
	if c.Instructions != nil {
		s.instructions = string(*c.Instructions)
	}
	if len(c.Tools) > 0 && rawKind(c.Tools) == '[' {
		s.tools = realtimeTools(c.Tools)
	}
	if len(c.ToolChoice) > 0 && rawKind(c.ToolChoice) != 'n' {
		s.toolChoice = oisp.ToolChoice(anyValue(c.ToolChoice))
	}
	for _, raw := range []json.RawMessage{c.MaxOutputTokens, c.MaxRespTokens} {
		var n jInt
		if len(raw) > 0 && json.Unmarshal(raw, &n) == nil && n.OK {
			s.maxTokens = n.Ptr()
		}
	}
}

// realtimeTools reads a tool list (flat {type, name, description}).
func realtimeTools(raw json.RawMessage) []oisp.ToolDefinition {
	var tools []openaiTool
	decodeLoose(raw, &tools) //nolint:errcheck // a broken list yields what decoded
	out := make([]oisp.ToolDefinition, 0, len(tools))
	for _, t := range tools {
		out = append(out, openaiToolDef(t))
	}
	return out
}

func (s *RealtimeSession) clientEvent(m websocket.Message, typ string, ev *realtimeEvent) {
	switch typ {
	case "session.update":
		if ev.Session != nil {
			s.configure(ev.Session)
		}
	case "response.create":
		s.askedAt = m.End
		s.override = ev.Response
	}
}

// item records a conversation item the server confirmed.
func (s *RealtimeSession) item(it *realtimeItemIn) {
	id := string(it.ID)
	if id != "" && s.outputs[id] {
		return // the model's own output of a turn
	}
	var ri realtimeItem
	ri.id = id
	switch string(it.Type) {
	case "message", "":
		text, images := realtimeContent(it.Content)
		ri.msg = newMessage(string(it.Role), text, images)
	case "function_call_output":
		out := rawText(it.Output)
		ri.msg = newMessage("tool", out, 0)
		ri.msg.ToolCallID = string(it.CallID)
		ri.result = &ToolResult{CallID: string(it.CallID), Content: out}
	case "function_call":
		// History the client seeded: the call itself is not input text.
		ri.msg = newMessage("assistant", "", 0)
	default:
		return
	}
	if i, ok := s.seen[id]; ok && id != "" {
		if i >= 0 {
			s.items[i] = ri // item.done refines item.added (transcripts)
		}
		return
	}
	if len(s.items) >= maxRealtimeItems {
		return
	}
	if id != "" {
		if len(s.seen) >= maxRealtimeItems {
			s.seen = map[string]int{}
		}
		s.seen[id] = len(s.items)
	}
	s.items = append(s.items, ri)
}

// realtimeContent flattens item content: input_text/text/output_text
// parts, audio transcripts; images counted.
func realtimeContent(raw json.RawMessage) (string, int) {
	var parts []struct {
		Type       jStr `json:"type"`
		Text       jStr `json:"text"`
		Transcript jStr `json:"transcript"`
	}
	if rawKind(raw) == '"' {
		s, _ := rawString(raw)
		return s, 0
	}
	decodeLoose(raw, &parts) //nolint:errcheck // a broken list yields what decoded
	var texts []string
	images := 0
	for _, p := range parts {
		switch {
		case p.Type == "input_image":
			images++
		case p.Text != "":
			texts = append(texts, string(p.Text))
		case p.Transcript != "":
			texts = append(texts, string(p.Transcript))
		}
	}
	return joinText(texts), images
}

func (s *RealtimeSession) serverEvent(m websocket.Message, typ string, ev *realtimeEvent) []RealtimeTurn {
	switch typ {
	case "session.created", "session.updated":
		if ev.Session != nil {
			s.configure(ev.Session)
		}
	case "conversation.item.added", "conversation.item.created", "conversation.item.done":
		if ev.Item != nil {
			s.item(ev.Item)
		}
	case "response.created":
		var r realtimeResponse
		decodeLoose(ev.Response, &r) //nolint:errcheck // an unreadable response still opens a turn
		s.startTurn(string(r.ID), m.End)
	case "response.output_item.added", "response.output_item.done":
		if ev.Item != nil && ev.Item.ID != "" && len(s.outputs) < maxRealtimeItems {
			s.outputs[string(ev.Item.ID)] = true
		}
		if acc := s.current(); acc != nil && ev.Item != nil && ev.Item.Type == "function_call" {
			acc.content(m.End)
		}
	case "response.output_text.delta", "response.output_audio_transcript.delta", "response.text.delta", "response.audio_transcript.delta":
		if acc := s.current(); acc != nil {
			acc.text.WriteString(rawText(ev.Delta))
			acc.content(m.End)
		}
	case "response.output_audio.delta", "response.audio.delta", "response.function_call_arguments.delta":
		if acc := s.current(); acc != nil {
			acc.content(m.End)
		}
	case "conversation.item.input_audio_transcription.completed":
		s.transcript(string(ev.ItemID), string(ev.Transcript))
	case "response.done":
		var r realtimeResponse
		if _, err := decodeLoose(ev.Response, &r); err != nil {
			s.bad++
			return nil
		}
		acc, ok := s.open[string(r.ID)]
		if !ok {
			// A response we never saw start (joined mid-session).
			acc = s.startTurn(string(r.ID), m.End)
		}
		delete(s.open, string(r.ID))
		return []RealtimeTurn{s.finishTurn(acc, &r, m.End)}
	case "error":
		if acc := s.current(); acc != nil && acc.res.Response != nil {
			e := openaiErrorMember(ev.Error)
			if e == nil {
				e = &oisp.Error{Type: "error"}
			}
			setFailure(acc.res.Response, e, true)
		}
	}
	return nil
}

// transcript fills in the transcript of an input audio item: in the
// items of the next turn, or in the request of a turn already started.
func (s *RealtimeSession) transcript(itemID, text string) {
	if itemID == "" || text == "" {
		return
	}
	if i, ok := s.seen[itemID]; ok && i >= 0 && i < len(s.items) {
		s.items[i].msg = newMessage(s.items[i].msg.Role, text, s.items[i].msg.ImageCount)
		return
	}
	for _, acc := range s.open {
		if i, ok := acc.itemAt[itemID]; ok {
			msgs := acc.res.Request.Messages
			msgs[i] = hashedMessage(msgs[i].Role, text, msgs[i].ImageCount) // the request is finished
			return
		}
	}
}

// current is the turn in progress (the newest when several overlap).
func (s *RealtimeSession) current() *realtimeTurnAcc {
	var cur *realtimeTurnAcc
	for _, acc := range s.open {
		if cur == nil || acc.createdAt.After(cur.createdAt) {
			cur = acc
		}
	}
	return cur
}

// startTurn opens a turn: the request is the session configuration and
// the items since the previous turn.
func (s *RealtimeSession) startTurn(id string, at time.Time) *realtimeTurnAcc {
	res := newResult(apiOpenAIRealtime, s.t, s.up, oisp.RequestChat)
	req := res.Request
	req.Streaming = oisp.Ptr(true)
	instructions, tools, toolChoice, maxTokens := s.instructions, s.tools, s.toolChoice, s.maxTokens
	if len(s.override) > 0 {
		var o realtimeResponse
		if decodeLooseOK(s.override, &o) {
			if o.Instructions != nil {
				instructions = string(*o.Instructions)
			}
			if rawKind(o.Tools) == '[' {
				tools = realtimeTools(o.Tools)
			}
			if len(o.ToolChoice) > 0 && rawKind(o.ToolChoice) != 'n' {
				toolChoice = oisp.ToolChoice(anyValue(o.ToolChoice))
			}
			var n jInt
			if len(o.MaxOutputTokens) > 0 && json.Unmarshal(o.MaxOutputTokens, &n) == nil && n.OK {
				maxTokens = n.Ptr()
			}
		}
	}
	if s.model != "" {
		req.Model = &oisp.Model{ID: s.model}
	}
	if instructions != "" {
		setSystemPrompt(req, instructions)
		req.Messages = append(req.Messages, newMessage("system", instructions, 0))
	}
	itemAt := map[string]int{}
	for _, it := range s.items {
		if it.id != "" {
			itemAt[it.id] = len(req.Messages)
		}
		req.Messages = append(req.Messages, it.msg)
		if it.result != nil {
			res.ToolResults = append(res.ToolResults, *it.result)
		}
	}
	for id := range s.seen {
		s.seen[id] = -1 // later item.done events of used items change nothing
	}
	s.items = s.items[:0]
	req.Tools = append([]oisp.ToolDefinition(nil), tools...)
	req.ToolChoice = toolChoice
	if maxTokens != nil {
		req.Parameters = &oisp.Parameters{MaxTokens: maxTokens}
	}
	finishRequest(req)
	res.Response = &oisp.AIResponse{Provider: req.Provider, Success: oisp.Ptr(true), Streaming: oisp.Ptr(true)}
	acc := &realtimeTurnAcc{res: res, askedAt: s.askedAt, createdAt: at, itemAt: itemAt}
	if acc.askedAt.IsZero() || acc.askedAt.After(at) {
		acc.askedAt = at // server VAD started the turn
	}
	s.askedAt, s.override = time.Time{}, nil
	if id != "" && len(s.open) < maxRealtimeOpen {
		s.open[id] = acc
	}
	return acc
}

// finishTurn completes a realtime turn from response.done (r nil: cut).
func (s *RealtimeSession) finishTurn(acc *realtimeTurnAcc, r *realtimeResponse, at time.Time) RealtimeTurn {
	res := acc.res
	resp := res.Response
	if s.bad > 0 {
		res.note(noteRealtimeBadMessage)
	}
	text := acc.text.String()
	var fr, raw string
	if r != nil {
		resp.ProviderRequestID = string(r.ID)
		var texts []string
		for _, it := range r.Output {
			switch it.Type {
			case "function_call":
				acc.calls = append(acc.calls, toolCall(string(it.CallID), string(it.Name), "function", string(it.Args)))
			case "message":
				if t, _ := realtimeContent(it.Content); t != "" {
					texts = append(texts, t)
				}
			}
		}
		if len(texts) > 0 {
			text = strings.Join(texts, "")
		}
		if u := r.Usage; u != nil {
			resp.Usage = &oisp.Usage{PromptTokens: u.InputTokens.Ptr(), CompletionTokens: u.OutputTokens.Ptr(), TotalTokens: u.TotalTokens.Ptr()}
			if u.InputDetails != nil && u.InputDetails.CachedTokens.OK {
				resp.Usage.CachedTokens = u.InputDetails.CachedTokens.Ptr()
			}
			if u.OutputDetails != nil && u.OutputDetails.ReasoningTokens.OK {
				resp.Usage.ReasoningTokens = u.OutputDetails.ReasoningTokens.Ptr()
			}
			completeTotals(resp.Usage)
		}
		raw = string(r.Status)
		switch raw {
		case "completed":
			fr = oisp.FinishStop
		case "cancelled":
			fr = oisp.FinishOther
		case "incomplete":
			fr = oisp.FinishLength
			if r.StatusDetails != nil && r.StatusDetails.Reason == "content_filter" {
				fr = oisp.FinishContentFilter
			}
		case "failed":
			e := &oisp.Error{Type: "response_failed"}
			if r.StatusDetails != nil {
				if oe := openaiErrorMember(r.StatusDetails.Error); oe != nil {
					e = oe
				}
			}
			setFailure(resp, e, true)
		}
	}
	if len(acc.calls) > 0 && fr == oisp.FinishStop {
		fr = oisp.FinishToolCalls
	}
	if resp.Error == nil {
		resp.Choices = oneChoice(text, fr, rawIfDifferent(raw, fr))
		resp.FinishReason = fr
		setToolCalls(resp, acc.calls)
	}
	resp.LatencyMS = msBetween(acc.askedAt, at)
	if !acc.firstContent.IsZero() {
		resp.TimeToFirstTokenMS = msBetween(acc.askedAt, acc.firstContent)
	}
	finishResult(s.env, s.lookupID(), res)
	return RealtimeTurn{Exchange: s.turnExchange(acc.askedAt, acc.createdAt, at), Result: res}
}

// lookupID is the registry id used for model lookups and prices.
func (s *RealtimeSession) lookupID() string {
	if s.t.ProviderID == "" {
		return "openai"
	}
	return s.t.ProviderID
}

// turnExchange is the upgrade exchange with one turn's times.
func (s *RealtimeSession) turnExchange(asked, started, done time.Time) *httpmsg.Exchange {
	x := *s.up
	x.Request.Body = httpmsg.Body{}
	x.Request.Start, x.Request.End = asked, asked
	resp := httpmsg.Response{Status: 101, Start: started, End: done, Complete: true}
	if s.up.Response != nil {
		resp.Header = s.up.Response.Header
	}
	x.Response = &resp
	return &x
}

// ---------------------------------------------------------------- Responses over WebSocket

func (s *RealtimeSession) responsesMessage(m websocket.Message, typ string, ev *realtimeEvent) []RealtimeTurn {
	var out []RealtimeTurn
	if m.Dir == flow.ClientToServer {
		if typ != "response.create" {
			return nil
		}
		if s.ws != nil { // a new request before the last one finished
			s.ws.res.note(noteRealtimeUnfinished)
			out = append(out, s.finishWSTurn(s.ws, m.End))
		}
		res := newResult(apiOpenAIResponsesWS, s.t, s.up, oisp.RequestChat)
		body := m.Data
		if rawKind(ev.Response) == '{' { // {"type":"response.create","response":{…}}
			body = ev.Response
		}
		decodeOpenAIResponsesRequest(body, res)
		res.Request.Streaming = oisp.Ptr(true)
		res.Response = &oisp.AIResponse{Provider: res.Request.Provider, Success: oisp.Ptr(true), Streaming: oisp.Ptr(true)}
		s.ws = &realtimeTurnAcc{res: res, askedAt: m.End, stream: newResponsesStream()}
		return out
	}
	return append(out, s.responsesEvent(m)...)
}

// responsesEvent feeds a server event of a Responses-over-WebSocket
// session to the turn in progress; the turn ends with the response's final
// event or an error.
func (s *RealtimeSession) responsesEvent(m websocket.Message) []RealtimeTurn {
	acc := s.ws
	if acc == nil {
		return nil // joined mid-session: no request to attach to
	}
	if acc.createdAt.IsZero() {
		acc.createdAt = m.Start
	}
	acc.stream.add("", m.Data, m.End)
	if acc.stream.final != nil || acc.stream.err != nil {
		s.ws = nil
		return []RealtimeTurn{s.finishWSTurn(acc, m.End)}
	}
	return nil
}

// sniffType reads the "type" of an event that starts with it, as every
// realtime event does; "" when it does not (the caller decodes fully).
func sniffType(data []byte) string {
	const prefix = `{"type":"`
	d := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(d, []byte(prefix)) {
		return ""
	}
	d = d[len(prefix):]
	end := bytes.IndexByte(d, '"')
	if end < 0 || bytes.IndexByte(d[:end], '\\') >= 0 {
		return ""
	}
	return string(d[:end])
}

func (s *RealtimeSession) finishWSTurn(acc *realtimeTurnAcc, at time.Time) RealtimeTurn {
	res, resp := acc.res, acc.res.Response
	acc.stream.finish(res, resp)
	resp.Streaming = oisp.Ptr(true)
	resp.LatencyMS = msBetween(acc.askedAt, at)
	if !acc.stream.firstContent.IsZero() {
		resp.TimeToFirstTokenMS = msBetween(acc.askedAt, acc.stream.firstContent)
	}
	finishResult(s.env, s.lookupID(), res)
	return RealtimeTurn{Exchange: s.turnExchange(acc.askedAt, acc.createdAt, at), Result: res}
}
