package provider

// Bedrock InvokeModel and InvokeModelWithResponseStream: the bodies are the
// model vendor's own, so the family decides how to read them:
//
//	anthropic.*   Anthropic Messages (or legacy Text Completions) bodies and
//	              events — anthropic.go's decoders
//	amazon.nova*  Converse-shaped bodies; stream chunks hold one Converse
//	              event member each ({"contentBlockDelta": …})
//	amazon.titan* {inputText, textGenerationConfig} → {inputTextTokenCount,
//	              results[{tokenCount, outputText, completionReason}]};
//	              embeddings {embedding, inputTextTokenCount}
//	meta.llama*   {prompt, max_gen_len} → {generation, prompt_token_count,
//	              generation_token_count, stop_reason}
//	mistral.*     {prompt} → {outputs[{text, stop_reason}]}, or OpenAI chat
//	cohere.*      {prompt} → {generations[…]}, command-r {message,
//	              chat_history} → {text}, embed {texts} → {embeddings}
//	ai21.*        Jurassic {prompt} → {completions[{data{text,tokens}}]},
//	              Jamba: OpenAI chat
//	others        OpenAI chat shape ({messages} → {choices}) when it fits
//
// Bedrock's own counts (x-amzn-bedrock-*-token-count headers, the
// amazon-bedrock-invocationMetrics member of the last stream chunk) fill in
// when the model reports none.

import (
	"bytes"
	json "github.com/goccy/go-json"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream/eventstream"
)

// bedrockVendor returns the vendor segment of a model id, inference profile
// or ARN: "us.anthropic.claude-…" → "anthropic",
// "arn:aws:bedrock:…:inference-profile/eu.amazon.nova-lite-v1:0" → "amazon".
// ARNs of provisioned or imported models name no vendor ("").
func bedrockVendor(model string) string {
	if strings.HasPrefix(model, "arn:") {
		i := strings.LastIndexByte(model, '/')
		if i < 0 {
			return ""
		}
		model = model[i+1:]
	}
	parts := strings.Split(model, ".")
	if len(parts) < 2 {
		return ""
	}
	switch parts[0] {
	case "us", "eu", "apac", "global", "us-gov", "ca", "jp", "au":
		parts = parts[1:]
	}
	if len(parts) < 2 {
		return ""
	}
	return parts[0]
}

// bedrockIsEmbedding reports whether a model id names an embedding model.
func bedrockIsEmbedding(model string) bool {
	m := strings.ToLower(model)
	return strings.Contains(m, "embed")
}

// bedrockPromptRequest is the union of the prompt-style request bodies
// (Titan, Llama, Mistral, Cohere, AI21, DeepSeek) and the embedding ones.
type bedrockPromptRequest struct {
	Prompt      json.RawMessage `json:"prompt"`
	InputText   jStr            `json:"inputText"`
	Message     jStr            `json:"message"` // Cohere command-r
	ChatHistory []struct {
		Role    jStr `json:"role"`
		Message jStr `json:"message"`
	} `json:"chat_history"`
	Preamble           jStr              `json:"preamble"`
	Texts              []json.RawMessage `json:"texts"`
	Images             []json.RawMessage `json:"images"`
	Messages           json.RawMessage   `json:"messages"`
	Temperature        jFloat            `json:"temperature"`
	TopP               jFloat            `json:"top_p"`
	TopPCamel          jFloat            `json:"topP"`
	P                  jFloat            `json:"p"`
	MaxTokens          jInt              `json:"max_tokens"`
	MaxTokensCamel     jInt              `json:"maxTokens"`
	MaxGenLen          jInt              `json:"max_gen_len"`
	Stop               json.RawMessage   `json:"stop"`
	StopSequences      json.RawMessage   `json:"stop_sequences"`
	StopSequencesCamel json.RawMessage   `json:"stopSequences"`
	TextGenerationCfg  *struct {
		MaxTokenCount jInt            `json:"maxTokenCount"`
		Temperature   jFloat          `json:"temperature"`
		TopP          jFloat          `json:"topP"`
		StopSequences json.RawMessage `json:"stopSequences"`
	} `json:"textGenerationConfig"`
	SingleEmbeddingParams json.RawMessage `json:"singleEmbeddingParams"`
}

// decodeBedrockInvokeRequest fills the request from a model-native body.
func decodeBedrockInvokeRequest(vendor string, body []byte, res *Result) {
	req := res.Request
	var probe struct {
		AnthropicVersion jStr            `json:"anthropic_version"`
		Messages         json.RawMessage `json:"messages"`
		InferenceConfig  json.RawMessage `json:"inferenceConfig"`
		SchemaVersion    jStr            `json:"schemaVersion"`
		Prompt           json.RawMessage `json:"prompt"`
		MaxTokensToSmpl  json.RawMessage `json:"max_tokens_to_sample"`
	}
	if _, err := decodeLoose(body, &probe); err != nil {
		if len(bytes.TrimSpace(body)) > 0 {
			res.note(noteRequestNotJSON)
		}
		finishRequest(req)
		return
	}
	switch {
	case vendor == "anthropic" || probe.AnthropicVersion != "" || len(probe.MaxTokensToSmpl) > 0:
		decodeAnthropicRequest(body, res)
		return
	case len(probe.Messages) > 0 && (vendor == "amazon" || len(probe.InferenceConfig) > 0 || probe.SchemaVersion != ""):
		decodeConverseRequest(body, res)
		if req.Parameters == nil || req.Parameters.MaxTokens == nil {
			var nova struct {
				InferenceConfig *struct {
					MaxNewTokens jInt `json:"max_new_tokens"`
				} `json:"inferenceConfig"`
			}
			if decodeLooseOK(body, &nova) && nova.InferenceConfig != nil && nova.InferenceConfig.MaxNewTokens.OK {
				if req.Parameters == nil {
					req.Parameters = &oisp.Parameters{}
				}
				req.Parameters.MaxTokens = nova.InferenceConfig.MaxNewTokens.Ptr()
			}
		}
		return
	case len(probe.Messages) > 0 && rawKind(probe.Messages) == '[':
		decodeOpenAIChatRequest(body, res)
		req.Model = nil // the path names the model
		return
	}
	var b bedrockPromptRequest
	if mismatch, _ := decodeLoose(body, &b); mismatch {
		res.note(noteRequestTypeMismatch)
	}
	if b.Preamble != "" {
		setSystemPrompt(req, string(b.Preamble))
		req.Messages = append(req.Messages, newMessage("system", string(b.Preamble), 0))
	}
	for _, h := range b.ChatHistory {
		req.Messages = append(req.Messages, newMessage(cohereRole(string(h.Role)), string(h.Message), 0))
	}
	switch {
	case len(b.Texts) > 0 || len(b.Images) > 0:
		req.InputCount = len(b.Texts) + len(b.Images)
	case len(b.SingleEmbeddingParams) > 0:
		req.InputCount = 1
	case b.InputText != "":
		req.Messages = append(req.Messages, newMessage("user", string(b.InputText), 0))
		req.InputCount = 1
	case b.Message != "":
		req.Messages = append(req.Messages, newMessage("user", string(b.Message), 0))
	default:
		for _, p := range promptTexts(b.Prompt) {
			req.Messages = append(req.Messages, newMessage("user", p, 0))
			req.InputCount++
		}
		if rawKind(b.Prompt) == '{' { // Titan multimodal and other object prompts
			req.InputCount = 1
		}
	}
	p := &oisp.Parameters{Temperature: b.Temperature.Ptr()}
	for _, f := range []jFloat{b.TopP, b.TopPCamel, b.P} {
		if f.OK {
			p.TopP = f.Ptr()
			break
		}
	}
	for _, n := range []jInt{b.MaxTokens, b.MaxTokensCamel, b.MaxGenLen} {
		if n.OK {
			p.MaxTokens = n.Ptr()
			break
		}
	}
	for _, s := range []json.RawMessage{b.Stop, b.StopSequences, b.StopSequencesCamel} {
		if l := stringList(s); l != nil {
			p.Stop = l
			break
		}
	}
	if c := b.TextGenerationCfg; c != nil {
		if c.MaxTokenCount.OK {
			p.MaxTokens = c.MaxTokenCount.Ptr()
		}
		if c.Temperature.OK {
			p.Temperature = c.Temperature.Ptr()
		}
		if c.TopP.OK {
			p.TopP = c.TopP.Ptr()
		}
		if l := stringList(c.StopSequences); l != nil {
			p.Stop = l
		}
	}
	req.Parameters = p
	finishRequest(req)
}

// bedrockInvocationMetrics is Bedrock's own accounting in the last stream
// chunk.
type bedrockInvocationMetrics struct {
	InputTokenCount  jInt `json:"inputTokenCount"`
	OutputTokenCount jInt `json:"outputTokenCount"`
}

// bedrockModelBody is the union of the model-native response bodies and
// stream chunks that are not Anthropic's.
type bedrockModelBody struct {
	// Titan text (whole and streamed) and Titan embeddings
	InputTextTokenCount jInt `json:"inputTextTokenCount"`
	Results             []struct {
		TokenCount       jInt `json:"tokenCount"`
		OutputText       jStr `json:"outputText"`
		CompletionReason jStr `json:"completionReason"`
	} `json:"results"`
	OutputText                jStr            `json:"outputText"`
	TotalOutputTextTokenCount jInt            `json:"totalOutputTextTokenCount"`
	CompletionReason          jStr            `json:"completionReason"`
	Embedding                 json.RawMessage `json:"embedding"`
	// Nova (whole): Converse shape; Nova stream chunks: one member each
	Output *struct {
		Message *converseMessage `json:"message"`
	} `json:"output"`
	StopReasonCamel   jStr                 `json:"stopReason"`
	MessageStart      json.RawMessage      `json:"messageStart"`
	ContentBlockStart *converseStreamEvent `json:"contentBlockStart"`
	ContentBlockDelta *converseStreamEvent `json:"contentBlockDelta"`
	MessageStop       *converseStreamEvent `json:"messageStop"`
	Metadata          *converseStreamEvent `json:"metadata"`
	// Llama
	Generation           *jStr `json:"generation"`
	PromptTokenCount     jInt  `json:"prompt_token_count"`
	GenerationTokenCount jInt  `json:"generation_token_count"`
	StopReason           jStr  `json:"stop_reason"`
	// Mistral text
	Outputs []struct {
		Text       jStr `json:"text"`
		StopReason jStr `json:"stop_reason"`
	} `json:"outputs"`
	// Cohere
	Generations []struct {
		Text         jStr `json:"text"`
		FinishReason jStr `json:"finish_reason"`
	} `json:"generations"`
	Text         *jStr           `json:"text"`
	FinishReason jStr            `json:"finish_reason"`
	Embeddings   json.RawMessage `json:"embeddings"`
	// AI21 Jurassic
	Completions []struct {
		Data struct {
			Text   jStr              `json:"text"`
			Tokens []json.RawMessage `json:"tokens"`
		} `json:"data"`
		FinishReason struct {
			Reason jStr `json:"reason"`
		} `json:"finishReason"`
	} `json:"completions"`
	Prompt json.RawMessage `json:"prompt"`
	// OpenAI-shaped (Jamba, gpt-oss, DeepSeek, imported models)
	Choices json.RawMessage `json:"choices"`
	Usage   json.RawMessage `json:"usage"`
	// Bedrock
	Metrics *bedrockInvocationMetrics `json:"amazon-bedrock-invocationMetrics"`
	Message jStr                      `json:"message"`
	Type    jStr                      `json:"type"`
}

// isAnthropicEvent reports whether a model JSON body is Anthropic's.
func (b *bedrockModelBody) isAnthropic() bool {
	switch b.Type {
	case "message", "completion", "error", "message_start", "message_delta", "message_stop",
		"content_block_start", "content_block_delta", "content_block_stop", "ping":
		return true
	}
	return false
}

// invokeAcc reassembles an InvokeModel answer of any family.
type invokeAcc struct {
	family       string // "anthropic", "openai", "converse" or "" (prompt families)
	anthropic    *anthropicStream
	openai       *openaiChatStream
	converse     converseAcc
	text         strings.Builder
	finish       string
	in, out      jInt
	metrics      *bedrockInvocationMetrics
	ended        bool // a stream chunk carried Bedrock's invocation metrics, which come last
	embedding    bool
	vectors      int
	dimensions   int
	err          *oisp.Error
	chunks, bad  int
	contentClock // when the first content arrived
}

// add merges one model JSON body (a whole response or one stream chunk).
func (a *invokeAcc) add(data []byte, at time.Time, stream bool) {
	if stream && (a.family == "anthropic" || a.family == "openai") {
		// The family is known from the first chunk: hand the chunk on
		// without decoding it twice, picking up only Bedrock's metrics
		// (last chunk).
		a.chunks++
		if bytes.Contains(data, []byte(`"amazon-bedrock-invocationMetrics"`)) {
			var m struct {
				Metrics *bedrockInvocationMetrics `json:"amazon-bedrock-invocationMetrics"`
			}
			if decodeLooseOK(data, &m) && m.Metrics != nil {
				a.metrics, a.ended = m.Metrics, true
			}
		}
		if a.family == "anthropic" {
			a.anthropic.add("", data, at)
		} else {
			a.openai.add(data, at)
		}
		return
	}
	var b bedrockModelBody
	if _, err := decodeLoose(data, &b); err != nil {
		a.bad++
		return
	}
	a.chunks++
	if b.Metrics != nil {
		a.metrics = b.Metrics
		a.ended = a.ended || stream
	}
	switch {
	case b.isAnthropic() || a.family == "anthropic":
		a.family = "anthropic"
		if a.anthropic == nil {
			a.anthropic = newAnthropicStream()
		}
		if stream {
			a.anthropic.add("", data, at)
		}
		return
	case len(b.Choices) > 0 || a.family == "openai":
		a.family = "openai"
		if a.openai == nil {
			a.openai = newOpenAIChatStream()
		}
		if stream {
			a.openai.add(data, at)
		}
		return
	case b.Output != nil:
		a.family = "converse"
		if b.Output.Message != nil {
			a.converse.message(b.Output.Message)
		}
		a.converse.stopReason = string(b.StopReasonCamel)
		if len(b.Usage) > 0 {
			var u converseUsageBody
			if decodeLooseOK(b.Usage, &u) {
				a.converse.usage = &u
			}
		}
		return
	case len(b.MessageStart) > 0 || b.ContentBlockStart != nil || b.ContentBlockDelta != nil || b.MessageStop != nil || b.Metadata != nil:
		a.family = "converse"
		for _, m := range [...]struct {
			name string
			ev   *converseStreamEvent
		}{{"contentBlockStart", b.ContentBlockStart}, {"contentBlockDelta", b.ContentBlockDelta}, {"messageStop", b.MessageStop}, {"metadata", b.Metadata}} {
			if m.ev != nil {
				a.converse.streamEvent(m.name, m.ev, at)
			}
		}
		if len(b.MessageStart) > 0 {
			a.converse.events++
		}
		return
	}
	// Prompt families.
	if b.InputTextTokenCount.OK {
		a.in = b.InputTextTokenCount
	}
	if len(b.Embedding) > 0 {
		a.embedding = true
		a.vectors++
		a.dimensions = max(countArray(b.Embedding), 0)
	}
	if len(b.Embeddings) > 0 {
		a.embedding = true
		a.embeddings(b.Embeddings)
	}
	out, sum := 0, false
	for _, r := range b.Results {
		a.write(string(r.OutputText), at)
		if r.CompletionReason != "" {
			a.finish = string(r.CompletionReason)
		}
		if r.TokenCount.OK {
			out += r.TokenCount.V
			sum = true
		}
	}
	if sum {
		a.out = jInt{V: out, OK: true}
	}
	if b.OutputText != "" {
		a.write(string(b.OutputText), at)
	}
	if b.TotalOutputTextTokenCount.OK {
		a.out = b.TotalOutputTextTokenCount
	}
	if b.CompletionReason != "" {
		a.finish = string(b.CompletionReason)
	}
	if b.Generation != nil {
		a.write(string(*b.Generation), at)
	}
	if b.PromptTokenCount.OK {
		a.in = b.PromptTokenCount
	}
	if b.GenerationTokenCount.OK {
		a.out = b.GenerationTokenCount
	}
	if b.StopReason != "" {
		a.finish = string(b.StopReason)
	}
	for _, o := range b.Outputs {
		a.write(string(o.Text), at)
		if o.StopReason != "" {
			a.finish = string(o.StopReason)
		}
	}
	for _, g := range b.Generations {
		a.write(string(g.Text), at)
		if g.FinishReason != "" {
			a.finish = string(g.FinishReason)
		}
	}
	if b.Text != nil {
		a.write(string(*b.Text), at)
	}
	if b.FinishReason != "" {
		a.finish = string(b.FinishReason)
	}
	if len(b.Completions) > 0 {
		n := 0
		for _, c := range b.Completions {
			a.write(string(c.Data.Text), at)
			n += len(c.Data.Tokens)
			if c.FinishReason.Reason != "" {
				a.finish = string(c.FinishReason.Reason)
			}
		}
		if n > 0 {
			a.out = jInt{V: n, OK: true}
		}
		var prompt struct {
			Tokens []json.RawMessage `json:"tokens"`
		}
		if decodeLooseOK(b.Prompt, &prompt) && len(prompt.Tokens) > 0 {
			a.in = jInt{V: len(prompt.Tokens), OK: true}
		}
	}
}

// embeddings counts Cohere / Nova embedding vectors: a list of vectors, a
// map of lists by type ({"float": [[…]]}), or Nova's
// [{embeddingType, embedding}].
func (a *invokeAcc) embeddings(raw json.RawMessage) {
	switch rawKind(raw) {
	case '[':
		elems := rawArray(raw)
		a.vectors += len(elems)
		if len(elems) == 0 {
			return
		}
		if rawKind(elems[0]) == '{' {
			var nova struct {
				Embedding json.RawMessage `json:"embedding"`
			}
			if decodeLooseOK(elems[0], &nova) {
				a.dimensions = max(countArray(nova.Embedding), 0)
			}
			return
		}
		a.dimensions = max(countArray(elems[0]), 0)
	case '{':
		var byType map[string]json.RawMessage
		if decodeLooseOK(raw, &byType) {
			for _, k := range sortedKeys(byType) {
				a.embeddings(byType[k])
				return
			}
		}
	}
}

func (a *invokeAcc) write(s string, at time.Time) {
	a.text.WriteString(s)
	if s != "" {
		a.content(at)
	}
}

// fill writes the reassembled answer into resp; headerUsage is Bedrock's
// count from the response headers.
func (a *invokeAcc) fill(res *Result, resp *oisp.AIResponse, body []byte, headerUsage *oisp.Usage) {
	noteBadEvents(res, a.bad)
	switch a.family {
	case "anthropic":
		if a.anthropic != nil && a.anthropic.events > 0 {
			a.anthropic.finish(res, resp)
			a.firstContent = a.anthropic.firstContent
		} else {
			decodeAnthropicResponse(body, res, resp)
		}
	case "openai":
		if a.openai != nil && a.openai.events > 0 {
			a.openai.finish(res, resp)
			a.firstContent = a.openai.firstContent
		} else {
			decodeOpenAIChatResponse(body, res, resp)
		}
	case "converse":
		a.converse.fill(res, resp)
		if a.firstContent.IsZero() {
			a.firstContent = a.converse.firstContent
		}
	default:
		if a.chunks > 0 {
			fr := oisp.FinishReason(a.finish)
			switch strings.ToUpper(a.finish) {
			case "FINISH", "ENDOFTEXT":
				fr = oisp.FinishStop
			case "CONTENT_FILTERED":
				fr = oisp.FinishContentFilter
			}
			resp.Choices = oneChoice(a.text.String(), fr, rawIfDifferent(a.finish, fr))
			resp.FinishReason = fr
		}
		if a.in.OK || a.out.OK {
			resp.Usage = &oisp.Usage{PromptTokens: a.in.Ptr(), CompletionTokens: a.out.Ptr()}
			completeTotals(resp.Usage)
		}
	}
	if a.err != nil {
		setFailure(resp, a.err, true)
	}
	res.StreamEnded = res.StreamEnded || a.ended
	// Bedrock's own counts when the model reported none (or only part).
	var bedrockUsage *oisp.Usage
	if m := a.metrics; m != nil && (m.InputTokenCount.OK || m.OutputTokenCount.OK) {
		bedrockUsage = &oisp.Usage{PromptTokens: m.InputTokenCount.Ptr(), CompletionTokens: m.OutputTokenCount.Ptr()}
	} else {
		bedrockUsage = headerUsage
	}
	switch {
	case bedrockUsage == nil:
	case resp.Usage == nil:
		resp.Usage = bedrockUsage
		completeTotals(resp.Usage)
	case resp.Usage.PromptTokens == nil || resp.Usage.CompletionTokens == nil:
		if resp.Usage.PromptTokens == nil {
			resp.Usage.PromptTokens = bedrockUsage.PromptTokens
		}
		if resp.Usage.CompletionTokens == nil {
			resp.Usage.CompletionTokens = bedrockUsage.CompletionTokens
		}
		resp.Usage.TotalTokens = nil
		completeTotals(resp.Usage)
	}
}

func decodeBedrockInvoke(t Target, p bedrockPath, x *httpmsg.Exchange, rec stats.Recorder) *Result {
	vendor := bedrockVendor(p.Model)
	reqType := oisp.RequestChat
	if bedrockIsEmbedding(p.Model) {
		reqType = oisp.RequestEmbedding
	}
	res := newResult(apiBedrockInvoke, t, x, reqType)
	req := res.Request
	decodeBedrockInvokeRequest(vendor, x.Request.Body.Data, res)
	if reqType == oisp.RequestChat && req.InputCount > 0 && len(req.Messages) == 0 {
		// An embedding body ({"texts": …}) on a model id we did not know.
		reqType = oisp.RequestEmbedding
		req.RequestType = reqType
	}
	req.Model = &oisp.Model{ID: p.Model}
	req.Streaming = oisp.Ptr(p.Stream)
	if x.Response == nil {
		return res
	}
	resp := newResponse(res, x)
	body := &x.Response.Body
	var a invokeAcc
	switch {
	case resp.StatusCode >= 300:
		bedrockHTTPError(res, resp, x.Response.Header, body.Data)
	case isEventStream(x):
		var events []eventstream.Message
		events, a.err = bedrockEvents(body.Data, res, rec)
		for _, m := range events {
			if m.EventType != "chunk" {
				continue
			}
			at := body.TimeAt(int(m.End) - 1)
			inner, err := eventstream.ChunkBytes(m.Payload, rec)
			if err != nil {
				res.note(noteBedrockChunk)
				continue
			}
			a.add(inner, at, true)
		}
		resp.StreamEvents = a.chunks
		a.fill(res, resp, nil, bedrockHeaderUsage(x.Response.Header))
		setTimeToFirstToken(resp, x, a.firstContent)
	default:
		if len(bytes.TrimSpace(body.Data)) > 0 {
			a.add(body.Data, time.Time{}, false)
			if a.chunks == 0 {
				res.note(noteResponseNotJSON)
			}
		}
		a.fill(res, resp, body.Data, bedrockHeaderUsage(x.Response.Header))
	}
	if p.Stream {
		resp.Streaming = oisp.Ptr(true)
	}
	if reqType == oisp.RequestEmbedding || a.embedding {
		req.RequestType = oisp.RequestEmbedding
		emb := &oisp.AIEmbedding{
			Provider: resp.Provider, Model: req.Model, InputCount: req.InputCount,
			Dimensions: a.dimensions, EmbeddingCount: a.vectors,
			LatencyMS: resp.LatencyMS, StatusCode: resp.StatusCode, Success: resp.Success, Error: resp.Error,
			Usage: resp.Usage,
		}
		if emb.Usage != nil {
			emb.Usage.CompletionTokens = nil
			emb.Usage.TotalTokens = emb.Usage.PromptTokens
			emb.TotalTokens = emb.Usage.PromptTokens
		}
		res.Embedding = emb
		return res
	}
	res.Response = resp
	return res
}
