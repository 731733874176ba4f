package provider

import (
	"testing"
	"time"
	"unsafe"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// TestResultWithResponseRoomSizeClass holds the result allocated with its
// response room within the 768-byte size class: an object over 512 bytes
// that holds pointers carries an 8-byte header, so one word more and every
// exchange with a response takes 896 bytes.
func TestResultWithResponseRoomSizeClass(t *testing.T) {
	var withResponse struct {
		resultParts
		resp responseParts
	}
	if n := unsafe.Sizeof(withResponse); n+8 > 768 {
		t.Errorf("result with response room is %d bytes (and the header), over the 768-byte size class", n)
	}
}

// TestUsageCostsInBlock holds a usage made by newUsageBlock to costs priced
// in its block's room, without an allocation of their own, and any other
// usage to costs of its own.
func TestUsageCostsInBlock(t *testing.T) {
	reg := coreRegistry(t)
	now := time.Unix(1700000000, 0)
	x := &httpmsg.Exchange{
		Request:  httpmsg.Request{Method: "POST", Target: "/v1/chat/completions", Authority: "api.openai.com", Scheme: "https", End: now},
		Response: &httpmsg.Response{Status: 200, End: now.Add(time.Second)},
	}
	tokens := func(in, out int) *openaiUsageBody {
		return &openaiUsageBody{PromptTokens: jInt{V: in, OK: true}, CompletionTokens: jInt{V: out, OK: true}}
	}
	res := newResult("openai.chat", Target{ProviderID: "openai", Known: true}, x, "chat")
	resp := newResponse(res, x)
	res.Response = resp
	resp.Model = &oisp.Model{ID: "gpt-4o"}
	resp.Usage = openaiUsage(res, tokens(1000, 1000))
	finishResult(Env{Registry: reg}, "openai", res)
	u := resp.Usage
	if u.InputCostUSD == nil || u.TotalCostUSD == nil || u.Cost != "" {
		t.Fatalf("usage not priced: %+v", u)
	}
	if room := &res.usageRoom.costs; u.InputCostUSD != &room[0] || u.OutputCostUSD != &room[1] || u.TotalCostUSD != &room[2] {
		t.Errorf("costs not in the usage block's room")
	}
	if *u.InputCostUSD != 0.0025 || *u.OutputCostUSD != 0.01 || *u.TotalCostUSD != 0.0125 {
		t.Errorf("costs %v %v %v", *u.InputCostUSD, *u.OutputCostUSD, *u.TotalCostUSD)
	}
	// A usage made elsewhere (nil keeper) gets costs of its own.
	other := openaiUsage(nil, tokens(2000, 0))
	resp.Usage = other
	finishResult(Env{Registry: reg}, "openai", res)
	if other.InputCostUSD == nil || other.InputCostUSD == u.InputCostUSD || *u.InputCostUSD != 0.0025 || *other.InputCostUSD != 0.005 {
		t.Errorf("another usage's costs share the block's")
	}
	// So does one of no response: an unknown model leaves the room alone.
	resp.Usage = u
	resp.Model = &oisp.Model{ID: "no-such-model"}
	finishResult(Env{Registry: reg}, "openai", res)
	if u.Cost != "unknown" || u.InputCostUSD != nil || res.usageRoom.costs[0] != 0.0025 {
		t.Errorf("unknown price: %+v, room %v", u, res.usageRoom.costs)
	}
}
