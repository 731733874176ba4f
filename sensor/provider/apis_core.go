package provider

import (
	"bytes"
	json "github.com/goccy/go-json"
	"net/url"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// coreAPIs lists the OpenAI-format and Anthropic decoders. They match by
// method and path on every registry host (the specific decoders of
// moreAPIs run first, so a provider's native API wins over its
// OpenAI-compatible endpoints), and on unknown hosts only when the request
// body has the API's shape too.
func coreAPIs() []API {
	return append([]API{
		anthropicMessagesAPI{},
		anthropicCountTokensAPI{},
		anthropicCompleteAPI{},
		openaiChatAPI{},
		openaiResponsesAPI{},
		openaiResponsesCompactAPI{},
		openaiInputTokensAPI{},
		openaiEmbeddingsAPI{},
		openaiCompletionsAPI{}, // after chat: "/chat/completions" also ends in "/completions"
	}, openaiMediaAPIs()...)
}

// ---------------------------------------------------------------- OpenAI

type openaiChatAPI struct{}

func (openaiChatAPI) Name() string { return apiOpenAIChat }

func (openaiChatAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || !strings.HasSuffix(trimPath(x), "/chat/completions") {
		return false
	}
	return t.Known || bodyHas(x.Request.Body.Data, "messages", '[')
}

func (openaiChatAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	return decodeOpenAIChatExchange(apiOpenAIChat, oisp.RequestChat, t, x, env, newOpenAIChatStream()), nil
}

type openaiCompletionsAPI struct{}

func (openaiCompletionsAPI) Name() string { return apiOpenAICompletions }

func (openaiCompletionsAPI) Match(t Target, x *httpmsg.Exchange) bool {
	p := trimPath(x)
	if !isPost(x) || !strings.HasSuffix(p, "/completions") || strings.HasSuffix(p, "/chat/completions") {
		return false
	}
	return t.Known || bodyHas(x.Request.Body.Data, "prompt", 0)
}

func (openaiCompletionsAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	return decodeOpenAIChatExchange(apiOpenAICompletions, oisp.RequestCompletion, t, x, env, newOpenAIChatStream()), nil
}

// decodeOpenAIChatExchange decodes chat and legacy completions exchanges,
// whose bodies and streams share one shape; stream reassembles an SSE
// answer.
func decodeOpenAIChatExchange(api, requestType string, t Target, x *httpmsg.Exchange, env Env, stream sseStream) *Result {
	res := newResult(api, t, x, requestType)
	if model := decodeOpenAIChatRequest(x.Request.Body.Data, res); model == "" {
		setDeploymentModel(res.Request, x)
	}
	if resp := startResponse(res, x); resp != nil {
		if looksSSE(x) {
			decodeSSEStream(stream, x, res, resp)
		} else {
			decodeOpenAIChatResponse(x.Response.Body.Data, res, resp)
		}
		endResponse(res, resp, x)
	}
	finishResult(env, t.ProviderID, res)
	return res
}

type openaiResponsesAPI struct{}

func (openaiResponsesAPI) Name() string { return apiOpenAIResponses }

func (openaiResponsesAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || !strings.HasSuffix(trimPath(x), "/responses") {
		return false
	}
	return t.Known || (bodyHas(x.Request.Body.Data, "model", '"') && bodyHas(x.Request.Body.Data, "input", 0))
}

func (openaiResponsesAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(apiOpenAIResponses, t, x, oisp.RequestChat)
	if model := decodeOpenAIResponsesRequest(x.Request.Body.Data, res); model == "" {
		setDeploymentModel(res.Request, x)
	}
	if resp := startResponse(res, x); resp != nil {
		if looksSSE(x) {
			decodeOpenAIResponsesSSE(x, res, resp)
		} else {
			decodeOpenAIResponsesResponse(x.Response.Body.Data, res, resp)
		}
		endResponse(res, resp, x)
	}
	finishResult(env, t.ProviderID, res)
	return res, nil
}

type openaiEmbeddingsAPI struct{}

func (openaiEmbeddingsAPI) Name() string { return apiOpenAIEmbeddings }

func (openaiEmbeddingsAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || !strings.HasSuffix(trimPath(x), "/embeddings") {
		return false
	}
	return t.Known || bodyHas(x.Request.Body.Data, "input", 0)
}

func (openaiEmbeddingsAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(apiOpenAIEmbeddings, t, x, oisp.RequestEmbedding)
	model, inputs, _ := decodeOpenAIEmbeddingsRequest(x.Request.Body.Data, res)
	if model == "" {
		setDeploymentModel(res.Request, x)
	}
	if x.Response == nil {
		res.note(noteNoResponse)
	} else {
		emb := &oisp.AIEmbedding{
			Provider:   res.Request.Provider,
			InputCount: inputs,
			LatencyMS:  latencyMS(x),
			StatusCode: x.Response.Status,
			Success:    oisp.Ptr(x.Response.Status >= 200 && x.Response.Status < 300),
		}
		noteResponseBody(res, x)
		decodeOpenAIEmbeddingsResponse(x.Response.Body.Data, res, emb)
		if x.Response.Status >= 400 && emb.Error == nil {
			r := &oisp.AIResponse{}
			httpError(r, x.Response.Status, x.Response.Body.Data)
			emb.Error, emb.Success = r.Error, oisp.Ptr(false)
		}
		res.Embedding = emb
	}
	finishResult(env, t.ProviderID, res)
	return res, nil
}

// setDeploymentModel names the model after an Azure deployment
// (/openai/deployments/{deployment}/…) when the body names none.
func setDeploymentModel(req *oisp.AIRequest, x *httpmsg.Exchange) {
	if dep := azureDeployment(x.Request.Path()); dep != "" {
		req.Model = &oisp.Model{ID: dep}
	}
}

// azureDeployment returns the deployment name of an Azure OpenAI path.
func azureDeployment(path string) string {
	const marker = "/deployments/"
	i := strings.Index(path, marker)
	if i < 0 {
		return ""
	}
	rest := path[i+len(marker):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	if u, err := url.PathUnescape(rest); err == nil {
		rest = u
	}
	return rest
}

// ---------------------------------------------------------------- Anthropic

type anthropicMessagesAPI struct{}

func (anthropicMessagesAPI) Name() string { return apiAnthropicMessages }

func (anthropicMessagesAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || !strings.HasSuffix(trimPath(x), "/v1/messages") {
		return false
	}
	return t.Known || (bodyHas(x.Request.Body.Data, "messages", '[') && bodyHas(x.Request.Body.Data, "max_tokens", 0))
}

func (anthropicMessagesAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	return decodeAnthropicExchange(apiAnthropicMessages, oisp.RequestChat, t, x, env), nil
}

type anthropicCompleteAPI struct{}

func (anthropicCompleteAPI) Name() string { return apiAnthropicComplete }

func (anthropicCompleteAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || !strings.HasSuffix(trimPath(x), "/v1/complete") {
		return false
	}
	return t.Known || bodyHas(x.Request.Body.Data, "prompt", '"')
}

func (anthropicCompleteAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	return decodeAnthropicExchange(apiAnthropicComplete, oisp.RequestCompletion, t, x, env), nil
}

// decodeAnthropicExchange decodes Messages and legacy complete exchanges.
func decodeAnthropicExchange(api, requestType string, t Target, x *httpmsg.Exchange, env Env) *Result {
	res := newResult(api, t, x, requestType)
	decodeAnthropicRequest(x.Request.Body.Data, res)
	if resp := startResponse(res, x); resp != nil {
		if looksSSE(x) {
			decodeAnthropicSSE(x, res, resp)
		} else {
			decodeAnthropicResponse(x.Response.Body.Data, res, resp)
		}
		endResponse(res, resp, x)
	}
	finishResult(env, t.ProviderID, res)
	return res
}

type anthropicCountTokensAPI struct{}

func (anthropicCountTokensAPI) Name() string { return apiAnthropicCountTokens }

func (anthropicCountTokensAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || !strings.HasSuffix(trimPath(x), "/v1/messages/count_tokens") {
		return false
	}
	return t.Known || bodyHas(x.Request.Body.Data, "messages", '[')
}

// Decode reports a token count as request_type "other": the request's
// prompt is described like a Messages request (never streamed), and the
// answer's input_tokens becomes the response's prompt_tokens and the
// request's estimated_tokens. Counting is free, so no cost is attached.
func (anthropicCountTokensAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(apiAnthropicCountTokens, t, x, oisp.RequestOther)
	decodeAnthropicRequest(x.Request.Body.Data, res)
	res.Request.Streaming = oisp.Ptr(false)
	if resp := startResponse(res, x); resp != nil {
		var b anthropicResponseBody
		if _, err := decodeLoose(x.Response.Body.Data, &b); err == nil {
			if b.Type == "error" || rawKind(b.Error) == '{' {
				setFailure(resp, anthropicError(b.Error), false)
			} else {
				setTokenCount(res, resp, b.InputTokens)
			}
		} else if len(bytes.TrimSpace(x.Response.Body.Data)) > 0 {
			res.note(noteResponseNotJSON)
		}
		endResponse(res, resp, x)
	}
	finishTokenCount(env, t.ProviderID, res)
	return res, nil
}

// setTokenCount reports the tokens a counting endpoint counted in the
// prompt: the response's prompt_tokens (and total), and the request's
// estimated_tokens.
func setTokenCount(res *Result, resp *oisp.AIResponse, n jInt) {
	if !n.OK {
		return
	}
	resp.Usage = &oisp.Usage{PromptTokens: n.Ptr(), TotalTokens: n.Ptr()}
	res.Request.EstimatedTokens = n.V
}

// finishTokenCount completes a token count's result: its notes counted and
// its model described, the answer naming the request's model (the answer
// names none). Counting is free, so no cost is attached.
func finishTokenCount(env Env, providerID string, res *Result) {
	countNotes(env, res)
	if res.Request.Model != nil {
		env.Registry.DescribeModel(res.Request.Model, providerID)
		if res.Response != nil {
			m := *res.Request.Model
			res.Response.Model = &m
		}
	}
}

// ---------------------------------------------------------------- shared

// startResponse begins the response of an exchange (nil when none arrived)
// and records body problems as notes.
func startResponse(res *Result, x *httpmsg.Exchange) *oisp.AIResponse {
	if x.Response == nil {
		res.note(noteNoResponse)
		return nil
	}
	noteResponseBody(res, x)
	return newResponse(res, x)
}

// noteResponseBody records truncation and decoding problems of the
// response body.
func noteResponseBody(res *Result, x *httpmsg.Exchange) {
	if x.Response.Body.Truncated {
		res.note(noteResponseTruncated)
	}
	if !x.Response.Complete {
		res.note(noteResponseIncomplete)
	}
	if x.Response.Body.DecodeError != "" {
		res.note(noteContentDecodeError)
	}
}

// endResponse attaches resp, filling a generic error for failed statuses
// the body did not explain.
func endResponse(res *Result, resp *oisp.AIResponse, x *httpmsg.Exchange) {
	if x.Response.Status >= 400 && resp.Error == nil {
		httpError(resp, x.Response.Status, x.Response.Body.Data)
	}
	if x.Response.Status >= 400 {
		resp.Success = oisp.Ptr(false)
	}
	res.Response = resp
}

// bodyHas reports whether a JSON object body has a top-level key whose
// value starts with kind ('[', '{', '"'; 0 for any value). Used to accept
// unknown hosts by body shape.
func bodyHas(body []byte, key string, kind byte) bool {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	v, ok := top[key]
	if !ok {
		return false
	}
	return kind == 0 || rawKind(v) == kind
}
