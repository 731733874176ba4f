package provider

// Vertex AI (aiplatform.googleapis.com, {location}-aiplatform.googleapis.com):
//
//   - publishers/google models: the Gemini bodies (gemini.go), verbs
//     generateContent, streamGenerateContent, countTokens, and :predict /
//     :embedContent on embedding models;
//   - publishers/anthropic models: rawPredict / streamRawPredict with
//     Anthropic Messages bodies (anthropic.go's decoders), the model in the
//     path ("claude-sonnet-4@20250514");
//   - other publishers (mistralai, meta, ai21, …): rawPredict /
//     streamRawPredict with OpenAI chat bodies;
//   - the OpenAI-compatible endpoint …/endpoints/openapi/chat/completions.

import (
	json "github.com/goccy/go-json"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// API names of the Vertex decoders.
const (
	apiVertexGenerate    = "vertex.generate_content"
	apiVertexCountTokens = "vertex.count_tokens"
	apiVertexEmbed       = "vertex.embed"
	apiVertexAnthropic   = "vertex.anthropic_messages"
	apiVertexRawPredict  = "vertex.raw_predict"
	apiVertexOpenAIChat  = "vertex.openai_chat_completions"
)

func newVertexAPIs() []API {
	return []API{
		&geminiAPI{name: apiVertexGenerate, vertex: true, verbs: map[string]bool{"generateContent": true, "streamGenerateContent": true}},
		&geminiAPI{name: apiVertexCountTokens, vertex: true, verbs: map[string]bool{"countTokens": true}},
		vertexEmbedAPI{},
		vertexRawPredictAPI{},
		vertexOpenAIChatAPI{},
	}
}

// ---------------------------------------------------------------- embeddings

// vertexEmbedAPI decodes :predict and :embedContent on embedding models
// (text-embedding-*, gemini-embedding-*, multimodalembedding, …). Other
// :predict calls (Imagen, tuned endpoints) are not AI chat traffic this
// decoder understands.
type vertexEmbedAPI struct{}

func (vertexEmbedAPI) Name() string { return apiVertexEmbed }

func (vertexEmbedAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if t.ProviderID != "google_vertex" || !isPost(x) {
		return false
	}
	p, ok := parseGooglePath(x.Request.Path())
	if !ok {
		return false
	}
	switch p.Verb {
	case "embedContent", "batchEmbedContents":
		return true
	case "predict":
		return strings.Contains(strings.ToLower(p.modelID()), "embed")
	}
	return false
}

func (vertexEmbedAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	p, _ := parseGooglePath(x.Request.Path())
	return decodeGoogleModelVerb(apiVertexEmbed, t, p, x, env), nil
}

// ---------------------------------------------------------------- rawPredict

// vertexRawPredictAPI decodes rawPredict / streamRawPredict of partner
// models: Anthropic Messages bodies for publishers/anthropic, OpenAI chat
// bodies for the others.
type vertexRawPredictAPI struct{}

func (vertexRawPredictAPI) Name() string { return apiVertexRawPredict }

func (vertexRawPredictAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if t.ProviderID != "google_vertex" || !isPost(x) {
		return false
	}
	p, ok := parseGooglePath(x.Request.Path())
	return ok && p.Model != "" && p.Publisher != "" && p.Publisher != "google" &&
		(p.Verb == "rawPredict" || p.Verb == "streamRawPredict")
}

func (vertexRawPredictAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	p, _ := parseGooglePath(x.Request.Path())
	streamVerb := p.Verb == "streamRawPredict"
	api, lookup := apiVertexRawPredict, "google_vertex"
	anthropic := p.Publisher == "anthropic"
	if anthropic {
		api, lookup = apiVertexAnthropic, "google_vertex_anthropic"
	}
	res := newResult(api, t, x, oisp.RequestChat)
	req := res.Request
	setGoogleProvider(req.Provider, p)
	var bodyStream bool
	if anthropic {
		decodeAnthropicRequest(x.Request.Body.Data, res)
		bodyStream = req.Streaming != nil && *req.Streaming
	} else {
		decodeOpenAIChatRequest(x.Request.Body.Data, res)
		bodyStream = req.Streaming != nil && *req.Streaming
	}
	// The path names the model; a body "model" (OpenAI-style publishers)
	// may repeat it.
	if req.Model == nil || req.Model.ID == "" {
		req.Model = &oisp.Model{ID: p.Model}
	}
	streaming := streamVerb || bodyStream
	req.Streaming = oisp.Ptr(streaming)
	if x.Response != nil {
		resp := newResponse(res, x)
		switch {
		case anthropic && looksSSE(x):
			decodeAnthropicSSE(x, res, resp)
		case anthropic:
			decodeAnthropicResponse(x.Response.Body.Data, res, resp)
		case looksSSE(x):
			decodeOpenAIChatSSE(x, res, resp)
		default:
			decodeOpenAIChatResponse(x.Response.Body.Data, res, resp)
		}
		if resp.Error == nil && rawKind(x.Response.Body.Data) == '{' {
			// Vertex wraps its own failures (quota, permissions) in the
			// Google error shape whatever the publisher.
			if e := vertexErrorBody(x.Response.Body.Data); e != nil {
				setFailure(resp, e, resp.StatusCode < 400)
			}
		}
		explainFailedStatus(resp, x.Response.Body.Data)
		res.Response = resp
	}
	finishGoogle(env, Target{ProviderID: lookup, Known: true}, p, x, res)
	return res, nil
}

// vertexErrorBody reads a Google error body ({"error": {code, message,
// status}}) or a top-level array holding one.
func vertexErrorBody(body []byte) *oisp.Error {
	var b struct {
		Error json.RawMessage `json:"error"`
	}
	if _, err := decodeLoose(body, &b); err != nil {
		return nil
	}
	return googleError(b.Error)
}

// ---------------------------------------------------------------- OpenAI-compatible endpoint

// vertexOpenAIChatAPI decodes Vertex's OpenAI-compatible chat completions
// endpoint (…/endpoints/openapi/chat/completions), used for Gemini and for
// open models (the body names "google/gemini-2.0-flash",
// "meta/llama-3.3-70b-instruct-maas", …).
type vertexOpenAIChatAPI struct{}

func (vertexOpenAIChatAPI) Name() string { return apiVertexOpenAIChat }

func (vertexOpenAIChatAPI) Match(t Target, x *httpmsg.Exchange) bool {
	return t.ProviderID == "google_vertex" && isPost(x) && strings.HasSuffix(trimPath(x), "/chat/completions")
}

func (vertexOpenAIChatAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(apiVertexOpenAIChat, t, x, oisp.RequestChat)
	req := res.Request
	if i := strings.Index(x.Request.Path(), "/projects/"); i >= 0 {
		segs := strings.Split(x.Request.Path()[i+1:], "/")
		if len(segs) >= 4 && segs[2] == "locations" {
			setGoogleProvider(req.Provider, googlePath{Project: segs[1], Location: segs[3]})
		}
	}
	decodeOpenAIChatRequest(x.Request.Body.Data, res)
	if x.Response != nil {
		resp := newResponse(res, x)
		if looksSSE(x) {
			decodeOpenAIChatSSE(x, res, resp)
		} else {
			decodeOpenAIChatResponse(x.Response.Body.Data, res, resp)
		}
		if resp.Error == nil && resp.StatusCode >= 400 {
			if e := vertexErrorBody(x.Response.Body.Data); e != nil {
				setFailure(resp, e, false)
			} else {
				httpError(resp, resp.StatusCode, x.Response.Body.Data)
			}
		}
		res.Response = resp
	}
	finishGoogle(env, t, googlePath{}, x, res)
	return res, nil
}
