package provider

// OpenAI Responses API (POST …/responses), streamed or not.
//
//	decodeOpenAIResponsesRequest(body []byte, res *Result) (model string)
//	decodeOpenAIResponsesResponse(body []byte, res *Result, resp *oisp.AIResponse)
//	s := newResponsesStream(); s.add(event string, data []byte, at time.Time); s.finish(res, resp)
//
// The request's instructions become a system message; input is a string or
// a list of items (messages with string or part-list content,
// function_call_output items that become tool results, earlier
// function_call items that are history). Output items: message text,
// function_call / custom_tool_call / mcp_call and built-in tool calls
// (web_search_call, file_search_call, computer_call, …), reasoning.

import (
	"bytes"
	json "github.com/goccy/go-json"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stream"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

type responsesRequestBody struct {
	Model           jStr            `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    json.RawMessage `json:"instructions"`
	Tools           []openaiTool    `json:"tools"`
	ToolChoice      json.RawMessage `json:"tool_choice"`
	Temperature     jFloat          `json:"temperature"`
	TopP            jFloat          `json:"top_p"`
	MaxOutputTokens jInt            `json:"max_output_tokens"`
	Stream          jBool           `json:"stream"`
	// PreviousResponseID and Conversation name state the provider keeps:
	// the request continues it rather than resending the history.
	PreviousResponseID jStr            `json:"previous_response_id"`
	Conversation       json.RawMessage `json:"conversation"`
	// inputItems is Input's item list when the scan read it in place
	// (inputScanned); the decoder leaves it for decodeLoose to read.
	inputItems   responsesItemList
	inputScanned bool
}

// responsesItem is an input or output item of any type.
type responsesItem struct {
	Type      jStr            `json:"type"`
	ID        jStr            `json:"id"`
	Role      jStr            `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    jStr            `json:"call_id"`
	Name      jStr            `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Input     json.RawMessage `json:"input"` // custom_tool_call
	Output    json.RawMessage `json:"output"`
	Summary   []openaiPart    `json:"summary"` // reasoning
	Status    jStr            `json:"status"`
}

type responsesObject struct {
	ID                jStr            `json:"id"`
	Object            jStr            `json:"object"`
	Model             jStr            `json:"model"`
	Status            jStr            `json:"status"`
	Error             json.RawMessage `json:"error"`
	IncompleteDetails *struct {
		Reason jStr `json:"reason"`
	} `json:"incomplete_details"`
	Output []responsesItem  `json:"output"`
	Usage  *openaiUsageBody `json:"usage"`
	// Error bodies of failed HTTP calls ({"error": …}) decode through the
	// same struct.
}

type responsesEvent struct {
	Type     jStr             `json:"type"`
	Response *responsesObject `json:"response"`
	Item     *responsesItem   `json:"item"`
	Delta    json.RawMessage  `json:"delta"`
	ItemID   jStr             `json:"item_id"`
	// error events: {"type":"error","code","message"} or {"error":{…}}.
	Code    jStr            `json:"code"`
	Message jStr            `json:"message"`
	Error   json.RawMessage `json:"error"`
}

// decodeOpenAIResponsesRequest fills res.Request from a Responses API
// request body and returns its model.
func decodeOpenAIResponsesRequest(body []byte, res *Result) string {
	req := res.Request
	res.Chain = new(Chain)
	var b responsesRequestBody
	if !decodeRequestBody(body, &b, res) {
		req.Streaming = oisp.Ptr(false)
		finishRequest(req)
		return ""
	}
	model := string(b.Model)
	if model != "" {
		req.Model = &oisp.Model{ID: model}
	}
	req.Streaming = oisp.Ptr(b.Stream.OK && b.Stream.V)

	var system []string
	if s, ok := rawString(b.Instructions); ok && s != "" {
		system = append(system, s)
		req.Messages = append(req.Messages, newMessage("system", s, 0))
	}
	compaction := ""
	switch rawKind(b.Input) {
	case '"':
		s, _ := rawString(b.Input)
		req.Messages = append(req.Messages, newMessage("user", s, 0))
	case '[':
		items := b.inputItems
		if !b.inputScanned {
			decodeLoose(b.Input, &items) //nolint:errcheck // a broken list yields no items
		}
		for _, it := range items {
			typ := string(it.Type)
			switch {
			case typ == "function_call_output" || typ == "custom_tool_call_output" || typ == "computer_call_output" ||
				typ == "local_shell_call_output" || typ == "mcp_call_output":
				text, images := flattenOpenAIContent(it.Output)
				if text == "" && rawKind(it.Output) != '"' {
					text = rawText(it.Output)
				}
				msg := newMessage("tool", text, images)
				msg.ToolCallID = string(it.CallID)
				req.Messages = append(req.Messages, msg)
				res.ToolResults = append(res.ToolResults, ToolResult{CallID: string(it.CallID), Content: text})
			case typ == "compaction":
				if compaction == "" {
					compaction = string(it.ID)
				}
			case typ == "" || typ == "message":
				text, images := flattenOpenAIContent(it.Content)
				msg := newMessage(string(it.Role), text, images)
				if msg.Role == "system" {
					system = append(system, text)
				}
				req.Messages = append(req.Messages, msg)
			}
		}
	}
	res.Chain.Continues = responsesContinues(&b, compaction)
	if len(system) > 0 {
		setSystemPrompt(req, strings.Join(system, "\n"))
	}
	for _, t := range b.Tools {
		req.Tools = append(req.Tools, openaiToolDef(t))
	}
	if len(b.ToolChoice) > 0 && rawKind(b.ToolChoice) != 'n' {
		req.ToolChoice = oisp.ToolChoice(anyValue(b.ToolChoice))
	}
	req.Parameters = &oisp.Parameters{
		Temperature: b.Temperature.Ptr(),
		TopP:        b.TopP.Ptr(),
		MaxTokens:   b.MaxOutputTokens.Ptr(),
	}
	finishRequest(req)
	return model
}

// responsesContinues returns the provider-held state a Responses request
// continues: its conversation (an id, or an object with one), which every
// turn of the conversation names, else the response it follows, else the
// compaction (made by /responses/compact) its history starts with.
func responsesContinues(b *responsesRequestBody, compaction string) string {
	switch rawKind(b.Conversation) {
	case '"':
		if id, _ := rawString(b.Conversation); id != "" {
			return id
		}
	case '{':
		var c struct {
			ID jStr `json:"id"`
		}
		if decodeLooseOK(b.Conversation, &c) && c.ID != "" {
			return string(c.ID)
		}
	}
	if b.PreviousResponseID != "" {
		return string(b.PreviousResponseID)
	}
	return compaction
}

// decodeOpenAIResponsesResponse decodes a whole Responses API body (a
// response object or an error).
func decodeOpenAIResponsesResponse(body []byte, res *Result, resp *oisp.AIResponse) {
	var b responsesObject
	if !decodeResponseBody(body, &b, res) {
		return
	}
	fillResponsesObject(&b, nil, resp)
}

// fillResponsesObject writes a response object into resp. items replace
// the object's output when it has none (a stream whose final event lacks
// output).
func fillResponsesObject(b *responsesObject, items []responsesItem, resp *oisp.AIResponse) {
	nameAnswer(resp, string(b.ID), string(b.Model))
	output := b.Output
	if len(output) == 0 {
		output = items
	}
	hasError := rawKind(b.Error) != 0 && rawKind(b.Error) != 'n'
	if len(output) > 0 || (!hasError && b.Object != "") {
		fillResponsesOutput(output, resp)
	}
	if b.Usage != nil {
		resp.Usage = openaiUsage(nil, b.Usage)
	}
	status := string(b.Status)
	switch {
	case hasError:
		setFailure(resp, openaiErrorMember(b.Error), resp.StatusCode > 0 && resp.StatusCode < 400)
	case status == "failed":
		setFailure(resp, &oisp.Error{Type: "response_failed"}, true)
	case status == "incomplete":
		reason := ""
		if b.IncompleteDetails != nil {
			reason = string(b.IncompleteDetails.Reason)
		}
		fr := oisp.FinishLength
		if reason == "content_filter" {
			fr = oisp.FinishContentFilter
		}
		setFinish(resp, fr, reason)
	case status == "completed" || status == "complete":
		if resp.ToolCallsCount > 0 {
			setFinish(resp, oisp.FinishToolCalls, status)
		} else {
			setFinish(resp, oisp.FinishStop, status)
		}
	case status == "cancelled":
		setFinish(resp, oisp.FinishOther, status)
	}
}

// setFinish sets the response's and its choices' finish reason.
func setFinish(resp *oisp.AIResponse, fr, raw string) {
	resp.FinishReason = fr
	for i := range resp.Choices {
		resp.Choices[i].FinishReason = fr
		resp.Choices[i].RawFinishReason = rawIfDifferent(raw, fr)
	}
}

// fillResponsesOutput turns output items into one choice, tool calls and
// thinking.
func fillResponsesOutput(items []responsesItem, resp *oisp.AIResponse) {
	var text, thinking []string
	resp.ToolCalls = nil
	for i := range items {
		it := &items[i]
		typ := string(it.Type)
		switch {
		case typ == "message":
			t, _ := flattenOpenAIContent(it.Content)
			text = append(text, t)
		case typ == "reasoning":
			var parts []string
			for _, p := range it.Summary {
				parts = append(parts, string(p.Text))
			}
			if c, _ := flattenOpenAIContent(it.Content); c != "" {
				parts = append(parts, c)
			}
			if s := joinText(parts); s != "" {
				thinking = append(thinking, s)
			}
		case typ == "function_call":
			resp.ToolCalls = append(resp.ToolCalls, toolCall(string(it.CallID), string(it.Name), "function", argumentsText(it.Arguments)))
		case typ == "custom_tool_call":
			resp.ToolCalls = append(resp.ToolCalls, toolCall(string(it.CallID), string(it.Name), "custom", argumentsText(it.Input)))
		case typ == "mcp_call":
			resp.ToolCalls = append(resp.ToolCalls, toolCall(string(it.ID), string(it.Name), typ, argumentsText(it.Arguments)))
		case strings.HasSuffix(typ, "_call"):
			// Built-in tools run by OpenAI (web_search_call, file_search_call,
			// code_interpreter_call, image_generation_call, computer_call,
			// local_shell_call): named after their type.
			id := string(it.CallID)
			if id == "" {
				id = string(it.ID)
			}
			resp.ToolCalls = append(resp.ToolCalls, toolCall(id, strings.TrimSuffix(typ, "_call"), typ, argumentsText(it.Arguments)))
		}
	}
	resp.ToolCallsCount = len(resp.ToolCalls)
	resp.Choices = []oisp.Choice{{Index: 0, Message: assistantMessage(strings.Join(text, ""))}}
	setThinking(resp, joinText(thinking))
}

// responsesStream reassembles a Responses API event stream.
type responsesStream struct {
	final        *responsesObject // from response.completed / incomplete / failed
	started      *responsesObject // from response.created / in_progress
	items        []responsesItem  // from response.output_item.done
	text         strings.Builder  // output_text deltas, when no item arrives
	err          *oisp.Error
	events       int
	badEvents    int
	contentClock // when the first content arrived
	// ev is the decode target of every event (see responsesEvent.reset).
	ev responsesEvent
	// strs holds the event type and item id the events repeat (see
	// memo.Strings).
	strs memo.Strings
}

func newResponsesStream() *responsesStream { return &responsesStream{} }

// reset empties the event for the next decode, as a new one would be, but
// keeps the buffer of its delta, and returns it.
func (e *responsesEvent) reset() *responsesEvent {
	*e = responsesEvent{Delta: e.Delta[:0]}
	return e
}

// isOutputEventName reports whether a stream event's name has two dots
// (response.output_text.delta), as the events of its output do.
func isOutputEventName(event string) bool {
	i := strings.IndexByte(event, '.')
	return i >= 0 && strings.IndexByte(event[i+1:], '.') >= 0
}

// add consumes one event.
func (s *responsesStream) add(event string, data []byte, at time.Time) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("[DONE]")) {
		return
	}
	ev := s.ev.reset()
	// The small events of a stream's output (named response.<part>.<what>:
	// deltas, a part's added and done) are scanned; the others (named
	// response.<what>, carrying the response object), and an event the
	// scan declines (an item's, one not scanned whole), go to the
	// decoder.
	if !isOutputEventName(event) || !ev.scanJSON(data, &s.strs) {
		ev.reset()
		if _, err := decodeLoose(data, ev); err != nil {
			s.badEvents++
			return
		}
	}
	s.events++
	typ := eventType(ev.Type, event)
	switch typ {
	case "response.created", "response.in_progress", "response.queued":
		if ev.Response != nil {
			s.started = ev.Response
		}
	case "response.completed", "response.incomplete", "response.failed", "response.cancelled":
		if ev.Response != nil {
			s.final = ev.Response
		}
		if typ == "response.failed" && s.err == nil {
			s.err = &oisp.Error{Type: "response_failed"}
			if ev.Response != nil && rawKind(ev.Response.Error) == '{' {
				s.err = openaiErrorMember(ev.Response.Error)
			}
		}
	case "response.output_item.done":
		if ev.Item != nil && len(s.items) < maxStreamBlocks {
			s.items = append(s.items, *ev.Item)
		}
	case "error":
		switch {
		case rawKind(ev.Error) == '{':
			s.err = openaiErrorMember(ev.Error)
		default:
			s.err = &oisp.Error{Type: "error", Code: string(ev.Code), Message: string(ev.Message)}
		}
	default:
		if strings.HasSuffix(typ, ".delta") {
			// The usual delta, a plain string, is appended without a
			// string of its own.
			n := 0
			if d, plain := plainStringBytes(ev.Delta); plain {
				if typ == "response.output_text.delta" {
					s.text.Write(d)
				}
				n = len(d)
			} else {
				d := rawText(ev.Delta)
				if typ == "response.output_text.delta" {
					s.text.WriteString(d)
				}
				n = len(d)
			}
			if n > 0 {
				s.content(at)
			}
		}
	}
}

// finish writes the reassembled response into resp.
func (s *responsesStream) finish(res *Result, resp *oisp.AIResponse) {
	resp.StreamEvents = s.events
	noteBadEvents(res, s.badEvents)
	switch {
	case s.final != nil:
		fillResponsesObject(s.final, s.items, resp)
		res.StreamEnded = true
	case s.started != nil || len(s.items) > 0:
		obj := s.started
		if obj == nil {
			obj = &responsesObject{}
		}
		cut := *obj
		cut.Status = ""
		fillResponsesObject(&cut, s.items, resp)
		if len(s.items) == 0 && s.text.Len() > 0 {
			resp.Choices = []oisp.Choice{{Index: 0, Message: assistantMessage(s.text.String())}}
		}
		if s.err == nil {
			res.note(noteStreamUnterminated)
		}
	}
	if s.err != nil {
		setFailure(resp, s.err, true)
	}
}

// decodeOpenAIResponsesSSE decodes a Responses API SSE body.
func decodeOpenAIResponsesSSE(x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse) {
	decodeSSEStream(newResponsesStream(), x, res, resp)
}

// addSSE consumes one SSE event; its name types it when its JSON does not.
func (s *responsesStream) addSSE(ev *stream.SSEEvent) { s.add(ev.Event, ev.Data, ev.At) }
