package provider

import (
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// Usage conventions (docs/oisp-spec §8 #22), the same for every provider:
//   - prompt_tokens counts every input token, cache reads and cache writes
//     included (OpenAI reports it that way; Anthropic reports the three
//     apart and they are summed);
//   - cached_tokens counts cache reads, cache_creation_tokens cache writes
//     (both are parts of prompt_tokens, never added to it twice);
//   - reasoning_tokens are part of completion_tokens (OpenAI's convention);
//   - total_tokens is the provider's when reported, else prompt+completion.

// completeTotals fills total_tokens when the provider did not report it.
func completeTotals(u *oisp.Usage) {
	if u == nil || u.TotalTokens != nil {
		return
	}
	if u.PromptTokens == nil && u.CompletionTokens == nil {
		return
	}
	total := 0
	if u.PromptTokens != nil {
		total += *u.PromptTokens
	}
	if u.CompletionTokens != nil {
		total += *u.CompletionTokens
	}
	u.TotalTokens = &total
}

// finishResult enriches a decoded result: model metadata for the request
// and response models, the requested model on the response when the
// answer names another, and the cost of the response's usage. Every
// decoder calls it last; providerID is the registry id used for model
// lookups (Target.ProviderID, or a more specific one such as
// "google_vertex_anthropic").
func finishResult(env Env, providerID string, res *Result) {
	countNotes(env, res)
	if c := res.Chain; c != nil && c.ContinuedBy == "" && res.Response != nil {
		// A later request continues the answer by the id it named.
		c.ContinuedBy = res.Response.ProviderRequestID
	}
	reg := env.Registry
	req := res.Request
	var requested string
	if req != nil && req.Model != nil {
		requested = req.Model.ID
		reg.DescribeModel(req.Model, providerID)
	}
	if resp := res.Response; resp != nil {
		resp.Model = res.settleAnswer(reg, providerID, requested, resp.Model, resp.Usage)
	}
	if emb := res.Embedding; emb != nil {
		emb.Model = res.settleAnswer(reg, providerID, requested, emb.Model, emb.Usage)
	}
}

// settleAnswer enriches an answer (a response or an embedding) alike: its
// model is the one answered, else the one requested, described from the
// registry; its usage gets its totals and is priced at that model. It
// returns the model.
func (r *Result) settleAnswer(reg *Registry, providerID, requested string, answered *oisp.Model, u *oisp.Usage) *oisp.Model {
	m := answeredModel(answered, requested)
	reg.DescribeModel(m, providerID)
	if u != nil {
		completeTotals(u)
		reg.priceAnswered(u, providerID, m, requested, r.costRoom(u))
	}
	return m
}

// costRoom returns where u's costs go: the room of its block when
// newUsageBlock made it, else nil (Price allocates them).
func (r *Result) costRoom(u *oisp.Usage) *[3]float64 {
	if blk := r.usageRoom; blk != nil && u == &blk.usage {
		return &blk.costs
	}
	return nil
}

// newUsageBlock returns a new block for a usage of the result's response
// or embedding, kept so that finishResult prices the usage in the block's
// room for the costs; a nil result gets a block of its own.
func (r *Result) newUsageBlock() *usageBlock {
	blk := &usageBlock{}
	if r != nil {
		r.usageRoom = blk
	}
	return blk
}

// answeredModel returns the response's model, falling back to the request's
// and recording the requested id when the answer differs.
func answeredModel(answered *oisp.Model, requested string) *oisp.Model {
	if answered == nil || answered.ID == "" {
		if requested == "" {
			return answered
		}
		return &oisp.Model{ID: requested}
	}
	if requested != "" && requested != answered.ID {
		answered.Requested = requested
	}
	return answered
}

// priceAnswered prices usage with the answered model, else the requested
// one, writing the costs to costs when it is not nil.
func (r *Registry) priceAnswered(u *oisp.Usage, providerID string, m *oisp.Model, requested string, costs *[3]float64) {
	if r == nil || u == nil {
		return
	}
	id := requested
	if m != nil && m.ID != "" {
		id = m.ID
	}
	if r.priceIn(u, providerID, id, costs) {
		return
	}
	if requested != "" && requested != id {
		r.priceIn(u, providerID, requested, costs)
	}
}

// countNotes counts every note of a result under "provider.<note>" (for
// example provider.response_body_not_json), so undecodable and truncated
// bodies show in the sensor's counters as well as in the events.
func countNotes(env Env, res *Result) {
	if env.Stats == nil {
		return
	}
	for _, n := range res.Notes {
		env.Stats.Count("provider."+n, 1)
	}
}
