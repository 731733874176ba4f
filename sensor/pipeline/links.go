package pipeline

import (
	"container/list"
	"strconv"
	"sync"

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
	mu    sync.Mutex
	max   int
	order *list.List
	items map[string]*list.Element
}

type linkEntry struct {
	key string
	val link
}

func newLinker(max int) *linker {
	return &linker{max: max, order: list.New(), items: map[string]*list.Element{}}
}

// linkKey scopes call ids to the calling process: two processes may reuse
// an id, one process's loop never does.
func linkKey(info *flow.Info, callID string) string {
	return strconv.Itoa(info.Process.PID) + "|" + info.Process.Exe + "|" + callID
}

func (l *linker) put(key string, v link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.items[key]; ok {
		e.Value.(*linkEntry).val = v
		l.order.MoveToFront(e)
		return
	}
	l.items[key] = l.order.PushFront(&linkEntry{key: key, val: v})
	for l.order.Len() > l.max {
		old := l.order.Back()
		l.order.Remove(old)
		delete(l.items, old.Value.(*linkEntry).key)
	}
}

// answer marks the call's result as seen and returns the call's link as it
// was before. Agent loops resend every earlier tool result with each step,
// so only the first request that carries a result should emit a
// tool_result: first is false for the repeats.
func (l *linker) answer(key string) (call link, first bool) {
	l.mu.Lock()
	e, ok := l.items[key]
	if ok {
		l.order.MoveToFront(e)
		call = e.Value.(*linkEntry).val
		e.Value.(*linkEntry).val.answered = true
		l.mu.Unlock()
		return call, !call.answered
	}
	l.mu.Unlock()
	l.put(key, link{answered: true})
	return link{}, true
}
