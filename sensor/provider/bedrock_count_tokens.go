package provider

import (
	"encoding/base64"

	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Bedrock CountTokens (POST /model/{modelId}/count-tokens): the prompt a
// Converse or InvokeModel call would send, wrapped as
// {"input":{"converse":{messages, system, toolConfig, …}}} or
// {"input":{"invokeModel":{"body":"<base64 of the model-native body>"}}},
// and the answer {"inputTokens":N}. It is reported as
// anthropic.count_tokens is: request_type "other", the count as the
// response's prompt_tokens and the request's estimated_tokens, no cost.

const (
	apiBedrockCountTokens = "bedrock.count_tokens"
	bedrockCountTokensOp  = "count-tokens"
)

type bedrockCountTokensAPI struct{}

func (bedrockCountTokensAPI) Name() string { return apiBedrockCountTokens }

func (bedrockCountTokensAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if t.ProviderID != "aws_bedrock" || !isPost(x) {
		return false
	}
	p, ok := parseBedrockPath(x.Request.Path())
	return ok && p.Op == bedrockCountTokensOp
}

func (bedrockCountTokensAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	p, _ := parseBedrockPath(x.Request.Path())
	res := newResult(apiBedrockCountTokens, t, x, oisp.RequestOther)
	decodeBedrockCountTokensRequest(p.Model, x.Request.Body.Data, res)
	res.Request.Model = &oisp.Model{ID: p.Model}
	res.Request.Streaming = oisp.Ptr(false)
	setBedrockRegion(res, t)
	if resp := startResponse(res, x); resp != nil {
		if resp.StatusCode >= 300 {
			bedrockHTTPError(res, resp, x.Response.Header, x.Response.Body.Data)
		} else {
			var b struct {
				InputTokens jInt `json:"inputTokens"`
			}
			if decodeResponseBody(x.Response.Body.Data, &b, res) {
				setTokenCount(res, resp, b.InputTokens)
			}
		}
		endResponse(res, resp, x)
	}
	finishTokenCount(env, "aws_bedrock", res)
	return res, nil
}

// decodeBedrockCountTokensRequest describes the prompt inside the input
// wrapper: a Converse body as Converse does, an InvokeModel body (base64)
// as InvokeModel does for the model's family.
func decodeBedrockCountTokensRequest(model string, body []byte, res *Result) {
	var b struct {
		Input struct {
			Converse    json.RawMessage `json:"converse"`
			InvokeModel *struct {
				Body jStr `json:"body"`
			} `json:"invokeModel"`
		} `json:"input"`
	}
	if !decodeRequestBody(body, &b, res) {
		finishRequest(res.Request)
		return
	}
	switch in := b.Input; {
	case rawKind(in.Converse) == '{':
		decodeConverseRequest(in.Converse, res)
	case in.InvokeModel != nil:
		inner, err := base64.StdEncoding.DecodeString(string(in.InvokeModel.Body))
		if err != nil {
			res.note(noteRequestNotJSON)
			finishRequest(res.Request)
			return
		}
		decodeBedrockInvokeRequest(bedrockVendor(model), inner, res)
	default:
		finishRequest(res.Request)
	}
}
