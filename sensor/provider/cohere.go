package provider

// Cohere (api.cohere.com, api.cohere.ai):
//
//	POST /v1/chat      {message, chat_history, preamble, tools, tool_results}
//	                   → {text, tool_calls, finish_reason, meta}; streamed as
//	                   NDJSON events (stream-start, text-generation,
//	                   tool-calls-generation, stream-end with the response)
//	POST /v1/generate  {prompt} → {generations, meta}; NDJSON when streamed
//	POST /v2/chat      {messages, tools} → {message{content, tool_plan,
//	                   tool_calls}, finish_reason, usage}; streamed as named
//	                   SSE events (message-start, content-delta,
//	                   tool-plan-delta, tool-call-start/delta/end,
//	                   message-end with usage)
//	POST /v1|v2/embed  {texts|inputs} → {embeddings, meta}
//
// Usage: Cohere reports raw tokens and billed units; the raw tokens are
// used when present (billed units leave out the system preamble).

import (
	"bytes"
	json "github.com/goccy/go-json"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// API names of the Cohere decoders.
const (
	apiCohereChatV1   = "cohere.chat_v1"
	apiCohereGenerate = "cohere.generate"
	apiCohereChatV2   = "cohere.chat_v2"
	apiCohereEmbed    = "cohere.embed"
)

type cohereAPI struct {
	name string
	path func(string) bool
}

func newCohereAPIs() []API {
	return []API{
		cohereAPI{name: apiCohereChatV2, path: func(p string) bool { return strings.HasSuffix(p, "/v2/chat") }},
		cohereAPI{name: apiCohereChatV1, path: func(p string) bool { return strings.HasSuffix(p, "/v1/chat") }},
		cohereAPI{name: apiCohereGenerate, path: func(p string) bool { return strings.HasSuffix(p, "/v1/generate") }},
		cohereAPI{name: apiCohereEmbed, path: func(p string) bool {
			return strings.HasSuffix(p, "/v1/embed") || strings.HasSuffix(p, "/v2/embed")
		}},
	}
}

func (a cohereAPI) Name() string { return a.name }

func (a cohereAPI) Match(t Target, x *httpmsg.Exchange) bool {
	return t.ProviderID == "cohere" && isPost(x) && a.path(trimPath(x))
}

// cohereRole maps Cohere v1 roles (USER, CHATBOT, SYSTEM, TOOL) onto the
// schema's.
func cohereRole(r string) string {
	switch strings.ToUpper(r) {
	case "CHATBOT":
		return "assistant"
	case "USER":
		return "user"
	case "SYSTEM":
		return "system"
	case "TOOL":
		return "tool"
	}
	return r
}

// ---------------------------------------------------------------- wire types

type cohereToolCall struct {
	ID       jStr `json:"id"`
	Name     jStr `json:"name"` // v1
	Function *struct {
		Name      jStr `json:"name"`
		Arguments jStr `json:"arguments"`
	} `json:"function"` // v2
	Parameters json.RawMessage `json:"parameters"` // v1
}

func (c *cohereToolCall) call() oisp.ToolCall {
	if c.Function != nil {
		return toolCall(string(c.ID), string(c.Function.Name), "function", string(c.Function.Arguments))
	}
	return toolCall(string(c.ID), string(c.Name), "function", compactJSON(c.Parameters))
}

type cohereTokens struct {
	InputTokens  jFloat `json:"input_tokens"`
	OutputTokens jFloat `json:"output_tokens"`
}

type cohereUsageBody struct {
	BilledUnits  *cohereTokens `json:"billed_units"`
	Tokens       *cohereTokens `json:"tokens"`
	CachedTokens jInt          `json:"cached_tokens"`
}

// cohereUsage prefers raw tokens, else billed units (which Cohere reports
// as numbers that may carry a fraction).
func cohereUsage(u *cohereUsageBody) *oisp.Usage {
	if u == nil {
		return nil
	}
	pick := func(f func(*cohereTokens) jFloat) *int {
		for _, t := range []*cohereTokens{u.Tokens, u.BilledUnits} {
			if t != nil && f(t).OK {
				return oisp.Ptr(int(f(t).V))
			}
		}
		return nil
	}
	out := &oisp.Usage{
		PromptTokens:     pick(func(t *cohereTokens) jFloat { return t.InputTokens }),
		CompletionTokens: pick(func(t *cohereTokens) jFloat { return t.OutputTokens }),
	}
	if out.PromptTokens == nil && out.CompletionTokens == nil {
		return nil
	}
	if u.CachedTokens.OK {
		out.CachedTokens = u.CachedTokens.Ptr()
	}
	completeTotals(out)
	return out
}

type cohereMessageV2 struct {
	Role       jStr             `json:"role"`
	Content    json.RawMessage  `json:"content"`
	ToolCalls  []cohereToolCall `json:"tool_calls"`
	ToolCallID jStr             `json:"tool_call_id"`
	ToolPlan   jStr             `json:"tool_plan"`
}

type cohereToolDef struct {
	Name        jStr `json:"name"`
	Description jStr `json:"description"`
	Function    *struct {
		Name        jStr `json:"name"`
		Description jStr `json:"description"`
	} `json:"function"`
}

type cohereRequestBody struct {
	Model       jStr `json:"model"`
	Message     jStr `json:"message"`
	Preamble    jStr `json:"preamble"`
	ChatHistory []struct {
		Role    jStr `json:"role"`
		Message jStr `json:"message"`
	} `json:"chat_history"`
	ToolResults []struct {
		Call struct {
			ID   jStr `json:"id"`
			Name jStr `json:"name"`
		} `json:"call"`
		Outputs json.RawMessage `json:"outputs"`
	} `json:"tool_results"`
	Messages         []cohereMessageV2 `json:"messages"`
	Prompt           jStr              `json:"prompt"`
	Tools            []cohereToolDef   `json:"tools"`
	ToolChoice       jStr              `json:"tool_choice"`
	Stream           jBool             `json:"stream"`
	Temperature      jFloat            `json:"temperature"`
	P                jFloat            `json:"p"`
	MaxTokens        jInt              `json:"max_tokens"`
	StopSequences    json.RawMessage   `json:"stop_sequences"`
	FrequencyPenalty jFloat            `json:"frequency_penalty"`
	PresencePenalty  jFloat            `json:"presence_penalty"`
	Texts            []json.RawMessage `json:"texts"`
	Inputs           []json.RawMessage `json:"inputs"`
	Images           []json.RawMessage `json:"images"`
}

// cohereText flattens v2 content (a string or [{type:text,text}…]).
func cohereText(raw json.RawMessage) (string, int) {
	text, list := textOrItems(raw)
	if list == nil {
		return text, 0
	}
	var parts []struct {
		Type jStr `json:"type"`
		Text jStr `json:"text"`
	}
	decodeLoose(list, &parts) //nolint:errcheck // a broken list yields what decoded
	var texts []string
	images := 0
	for _, p := range parts {
		switch p.Type {
		case "text", "":
			texts = append(texts, string(p.Text))
		case "image_url", "image":
			images++
		}
	}
	return joinText(texts), images
}

// decodeCohereRequest fills the request and returns its stream flag.
func decodeCohereRequest(body []byte, res *Result) {
	req := res.Request
	var b cohereRequestBody
	if !decodeRequestBody(body, &b, res) {
		req.Streaming = oisp.Ptr(false)
		finishRequest(req)
		return
	}
	if b.Model != "" {
		req.Model = &oisp.Model{ID: string(b.Model)}
	}
	req.Streaming = oisp.Ptr(b.Stream.V)
	var system []string
	if b.Preamble != "" {
		system = append(system, string(b.Preamble))
		req.Messages = append(req.Messages, newMessage("system", string(b.Preamble), 0))
	}
	for _, h := range b.ChatHistory {
		m := newMessage(cohereRole(string(h.Role)), string(h.Message), 0)
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		req.Messages = append(req.Messages, m)
	}
	for _, m := range b.Messages {
		text, images := cohereText(m.Content)
		msg := newMessage(string(m.Role), text, images)
		switch msg.Role {
		case "system":
			system = append(system, text)
		case "tool":
			msg.ToolCallID = string(m.ToolCallID)
			res.ToolResults = append(res.ToolResults, ToolResult{CallID: msg.ToolCallID, Content: text})
		}
		req.Messages = append(req.Messages, msg)
	}
	for _, tr := range b.ToolResults {
		out := compactJSON(tr.Outputs)
		res.ToolResults = append(res.ToolResults, ToolResult{CallID: string(tr.Call.ID), Name: string(tr.Call.Name), Content: out})
		m := newMessage("tool", out, 0)
		m.Name = string(tr.Call.Name)
		req.Messages = append(req.Messages, m)
	}
	if b.Message != "" {
		req.Messages = append(req.Messages, newMessage("user", string(b.Message), 0))
	}
	if b.Prompt != "" {
		req.Messages = append(req.Messages, newMessage("user", string(b.Prompt), 0))
		req.InputCount = 1
	}
	if n := len(b.Texts) + len(b.Inputs) + len(b.Images); n > 0 {
		req.InputCount = n
	}
	if len(system) > 0 {
		setSystemPrompt(req, strings.Join(system, "\n"))
	}
	for _, t := range b.Tools {
		d := oisp.ToolDefinition{Name: string(t.Name), Description: string(t.Description), Type: "function"}
		if t.Function != nil {
			d.Name, d.Description = string(t.Function.Name), string(t.Function.Description)
		}
		req.Tools = append(req.Tools, d)
	}
	if b.ToolChoice != "" {
		req.ToolChoice = strings.ToLower(string(b.ToolChoice))
	}
	req.Parameters = &oisp.Parameters{
		Temperature:      b.Temperature.Ptr(),
		TopP:             b.P.Ptr(),
		MaxTokens:        b.MaxTokens.Ptr(),
		Stop:             stringList(b.StopSequences),
		FrequencyPenalty: b.FrequencyPenalty.Ptr(),
		PresencePenalty:  b.PresencePenalty.Ptr(),
	}
	finishRequest(req)
}

// cohereFinish maps Cohere finish reasons; ERROR values are failures.
func cohereFinish(raw string) string {
	switch strings.ToUpper(raw) {
	case "":
		return ""
	case "COMPLETE", "STOP_SEQUENCE", "END_TURN":
		return oisp.FinishStop
	case "MAX_TOKENS", "ERROR_LIMIT":
		return oisp.FinishLength
	case "TOOL_CALL":
		return oisp.FinishToolCalls
	case "ERROR_TOXIC":
		return oisp.FinishContentFilter
	case "ERROR":
		return oisp.FinishError
	}
	return oisp.FinishOther
}

// cohereEvent is a whole response, a v1 NDJSON event or a v2 SSE event.
type cohereEvent struct {
	ID           jStr             `json:"id"`
	ResponseID   jStr             `json:"response_id"`
	GenerationID jStr             `json:"generation_id"`
	Type         jStr             `json:"type"`       // v2 events
	EventType    jStr             `json:"event_type"` // v1 events
	Text         *jStr            `json:"text"`
	FinishReason jStr             `json:"finish_reason"`
	ToolCalls    []cohereToolCall `json:"tool_calls"`
	Meta         *cohereUsageBody `json:"meta"`
	Usage        *cohereUsageBody `json:"usage"`
	Message      json.RawMessage  `json:"message"`
	Generations  []struct {
		Text         jStr `json:"text"`
		FinishReason jStr `json:"finish_reason"`
	} `json:"generations"`
	Response *cohereEvent `json:"response"` // v1 stream-end / generate is_finished
	Index    jInt         `json:"index"`
	Delta    *struct {
		FinishReason jStr             `json:"finish_reason"`
		Usage        *cohereUsageBody `json:"usage"`
		Message      *struct {
			Content   json.RawMessage `json:"content"`
			ToolPlan  jStr            `json:"tool_plan"`
			ToolCalls json.RawMessage `json:"tool_calls"`
		} `json:"message"`
	} `json:"delta"`
	IsFinished jBool `json:"is_finished"`
}

// cohereAcc reassembles a Cohere answer.
type cohereAcc struct {
	id           string
	text         strings.Builder
	toolPlan     strings.Builder
	calls        []oisp.ToolCall
	callArgs     streamedArgs // v2 tool-call deltas' arguments by index
	finish       string
	usage        *cohereUsageBody
	err          *oisp.Error
	events, bad  int
	final        bool // a whole response (or v1 stream-end) was seen
	ended        bool // the stream's last event (stream-end, message-end, is_finished) arrived
	contentClock      // when the first content arrived
}

// whole merges a complete response object (v1 chat, generate, v2 chat).
func (a *cohereAcc) whole(e *cohereEvent) {
	a.final = true
	for _, id := range []jStr{e.ID, e.ResponseID, e.GenerationID} {
		if id != "" && a.id == "" {
			a.id = string(id)
		}
	}
	a.text.Reset()
	if e.Text != nil {
		a.text.WriteString(string(*e.Text))
	}
	for _, g := range e.Generations {
		a.text.WriteString(string(g.Text))
		if g.FinishReason != "" {
			a.finish = string(g.FinishReason)
		}
	}
	if len(e.ToolCalls) > 0 {
		a.dropCalls()
		for i := range e.ToolCalls {
			a.calls = append(a.calls, e.ToolCalls[i].call())
		}
	}
	if rawKind(e.Message) == '{' { // v2 message
		var m cohereMessageV2
		if decodeLooseOK(e.Message, &m) {
			text, _ := cohereText(m.Content)
			a.text.WriteString(text)
			a.toolPlan.Reset()
			a.toolPlan.WriteString(string(m.ToolPlan))
			if len(m.ToolCalls) > 0 {
				a.dropCalls()
				for i := range m.ToolCalls {
					a.calls = append(a.calls, m.ToolCalls[i].call())
				}
			}
		}
	}
	if e.FinishReason != "" {
		a.finish = string(e.FinishReason)
	}
	if e.Meta != nil {
		a.usage = e.Meta
	}
	if e.Usage != nil {
		a.usage = e.Usage
	}
}

// event merges one stream event.
func (a *cohereAcc) event(data []byte, at time.Time) {
	var e cohereEvent
	if _, err := decodeLoose(data, &e); err != nil {
		a.bad++
		return
	}
	a.events++
	typ := string(e.Type)
	if typ == "" {
		typ = string(e.EventType)
	}
	idx := e.Index.V
	switch typ {
	case "error":
		if a.err == nil {
			msg, _ := rawString(e.Message)
			a.err = &oisp.Error{Type: "error", Message: msg}
		}
	case "stream-start", "message-start":
		if e.GenerationID != "" {
			a.id = string(e.GenerationID)
		}
		if e.ID != "" {
			a.id = string(e.ID)
		}
	case "text-generation":
		if e.Text != nil {
			a.text.WriteString(string(*e.Text))
			a.content(at)
		}
	case "tool-calls-generation":
		a.dropCalls()
		for i := range e.ToolCalls {
			a.calls = append(a.calls, e.ToolCalls[i].call())
		}
		a.content(at)
	case "stream-end":
		a.end(&e)
	case "content-delta", "content-start":
		if d := e.Delta; d != nil && d.Message != nil {
			var c struct {
				Text jStr `json:"text"`
			}
			if decodeLooseOK(d.Message.Content, &c) && c.Text != "" {
				a.text.WriteString(string(c.Text))
				a.content(at)
			}
		}
	case "tool-plan-delta":
		if d := e.Delta; d != nil && d.Message != nil {
			a.toolPlan.WriteString(string(d.Message.ToolPlan))
		}
	case "tool-call-start", "tool-call-delta":
		d := e.Delta
		if d == nil || d.Message == nil {
			break
		}
		var tc cohereToolCall
		if !decodeLooseOK(d.Message.ToolCalls, &tc) {
			break
		}
		if typ == "tool-call-start" {
			if len(a.calls) >= maxGeminiCalls {
				break
			}
			a.callArgs.start(idx, len(a.calls))
			a.calls = append(a.calls, tc.call())
			a.calls[len(a.calls)-1].Arguments, a.calls[len(a.calls)-1].ArgumentsHash = "", ""
			a.content(at)
		}
		if tc.Function != nil {
			a.callArgs.write(idx, string(tc.Function.Arguments))
		}
	case "message-end":
		a.ended = true
		if d := e.Delta; d != nil {
			if d.FinishReason != "" {
				a.finish = string(d.FinishReason)
			}
			if d.Usage != nil {
				a.usage = d.Usage
			}
		}
	default:
		// v1 generate streams: {"text": …, "is_finished": false}, then
		// {"is_finished": true, "finish_reason", "response": {…}}.
		if e.Text != nil && !e.IsFinished.V {
			a.text.WriteString(string(*e.Text))
			a.content(at)
		}
		if e.IsFinished.V {
			a.end(&e)
		}
	}
}

// dropCalls empties the tool calls for a whole set that replaces them;
// the arguments streamed for the dropped calls go with them (their
// positions would name the new calls, or none).
func (a *cohereAcc) dropCalls() {
	a.calls = a.calls[:0]
	a.callArgs = streamedArgs{}
}

// end merges the last event of a v1 stream (chat stream-end, generate
// is_finished): its finish reason and the whole response it carries,
// whose text, when it has none, is the streamed text.
func (a *cohereAcc) end(e *cohereEvent) {
	a.ended = true
	if e.FinishReason != "" {
		a.finish = string(e.FinishReason)
	}
	if e.Response != nil {
		text := a.text.String()
		a.whole(e.Response)
		if a.text.Len() == 0 {
			a.text.WriteString(text)
		}
	}
}

func (a *cohereAcc) fill(res *Result, resp *oisp.AIResponse) {
	noteBadEvents(res, a.bad)
	a.callArgs.fill(a.calls)
	if a.id != "" {
		resp.ProviderRequestID = a.id
	}
	resp.Usage = cohereUsage(a.usage)
	endStream(res, resp, a.err, a.events, a.ended)
	if a.err != nil {
		return
	}
	if a.events == 0 && !a.final {
		return
	}
	fr := cohereFinish(a.finish)
	if fr == oisp.FinishError {
		setFailure(resp, &oisp.Error{Type: "error", Message: a.text.String()}, true)
		return
	}
	resp.Choices = oneChoice(a.text.String(), fr, rawIfDifferent(a.finish, fr))
	resp.FinishReason = fr
	setToolCalls(resp, a.calls)
	setThinking(resp, a.toolPlan.String())
}

func (a cohereAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	reqType := requestTypeOf(a.name, apiCohereGenerate, apiCohereEmbed)
	res := newResult(a.name, t, x, reqType)
	req := res.Request
	decodeCohereRequest(x.Request.Body.Data, res)
	if x.Response == nil {
		res.note(noteNoResponse)
		finishResult(env, "cohere", res)
		return res, nil
	}
	noteResponseBody(res, x)
	body := &x.Response.Body
	if reqType == oisp.RequestEmbedding {
		res.Embedding = decodeCohereEmbed(x, res)
		finishResult(env, "cohere", res)
		return res, nil
	}
	resp := newResponse(res, x)
	res.Response = resp
	var acc cohereAcc
	switch {
	case looksSSE(x):
		for _, ev := range sseEvents(body) {
			acc.event(ev.Data, ev.At)
		}
	case resp.StatusCode < 300 && (isNDJSON(x) || req.Streaming != nil && *req.Streaming && rawKind(body.Data) == '{'):
		for _, ln := range ndjsonLines(body, envStats(env)) {
			acc.event(ln.Data, ln.At)
		}
	case len(bytes.TrimSpace(body.Data)) > 0:
		var e cohereEvent
		if _, err := decodeLoose(body.Data, &e); err != nil {
			res.note(noteResponseNotJSON)
			break
		}
		if resp.StatusCode >= 400 {
			fail := httpFailure(resp.StatusCode, body.Data)
			if msg, _ := rawString(e.Message); msg != "" {
				fail.Message = msg
			}
			setFailure(resp, fail, false)
			break
		}
		acc.whole(&e)
	}
	if resp.StatusCode < 400 {
		acc.fill(res, resp)
	}
	summarizeStream(req, resp, x, acc.events, acc.firstContent)
	explainFailedStatus(resp, body.Data)
	finishResult(env, "cohere", res)
	return res, nil
}

// decodeCohereEmbed reads an embed response.
func decodeCohereEmbed(x *httpmsg.Exchange, res *Result) *oisp.AIEmbedding {
	req := res.Request
	req.Streaming = oisp.Ptr(false)
	emb := &oisp.AIEmbedding{
		Provider: req.Provider, Model: req.Model, InputCount: req.InputCount,
		LatencyMS: latencyMS(x), StatusCode: x.Response.Status,
		Success: oisp.Ptr(x.Response.Status >= 200 && x.Response.Status < 300),
	}
	var b struct {
		Embeddings json.RawMessage  `json:"embeddings"`
		Meta       *cohereUsageBody `json:"meta"`
		Message    jStr             `json:"message"`
	}
	if _, err := decodeLoose(x.Response.Body.Data, &b); err != nil {
		if len(x.Response.Body.Data) > 0 {
			res.note(noteResponseNotJSON)
		}
	}
	var acc invokeAcc
	acc.embeddings(b.Embeddings)
	emb.EmbeddingCount, emb.Dimensions = acc.vectors, acc.dimensions
	if u := cohereUsage(b.Meta); u != nil {
		u.CompletionTokens = nil
		u.TotalTokens = u.PromptTokens
		emb.Usage = u
		emb.TotalTokens = u.PromptTokens
	}
	if emb.StatusCode >= 400 {
		emb.Success = oisp.Ptr(false)
		emb.Error = httpFailure(emb.StatusCode, x.Response.Body.Data)
		if b.Message != "" {
			emb.Error.Message = string(b.Message)
		}
	}
	return emb
}
