package provider

import (
	"slices"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Reranking: a query and documents in, the documents' indexes ordered by
// relevance out.
//
//	Cohere  POST /v1/rerank, /v2/rerank  {model, query, documents, top_n}
//	        → {id, results:[{index, relevance_score}], meta:{billed_units:{search_units}}}
//	Voyage  POST /v1/rerank              {model, query, documents, top_k}
//	        → {object:"list", data:[{index, relevance_score}], model, usage:{total_tokens}}
//
// Reported as request_type "other": the query is the request's user
// message and the number of documents its input_count (as for
// embeddings); the answer carries its id, model and the tokens the
// provider counted (Voyage's total_tokens are all input). Cohere bills
// search units, which have no usage field: they are left out, and an
// answer with only them has no usage. The number and order of results
// have no field either and are not reported.

// API names of the rerank decoders.
const (
	apiCohereRerank = "cohere.rerank"
	apiVoyageRerank = "voyage.rerank"
)

type rerankAPI struct {
	name, provider string
	paths          []string // path suffixes
}

func newRerankAPIs() []API {
	return []API{
		rerankAPI{name: apiCohereRerank, provider: "cohere", paths: []string{"/v1/rerank", "/v2/rerank"}},
		rerankAPI{name: apiVoyageRerank, provider: "voyage", paths: []string{"/v1/rerank"}},
	}
}

func (a rerankAPI) Name() string { return a.name }

func (a rerankAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if t.ProviderID != a.provider || !isPost(x) {
		return false
	}
	p := trimPath(x)
	return slices.ContainsFunc(a.paths, func(s string) bool { return strings.HasSuffix(p, s) })
}

func (a rerankAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(a.name, t, x, oisp.RequestOther)
	req := res.Request
	req.Streaming = oisp.Ptr(false)
	var in struct {
		Model     jStr              `json:"model"`
		Query     jStr              `json:"query"`
		Documents []json.RawMessage `json:"documents"`
	}
	if decodeRequestBody(x.Request.Body.Data, &in, res) {
		if in.Model != "" {
			req.Model = &oisp.Model{ID: string(in.Model)}
		}
		if in.Query != "" {
			req.Messages = append(req.Messages, newMessage("user", string(in.Query), 0))
		}
		req.InputCount = len(in.Documents)
	}
	finishRequest(req)
	if resp := startResponse(res, x); resp != nil {
		decodeRerankResponse(x.Response.Body.Data, res, resp)
		endResponse(res, resp, x)
	}
	finishResult(env, t.ProviderID, res)
	return res, nil
}

// decodeRerankResponse reads a Cohere or Voyage answer, or their errors
// ({"message": …} and {"detail": …}).
func decodeRerankResponse(body []byte, res *Result, resp *oisp.AIResponse) {
	var b struct {
		ID    jStr             `json:"id"`
		Model jStr             `json:"model"`
		Meta  *cohereUsageBody `json:"meta"`
		Usage *struct {
			TotalTokens jInt `json:"total_tokens"`
		} `json:"usage"`
		Message jStr            `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if !decodeResponseBody(body, &b, res) {
		return
	}
	if resp.StatusCode >= 400 {
		fail := httpFailure(resp.StatusCode, body)
		if msg := string(b.Message); msg != "" {
			fail.Message = msg
		} else if msg := rawText(b.Detail); msg != "" {
			fail.Message = msg
		}
		setFailure(resp, fail, false)
		return
	}
	nameAnswer(resp, string(b.ID), string(b.Model))
	switch {
	case b.Usage != nil && b.Usage.TotalTokens.OK:
		n := b.Usage.TotalTokens
		resp.Usage = &oisp.Usage{PromptTokens: n.Ptr(), TotalTokens: n.Ptr()}
	case b.Meta != nil:
		if u := cohereUsage(b.Meta); u != nil {
			resp.Usage = u
		}
	}
}
