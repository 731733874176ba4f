package provider

// OpenAI Chat Completions (POST …/chat/completions) and legacy Completions
// (POST …/completions), streamed or not, as spoken by OpenAI, Azure OpenAI
// and every OpenAI-compatible provider.
//
// Reusable entry points (the other OpenAI-format decoders and the
// OpenAI-compatible endpoints of other providers use them unchanged):
//
//	decodeOpenAIChatRequest(body []byte, res *Result) (model string)
//	    Fills res.Request from a chat (or legacy completions) request body:
//	    Model.ID, Messages (content parts flattened, images counted, tool and
//	    function results as res.ToolResults), system prompt, Tools,
//	    ToolChoice, Parameters, Streaming, InputCount (legacy prompt).
//	decodeOpenAIChatResponse(body []byte, res *Result, resp *oisp.AIResponse)
//	    A whole response body (chat.completion, text_completion or an error).
//	s := newOpenAIChatStream(); s.add(data []byte, at time.Time); s.finish(res, resp)
//	    Merges chat.completion.chunk / text_completion chunks: content and
//	    reasoning deltas, tool-call deltas by index (arguments
//	    concatenated), finish reasons, usage from the final chunk.
//	decodeOpenAIChatSSE(x, res, resp)
//	    The stream reassembly over an SSE body, with TTFT and event count.
//	openaiUsage(keep *Result, u *openaiUsageBody) *oisp.Usage
//	    Usage arithmetic for chat, completions, responses and embeddings.
//	decodeOpenAIError(body []byte) *oisp.Error
//	    {error:{type,message,code}}, {error:"…"}, {object:"error",message},
//	    {detail:"…"} error bodies.

import (
	"bytes"
	json "github.com/goccy/go-json"
	"strings"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stream"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// API names of the OpenAI-format decoders.
const (
	apiOpenAIChat        = "openai.chat_completions"
	apiOpenAICompletions = "openai.completions"
	apiOpenAIResponses   = "openai.responses"
	apiOpenAIEmbeddings  = "openai.embeddings"
)

// ---------------------------------------------------------------- wire types

type openaiChatRequestBody struct {
	Model               jStr             `json:"model"`
	Messages            []openaiMessage  `json:"messages"`
	Tools               []openaiTool     `json:"tools"`
	Functions           []openaiFunction `json:"functions"`
	ToolChoice          json.RawMessage  `json:"tool_choice"`
	FunctionCall        json.RawMessage  `json:"function_call"`
	Temperature         jFloat           `json:"temperature"`
	TopP                jFloat           `json:"top_p"`
	FrequencyPenalty    jFloat           `json:"frequency_penalty"`
	PresencePenalty     jFloat           `json:"presence_penalty"`
	MaxTokens           jInt             `json:"max_tokens"`
	MaxCompletionTokens jInt             `json:"max_completion_tokens"`
	Stop                json.RawMessage  `json:"stop"`
	Stream              jBool            `json:"stream"`
	Prompt              json.RawMessage  `json:"prompt"` // legacy completions
}

type openaiMessage struct {
	Role       jStr            `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       jStr            `json:"name"`
	ToolCallID jStr            `json:"tool_call_id"`
	// contentPlain is set by the scan (openai_scan.go) when Content is a
	// string of printable ASCII without escapes: its text is its contents.
	contentPlain bool
}

type openaiFunction struct {
	Name        jStr `json:"name"`
	Description jStr `json:"description"`
}

// openaiTool is a chat tool ({type, function:{name, description}}) or a
// Responses API tool ({type, name, description}, flat).
type openaiTool struct {
	Type        jStr            `json:"type"`
	Function    *openaiFunction `json:"function"`
	Name        jStr            `json:"name"`
	Description jStr            `json:"description"`
}

// openaiPart is a content part of any OpenAI API.
type openaiPart struct {
	Type     jStr            `json:"type"`
	Text     jStr            `json:"text"`
	Refusal  jStr            `json:"refusal"`
	Thinking json.RawMessage `json:"thinking"` // Mistral reasoning chunks
}

type openaiUsageBody struct {
	PromptTokens            jInt                       `json:"prompt_tokens"`
	CompletionTokens        jInt                       `json:"completion_tokens"`
	TotalTokens             jInt                       `json:"total_tokens"`
	InputTokens             jInt                       `json:"input_tokens"`
	OutputTokens            jInt                       `json:"output_tokens"`
	PromptTokensDetails     *openaiPromptTokensDetails `json:"prompt_tokens_details"`
	InputTokensDetails      *openaiInputTokensDetails  `json:"input_tokens_details"`
	CompletionTokensDetails *openaiReasoningDetails    `json:"completion_tokens_details"`
	OutputTokensDetails     *openaiReasoningDetails    `json:"output_tokens_details"`
	// DeepSeek reports cache hits this way.
	PromptCacheHitTokens jInt `json:"prompt_cache_hit_tokens"`
}

// openaiXGroq is Groq's x_groq member, which may carry the usage.
type openaiXGroq struct {
	Usage *openaiUsageBody `json:"usage"`
}

type openaiPromptTokensDetails struct {
	CachedTokens     jInt `json:"cached_tokens"`
	CacheWriteTokens jInt `json:"cache_write_tokens"`
}

type openaiInputTokensDetails struct {
	CachedTokens jInt `json:"cached_tokens"`
}

type openaiReasoningDetails struct {
	ReasoningTokens jInt `json:"reasoning_tokens"`
}

// openaiFunctionCall is a function call, or a tool call's function.
type openaiFunctionCall struct {
	Name      jStr            `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

type openaiToolCallDelta struct {
	Index    jInt                `json:"index"`
	ID       jStr                `json:"id"`
	Type     jStr                `json:"type"`
	Function *openaiFunctionCall `json:"function"`
}

type openaiChoiceMessage struct {
	Role             jStr                  `json:"role"`
	Content          json.RawMessage       `json:"content"`
	Refusal          jStr                  `json:"refusal"`
	ReasoningContent jStr                  `json:"reasoning_content"`
	Reasoning        jStr                  `json:"reasoning"`
	ToolCalls        []openaiToolCallDelta `json:"tool_calls"`
	FunctionCall     *openaiFunctionCall   `json:"function_call"`
	contentPlain     bool                  // as openaiMessage.contentPlain
}

type openaiChoice struct {
	Index        jInt                 `json:"index"`
	Message      *openaiChoiceMessage `json:"message"`
	Delta        *openaiChoiceMessage `json:"delta"`
	Text         optStr               `json:"text"` // legacy completions
	FinishReason jStr                 `json:"finish_reason"`
}

type openaiChatResponseBody struct {
	ID      jStr             `json:"id"`
	Object  jStr             `json:"object"`
	Model   jStr             `json:"model"`
	Choices []openaiChoice   `json:"choices"`
	Usage   *openaiUsageBody `json:"usage"`
	XGroq   *openaiXGroq     `json:"x_groq"`
	Error   json.RawMessage  `json:"error"`
	// Mistral and some compatible servers: {"object":"error","message":…}.
	Message jStr            `json:"message"`
	Type    jStr            `json:"type"`
	Code    jStr            `json:"code"`
	Detail  json.RawMessage `json:"detail"`

	// spare holds emptied messages of the body's last choices, which the
	// scan of the next body's choices takes instead of new ones (a
	// stream's chunks each carry a delta; see reset).
	spare  [4]*openaiChoiceMessage
	spares int
}

// reset empties the body for the next decode, as a new one would be, but
// keeps the arrays of its messages, tools and functions (cleared: nothing
// of the body stays reachable).
func (b *openaiChatRequestBody) reset() {
	msgs, tools, funcs := b.Messages[:0], b.Tools[:0], b.Functions[:0]
	clear(msgs[:cap(msgs)])
	clear(tools[:cap(tools)])
	clear(funcs[:cap(funcs)])
	*b = openaiChatRequestBody{Messages: msgs, Tools: tools, Functions: funcs}
}

// reset empties the body for the next decode, as a new one would be, but
// keeps the array of its choices, and returns it.
func (b *openaiChatResponseBody) reset() *openaiChatResponseBody {
	// A choice's messages are kept, emptied, for the next scan: nothing
	// holds them past the body (what a decoder keeps it copies out), and
	// no message is in two places (a response's message is moved into
	// the delta, not shared).
	spare, n := b.spare, b.spares
	for i := range b.Choices {
		for _, m := range [2]*openaiChoiceMessage{b.Choices[i].Message, b.Choices[i].Delta} {
			if m != nil && n < len(spare) {
				*m = openaiChoiceMessage{}
				spare[n] = m
				n++
			}
		}
	}
	choices := b.Choices[:0]
	clear(choices[:cap(choices)])
	*b = openaiChatResponseBody{Choices: choices, spare: spare, spares: n}
	return b
}

// choiceMessage returns an empty message for a choice: a spare one, or new.
func (b *openaiChatResponseBody) choiceMessage() *openaiChoiceMessage {
	if b.spares == 0 {
		return new(openaiChoiceMessage)
	}
	b.spares--
	m := b.spare[b.spares]
	b.spare[b.spares] = nil
	return m
}

// ---------------------------------------------------------------- request

// openaiChatRequestBodies and openaiChatResponseBodies lend the decode
// targets of whole chat bodies. A target lives only while its body is read
// (the result copies out what it keeps: strings, numbers, and raw values
// that point into the body, never into the target), and every exchange
// would otherwise allocate both, and grow the array of a long
// conversation's messages step by step. A returned target is emptied
// (reset), so the pool holds no body's bytes, only cleared arrays, as a
// stream's chunk target does between events.
var (
	openaiChatRequestBodies  = sync.Pool{New: func() any { return new(openaiChatRequestBody) }}
	openaiChatResponseBodies = sync.Pool{New: func() any { return new(openaiChatResponseBody) }}
)

// decodeOpenAIChatRequest fills res.Request from a chat completions (or
// legacy completions) request body and returns the body's model.
func decodeOpenAIChatRequest(body []byte, res *Result) string {
	req := res.Request
	// What the request's pointers point to, allocated together.
	a := &struct {
		model     oisp.Model
		params    oisp.Parameters
		streaming bool
	}{}
	req.Streaming = &a.streaming
	b := openaiChatRequestBodies.Get().(*openaiChatRequestBody)
	defer openaiChatRequestBodies.Put(b)
	defer b.reset() // keeps nothing of this body but cleared arrays
	if !decodeRequestBody(body, b, res) {
		finishRequest(req)
		return ""
	}
	model := string(b.Model)
	if model != "" {
		a.model.ID = model
		req.Model = &a.model
	}
	a.streaming = b.Stream.OK && b.Stream.V

	var system []string
	if len(b.Messages) > 0 {
		// One array for the conversation, not one per doubling of it.
		req.Messages = make([]oisp.Message, 0, len(b.Messages))
	}
	for _, m := range b.Messages {
		var text string
		var images int
		if m.contentPlain {
			text = string(m.Content[1 : len(m.Content)-1])
		} else {
			text, images = flattenOpenAIContent(m.Content)
		}
		msg := newMessage(string(m.Role), text, images)
		msg.Name = string(m.Name)
		msg.ToolCallID = string(m.ToolCallID)
		switch msg.Role {
		case "system":
			system = append(system, text)
		case "tool":
			res.ToolResults = append(res.ToolResults, ToolResult{CallID: msg.ToolCallID, Name: msg.Name, Content: text})
		case "function":
			res.ToolResults = append(res.ToolResults, ToolResult{Name: msg.Name, Content: text})
		}
		req.Messages = append(req.Messages, msg)
	}
	if len(system) > 0 {
		setSystemPrompt(req, strings.Join(system, "\n"))
	}
	if len(b.Prompt) > 0 && len(b.Messages) == 0 {
		prompts := promptTexts(b.Prompt)
		req.InputCount = len(prompts)
		for _, p := range prompts {
			req.Messages = append(req.Messages, newMessage("user", p, 0))
		}
	}

	for _, t := range b.Tools {
		req.Tools = append(req.Tools, openaiToolDef(t))
	}
	for _, f := range b.Functions {
		req.Tools = append(req.Tools, oisp.ToolDefinition{Name: string(f.Name), Description: string(f.Description), Type: "function"})
	}
	switch {
	case len(b.ToolChoice) > 0 && rawKind(b.ToolChoice) != 'n':
		req.ToolChoice = oisp.ToolChoice(anyValue(b.ToolChoice))
	case len(b.FunctionCall) > 0 && rawKind(b.FunctionCall) != 'n':
		req.ToolChoice = oisp.ToolChoice(anyValue(b.FunctionCall))
	}

	p := &a.params
	*p = oisp.Parameters{
		Temperature:      b.Temperature.Ptr(),
		TopP:             b.TopP.Ptr(),
		FrequencyPenalty: b.FrequencyPenalty.Ptr(),
		PresencePenalty:  b.PresencePenalty.Ptr(),
		MaxTokens:        b.MaxCompletionTokens.or(b.MaxTokens).Ptr(), // the newer name first
		Stop:             stringList(b.Stop),
	}
	req.Parameters = p
	finishRequest(req)
	return model
}

// openaiToolDef describes a chat or Responses tool.
func openaiToolDef(t openaiTool) oisp.ToolDefinition {
	typ := string(t.Type)
	d := oisp.ToolDefinition{Name: string(t.Name), Description: string(t.Description)}
	if t.Function != nil {
		if t.Function.Name != "" {
			d.Name = string(t.Function.Name)
		}
		if t.Function.Description != "" {
			d.Description = string(t.Function.Description)
		}
	}
	switch {
	case typ == "" || typ == "function" || typ == "custom":
		d.Type = "function"
	case typ == "code_interpreter":
		d.Type = "code_interpreter"
	case typ == "file_search":
		d.Type = "file_search"
	case strings.HasPrefix(typ, "computer"):
		d.Type = "computer_use"
	default:
		d.Type = toolType(typ)
	}
	if d.Name == "" {
		d.Name = typ
	}
	return d
}

// promptTexts reads a legacy completions prompt: a string, an array of
// strings, a token array, or an array of token arrays.
func promptTexts(raw json.RawMessage) []string {
	switch rawKind(raw) {
	case '"':
		s, _ := rawString(raw)
		return []string{s}
	case '[':
		elems := rawArray(raw)
		if len(elems) == 0 {
			return nil
		}
		if k := rawKind(elems[0]); k == '-' || (k >= '0' && k <= '9') {
			return []string{""} // one prompt given as token ids
		}
		out := make([]string, 0, len(elems))
		for _, e := range elems {
			s, _ := rawString(e)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// flattenOpenAIContent renders message content (a string, null, or an array
// of parts) as text and counts image parts.
func flattenOpenAIContent(raw json.RawMessage) (string, int) {
	text, list := textOrList(raw)
	if list == nil {
		return text, 0
	}
	var parts openaiPartList
	decodeLoose(list, &parts) //nolint:errcheck // a broken array yields no parts
	var texts []string
	images := 0
	for _, p := range parts {
		switch typ := string(p.Type); typ {
		case "text", "input_text", "output_text", "":
			if p.Text != "" {
				texts = append(texts, string(p.Text))
			}
		case "refusal":
			texts = append(texts, string(p.Refusal))
		case "image_url", "input_image", "image":
			images++
		}
	}
	return joinText(texts), images
}

// ---------------------------------------------------------------- response

// decodeOpenAIError reads an OpenAI-style error body; nil when the body
// carries no error.
func decodeOpenAIError(body []byte) *oisp.Error {
	var b openaiChatResponseBody
	if _, err := decodeLoose(body, &b); err != nil {
		return nil
	}
	return openaiErrorOf(&b)
}

func openaiErrorOf(b *openaiChatResponseBody) *oisp.Error {
	if k := rawKind(b.Error); k != 0 && k != 'n' {
		return openaiErrorMember(b.Error)
	}
	if b.Object == "error" {
		e := &oisp.Error{Type: string(b.Type), Message: string(b.Message), Code: string(b.Code)}
		if e.Type == "" {
			e.Type = "error"
		}
		return e
	}
	return nil
}

// openaiErrorObject is an OpenAI-style error object (some proxies wrap
// another in its "error").
type openaiErrorObject struct {
	Type    jStr            `json:"type"`
	Message jStr            `json:"message"`
	Code    jStr            `json:"code"`
	Inner   json.RawMessage `json:"error"`
}

// openaiErrorMember reads {"error": {...}} or {"error": "text"}.
func openaiErrorMember(raw json.RawMessage) *oisp.Error {
	switch rawKind(raw) {
	case '{':
		var e openaiErrorObject
		if _, err := decodeLoose(raw, &e); err != nil {
			return &oisp.Error{Type: "error"}
		}
		out := &oisp.Error{Type: string(e.Type), Message: string(e.Message), Code: string(e.Code)}
		if out.Message == "" && rawKind(e.Inner) == '{' {
			if in := openaiErrorMember(e.Inner); in != nil {
				return in
			}
		}
		if out.Type == "" && out.Message == "" && out.Code == "" {
			out.Type = "error"
		}
		return out
	case '"':
		s, _ := rawString(raw)
		return &oisp.Error{Type: "error", Message: s}
	case 't':
		return &oisp.Error{Type: "error"}
	case 'f':
		return nil
	}
	return &oisp.Error{Type: "error", Message: rawText(raw)}
}

// decodeOpenAIChatResponse decodes a whole (non-streamed) chat or legacy
// completions response body.
func decodeOpenAIChatResponse(body []byte, res *Result, resp *oisp.AIResponse) {
	b := openaiChatResponseBodies.Get().(*openaiChatResponseBody)
	defer openaiChatResponseBodies.Put(b)
	defer b.reset() // keeps nothing of this body but the cleared choices array
	if !decodeResponseBody(body, b, res) {
		return
	}
	// What the answer points to, allocated together: one allocation
	// instead of three.
	a := &struct {
		model   oisp.Model
		usage   usageBlock
		choice  [1]oisp.Choice
		message [1]messageRoom
	}{}
	if b.ID != "" {
		resp.ProviderRequestID = string(b.ID)
	}
	if b.Model != "" {
		a.model.ID = string(b.Model)
		resp.Model = &a.model
	}
	if e := openaiErrorOf(b); e != nil {
		setFailure(resp, e, resp.StatusCode > 0 && resp.StatusCode < 400)
		return
	}
	if resp.StatusCode >= 400 {
		if msg := rawText(b.Detail); msg != "" {
			setFailure(resp, &oisp.Error{Type: "error", Message: msg}, false)
			return
		}
		if b.Message != "" {
			setFailure(resp, &oisp.Error{Type: string(b.Type), Message: string(b.Message), Code: string(b.Code)}, false)
			return
		}
	}
	s := newOpenAIChatStream()
	for i := range b.Choices {
		c := &b.Choices[i]
		if c.Message != nil {
			c.Delta, c.Message = c.Message, nil
			for j := range c.Delta.ToolCalls {
				if tc := &c.Delta.ToolCalls[j]; !tc.Index.OK {
					tc.Index = jInt{V: j, OK: true}
				}
			}
		}
		s.choice(c, time.Time{})
	}
	resp.Choices = a.choice[:0] // room for the usual single choice
	s.fillChoices(resp, a.message[:])
	if len(resp.Choices) == 0 {
		resp.Choices = nil
	}
	u := b.Usage
	if u == nil && b.XGroq != nil {
		u = b.XGroq.Usage
	}
	if u != nil {
		resp.Usage = openaiUsageIn(&a.usage, u)
		res.usageRoom = &a.usage
	}
}

// openaiUsage normalises OpenAI-format usage (chat, completions, responses,
// embeddings). prompt_tokens already includes cached tokens.
// Its block is keep's (see newUsageBlock).
func openaiUsage(keep *Result, u *openaiUsageBody) *oisp.Usage {
	if u == nil {
		return nil
	}
	return openaiUsageIn(keep.newUsageBlock(), u)
}

// openaiUsageIn is openaiUsage with the usage and its counts in blk.
func openaiUsageIn(blk *usageBlock, u *openaiUsageBody) *oisp.Usage {
	out := &blk.usage
	out.PromptTokens = blk.of(u.PromptTokens)
	out.CompletionTokens = blk.of(u.CompletionTokens)
	out.TotalTokens = blk.of(u.TotalTokens)
	if out.PromptTokens == nil {
		out.PromptTokens = blk.of(u.InputTokens)
	}
	if out.CompletionTokens == nil {
		out.CompletionTokens = blk.of(u.OutputTokens)
	}
	switch {
	case u.PromptTokensDetails != nil && u.PromptTokensDetails.CachedTokens.OK:
		out.CachedTokens = blk.of(u.PromptTokensDetails.CachedTokens)
	case u.InputTokensDetails != nil && u.InputTokensDetails.CachedTokens.OK:
		out.CachedTokens = blk.of(u.InputTokensDetails.CachedTokens)
	case u.PromptCacheHitTokens.OK:
		out.CachedTokens = blk.of(u.PromptCacheHitTokens)
	}
	if u.PromptTokensDetails != nil && u.PromptTokensDetails.CacheWriteTokens.OK && u.PromptTokensDetails.CacheWriteTokens.V > 0 {
		out.CacheCreationTokens = blk.of(u.PromptTokensDetails.CacheWriteTokens)
	}
	switch {
	case u.CompletionTokensDetails != nil && u.CompletionTokensDetails.ReasoningTokens.OK:
		out.ReasoningTokens = blk.of(u.CompletionTokensDetails.ReasoningTokens)
	case u.OutputTokensDetails != nil && u.OutputTokensDetails.ReasoningTokens.OK:
		out.ReasoningTokens = blk.of(u.OutputTokensDetails.ReasoningTokens)
	}
	if out.PromptTokens == nil && out.CompletionTokens == nil && out.TotalTokens == nil {
		return nil
	}
	completeTotals(out)
	return out
}

// ---------------------------------------------------------------- stream

// openaiChatStream merges chat.completion.chunk (or text_completion)
// events; a whole response is merged the same way as a single chunk.
type openaiChatStream struct {
	id, model string
	choices   []openaiChoiceAcc
	usage     *openaiUsageBody
	err       *oisp.Error
	events    int
	badEvents int
	done      bool
	// endsAtUsage is set for servers that send no [DONE] (Writer): the
	// stream ends with the usage chunk (no choices) once every choice
	// has finished.
	endsAtUsage  bool
	contentClock // when the first content arrived
	// chunk is the decode target of every event, reset before each: its
	// choices array is reused instead of allocated (and grown) per event.
	chunk openaiChatResponseBody
	// strs holds the id and model every event repeats (see memo.Strings).
	strs memo.Strings
}

type openaiChoiceAcc struct {
	index     int
	content   textBuf
	reasoning textBuf
	finish    string
	calls     []openaiCallAcc
}

type openaiCallAcc struct {
	index    int
	id, typ  string
	name     string
	args     textBuf
	hasIndex bool
}

func newOpenAIChatStream() *openaiChatStream { return &openaiChatStream{} }

// add consumes one SSE data payload.
func (s *openaiChatStream) add(data []byte, at time.Time) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return
	}
	if bytes.Equal(data, []byte("[DONE]")) {
		s.done = true
		return
	}
	c := s.chunk.reset()
	if _, err := decodeLooseMemo(data, c, &s.strs); err != nil {
		s.badEvents++
		return
	}
	s.events++
	if c.ID != "" && s.id == "" {
		s.id = string(c.ID)
	}
	if c.Model != "" {
		s.model = string(c.Model)
	}
	if e := openaiErrorOf(c); e != nil {
		s.err = e
	}
	if c.Usage != nil {
		s.usage = c.Usage
	} else if c.XGroq != nil && c.XGroq.Usage != nil {
		s.usage = c.XGroq.Usage
	}
	for i := range c.Choices {
		s.choice(&c.Choices[i], at)
	}
	if s.endsAtUsage && len(c.Choices) == 0 && c.Usage != nil && s.allFinished() {
		s.done = true
	}
}

// allFinished reports whether choices were seen and every one has its
// finish reason.
func (s *openaiChatStream) allFinished() bool {
	for i := range s.choices {
		if s.choices[i].finish == "" {
			return false
		}
	}
	return len(s.choices) > 0
}

// choice merges one choice (a delta, or a whole message).
func (s *openaiChatStream) choice(c *openaiChoice, at time.Time) {
	acc := s.choiceAt(c.Index.V)
	if acc == nil {
		return
	}
	if c.FinishReason != "" {
		acc.finish = string(c.FinishReason)
	}
	if c.Text.V != "" {
		acc.content.WriteString(string(c.Text.V))
		s.content(at)
	}
	d := c.Delta
	if d == nil {
		return
	}
	if text, ok := plainContent(d); ok {
		// The usual delta: appended without a string of its own.
		if len(text) > 0 {
			acc.content.Write(text)
			s.content(at)
		}
	} else if text, _ := flattenOpenAIContent(d.Content); text != "" {
		acc.content.WriteString(text)
		s.content(at)
	}
	if d.Refusal != "" {
		acc.content.WriteString(string(d.Refusal))
		s.content(at)
	}
	if r := d.ReasoningContent; r != "" {
		acc.reasoning.WriteString(string(r))
		s.content(at)
	} else if r := d.Reasoning; r != "" {
		acc.reasoning.WriteString(string(r))
		s.content(at)
	}
	for i := range d.ToolCalls {
		tc := &d.ToolCalls[i]
		call := acc.call(tc)
		if call == nil {
			continue
		}
		if tc.ID != "" {
			call.id = string(tc.ID)
		}
		if tc.Type != "" {
			call.typ = string(tc.Type)
		}
		if f := tc.Function; f != nil {
			if f.Name != "" {
				call.name += string(f.Name)
				s.content(at)
			}
			if a := argumentsText(f.Arguments); a != "" {
				call.args.WriteString(a)
				s.content(at)
			}
		}
	}
	if fc := d.FunctionCall; fc != nil {
		call := acc.call(&openaiToolCallDelta{Index: jInt{V: 0, OK: true}})
		if call != nil {
			call.typ = "function"
			if fc.Name != "" {
				call.name += string(fc.Name)
			}
			call.args.WriteString(argumentsText(fc.Arguments))
			s.content(at)
		}
	}
}

// plainContent returns the contents of a delta's content when it is a
// string of printable ASCII without escapes.
func plainContent(d *openaiChoiceMessage) ([]byte, bool) {
	if d.contentPlain {
		return d.Content[1 : len(d.Content)-1], true
	}
	return plainStringBytes(d.Content)
}

// argumentsText reads tool-call arguments: a JSON string (the usual case) or
// an object some compatible servers send instead.
func argumentsText(raw json.RawMessage) string {
	if s, ok := rawString(raw); ok {
		return s
	}
	return compactJSON(raw)
}

// choiceAt returns the accumulator of a choice index, creating it.
func (s *openaiChatStream) choiceAt(idx int) *openaiChoiceAcc {
	for i := range s.choices {
		if s.choices[i].index == idx {
			return &s.choices[i]
		}
	}
	if len(s.choices) >= maxStreamBlocks {
		return nil
	}
	s.choices = append(s.choices, openaiChoiceAcc{index: idx})
	return &s.choices[len(s.choices)-1]
}

// call returns the accumulator a tool-call delta belongs to: by index when
// the delta has one, else a new call when it brings a new id, else the
// last call.
func (a *openaiChoiceAcc) call(tc *openaiToolCallDelta) *openaiCallAcc {
	if tc.Index.OK {
		for i := range a.calls {
			if a.calls[i].hasIndex && a.calls[i].index == tc.Index.V {
				return &a.calls[i]
			}
		}
	} else if tc.ID == "" && len(a.calls) > 0 {
		return &a.calls[len(a.calls)-1]
	} else {
		for i := range a.calls {
			if a.calls[i].id == string(tc.ID) {
				return &a.calls[i]
			}
		}
	}
	if len(a.calls) >= maxStreamBlocks {
		return nil
	}
	a.calls = append(a.calls, openaiCallAcc{index: tc.Index.V, hasIndex: tc.Index.OK})
	return &a.calls[len(a.calls)-1]
}

// fillChoices writes choices, tool calls, finish reason and thinking. The
// choices' messages are made in rooms (one allocation for them all when
// rooms has too few).
func (s *openaiChatStream) fillChoices(resp *oisp.AIResponse, rooms []messageRoom) {
	if len(rooms) < len(s.choices) {
		rooms = make([]messageRoom, len(s.choices))
	}
	var thinking []string
	for i := range s.choices {
		c := &s.choices[i]
		fr := oisp.FinishReason(c.finish)
		resp.Choices = append(resp.Choices, oisp.Choice{
			Index:           c.index,
			Message:         rooms[i].assistant(c.content.String()),
			FinishReason:    fr,
			RawFinishReason: rawIfDifferent(c.finish, fr),
		})
		if resp.FinishReason == "" {
			resp.FinishReason = fr
		}
		for j := range c.calls {
			tc := &c.calls[j]
			typ := tc.typ
			if typ == "" {
				typ = "function"
			}
			resp.ToolCalls = append(resp.ToolCalls, toolCall(tc.id, tc.name, typ, tc.args.String()))
		}
		if r := c.reasoning.String(); r != "" {
			thinking = append(thinking, r)
		}
	}
	resp.ToolCallsCount = len(resp.ToolCalls)
	setThinking(resp, strings.Join(thinking, "\n"))
}

// finish writes the merged stream into resp.
func (s *openaiChatStream) finish(res *Result, resp *oisp.AIResponse) {
	resp.StreamEvents = s.events
	noteBadEvents(res, s.badEvents)
	nameAnswer(resp, s.id, s.model)
	s.fillChoices(resp, nil)
	if s.usage != nil {
		resp.Usage = openaiUsage(res, s.usage)
	}
	endStream(res, resp, s.err, s.events, s.done)
}

// decodeOpenAIChatSSE decodes an SSE chat or legacy completions body.
func decodeOpenAIChatSSE(x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse) {
	decodeSSEStream(newOpenAIChatStream(), x, res, resp)
}

// addSSE consumes one SSE event: chunks carry their kind in their JSON,
// the event name is not read.
func (s *openaiChatStream) addSSE(ev *stream.SSEEvent) { s.add(ev.Data, ev.At) }
