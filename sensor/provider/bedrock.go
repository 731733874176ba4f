package provider

// Amazon Bedrock runtime (bedrock-runtime.{region}.amazonaws.com):
//
//	POST /model/{modelId}/converse                      Converse
//	POST /model/{modelId}/converse-stream               ConverseStream (eventstream)
//	POST /model/{modelId}/invoke                        InvokeModel (model-native body)
//	POST /model/{modelId}/invoke-with-response-stream   InvokeModelWithResponseStream
//	POST /model/{modelId}/count-tokens                  CountTokens (bedrock_count_tokens.go)
//
// The model id comes from the URL path, URL-decoded (it may be an ARN with
// ':' and '/'); bodies never carry it. Streams use the AWS event stream
// framing (sensor/stream/eventstream); InvokeModel streams wrap each model
// event as base64 in a "chunk" event. This file holds the path parsing, the
// API and Converse; bedrock_invoke.go the model families of InvokeModel.

import (
	"bytes"
	json "github.com/goccy/go-json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream/eventstream"
)

// API names of the Bedrock decoders.
const (
	apiBedrockConverse = "bedrock.converse"
	apiBedrockInvoke   = "bedrock.invoke_model"
)

// Notes of the Bedrock decoders.
const (
	noteEventStreamError = "eventstream_framing_error"
	noteBedrockChunk     = "eventstream_bad_chunk"
)

// bedrockPath is a parsed Bedrock runtime path.
type bedrockPath struct {
	Model  string // URL-decoded model id, inference profile id or ARN
	Op     string // converse, converse-stream, invoke, invoke-with-response-stream, count-tokens
	Stream bool
}

// parseBedrockPath splits /model/{modelId}/{op}.
func parseBedrockPath(path string) (bedrockPath, bool) {
	const prefix = "/model/"
	if !strings.HasPrefix(path, prefix) {
		return bedrockPath{}, false
	}
	rest := path[len(prefix):]
	slash := strings.LastIndexByte(rest, '/')
	if slash <= 0 {
		return bedrockPath{}, false
	}
	p := bedrockPath{Op: rest[slash+1:]}
	switch p.Op {
	case "converse", "invoke", bedrockCountTokensOp:
	case "converse-stream", "invoke-with-response-stream":
		p.Stream = true
	default:
		return bedrockPath{}, false
	}
	p.Model = rest[:slash]
	if dec, err := url.PathUnescape(p.Model); err == nil {
		p.Model = dec
	}
	return p, p.Model != ""
}

// bedrockRegion returns the region of a bedrock-runtime host
// ("bedrock-runtime.us-east-1.amazonaws.com" → "us-east-1").
func bedrockRegion(host string) string {
	parts := strings.Split(host, ".")
	if len(parts) >= 4 && strings.HasPrefix(parts[0], "bedrock") {
		return parts[1]
	}
	return ""
}

// setBedrockRegion names the region of the request's provider after the
// host's.
func setBedrockRegion(res *Result, t Target) {
	if r := bedrockRegion(t.Host); r != "" {
		res.Request.Provider.Region = r
	}
}

// bedrockAPI decodes Converse (converse=true) or InvokeModel.
type bedrockAPI struct {
	converse bool
}

func newBedrockAPIs() []API {
	return []API{bedrockAPI{converse: true}, bedrockAPI{}, bedrockCountTokensAPI{}}
}

func (a bedrockAPI) Name() string {
	if a.converse {
		return apiBedrockConverse
	}
	return apiBedrockInvoke
}

func (a bedrockAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if t.ProviderID != "aws_bedrock" || !isPost(x) {
		return false
	}
	p, ok := parseBedrockPath(x.Request.Path())
	return ok && p.Op != bedrockCountTokensOp && strings.HasPrefix(p.Op, "converse") == a.converse
}

func (a bedrockAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	p, _ := parseBedrockPath(x.Request.Path())
	rec := envStats(env)
	var res *Result
	if a.converse {
		res = decodeBedrockConverse(t, p, x, rec)
	} else {
		res = decodeBedrockInvoke(t, p, x, rec)
	}
	setBedrockRegion(res, t)
	if x.Response == nil {
		res.note(noteNoResponse)
	} else {
		noteResponseBody(res, x)
	}
	finishResult(env, "aws_bedrock", res)
	return res, nil
}

// ---------------------------------------------------------------- errors

// bedrockHTTPError fills the error of a failed (non-2xx) Bedrock reply:
// {"message": …} or {"Message": …} with the type from x-amzn-ErrorType
// ("ValidationException:http://internal.amazon.com/…"). A body that is
// not JSON (a proxy's page) is noted, as every API notes it.
func bedrockHTTPError(res *Result, resp *oisp.AIResponse, h httpmsg.Header, body []byte) {
	var b struct {
		Message  jStr `json:"message"`
		Message2 jStr `json:"Message"`
		Type     jStr `json:"__type"`
	}
	decodeResponseBody(body, &b, res) // an unreadable body still fails by status
	e := &oisp.Error{Message: string(b.Message), Code: itoa(resp.StatusCode)}
	if e.Message == "" {
		e.Message = string(b.Message2)
	}
	if e.Message == "" {
		e.Message = httpFailureMessage(resp.StatusCode, body)
	}
	typ := h.Get("X-Amzn-Errortype")
	if typ == "" {
		typ = string(b.Type)
	}
	if i := strings.IndexAny(typ, ":#"); i > 0 {
		typ = typ[:i]
	}
	e.Type = typ
	if e.Type == "" {
		e.Type = "http_error"
	}
	setFailure(resp, e, false)
}

// bedrockStreamException turns an exception or error frame into an error.
func bedrockStreamException(m *eventstream.Message) *oisp.Error {
	e := &oisp.Error{Type: m.ExceptionType, Code: m.ErrorCode, Message: m.ErrorMessage}
	if e.Type == "" {
		e.Type = m.ErrorCode
	}
	var b struct {
		Message jStr `json:"message"`
	}
	if e.Message == "" && decodeLooseOK(m.Payload, &b) {
		e.Message = string(b.Message)
	}
	if e.Type == "" {
		e.Type = "stream_error"
	}
	return e
}

// decodeLooseOK decodes data into v and reports whether it was JSON.
func decodeLooseOK(data []byte, v any) bool {
	_, err := decodeLoose(data, v)
	return err == nil
}

// bedrockFrames decodes an event stream body; framing errors are counted
// by the decoder and noted on the result.
func bedrockFrames(body []byte, res *Result, rec stats.Recorder) []eventstream.Message {
	ms, err := eventstream.DecodeAll(body, rec, eventstream.Options{})
	if err != nil {
		res.note(noteEventStreamError)
	}
	return ms
}

// bedrockEvents is bedrockFrames less the exception frames, of which the
// first is the stream's error (Converse and InvokeModel streams alike; the
// later ones add nothing the answer reports).
func bedrockEvents(body []byte, res *Result, rec stats.Recorder) ([]eventstream.Message, *oisp.Error) {
	ms := bedrockFrames(body, res, rec)
	var first *oisp.Error
	events := ms[:0] // in place: the frames are this call's
	for i := range ms {
		if !ms[i].IsError() {
			events = append(events, ms[i])
		} else if first == nil {
			first = bedrockStreamException(&ms[i])
		}
	}
	return events, first
}

// isEventStream reports whether the response body is an event stream (a
// stream request answered with an error is plain JSON).
func isEventStream(x *httpmsg.Exchange) bool {
	if x.Response == nil {
		return false
	}
	if strings.Contains(strings.ToLower(x.Response.Header.Get("Content-Type")), "vnd.amazon.eventstream") {
		return true
	}
	b := x.Response.Body.Data
	return len(b) >= 16 && b[0] == 0 && rawKind(b) != '{'
}

// ---------------------------------------------------------------- Converse

type converseBlock struct {
	Text  *jStr `json:"text"`
	Image *struct {
		Format jStr `json:"format"`
	} `json:"image"`
	Document *struct {
		Format jStr `json:"format"`
		Name   jStr `json:"name"`
	} `json:"document"`
	ToolUse *struct {
		ToolUseID jStr            `json:"toolUseId"`
		Name      jStr            `json:"name"`
		Input     json.RawMessage `json:"input"`
	} `json:"toolUse"`
	ToolResult *struct {
		ToolUseID jStr            `json:"toolUseId"`
		Content   []converseBlock `json:"content"`
		Status    jStr            `json:"status"`
	} `json:"toolResult"`
	JSON             json.RawMessage `json:"json"`
	ReasoningContent *struct {
		ReasoningText *struct {
			Text jStr `json:"text"`
		} `json:"reasoningText"`
		RedactedContent json.RawMessage `json:"redactedContent"`
	} `json:"reasoningContent"`
	GuardContent *struct {
		Text *struct {
			Text jStr `json:"text"`
		} `json:"text"`
	} `json:"guardContent"`
}

type converseMessage struct {
	Role    jStr            `json:"role"`
	Content []converseBlock `json:"content"`
}

type converseRequestBody struct {
	Messages        []converseMessage `json:"messages"`
	System          []converseBlock   `json:"system"`
	InferenceConfig *struct {
		MaxTokens     jInt            `json:"maxTokens"`
		Temperature   jFloat          `json:"temperature"`
		TopP          jFloat          `json:"topP"`
		StopSequences json.RawMessage `json:"stopSequences"`
	} `json:"inferenceConfig"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec *struct {
				Name        jStr `json:"name"`
				Description jStr `json:"description"`
			} `json:"toolSpec"`
			SystemTool *struct {
				Name jStr `json:"name"`
			} `json:"systemTool"`
		} `json:"tools"`
		ToolChoice map[string]json.RawMessage `json:"toolChoice"`
	} `json:"toolConfig"`
}

type converseUsageBody struct {
	InputTokens               jInt `json:"inputTokens"`
	OutputTokens              jInt `json:"outputTokens"`
	TotalTokens               jInt `json:"totalTokens"`
	CacheReadInputTokens      jInt `json:"cacheReadInputTokens"`
	CacheWriteInputTokens     jInt `json:"cacheWriteInputTokens"`
	CacheReadInputTokenCount  jInt `json:"cacheReadInputTokenCount"`
	CacheWriteInputTokenCount jInt `json:"cacheWriteInputTokenCount"`
}

type converseResponseBody struct {
	Output *struct {
		Message *converseMessage `json:"message"`
	} `json:"output"`
	StopReason jStr               `json:"stopReason"`
	Usage      *converseUsageBody `json:"usage"`
	Message    jStr               `json:"message"`
}

// converseFlatten renders content blocks as text, counts images and
// collects tool results; tool uses and reasoning in history are skipped.
func converseFlatten(blocks []converseBlock, results *[]ToolResult) (string, int) {
	var texts []string
	images := 0
	for i := range blocks {
		b := &blocks[i]
		switch {
		case b.Text != nil:
			texts = append(texts, string(*b.Text))
		case b.Image != nil:
			images++
		case b.GuardContent != nil && b.GuardContent.Text != nil:
			texts = append(texts, string(b.GuardContent.Text.Text))
		case len(b.JSON) > 0:
			texts = append(texts, compactJSON(b.JSON))
		case b.ToolResult != nil:
			text, n := converseFlatten(b.ToolResult.Content, nil)
			images += n
			texts = append(texts, text)
			if results != nil {
				*results = append(*results, ToolResult{CallID: string(b.ToolResult.ToolUseID), Content: text, IsError: b.ToolResult.Status == "error"})
			}
		}
	}
	return joinText(texts), images
}

// decodeConverseRequest fills res.Request from a Converse request body (the
// same shape serves Amazon Nova's InvokeModel body).
func decodeConverseRequest(body []byte, res *Result) {
	req := res.Request
	var b converseRequestBody
	if !decodeRequestBody(body, &b, res) {
		finishRequest(req)
		return
	}
	if len(b.System) > 0 {
		text, images := converseFlatten(b.System, nil)
		setSystemPrompt(req, text)
		req.Messages = append(req.Messages, newMessage("system", text, images))
	}
	for _, m := range b.Messages {
		var results []ToolResult
		text, images := converseFlatten(m.Content, &results)
		role := string(m.Role)
		msg := newMessage(role, text, images)
		if len(results) > 0 && len(results) == len(m.Content) {
			msg = newMessage("tool", text, images)
			msg.OriginalRole = role
			if len(results) == 1 {
				msg.ToolCallID = results[0].CallID
			}
		}
		res.ToolResults = append(res.ToolResults, results...)
		req.Messages = append(req.Messages, msg)
	}
	if tc := b.ToolConfig; tc != nil {
		for _, tl := range tc.Tools {
			switch {
			case tl.ToolSpec != nil:
				req.Tools = append(req.Tools, oisp.ToolDefinition{Name: string(tl.ToolSpec.Name), Description: string(tl.ToolSpec.Description), Type: "function"})
			case tl.SystemTool != nil:
				req.Tools = append(req.Tools, oisp.ToolDefinition{Name: string(tl.SystemTool.Name), Type: "other"})
			}
		}
		req.ToolChoice = converseToolChoice(tc.ToolChoice)
	}
	if ic := b.InferenceConfig; ic != nil {
		req.Parameters = &oisp.Parameters{
			MaxTokens:   ic.MaxTokens.Ptr(),
			Temperature: ic.Temperature.Ptr(),
			TopP:        ic.TopP.Ptr(),
			Stop:        stringList(ic.StopSequences),
		}
	}
	finishRequest(req)
}

// converseToolChoice renders {"auto":{}}, {"any":{}} or {"tool":{"name":…}}.
func converseToolChoice(tc map[string]json.RawMessage) string {
	switch {
	case tc == nil:
		return ""
	case tc["auto"] != nil:
		return "auto"
	case tc["any"] != nil:
		return "required"
	case tc["tool"] != nil:
		var t struct {
			Name jStr `json:"name"`
		}
		if decodeLooseOK(tc["tool"], &t) && t.Name != "" {
			return string(t.Name)
		}
		return "specific"
	}
	return ""
}

// converseUsage normalises Converse usage: inputTokens excludes cache reads
// and writes, so prompt_tokens adds them; totalTokens is Bedrock's.
func converseUsage(u *converseUsageBody) *oisp.Usage {
	if u == nil || !(u.InputTokens.OK || u.OutputTokens.OK || u.TotalTokens.OK) {
		return nil
	}
	read, write := u.CacheReadInputTokens, u.CacheWriteInputTokens
	if !read.OK {
		read = u.CacheReadInputTokenCount
	}
	if !write.OK {
		write = u.CacheWriteInputTokenCount
	}
	out := anthropicUsage(nil, u.InputTokens, u.OutputTokens, read, write)
	if out != nil && u.TotalTokens.OK {
		out.TotalTokens = u.TotalTokens.Ptr()
	}
	return out
}

// converseAcc reassembles a Converse answer, whole or streamed.
type converseAcc struct {
	text, thinking strings.Builder
	calls          []oisp.ToolCall
	args           streamedArgs // streamed tool input by block index
	stopReason     string
	usage          *converseUsageBody
	err            *oisp.Error
	events, bad    int
	ended          bool // the stream's metadata event, its last, arrived
	contentClock        // when the first content arrived
}

func (a *converseAcc) message(m *converseMessage) {
	for i := range m.Content {
		b := &m.Content[i]
		switch {
		case b.Text != nil:
			a.text.WriteString(string(*b.Text))
		case b.ToolUse != nil:
			if len(a.calls) < maxGeminiCalls {
				a.calls = append(a.calls, toolCall(string(b.ToolUse.ToolUseID), string(b.ToolUse.Name), "function", compactJSON(b.ToolUse.Input)))
			}
		case b.ReasoningContent != nil && b.ReasoningContent.ReasoningText != nil:
			a.thinking.WriteString(string(b.ReasoningContent.ReasoningText.Text))
		}
	}
}

// converseStreamEvent is the payload of a ConverseStream event (the
// :event-type header names it) or, for Nova InvokeModel streams, a chunk
// holding one of the members.
type converseStreamEvent struct {
	ContentBlockIndex jInt `json:"contentBlockIndex"`
	Start             *struct {
		ToolUse *struct {
			ToolUseID jStr `json:"toolUseId"`
			Name      jStr `json:"name"`
		} `json:"toolUse"`
	} `json:"start"`
	Delta *struct {
		Text    *jStr `json:"text"`
		ToolUse *struct {
			Input jStr `json:"input"`
		} `json:"toolUse"`
		ReasoningContent *struct {
			Text jStr `json:"text"`
		} `json:"reasoningContent"`
	} `json:"delta"`
	StopReason jStr               `json:"stopReason"`
	Usage      *converseUsageBody `json:"usage"`
}

// streamEvent merges one ConverseStream event.
func (a *converseAcc) streamEvent(eventType string, ev *converseStreamEvent, at time.Time) {
	a.events++
	idx := ev.ContentBlockIndex.V
	switch eventType {
	case "contentBlockStart":
		if ev.Start != nil && ev.Start.ToolUse != nil && len(a.calls) < maxGeminiCalls {
			a.args.start(idx, len(a.calls))
			a.calls = append(a.calls, toolCall(string(ev.Start.ToolUse.ToolUseID), string(ev.Start.ToolUse.Name), "function", ""))
			a.content(at)
		}
	case "contentBlockDelta":
		d := ev.Delta
		if d == nil {
			return
		}
		switch {
		case d.Text != nil:
			a.text.WriteString(string(*d.Text))
			if *d.Text != "" {
				a.content(at)
			}
		case d.ToolUse != nil:
			a.args.write(idx, string(d.ToolUse.Input))
		case d.ReasoningContent != nil:
			a.thinking.WriteString(string(d.ReasoningContent.Text))
		}
	case "messageStop":
		if ev.StopReason != "" {
			a.stopReason = string(ev.StopReason)
		}
	case "metadata":
		// The last event of a ConverseStream.
		a.ended = true
		if ev.Usage != nil {
			a.usage = ev.Usage
		}
	}
}

// fill writes the reassembled answer into resp.
func (a *converseAcc) fill(res *Result, resp *oisp.AIResponse) {
	noteBadEvents(res, a.bad)
	res.StreamEnded = res.StreamEnded || a.ended
	a.args.fill(a.calls)
	resp.Usage = converseUsage(a.usage)
	if a.err != nil {
		setFailure(resp, a.err, true)
		return
	}
	fr := oisp.FinishReason(a.stopReason)
	if a.stopReason == "model_context_window_exceeded" {
		fr = oisp.FinishLength
	}
	resp.Choices = oneChoice(a.text.String(), fr, rawIfDifferent(a.stopReason, fr))
	resp.FinishReason = fr
	setToolCalls(resp, a.calls)
	setThinking(resp, a.thinking.String())
}

func decodeBedrockConverse(t Target, p bedrockPath, x *httpmsg.Exchange, rec stats.Recorder) *Result {
	res := newResult(apiBedrockConverse, t, x, oisp.RequestChat)
	req := res.Request
	decodeConverseRequest(x.Request.Body.Data, res)
	req.Model = &oisp.Model{ID: p.Model}
	req.Streaming = oisp.Ptr(p.Stream)
	if x.Response == nil {
		return res
	}
	resp := newResponse(res, x)
	res.Response = resp
	body := &x.Response.Body
	var a converseAcc
	switch {
	case resp.StatusCode >= 300:
		bedrockHTTPError(res, resp, x.Response.Header, body.Data)
		return res
	case isEventStream(x):
		var events []eventstream.Message
		events, a.err = bedrockEvents(body.Data, res, rec)
		for _, m := range events {
			at := body.TimeAt(int(m.End) - 1)
			var ev converseStreamEvent
			if !decodeLooseOK(m.Payload, &ev) {
				a.bad++
				continue
			}
			a.streamEvent(m.EventType, &ev, at)
		}
		resp.StreamEvents = a.events
		setTimeToFirstToken(resp, x, a.firstContent)
	default:
		var b converseResponseBody
		mismatch, err := decodeLoose(body.Data, &b)
		if err != nil {
			if len(bytes.TrimSpace(body.Data)) > 0 {
				res.note(noteResponseNotJSON)
			}
			break
		}
		if mismatch {
			res.note(noteResponseTypeMismatch)
		}
		if b.Output != nil && b.Output.Message != nil {
			a.message(b.Output.Message)
		}
		a.stopReason = string(b.StopReason)
		a.usage = b.Usage
	}
	a.fill(res, resp)
	if p.Stream {
		resp.Streaming = oisp.Ptr(true)
	}
	return res
}

// bedrockHeaderUsage reads Bedrock's own token counts from the
// x-amzn-bedrock-input-token-count / -output-token-count headers.
func bedrockHeaderUsage(h httpmsg.Header) *oisp.Usage {
	in, errIn := strconv.Atoi(strings.TrimSpace(h.Get("X-Amzn-Bedrock-Input-Token-Count")))
	out, errOut := strconv.Atoi(strings.TrimSpace(h.Get("X-Amzn-Bedrock-Output-Token-Count")))
	if errIn != nil && errOut != nil {
		return nil
	}
	u := &oisp.Usage{}
	if errIn == nil {
		u.PromptTokens = oisp.Ptr(in)
	}
	if errOut == nil {
		u.CompletionTokens = oisp.Ptr(out)
	}
	completeTotals(u)
	return u
}
