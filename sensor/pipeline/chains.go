package pipeline

import (
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// chainKey names provider-held state a later request can continue: a
// response, interaction or conversation id of one provider.
type chainKey struct{ name, providerID, id string }

func chainKeyOf(p *oisp.Provider, id string) chainKey {
	if p == nil {
		return chainKey{id: id}
	}
	return chainKey{name: p.Name, providerID: p.ID, id: id}
}

// chains is a bounded LRU of provider-held state → the conversation id of
// the requests around it. A request that continues a response by its id
// (OpenAI Responses previous_response_id, Gemini Interactions
// previous_interaction_id) sends only the new turn, so the hash of its
// messages would start a new conversation at every turn; it takes the
// conversation of the response it continues instead. The table spans
// flows: a client may open a new connection for the next turn.
type chains struct{ ids *lru.Cache[chainKey, string] }

func newChains(max int) chains {
	ids, err := lru.New[chainKey, string](max)
	if err != nil {
		panic(err) // only for a size below 1, which callers never pass
	}
	return chains{ids: ids}
}

// appendConversationOf appends the conversation id of a request that
// continues provider-held state: the conversation of the response it
// continues when that was seen, else an id made from the state's id (the
// same for every request naming it: the turns of a provider-held
// conversation, or the turns after one made before capture started).
func (c chains) appendConversationOf(dst []byte, info *flow.Info, req *oisp.AIRequest, continues string) ([]byte, bool) {
	if conv, ok := c.ids.Get(chainKeyOf(req.Provider, continues)); ok {
		return append(dst, conv...), true
	}
	h := conversationHash(info, req)
	writeString(h, "continues|")
	writeString(h, continues)
	return appendConversationSum(dst, h), false
}

// maxChainID is the longest id remembered: providers' ids are tens of
// bytes, and the table must not keep a megabyte a broken answer named.
const maxChainID = 256

// remember records that a later request continuing id belongs to the
// conversation conv. The strings are copied: id may point into a body.
func (c chains) remember(p *oisp.Provider, id, conv string) {
	if len(id) > maxChainID {
		return
	}
	k := chainKeyOf(p, strings.Clone(id))
	c.ids.Add(k, strings.Clone(conv))
}
