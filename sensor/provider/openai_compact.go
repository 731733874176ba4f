package provider

import (
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// The OpenAI Responses compaction endpoint (POST /v1/responses/compact):
// the model condenses a conversation's history (the request's input, or
// the response named by previous_response_id) into an opaque compaction
// item, billed like any call. The client then sends that item in place of
// the history, so the next turn continues the compaction (see Chain).

const apiOpenAIResponsesCompact = "openai.responses_compact"

type openaiResponsesCompactAPI struct{}

func (openaiResponsesCompactAPI) Name() string { return apiOpenAIResponsesCompact }

func (openaiResponsesCompactAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !isPost(x) || !strings.HasSuffix(trimPath(x), "/responses/compact") {
		return false
	}
	return t.Known || bodyHas(x.Request.Body.Data, "model", '"')
}

func (openaiResponsesCompactAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(apiOpenAIResponsesCompact, t, x, oisp.RequestOther)
	if model := decodeOpenAIResponsesRequest(x.Request.Body.Data, res); model == "" {
		setDeploymentModel(res.Request, x)
	}
	if resp := startResponse(res, x); resp != nil {
		decodeCompactionResponse(x.Response.Body.Data, res, resp)
		endResponse(res, resp, x)
	}
	finishResult(env, t.ProviderID, res)
	return res, nil
}

// decodeCompactionResponse reads a compaction object
// ({"object":"response.compaction","output":[…,{"type":"compaction","id":…}],"usage":…})
// or an error. Its output echoes the user's messages beside the
// compaction: none of it is an answer to show.
func decodeCompactionResponse(body []byte, res *Result, resp *oisp.AIResponse) {
	var b responsesObject
	if !decodeResponseBody(body, &b, res) {
		return
	}
	nameAnswer(resp, string(b.ID), string(b.Model))
	if b.Usage != nil {
		resp.Usage = openaiUsage(nil, b.Usage)
	}
	if rawKind(b.Error) == '{' {
		setFailure(resp, openaiErrorMember(b.Error), resp.StatusCode > 0 && resp.StatusCode < 400)
		return
	}
	for _, it := range b.Output {
		if it.Type == "compaction" && it.ID != "" {
			res.Chain.ContinuedBy = string(it.ID)
			setFinish(resp, oisp.FinishStop, "completed")
			return
		}
	}
}
