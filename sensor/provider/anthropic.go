package provider

// Anthropic Messages API (POST /v1/messages), token counting
// (POST /v1/messages/count_tokens) and the legacy Text Completions API
// (POST /v1/complete), streamed or not.
//
// The body decoders are plain functions of bytes so that other decoders that
// carry Anthropic Messages bodies (Bedrock InvokeModel with anthropic.*
// models, Vertex AI rawPredict / streamRawPredict on publishers/anthropic)
// reuse them unchanged. All of them tolerate odd JSON (wrong types, nulls,
// numbers as strings) and never panic:
//
//	decodeAnthropicRequest(body []byte, res *Result) (model string)
//	    Fills res.Request from a Messages request body: Model.ID (when the
//	    body names a model), Messages (system first, content blocks
//	    flattened to text, images counted), HasSystemPrompt/SystemPromptHash,
//	    Tools, ToolChoice, Parameters, Streaming (body "stream"), and
//	    res.ToolResults from tool_result blocks. Returns the body's model.
//	    The caller sets Provider/Auth/Endpoint/RequestType (newResult does).
//
//	decodeAnthropicResponse(body []byte, res *Result, resp *oisp.AIResponse)
//	    A whole (non-streamed) response body: a "message" object, or an
//	    error object {"type":"error","error":{type,message}}. Fills
//	    ProviderRequestID, Model, Choices, ToolCalls, FinishReason, Usage,
//	    Thinking, Error/Success.
//
//	s := newAnthropicStream()
//	s.add(event string, data []byte, at time.Time)   // once per stream event
//	s.finish(res *Result, resp *oisp.AIResponse)     // after the last one
//	    Reassembles a Messages event stream (message_start, content_block_*,
//	    message_delta, message_stop, error). event may be "" (the JSON
//	    "type" decides). s.firstContent is when the first content-bearing
//	    delta arrived (for time_to_first_token_ms).
//
//	decodeAnthropicSSE(x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse)
//	    Runs the stream reassembly over an SSE response body and sets
//	    Streaming, StreamEvents and TimeToFirstTokenMS.
//
//	anthropicUsage(keep *Result, input, output, cacheRead, cacheWrite jInt) *oisp.Usage
//	    Usage arithmetic: prompt_tokens = input + cache reads + cache writes.
//
// finishResult(env, providerID, res) (common_usage.go) then enriches models
// and prices usage; every decoder calls it last.

import (
	"bytes"
	json "github.com/goccy/go-json"
	"strings"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// API names of the decoders in this file.
const (
	apiAnthropicMessages    = "anthropic.messages"
	apiAnthropicCountTokens = "anthropic.count_tokens"
	apiAnthropicComplete    = "anthropic.complete"
)

// ---------------------------------------------------------------- wire types

type anthropicRequestBody struct {
	Model         jStr               `json:"model"`
	System        json.RawMessage    `json:"system"`
	Messages      []anthropicMessage `json:"messages"`
	Tools         []anthropicTool    `json:"tools"`
	ToolChoice    json.RawMessage    `json:"tool_choice"`
	MaxTokens     jInt               `json:"max_tokens"`
	Temperature   jFloat             `json:"temperature"`
	TopP          jFloat             `json:"top_p"`
	StopSequences json.RawMessage    `json:"stop_sequences"`
	Stream        jBool              `json:"stream"`
	// Legacy Text Completions.
	Prompt            jStr `json:"prompt"`
	MaxTokensToSample jInt `json:"max_tokens_to_sample"`
}

type anthropicMessage struct {
	Role    jStr            `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicTool struct {
	Type        jStr `json:"type"`
	Name        jStr `json:"name"`
	Description jStr `json:"description"`
}

// anthropicBlock is any content block; only the fields of its type are set.
type anthropicBlock struct {
	Type      jStr                  `json:"type"`
	Text      jStr                  `json:"text"`
	Thinking  jStr                  `json:"thinking"`
	Data      jStr                  `json:"data"` // redacted_thinking
	ID        jStr                  `json:"id"`
	Name      jStr                  `json:"name"`
	Input     json.RawMessage       `json:"input"`
	ToolUseID jStr                  `json:"tool_use_id"`
	Content   json.RawMessage       `json:"content"`
	IsError   jBool                 `json:"is_error"`
	Source    *anthropicBlockSource `json:"source"`
}

type anthropicBlockSource struct {
	Type      jStr `json:"type"`
	MediaType jStr `json:"media_type"`
}

// anthropicContentBlock is the part of a content block that
// flattenAnthropicContent reads: half the size of anthropicBlock, and
// tool inputs and thinking text of the history are skipped, not copied.
// (Its members never report a type mismatch, so leaving the others out
// changes nothing else.)
type anthropicContentBlock struct {
	Type      jStr                  `json:"type"`
	Text      jStr                  `json:"text"`
	ToolUseID jStr                  `json:"tool_use_id"`
	Content   json.RawMessage       `json:"content"`
	IsError   jBool                 `json:"is_error"`
	Source    *anthropicMediaSource `json:"source"`
}

type anthropicMediaSource struct {
	MediaType jStr `json:"media_type"`
}

type anthropicUsageBody struct {
	InputTokens              jInt `json:"input_tokens"`
	OutputTokens             jInt `json:"output_tokens"`
	CacheCreationInputTokens jInt `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     jInt `json:"cache_read_input_tokens"`
}

type anthropicErrorBody struct {
	Type    jStr `json:"type"`
	Message jStr `json:"message"`
	Code    jStr `json:"code"`
}

// anthropicResponseBody is a message, an error, a count_tokens answer or a
// legacy completion.
type anthropicResponseBody struct {
	Type        jStr                `json:"type"`
	ID          jStr                `json:"id"`
	Model       jStr                `json:"model"`
	Role        jStr                `json:"role"`
	Content     []anthropicBlock    `json:"content"`
	StopReason  jStr                `json:"stop_reason"`
	Usage       *anthropicUsageBody `json:"usage"`
	Error       json.RawMessage     `json:"error"`
	RequestID   jStr                `json:"request_id"`
	InputTokens jInt                `json:"input_tokens"` // count_tokens
	Completion  *jStr               `json:"completion"`   // legacy
	Message     jStr                `json:"message"`      // bare {"message": …} errors from gateways
}

// anthropicEvent is one stream event's JSON.
type anthropicEvent struct {
	Type         jStr                   `json:"type"`
	Index        jInt                   `json:"index"`
	Message      *anthropicResponseBody `json:"message"`
	ContentBlock *anthropicBlock        `json:"content_block"`
	Delta        *anthropicDelta        `json:"delta"`
	Usage        *anthropicUsageBody    `json:"usage"`
	Error        json.RawMessage        `json:"error"`
	// Legacy completion stream events.
	Completion *jStr `json:"completion"`
	StopReason jStr  `json:"stop_reason"`
	Model      jStr  `json:"model"`
	ID         jStr  `json:"id"`
}

// anthropicDelta is the delta of a content_block_delta or message_delta.
type anthropicDelta struct {
	Type        jStr `json:"type"`
	Text        jStr `json:"text"`
	PartialJSON jStr `json:"partial_json"`
	Thinking    jStr `json:"thinking"`
	StopReason  jStr `json:"stop_reason"`
}

// anthropicRequestBodies and anthropicResponseBodies lend the decode
// targets of whole Messages bodies, as openaiChatRequestBodies does for
// chat bodies (an agent's request resends its whole conversation: the
// array of its messages is kept, cleared, instead of grown anew; a
// request's comes with the arrays its content blocks are read into).
var (
	anthropicRequestBodies  = sync.Pool{New: func() any { return new(anthropicRequestRoom) }}
	anthropicResponseBodies = sync.Pool{New: func() any { return new(anthropicResponseBody) }}
)

// reset empties the body as a new one would be, keeping the arrays of its
// messages and tools (cleared: nothing of the body stays reachable).
func (b *anthropicRequestBody) reset() {
	msgs, tools := b.Messages[:0], b.Tools[:0]
	clear(msgs[:cap(msgs)])
	clear(tools[:cap(tools)])
	*b = anthropicRequestBody{Messages: msgs, Tools: tools}
}

// anthropicRequestRoom is a request body and the room its messages'
// content arrays are read into, one after the other (see
// flattenAnthropicContent), lent together.
type anthropicRequestRoom struct {
	body    anthropicRequestBody
	content anthropicContentRoom
}

// reset empties the body and the content arrays, keeping the arrays.
func (r *anthropicRequestRoom) reset() {
	r.body.reset()
	for i := range r.content {
		c := r.content[i][:0]
		clear(c[:cap(c)])
		r.content[i] = c
	}
}

// reset empties the body as a new one would be, keeping the array of its
// content blocks (cleared).
func (b *anthropicResponseBody) reset() {
	blocks := b.Content[:0]
	clear(blocks[:cap(blocks)])
	*b = anthropicResponseBody{Content: blocks}
}

// ---------------------------------------------------------------- request

// decodeAnthropicRequest fills res.Request from a Messages (or legacy
// complete / count_tokens) request body and returns the body's model.
func decodeAnthropicRequest(body []byte, res *Result) string {
	req := res.Request
	room := anthropicRequestBodies.Get().(*anthropicRequestRoom)
	defer anthropicRequestBodies.Put(room)
	defer room.reset()
	b := &room.body
	if !decodeRequestBody(body, b, res) {
		finishRequest(req)
		return ""
	}
	model := string(b.Model)
	if model != "" {
		req.Model = &oisp.Model{ID: model}
	}
	if b.Stream.OK {
		req.Streaming = oisp.Ptr(b.Stream.V)
	} else {
		req.Streaming = oisp.Ptr(false)
	}

	if n := len(b.Messages); n > 0 {
		// One array for the conversation (and a system prompt), not one
		// per doubling of it.
		req.Messages = make([]oisp.Message, 0, n+1)
	}
	// System prompt: a string or an array of text blocks.
	system, hasSystem := "", len(b.System) > 0 && rawKind(b.System) != 'n'
	if hasSystem {
		var images int
		system, images = flattenAnthropicContent(b.System, nil, room.content[:])
		req.Messages = append(req.Messages, newMessage("system", system, images))
	}
	for _, m := range b.Messages {
		req.Messages = append(req.Messages, anthropicRequestMessage(m, res, room.content[:]))
	}
	if b.Prompt != "" && len(b.Messages) == 0 {
		req.Messages = append(req.Messages, splitHumanAssistant(string(b.Prompt))...)
		req.InputCount = 1
	}
	if hasSystem {
		// Set once every message is in: the prompt takes the system
		// message's hash, made with the others'.
		setSystemPrompt(req, system)
	}

	for _, t := range b.Tools {
		typ := string(t.Type)
		def := oisp.ToolDefinition{Name: string(t.Name), Description: string(t.Description), Type: anthropicToolType(typ)}
		if def.Name == "" {
			def.Name = typ
		}
		req.Tools = append(req.Tools, def)
	}
	if len(b.ToolChoice) > 0 {
		req.ToolChoice = oisp.ToolChoice(anyValue(b.ToolChoice))
	}

	req.Parameters = &oisp.Parameters{
		Temperature: b.Temperature.Ptr(),
		TopP:        b.TopP.Ptr(),
		MaxTokens:   b.MaxTokens.or(b.MaxTokensToSample).Ptr(), // the legacy API's name
		Stop:        stringList(b.StopSequences),
	}
	finishRequest(req)
	return model
}

// anthropicToolType maps Anthropic tool types (custom tools have none or
// "custom"; server tools are versioned like web_search_20250305).
func anthropicToolType(typ string) string {
	switch {
	case typ == "" || typ == "custom" || typ == "function":
		return "function"
	case strings.HasPrefix(typ, "computer_"):
		return "computer_use"
	case strings.HasPrefix(typ, "code_execution"):
		return "code_interpreter"
	}
	return "other"
}

// anthropicRequestMessage flattens one request message and adds its tool
// results to the result's.
func anthropicRequestMessage(m anthropicMessage, res *Result, room []anthropicContentList) oisp.Message {
	first := len(res.ToolResults)
	text, images := flattenAnthropicContent(m.Content, &res.ToolResults, room)
	msg := newMessage(string(m.Role), text, images)
	if len(res.ToolResults)-first == 1 {
		msg.ToolCallID = res.ToolResults[first].CallID
	}
	return msg
}

// anthropicContentRoom holds the arrays a request's content is read into:
// a message's blocks, and a tool result's blocks within them.
type anthropicContentRoom [2]anthropicContentList

// flattenAnthropicContent renders a content value (a string or an array of
// blocks) as text and counts images. tool_result blocks contribute their
// text and, when results is not nil, a ToolResult. tool_use and thinking
// blocks in a request are history, not content: they are skipped. An
// array is read into room[0] when there is room (a nested one into
// room[1]), which keeps the array for the next content: the blocks live
// only while their content is flattened (the strings kept are the
// blocks' own copies).
func flattenAnthropicContent(raw json.RawMessage, results *[]ToolResult, room []anthropicContentList) (string, int) {
	text, list := textOrList(raw)
	if list == nil {
		return text, 0
	}
	var blocks *anthropicContentList
	if len(room) > 0 {
		blocks, room = &room[0], room[1:]
	} else {
		blocks = new(anthropicContentList)
	}
	decodeLoose(list, blocks) //nolint:errcheck // a broken array yields no blocks
	var kept [4]string        // most contents have a block or two
	parts := kept[:0]
	images := 0
	for _, bl := range *blocks {
		switch bl.Type {
		case "text":
			parts = append(parts, string(bl.Text))
		case "image":
			images++
		case "tool_result":
			text, n := flattenAnthropicContent(bl.Content, nil, room)
			images += n
			parts = append(parts, text)
			if results != nil {
				*results = append(*results, ToolResult{CallID: string(bl.ToolUseID), Content: text, IsError: bl.IsError.V})
			}
		case "document":
			if bl.Source != nil && strings.HasPrefix(string(bl.Source.MediaType), "image/") {
				images++
			}
		}
	}
	return joinText(parts), images
}

// splitHumanAssistant turns a legacy "\n\nHuman: … \n\nAssistant:" prompt
// into messages.
func splitHumanAssistant(prompt string) []oisp.Message {
	const human, assistant = "Human:", "Assistant:"
	var out []oisp.Message
	rest := prompt
	role := ""
	for {
		hi := strings.Index(rest, "\n\n"+human)
		ai := strings.Index(rest, "\n\n"+assistant)
		next, nextRole, skip := -1, "", 0
		switch {
		case hi >= 0 && (ai < 0 || hi < ai):
			next, nextRole, skip = hi, "user", len(human)+2
		case ai >= 0:
			next, nextRole, skip = ai, "assistant", len(assistant)+2
		}
		if next < 0 {
			if text := strings.TrimSpace(rest); text != "" || role != "" {
				if role == "" {
					role = "user"
				}
				if text != "" {
					out = append(out, newMessage(role, text, 0))
				}
			}
			return out
		}
		if text := strings.TrimSpace(rest[:next]); text != "" {
			r := role
			if r == "" {
				r = "user"
			}
			out = append(out, newMessage(r, text, 0))
		}
		role = nextRole
		rest = rest[next+skip:]
	}
}

// ---------------------------------------------------------------- response

// anthropicError reads an "error" member: {type, message} (or a string).
func anthropicError(raw json.RawMessage) *oisp.Error {
	switch rawKind(raw) {
	case '{':
		var e anthropicErrorBody
		if _, err := decodeLoose(raw, &e); err != nil {
			return &oisp.Error{Type: "error"}
		}
		out := &oisp.Error{Type: string(e.Type), Message: string(e.Message), Code: string(e.Code)}
		if out.Type == "" && out.Message == "" && out.Code == "" {
			out.Type = "error"
		}
		return out
	case '"':
		s, _ := rawString(raw)
		return &oisp.Error{Type: "error", Message: s}
	case 0, 'n':
		return nil
	}
	return &oisp.Error{Type: "error", Message: rawText(raw)}
}

// decodeAnthropicResponse decodes a whole (non-streamed) response body.
func decodeAnthropicResponse(body []byte, res *Result, resp *oisp.AIResponse) {
	b := anthropicResponseBodies.Get().(*anthropicResponseBody)
	defer anthropicResponseBodies.Put(b)
	defer b.reset()
	if !decodeResponseBody(body, b, res) {
		return
	}
	if b.ID != "" {
		resp.ProviderRequestID = string(b.ID)
	} else if b.RequestID != "" && resp.ProviderRequestID == "" {
		resp.ProviderRequestID = string(b.RequestID)
	}
	if b.Model != "" {
		resp.Model = &oisp.Model{ID: string(b.Model)}
	}
	if b.Type == "error" || len(b.Error) > 0 && rawKind(b.Error) != 'n' {
		e := anthropicError(b.Error)
		inBand := resp.StatusCode > 0 && resp.StatusCode < 400
		setFailure(resp, e, inBand)
		return
	}
	if resp.StatusCode >= 400 && b.Message != "" {
		setFailure(resp, &oisp.Error{Type: "error", Message: string(b.Message)}, false)
		return
	}
	if b.Completion != nil { // legacy Text Completions
		text := string(*b.Completion)
		fr := oisp.FinishReason(string(b.StopReason))
		resp.Choices = oneChoice(text, fr, rawIfDifferent(string(b.StopReason), fr))
		resp.FinishReason = fr
		return
	}
	var acc anthropicContent
	for i := range b.Content {
		acc.block(&b.Content[i])
	}
	acc.fill(resp, string(b.StopReason))
	if b.Usage != nil {
		resp.Usage = anthropicUsage(res, b.Usage.InputTokens, b.Usage.OutputTokens, b.Usage.CacheReadInputTokens, b.Usage.CacheCreationInputTokens)
	}
}

// anthropicContent accumulates a response's content blocks.
type anthropicContent struct {
	text     []string
	thinking []string
	redacted []string
	calls    []oisp.ToolCall
}

func (a *anthropicContent) block(bl *anthropicBlock) {
	switch typ := string(bl.Type); typ {
	case "text":
		a.text = append(a.text, string(bl.Text))
	case "thinking":
		a.thinking = append(a.thinking, string(bl.Thinking))
	case "redacted_thinking":
		a.redacted = append(a.redacted, string(bl.Data))
	case "tool_use":
		a.calls = append(a.calls, toolCall(string(bl.ID), string(bl.Name), "function", compactJSON(bl.Input)))
	default:
		// Server-side tools (server_tool_use for web search, code
		// execution…; mcp_tool_use) run at the provider; they are calls
		// all the same, typed by their block type.
		if strings.HasSuffix(typ, "tool_use") {
			a.calls = append(a.calls, toolCall(string(bl.ID), string(bl.Name), typ, compactJSON(bl.Input)))
		}
	}
}

func (a *anthropicContent) fill(resp *oisp.AIResponse, stopReason string) {
	fr := anthropicFinish(stopReason)
	text := strings.Join(a.text, "")
	resp.Choices = oneChoice(text, fr, rawIfDifferent(stopReason, fr))
	if fr != "" {
		resp.FinishReason = fr
	}
	setToolCalls(resp, a.calls)
	if th := strings.Join(a.thinking, ""); th != "" {
		setThinking(resp, th)
	} else if red := strings.Join(a.redacted, ""); red != "" {
		// Redacted (encrypted) thinking: its size and hash, never as text.
		resp.Thinking = &oisp.Thinking{ContentLength: len(red), ContentHash: oisp.Hash(red)}
	}
}

// anthropicFinish maps a stop_reason onto the finish_reason enum.
func anthropicFinish(stop string) string {
	switch stop {
	case "model_context_window_exceeded":
		return oisp.FinishLength
	case "pause_turn":
		return oisp.FinishOther
	}
	return oisp.FinishReason(stop)
}

// rawIfDifferent returns raw when the enum value fr differs from it.
func rawIfDifferent(raw, fr string) string {
	if raw == fr {
		return ""
	}
	return raw
}

// compactJSON renders a JSON value compactly ("" for absent or null).
func compactJSON(raw json.RawMessage) string {
	switch rawKind(raw) {
	case 0, 'n':
		return ""
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return ""
	}
	return buf.String()
}

// anthropicUsage normalises Anthropic usage: prompt_tokens counts every
// input token, including cache reads and cache writes (which Anthropic
// reports apart from input_tokens); cached_tokens are the reads.
// Its block is keep's (see newUsageBlock).
func anthropicUsage(keep *Result, input, output, cacheRead, cacheWrite jInt) *oisp.Usage {
	if !input.OK && !output.OK && !cacheRead.OK && !cacheWrite.OK {
		return nil
	}
	blk := keep.newUsageBlock()
	u := &blk.usage
	u.CompletionTokens = blk.of(output)
	if input.OK || cacheRead.OK || cacheWrite.OK {
		u.PromptTokens = blk.count(input.V + cacheRead.V + cacheWrite.V)
	}
	if cacheRead.OK {
		u.CachedTokens = blk.of(cacheRead)
	}
	if cacheWrite.OK && cacheWrite.V > 0 {
		u.CacheCreationTokens = blk.of(cacheWrite)
	}
	completeTotals(u)
	return u
}

// ---------------------------------------------------------------- stream

// anthropicStream reassembles a Messages (or legacy completion) stream.
type anthropicStream struct {
	id, model    string
	stopReason   string
	blocks       []anthropicStreamBlock
	byIndex      map[int]int
	usage        anthropicUsageBody
	haveUsage    bool
	err          *oisp.Error
	events       int
	badEvents    int
	stopped      bool
	contentClock // when the first content arrived
	legacy       bool
	legacyText   strings.Builder
	// ev is the decode target of every event, emptied before each (one
	// allocation less per event).
	ev anthropicEvent
	// strs holds the strings events repeat (see memo.Strings).
	strs memo.Strings
}

type anthropicStreamBlock struct {
	typ      string
	id, name string
	data     string // redacted_thinking payload
	input    string // from content_block_start
	text     textBuf
	json     textBuf
	thinking textBuf
}

func newAnthropicStream() *anthropicStream {
	return &anthropicStream{byIndex: map[int]int{}}
}

// add consumes one stream event. event is the SSE event name (may be "").
func (s *anthropicStream) add(event string, data []byte, at time.Time) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return
	}
	ev := &s.ev
	*ev = anthropicEvent{}
	if _, err := decodeLooseMemo(data, ev, &s.strs); err != nil {
		s.badEvents++
		return
	}
	s.events++
	switch eventType(ev.Type, event) {
	case "message_start":
		if m := ev.Message; m != nil {
			s.id, s.model = string(m.ID), string(m.Model)
			if m.Usage != nil {
				s.mergeUsage(m.Usage)
			}
		}
	case "content_block_start":
		blk := s.block(ev.Index)
		if cb := ev.ContentBlock; cb != nil {
			blk.typ, blk.id, blk.name, blk.data = string(cb.Type), string(cb.ID), string(cb.Name), string(cb.Data)
			if in := compactJSON(cb.Input); in != "" && in != "{}" {
				blk.input = in
			}
			if cb.Text != "" {
				blk.text.WriteString(string(cb.Text))
				s.content(at)
			}
		}
	case "content_block_delta":
		d := ev.Delta
		if d == nil {
			return
		}
		blk := s.block(ev.Index)
		switch string(d.Type) {
		case "text_delta":
			s.appendDelta(&blk.text, d.Text, at)
			blk.typeIfUnknown("text")
		case "input_json_delta":
			s.appendDelta(&blk.json, d.PartialJSON, at)
		case "thinking_delta":
			s.appendDelta(&blk.thinking, d.Thinking, at)
			blk.typeIfUnknown("thinking")
		}
	case "message_delta":
		if ev.Delta != nil && ev.Delta.StopReason != "" {
			s.stopReason = string(ev.Delta.StopReason)
		}
		if ev.Usage != nil {
			s.mergeUsage(ev.Usage)
		}
	case "message_stop":
		s.stopped = true
	case "error":
		s.err = anthropicError(ev.Error)
		if s.err == nil {
			s.err = &oisp.Error{Type: "error"}
		}
	case "completion": // legacy Text Completions stream
		s.legacy = true
		if ev.Completion != nil && *ev.Completion != "" {
			s.legacyText.WriteString(string(*ev.Completion))
			s.content(at)
		}
		if ev.StopReason != "" {
			s.stopReason = string(ev.StopReason)
			s.stopped = true
		}
		if ev.Model != "" {
			s.model = string(ev.Model)
		}
		if ev.ID != "" && s.id == "" {
			s.id = string(ev.ID)
		}
	}
}

// appendDelta appends a content_block_delta's piece to a block's buffer;
// a piece with content is content for the time to first token.
func (s *anthropicStream) appendDelta(buf *textBuf, piece jStr, at time.Time) {
	buf.WriteString(string(piece))
	if piece != "" {
		s.content(at)
	}
}

// typeIfUnknown types a block whose content_block_start was not seen by
// the deltas it gets.
func (b *anthropicStreamBlock) typeIfUnknown(typ string) {
	if b.typ == "" {
		b.typ = typ
	}
}

// mergeUsage keeps the latest reported value of each count: message_start
// carries the input counts, message_delta the final output count (and, in
// newer API versions, cumulative input counts too).
func (s *anthropicStream) mergeUsage(u *anthropicUsageBody) {
	s.haveUsage = true
	if u.InputTokens.OK {
		s.usage.InputTokens = u.InputTokens
	}
	if u.OutputTokens.OK {
		s.usage.OutputTokens = u.OutputTokens
	}
	if u.CacheReadInputTokens.OK {
		s.usage.CacheReadInputTokens = u.CacheReadInputTokens
	}
	if u.CacheCreationInputTokens.OK {
		s.usage.CacheCreationInputTokens = u.CacheCreationInputTokens
	}
}

// block returns the block at a stream index, creating it in arrival order.
func (s *anthropicStream) block(idx jInt) *anthropicStreamBlock {
	i := idx.V
	if pos, ok := s.byIndex[i]; ok {
		return &s.blocks[pos]
	}
	if len(s.blocks) >= maxStreamBlocks {
		return &s.blocks[len(s.blocks)-1]
	}
	s.blocks = append(s.blocks, anthropicStreamBlock{})
	s.byIndex[i] = len(s.blocks) - 1
	return &s.blocks[len(s.blocks)-1]
}

// maxStreamBlocks bounds the blocks (and tool calls) kept per stream; a
// hostile stream cannot grow the decoder's memory without bound through
// distinct indexes.
const maxStreamBlocks = 4096

// finish writes the reassembled response into resp.
func (s *anthropicStream) finish(res *Result, resp *oisp.AIResponse) {
	resp.StreamEvents = s.events
	noteBadEvents(res, s.badEvents)
	nameAnswer(resp, s.id, s.model)
	if s.legacy {
		fr := oisp.FinishReason(s.stopReason)
		resp.Choices = oneChoice(s.legacyText.String(), fr, rawIfDifferent(s.stopReason, fr))
		resp.FinishReason = fr
	} else if s.events > 0 {
		var acc anthropicContent
		for i := range s.blocks {
			b := &s.blocks[i]
			bl := anthropicBlock{Type: jStr(b.typ), ID: jStr(b.id), Name: jStr(b.name), Text: jStr(b.text.String()),
				Thinking: jStr(b.thinking.String()), Data: jStr(b.data)}
			in := b.json.String()
			if in == "" {
				in = b.input
			}
			if in != "" {
				bl.Input = json.RawMessage(in)
				if compactJSON(bl.Input) == "" { // partial JSON of a cut stream: keep it verbatim
					acc.block(&bl)
					if n := len(acc.calls); n > 0 && strings.HasSuffix(b.typ, "tool_use") {
						setArguments(&acc.calls[n-1], in)
					}
					continue
				}
			}
			acc.block(&bl)
		}
		acc.fill(resp, s.stopReason)
	}
	if s.haveUsage {
		resp.Usage = anthropicUsage(res, s.usage.InputTokens, s.usage.OutputTokens, s.usage.CacheReadInputTokens, s.usage.CacheCreationInputTokens)
	}
	endStream(res, resp, s.err, s.events, s.stopped)
}
