package provider

// Gemini Interactions API (POST /v1beta/interactions): a model (or an
// agent) turn with server-side state. The reply is an interaction object
// whose steps are thoughts, function calls and model outputs, or, with
// "stream": true, SSE events (interaction.created, step.start, step.delta,
// step.stop, interaction.completed, error).

import (
	"bytes"
	json "github.com/goccy/go-json"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

type geminiInteractionsAPI struct{}

func (geminiInteractionsAPI) Name() string { return apiGeminiInteractions }

func (geminiInteractionsAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || (t.ProviderID != "google" && t.Known) {
		return false
	}
	p := trimPath(x)
	return strings.HasSuffix(p, "/interactions") && strings.Count(p, "/") == 2 // /{version}/interactions
}

type interactionsGenConfig struct {
	Temperature     jFloat          `json:"temperature"`
	TopP            jFloat          `json:"top_p"`
	MaxOutputTokens jInt            `json:"max_output_tokens"`
	StopSequences   json.RawMessage `json:"stop_sequences"`
}

type interactionsTool struct {
	Type        jStr `json:"type"`
	Name        jStr `json:"name"`
	Description jStr `json:"description"`
}

type interactionsRequestBody struct {
	Model             jStr                   `json:"model"`
	Agent             jStr                   `json:"agent"`
	Input             json.RawMessage        `json:"input"`
	SystemInstruction json.RawMessage        `json:"system_instruction"`
	Tools             []interactionsTool     `json:"tools"`
	ToolChoice        json.RawMessage        `json:"tool_choice"`
	GenerationConfig  *interactionsGenConfig `json:"generation_config"`
	Stream            jBool                  `json:"stream"`
	PreviousID        jStr                   `json:"previous_interaction_id"`
}

// interactionsItem is an input content item, a turn, or an output step.
type interactionsItem struct {
	Type      jStr            `json:"type"`
	Role      jStr            `json:"role"`
	Text      jStr            `json:"text"`
	Content   json.RawMessage `json:"content"`
	ID        jStr            `json:"id"`
	CallID    jStr            `json:"call_id"`
	Name      jStr            `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Result    json.RawMessage `json:"result"`
	IsError   jBool           `json:"is_error"`
	Summary   json.RawMessage `json:"summary"`
}

type interactionsUsage struct {
	Input    jInt `json:"total_input_tokens"`
	Output   jInt `json:"total_output_tokens"`
	Thought  jInt `json:"total_thought_tokens"`
	Cached   jInt `json:"total_cached_tokens"`
	ToolUse  jInt `json:"total_tool_use_tokens"`
	Total    jInt `json:"total_tokens"`
	Reported bool `json:"-"`
}

type interactionObject struct {
	ID     jStr               `json:"id"`
	Object jStr               `json:"object"`
	Status jStr               `json:"status"`
	Model  jStr               `json:"model"`
	Agent  jStr               `json:"agent"`
	Usage  *interactionsUsage `json:"usage"`
	Steps  []interactionsItem `json:"steps"`
	// Outputs is the earlier name of the output list.
	Outputs []interactionsItem `json:"outputs"`
	Error   json.RawMessage    `json:"error"`
}

type interactionsEvent struct {
	EventType   jStr               `json:"event_type"`
	Interaction *interactionObject `json:"interaction"`
	Index       jInt               `json:"index"`
	Step        *interactionsItem  `json:"step"`
	Delta       *struct {
		Type      jStr `json:"type"`
		Text      jStr `json:"text"`
		Arguments jStr `json:"arguments"`
	} `json:"delta"`
	Error json.RawMessage `json:"error"`
}

func (geminiInteractionsAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(apiGeminiInteractions, t, x, oisp.RequestChat)
	if !t.Known {
		res.Notes = append(res.Notes, noteUnknownHostGoogle)
	}
	req := res.Request
	streaming := decodeInteractionsRequest(x.Request.Body.Data, res)
	req.Streaming = oisp.Ptr(streaming)
	if x.Response != nil {
		resp := newResponse(res, x)
		decodeInteractionsResponse(x, res, resp, streaming)
		res.Response = resp
	}
	finishGoogle(env, t, googlePath{}, x, res)
	return res, nil
}

// decodeInteractionsRequest fills the request and returns its stream flag.
func decodeInteractionsRequest(body []byte, res *Result) bool {
	req := res.Request
	res.Chain = new(Chain)
	var b interactionsRequestBody
	if !decodeRequestBody(body, &b, res) {
		finishRequest(req)
		return false
	}
	switch {
	case b.Model != "":
		req.Model = &oisp.Model{ID: trimModelsPrefix(string(b.Model))}
	case b.Agent != "":
		// An agent invocation names no model; the agent id stands in.
		req.Model = &oisp.Model{ID: string(b.Agent), Name: "agent"}
	}
	res.Chain.Continues = string(b.PreviousID)
	system, hasSystem := "", len(b.SystemInstruction) > 0 && rawKind(b.SystemInstruction) != 'n'
	if hasSystem {
		var images int
		system, images = interactionsContentText(b.SystemInstruction, nil)
		req.Messages = append(req.Messages, newMessage("system", system, images))
	}
	req.Messages = append(req.Messages, interactionsInput(b.Input, res)...)
	if hasSystem {
		// Set once every message is in: the prompt takes the system
		// message's hash, made with the others'.
		setSystemPrompt(req, system)
	}
	for _, tl := range b.Tools {
		typ := string(tl.Type)
		d := oisp.ToolDefinition{Name: string(tl.Name), Description: string(tl.Description), Type: "function"}
		if typ != "" && typ != "function" {
			d.Type = geminiBuiltinType(typ)
			if d.Name == "" {
				d.Name = typ
			}
		}
		req.Tools = append(req.Tools, d)
	}
	if len(b.ToolChoice) > 0 && rawKind(b.ToolChoice) != 'n' {
		req.ToolChoice = oisp.ToolChoice(anyValue(b.ToolChoice))
	}
	if gc := b.GenerationConfig; gc != nil {
		req.Parameters = &oisp.Parameters{
			Temperature: gc.Temperature.Ptr(),
			TopP:        gc.TopP.Ptr(),
			MaxTokens:   gc.MaxOutputTokens.Ptr(),
			Stop:        stringList(gc.StopSequences),
		}
	}
	finishRequest(req)
	return b.Stream.V
}

// interactionsInput reads "input": a string, a list of content items (one
// user turn), or a list of turns {role, content}.
func interactionsInput(raw json.RawMessage, res *Result) []oisp.Message {
	text, list := textOrItems(raw)
	switch {
	case list != nil:
		raw = list
	case rawKind(raw) == '"':
		return []oisp.Message{newMessage("user", text, 0)}
	default:
		return nil
	}
	var items []interactionsItem
	decodeLoose(raw, &items) //nolint:errcheck // a broken list yields what decoded
	isTurns := len(items) > 0
	for _, it := range items {
		if it.Role == "" {
			isTurns = false
		}
	}
	if !isTurns {
		return []oisp.Message{interactionsMessage("user", raw, res)}
	}
	out := make([]oisp.Message, 0, len(items))
	for _, it := range items {
		out = append(out, interactionsMessage(string(it.Role), it.Content, res))
	}
	return out
}

// interactionsMessage builds one message from a turn's content. A turn of
// function results only is a tool message.
func interactionsMessage(role string, content json.RawMessage, res *Result) oisp.Message {
	var results []ToolResult
	text, images := interactionsContentText(content, &results)
	if len(results) > 0 && text == joinText(resultTexts(results)) {
		m := newMessage("tool", text, images)
		if role != "" && role != "tool" {
			m.OriginalRole = role
		}
		if len(results) == 1 {
			m.ToolCallID, m.Name = results[0].CallID, results[0].Name
		}
		res.ToolResults = append(res.ToolResults, results...)
		return m
	}
	res.ToolResults = append(res.ToolResults, results...)
	return newMessage(role, text, images)
}

func resultTexts(rs []ToolResult) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Content
	}
	return out
}

// interactionsContentText flattens content: a string or a list of items
// (text, image, function_result…); function calls in history are skipped.
func interactionsContentText(raw json.RawMessage, results *[]ToolResult) (string, int) {
	text, list := textOrItems(raw)
	if list == nil {
		return text, 0
	}
	var items []interactionsItem
	decodeLoose(list, &items) //nolint:errcheck // a broken list yields what decoded
	var texts []string
	images := 0
	for _, it := range items {
		switch string(it.Type) {
		case "text", "":
			if it.Text != "" {
				texts = append(texts, string(it.Text))
			}
		case "image":
			images++
		case "function_result":
			out := rawText(it.Result)
			texts = append(texts, out)
			if results != nil {
				id := it.CallID
				if id == "" {
					id = it.ID
				}
				*results = append(*results, ToolResult{CallID: string(id), Name: string(it.Name), Content: out, IsError: it.IsError.V})
			}
		}
	}
	return joinText(texts), images
}

// interactionsAcc reassembles an interaction.
type interactionsAcc struct {
	id, model, status string
	text, thinking    strings.Builder
	calls             []oisp.ToolCall
	callArgs          streamedArgs // streamed arguments by step index
	usage             *interactionsUsage
	err               *oisp.Error
	events, bad       int
	ended             bool // interaction.completed, the stream's end, arrived
	contentClock           // when the first content arrived
}

func (a *interactionsAcc) object(o *interactionObject) {
	if o.ID != "" {
		a.id = string(o.ID)
	}
	if o.Model != "" {
		a.model = string(o.Model)
	}
	if o.Status != "" {
		a.status = string(o.Status)
	}
	if o.Usage != nil {
		a.usage = o.Usage
	}
	if e := googleError(o.Error); e != nil && a.err == nil {
		a.err = e
	}
	if a.events == 0 || len(a.calls) == 0 && a.text.Len() == 0 {
		// A whole object (not streamed), or a final event repeating the
		// steps: take its steps once.
		steps := o.Steps
		if len(steps) == 0 {
			steps = o.Outputs
		}
		for i := range steps {
			a.step(&steps[i], time.Time{})
		}
	}
}

func (a *interactionsAcc) step(s *interactionsItem, at time.Time) {
	switch string(s.Type) {
	case "function_call":
		if len(a.calls) < maxGeminiCalls {
			a.calls = append(a.calls, toolCall(string(s.ID), string(s.Name), "function", compactJSON(s.Arguments)))
		}
		a.content(at)
	case "model_output":
		text, _ := interactionsContentText(s.Content, nil)
		a.text.WriteString(text)
	case "text":
		a.text.WriteString(string(s.Text))
	case "thought":
		if t, _ := interactionsContentText(s.Summary, nil); t != "" {
			a.thinking.WriteString(t)
		}
	}
}

func (a *interactionsAcc) event(data []byte, at time.Time) {
	var ev interactionsEvent
	if _, err := decodeLoose(data, &ev); err != nil {
		a.bad++
		return
	}
	a.events++
	if e := googleError(ev.Error); e != nil && a.err == nil {
		a.err = e
	}
	if ev.EventType == "error" && a.err == nil {
		a.err = &oisp.Error{Type: "error"}
	}
	if ev.Interaction != nil {
		a.object(ev.Interaction)
	}
	idx := ev.Index.V
	switch string(ev.EventType) {
	case "interaction.completed":
		a.ended = true
	case "step.start", "content.start":
		if ev.Step != nil && ev.Step.Type == "function_call" {
			if len(a.calls) < maxGeminiCalls {
				a.callArgs.start(idx, len(a.calls))
				a.calls = append(a.calls, toolCall(string(ev.Step.ID), string(ev.Step.Name), "function", ""))
				if args := compactJSON(ev.Step.Arguments); args != "" && args != "{}" {
					a.callArgs.write(idx, args)
				}
			}
			a.content(at)
		}
	case "step.delta", "content.delta":
		d := ev.Delta
		if d == nil {
			break
		}
		switch string(d.Type) {
		case "text":
			a.text.WriteString(string(d.Text))
			if d.Text != "" {
				a.content(at)
			}
		case "thought_summary", "thought":
			a.thinking.WriteString(string(d.Text))
		case "arguments_delta", "arguments":
			a.callArgs.write(idx, string(d.Arguments))
		}
	}
}

func (a *interactionsAcc) fill(res *Result, resp *oisp.AIResponse) {
	noteBadEvents(res, a.bad)
	a.callArgs.fill(a.calls)
	nameAnswer(resp, a.id, a.model)
	if u := a.usage; u != nil && (u.Input.OK || u.Output.OK || u.Total.OK) {
		resp.Usage = &oisp.Usage{
			PromptTokens:     oisp.Ptr(u.Input.V + u.ToolUse.V),
			CompletionTokens: oisp.Ptr(u.Output.V + u.Thought.V),
			TotalTokens:      u.Total.Ptr(),
		}
		if u.Thought.OK {
			resp.Usage.ReasoningTokens = u.Thought.Ptr()
		}
		if u.Cached.OK {
			resp.Usage.CachedTokens = u.Cached.Ptr()
		}
	}
	if a.err != nil || a.status == "failed" {
		e := a.err
		if e == nil {
			e = &oisp.Error{Type: "failed"}
		}
		setFailure(resp, e, resp.StatusCode > 0 && resp.StatusCode < 400)
		return
	}
	var fr string
	switch a.status {
	case "completed":
		fr = oisp.FinishStop
	case "requires_action":
		fr = oisp.FinishToolCalls
	case "incomplete":
		fr = oisp.FinishLength
	case "":
	default:
		fr = oisp.FinishOther
	}
	if len(a.calls) > 0 && fr == oisp.FinishStop {
		fr = oisp.FinishToolCalls
	}
	text := a.text.String()
	resp.Choices = oneChoice(text, fr, rawIfDifferent(a.status, fr))
	resp.FinishReason = fr
	setToolCalls(resp, a.calls)
	setThinking(resp, a.thinking.String())
}

func decodeInteractionsResponse(x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse, streaming bool) {
	body := &x.Response.Body
	var a interactionsAcc
	if looksSSE(x) {
		for _, ev := range sseEvents(body) {
			a.event(ev.Data, ev.At)
		}
		resp.StreamEvents = a.events
		// As endStream: an error event fails the answer (in fill);
		// else events that never reached interaction.completed are a
		// cut stream.
		if a.err == nil && a.events > 0 && !a.ended {
			res.note(noteStreamUnterminated)
		}
		res.StreamEnded = a.ended
	} else if len(bytes.TrimSpace(body.Data)) > 0 {
		var o interactionObject
		if _, err := decodeLoose(body.Data, &o); err != nil {
			res.note(noteResponseNotJSON)
		} else {
			a.object(&o)
		}
	}
	a.fill(res, resp)
	if streaming {
		markStreamed(resp, x, a.firstContent)
	}
	explainFailedStatus(resp, body.Data)
}
