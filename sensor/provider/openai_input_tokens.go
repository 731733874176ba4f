package provider

import (
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// The OpenAI Responses token counter (POST /v1/responses/input_tokens):
// the body of a Responses request (model, input, instructions, tools), and
// the answer {"object":"response.input_tokens","input_tokens":N}. It is
// reported as anthropic.count_tokens is: request_type "other", the count
// as the response's prompt_tokens and the request's estimated_tokens, no
// cost (counting is free).

const apiOpenAIInputTokens = "openai.responses_input_tokens"

type openaiInputTokensAPI struct{}

func (openaiInputTokensAPI) Name() string { return apiOpenAIInputTokens }

func (openaiInputTokensAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || !strings.HasSuffix(trimPath(x), "/responses/input_tokens") {
		return false
	}
	return t.Known || bodyHas(x.Request.Body.Data, "model", '"')
}

func (openaiInputTokensAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(apiOpenAIInputTokens, t, x, oisp.RequestOther)
	if model := decodeOpenAIResponsesRequest(x.Request.Body.Data, res); model == "" {
		setDeploymentModel(res.Request, x)
	}
	res.Request.Streaming = oisp.Ptr(false)
	if resp := startResponse(res, x); resp != nil {
		var b struct {
			Object      jStr `json:"object"`
			InputTokens jInt `json:"input_tokens"`
			openaiErrorFields
		}
		if decodeResponseBody(x.Response.Body.Data, &b, res) {
			if e := b.err(string(b.Object), resp.StatusCode); e != nil {
				setFailure(resp, e, false)
			} else {
				setTokenCount(res, resp, b.InputTokens)
			}
		}
		endResponse(res, resp, x)
	}
	finishTokenCount(env, t.ProviderID, res)
	return res, nil
}
