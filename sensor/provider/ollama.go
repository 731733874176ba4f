package provider

// Ollama's native API (localhost:11434, ollama.com, configured hosts; plain
// HTTP is common):
//
//	POST /api/chat        {model, messages, tools, stream, options}
//	POST /api/generate    {model, prompt, system, stream, options}
//	POST /api/embed       {model, input} → {embeddings, prompt_eval_count}
//	POST /api/embeddings  {model, prompt} → {embedding} (legacy)
//
// Chat and generate stream NDJSON unless the request says "stream": false
// — streaming is the default when the field is absent. The final line
// (done: true) carries done_reason, prompt_eval_count (input tokens) and
// eval_count (output tokens). Errors are {"error": "…"}, as the whole body
// or as a line of the stream. The OpenAI-compatible /v1 routes are decoded
// by the OpenAI decoders (apis_core.go) with provider "ollama".

import (
	"bytes"
	json "github.com/goccy/go-json"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// API names of the Ollama decoders.
const (
	apiOllamaChat     = "ollama.chat"
	apiOllamaGenerate = "ollama.generate"
	apiOllamaEmbed    = "ollama.embed"
)

// noteUnknownHostOllama: an unknown host recognised by Ollama's path and
// body shape.
const noteUnknownHostOllama = "unknown_host_ollama_shape"

type ollamaAPI struct {
	name  string
	paths []string
}

func newOllamaAPIs() []API {
	return []API{
		ollamaAPI{name: apiOllamaChat, paths: []string{"/api/chat"}},
		ollamaAPI{name: apiOllamaGenerate, paths: []string{"/api/generate"}},
		ollamaAPI{name: apiOllamaEmbed, paths: []string{"/api/embed", "/api/embeddings"}},
	}
}

func (a ollamaAPI) Name() string { return a.name }

func (a ollamaAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) {
		return false
	}
	p := trimPath(x)
	ok := false
	for _, want := range a.paths {
		if p == want {
			ok = true
		}
	}
	if !ok {
		return false
	}
	if t.ProviderID == "ollama" {
		return true
	}
	// An Ollama server on another host or port: accept it by body shape.
	if t.Known {
		return false
	}
	body := x.Request.Body.Data
	switch a.name {
	case apiOllamaChat:
		return bodyHas(body, "model", '"') && bodyHas(body, "messages", '[')
	case apiOllamaGenerate:
		return bodyHas(body, "model", '"') && bodyHas(body, "prompt", '"')
	}
	return bodyHas(body, "model", '"') && (bodyHas(body, "input", 0) || bodyHas(body, "prompt", '"'))
}

type ollamaMessage struct {
	Role      jStr              `json:"role"`
	Content   jStr              `json:"content"`
	Thinking  jStr              `json:"thinking"`
	Images    []json.RawMessage `json:"images"`
	ToolCalls []struct {
		ID       jStr `json:"id"`
		Function struct {
			Name      jStr            `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
	ToolName   jStr `json:"tool_name"`
	ToolCallID jStr `json:"tool_call_id"`
}

type ollamaRequestBody struct {
	Model    jStr              `json:"model"`
	Messages []ollamaMessage   `json:"messages"`
	Prompt   *jStr             `json:"prompt"`
	System   jStr              `json:"system"`
	Images   []json.RawMessage `json:"images"`
	Input    json.RawMessage   `json:"input"`
	Stream   jBool             `json:"stream"`
	Tools    []struct {
		Type     jStr `json:"type"`
		Function struct {
			Name        jStr `json:"name"`
			Description jStr `json:"description"`
		} `json:"function"`
	} `json:"tools"`
	Options *struct {
		Temperature      jFloat          `json:"temperature"`
		TopP             jFloat          `json:"top_p"`
		NumPredict       jInt            `json:"num_predict"`
		Stop             json.RawMessage `json:"stop"`
		FrequencyPenalty jFloat          `json:"frequency_penalty"`
		PresencePenalty  jFloat          `json:"presence_penalty"`
	} `json:"options"`
}

// decodeOllamaRequest fills the request. Streaming defaults to true when
// the body has no "stream" field (chat and generate only).
func decodeOllamaRequest(api string, body []byte, res *Result) {
	req := res.Request
	var b ollamaRequestBody
	if !decodeRequestBody(body, &b, res) {
		req.Streaming = oisp.Ptr(api != apiOllamaEmbed)
		finishRequest(req)
		return
	}
	if b.Model != "" {
		req.Model = &oisp.Model{ID: string(b.Model)}
	}
	switch {
	case api == apiOllamaEmbed:
		req.Streaming = oisp.Ptr(false)
	case b.Stream.OK:
		req.Streaming = oisp.Ptr(b.Stream.V)
	default:
		req.Streaming = oisp.Ptr(true)
	}
	if b.System != "" {
		setSystemPrompt(req, string(b.System))
		req.Messages = append(req.Messages, newMessage("system", string(b.System), 0))
	}
	var system []string
	for _, m := range b.Messages {
		msg := newMessage(string(m.Role), string(m.Content), len(m.Images))
		switch msg.Role {
		case "system":
			system = append(system, msg.Content)
		case "tool":
			msg.Name, msg.ToolCallID = string(m.ToolName), string(m.ToolCallID)
			res.ToolResults = append(res.ToolResults, ToolResult{CallID: msg.ToolCallID, Name: msg.Name, Content: msg.Content})
		}
		req.Messages = append(req.Messages, msg)
	}
	if len(system) > 0 {
		setSystemPrompt(req, strings.Join(system, "\n"))
	}
	switch {
	case api == apiOllamaEmbed:
		switch rawKind(b.Input) {
		case '[':
			req.InputCount = len(rawArray(b.Input))
		case '"':
			req.InputCount = 1
		}
		if req.InputCount == 0 && b.Prompt != nil {
			req.InputCount = 1
		}
	case b.Prompt != nil:
		req.Messages = append(req.Messages, newMessage("user", string(*b.Prompt), len(b.Images)))
		req.InputCount = 1
	}
	for _, t := range b.Tools {
		req.Tools = append(req.Tools, oisp.ToolDefinition{Name: string(t.Function.Name), Description: string(t.Function.Description), Type: "function"})
	}
	if o := b.Options; o != nil {
		req.Parameters = &oisp.Parameters{
			Temperature:      o.Temperature.Ptr(),
			TopP:             o.TopP.Ptr(),
			MaxTokens:        o.NumPredict.Ptr(),
			Stop:             stringList(o.Stop),
			FrequencyPenalty: o.FrequencyPenalty.Ptr(),
			PresencePenalty:  o.PresencePenalty.Ptr(),
		}
	}
	finishRequest(req)
}

// ollamaLine is one NDJSON line of a chat or generate stream, or a whole
// non-streamed body.
type ollamaLine struct {
	Model           jStr            `json:"model"`
	Message         *ollamaMessage  `json:"message"`
	Response        *jStr           `json:"response"`
	Thinking        jStr            `json:"thinking"`
	Done            jBool           `json:"done"`
	DoneReason      jStr            `json:"done_reason"`
	PromptEvalCount jInt            `json:"prompt_eval_count"`
	EvalCount       jInt            `json:"eval_count"`
	Error           json.RawMessage `json:"error"`
	Embeddings      json.RawMessage `json:"embeddings"`
	Embedding       json.RawMessage `json:"embedding"`
}

// ollamaAcc reassembles a chat or generate answer.
type ollamaAcc struct {
	model          string
	text, thinking strings.Builder
	calls          []oisp.ToolCall
	done           bool
	doneReason     string
	in, out        jInt
	err            *oisp.Error
	lines, bad     int
	contentClock   // when the first content arrived
	// strs holds the model the lines repeat (see memo.Strings).
	strs memo.Strings
}

func (a *ollamaAcc) add(data []byte, at time.Time) {
	var l ollamaLine
	if _, err := decodeLooseMemo(data, &l, &a.strs); err != nil {
		a.bad++
		return
	}
	a.lines++
	if e := ollamaError(l.Error); e != nil && a.err == nil {
		a.err = e
	}
	if l.Model != "" {
		a.model = string(l.Model)
	}
	if m := l.Message; m != nil {
		a.text.WriteString(string(m.Content))
		a.thinking.WriteString(string(m.Thinking))
		for _, tc := range m.ToolCalls {
			if len(a.calls) < maxGeminiCalls {
				a.calls = append(a.calls, toolCall(string(tc.ID), string(tc.Function.Name), "function", compactJSON(tc.Function.Arguments)))
			}
		}
		if m.Content != "" || len(m.ToolCalls) > 0 {
			a.content(at)
		}
	}
	if l.Response != nil {
		a.text.WriteString(string(*l.Response))
		if *l.Response != "" {
			a.content(at)
		}
	}
	a.thinking.WriteString(string(l.Thinking))
	if l.Done.V {
		a.done = true
		a.doneReason = string(l.DoneReason)
		if l.PromptEvalCount.OK {
			a.in = l.PromptEvalCount
		}
		if l.EvalCount.OK {
			a.out = l.EvalCount
		}
	}
}

// ollamaError reads {"error": "…"} (a string, or an object with message).
func ollamaError(raw json.RawMessage) *oisp.Error {
	switch rawKind(raw) {
	case 0, 'n':
		return nil
	case '"':
		s, _ := rawString(raw)
		return &oisp.Error{Type: "error", Message: s}
	}
	var o struct {
		Message jStr `json:"message"`
		Type    jStr `json:"type"`
	}
	decodeLoose(raw, &o) //nolint:errcheck // any error member is an error
	e := &oisp.Error{Type: string(o.Type), Message: string(o.Message)}
	if e.Type == "" {
		e.Type = "error"
	}
	return e
}

func (a *ollamaAcc) fill(res *Result, resp *oisp.AIResponse) {
	noteBadEvents(res, a.bad)
	if a.model != "" {
		resp.Model = &oisp.Model{ID: a.model}
	}
	if a.in.OK || a.out.OK {
		resp.Usage = &oisp.Usage{PromptTokens: a.in.Ptr(), CompletionTokens: a.out.Ptr()}
		completeTotals(resp.Usage)
	}
	if a.err != nil {
		setFailure(resp, a.err, resp.StatusCode < 400)
		return
	}
	if a.lines == 0 {
		return
	}
	fr := oisp.FinishReason(a.doneReason)
	if len(a.calls) > 0 && (fr == oisp.FinishStop || fr == "") {
		fr = oisp.FinishToolCalls
	}
	if a.doneReason == "load" || a.doneReason == "unload" {
		fr = oisp.FinishOther
	}
	resp.Choices = oneChoice(a.text.String(), fr, rawIfDifferent(a.doneReason, fr))
	resp.FinishReason = fr
	setToolCalls(resp, a.calls)
	setThinking(resp, a.thinking.String())
	if !a.done {
		res.note(noteStreamUnterminated)
	}
	res.StreamEnded = a.done
}

func (a ollamaAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	reqType := requestTypeOf(a.name, apiOllamaGenerate, apiOllamaEmbed)
	res := newResult(a.name, t, x, reqType)
	if !t.Known {
		res.Notes = append(res.Notes, noteUnknownHostOllama)
		res.Request.Provider = oisp.NewProvider("ollama", endpointURL(x))
		res.Request.Provider.Host = t.Host
	}
	req := res.Request
	decodeOllamaRequest(a.name, x.Request.Body.Data, res)
	if x.Response == nil {
		res.note(noteNoResponse)
		finishResult(env, "ollama", res)
		return res, nil
	}
	noteResponseBody(res, x)
	body := &x.Response.Body
	if reqType == oisp.RequestEmbedding {
		res.Embedding = decodeOllamaEmbed(x, res)
		finishResult(env, "ollama", res)
		return res, nil
	}
	resp := newResponse(res, x)
	res.Response = resp
	var acc ollamaAcc
	for _, ln := range ndjsonLines(body, envStats(env)) {
		acc.add(ln.Data, ln.At)
	}
	acc.fill(res, resp)
	summarizeStream(req, resp, x, acc.lines, acc.firstContent)
	explainFailedStatus(resp, body.Data)
	if resp.StatusCode >= 400 {
		resp.Success = oisp.Ptr(false)
	}
	finishResult(env, "ollama", res)
	return res, nil
}

// decodeOllamaEmbed reads an /api/embed or /api/embeddings response.
func decodeOllamaEmbed(x *httpmsg.Exchange, res *Result) *oisp.AIEmbedding {
	req := res.Request
	emb := &oisp.AIEmbedding{
		Provider: req.Provider, Model: req.Model, InputCount: req.InputCount,
		LatencyMS: latencyMS(x), StatusCode: x.Response.Status,
		Success: oisp.Ptr(x.Response.Status >= 200 && x.Response.Status < 300),
	}
	var l ollamaLine
	if _, err := decodeLoose(x.Response.Body.Data, &l); err != nil {
		if len(x.Response.Body.Data) > 0 {
			res.note(noteResponseNotJSON)
		}
	}
	if l.Model != "" {
		emb.Model = &oisp.Model{ID: string(l.Model)}
	}
	var acc invokeAcc
	if len(l.Embeddings) > 0 {
		acc.embeddings(l.Embeddings)
	} else if len(l.Embedding) > 0 {
		acc.vectors, acc.dimensions = 1, max(countArray(l.Embedding), 0)
	}
	emb.EmbeddingCount, emb.Dimensions = acc.vectors, acc.dimensions
	if l.PromptEvalCount.OK {
		emb.Usage = &oisp.Usage{PromptTokens: l.PromptEvalCount.Ptr(), TotalTokens: l.PromptEvalCount.Ptr()}
		emb.TotalTokens = l.PromptEvalCount.Ptr()
	}
	if e := ollamaError(l.Error); e != nil {
		emb.Success, emb.Error = oisp.Ptr(false), e
	} else if emb.StatusCode >= 400 {
		emb.Success = oisp.Ptr(false)
		emb.Error = httpFailure(emb.StatusCode, x.Response.Body.Data)
	}
	return emb
}

// ndjsonLines splits a newline-delimited JSON body into its lines with
// sensor/stream's reader, each with the time its last byte arrived. A body
// that is one JSON value spread over several lines (pretty-printed) stays
// one element.
func ndjsonLines(b *httpmsg.Body, rec stats.Recorder) []jsonElement {
	trimmed := bytes.TrimSpace(b.Data)
	if len(trimmed) > 0 && bytes.IndexByte(trimmed, '\n') >= 0 && json.Valid(trimmed) {
		return []jsonElement{{Data: trimmed, At: b.TimeAt(len(b.Data) - 1)}}
	}
	items := stream.ParseNDJSONBody(b, stream.WithRecorder(rec))
	out := make([]jsonElement, 0, len(items))
	for _, it := range items {
		if len(bytes.TrimSpace(it.Data)) > 0 {
			out = append(out, jsonElement{Data: it.Data, At: it.At})
		}
	}
	return out
}

// isNDJSON reports whether the response declares a newline-delimited JSON
// body (application/x-ndjson, application/stream+json, jsonl).
func isNDJSON(x *httpmsg.Exchange) bool {
	if x.Response == nil {
		return false
	}
	ct := strings.ToLower(x.Response.Header.Get("Content-Type"))
	return strings.Contains(ct, "ndjson") || strings.Contains(ct, "stream+json") || strings.Contains(ct, "jsonl")
}
