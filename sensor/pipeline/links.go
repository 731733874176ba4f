package pipeline

import (
	"strconv"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// link remembers the agent.tool_call event of a call id until a later
// request carries the call's result.
type link struct {
	eventID string // "" when the call was not seen (made before capture)
	name    string
	// answered is set once a request carried the call's result.
	answered bool
}

// linker is a bounded LRU of call id → tool_call event.
type linker struct {
	mu    sync.Mutex // makes answer's read-then-mark one step
	calls *lru.Cache[string, link]
}

func newLinker(max int) *linker {
	calls, err := lru.New[string, link](max)
	if err != nil {
		panic(err) // only for a size below 1, which callers never pass
	}
	return &linker{calls: calls}
}

// linkKey scopes call ids to the calling process: two processes may reuse
// an id, one process's loop never does.
func linkKey(info *flow.Info, callID string) string {
	return strconv.Itoa(info.Process.PID) + "|" + info.Process.Exe + "|" + callID
}

func (l *linker) put(key string, v link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls.Add(key, v)
}

// answer marks the call's result as seen and returns the call's link as it
// was before. Agent loops resend every earlier tool result with each step,
// so only the first request that carries a result should emit a
// tool_result: first is false for the repeats.
func (l *linker) answer(key string) (call link, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	call, _ = l.calls.Get(key)
	answered := call
	answered.answered = true
	l.calls.Add(key, answered)
	return call, !call.answered
}
