package pipeline

import (
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
	owner    caller
}

// caller is the process a call id belongs to. Two processes may reuse an
// id, one process's loop never does. The zero pid means the capture
// could not attribute the flow (a proxied socket closed before its owner
// was found, say): such a flow matches a call of any process rather
// than splitting one agent loop in two.
type caller struct {
	pid int
	exe string
}

func (c caller) known() bool { return c.pid > 0 }

func (c caller) matches(o caller) bool {
	return c == o || !c.known() || !o.known()
}

func callerOf(info *flow.Info) caller {
	return caller{pid: info.Process.PID, exe: info.Process.Exe}
}

// linker is a bounded LRU of call id → the tool_call events carrying it,
// usually one.
type linker struct {
	mu    sync.Mutex // makes answer's read-then-mark one step
	calls *lru.Cache[string, []link]
}

func newLinker(max int) *linker {
	calls, err := lru.New[string, []link](max)
	if err != nil {
		panic(err) // only for a size below 1, which callers never pass
	}
	return &linker{calls: calls}
}

// find returns the index of the link owned by who: an exact owner first,
// then a link an unattributed side can match, unanswered ones before
// answered ones.
func find(links []link, who caller) int {
	for i, l := range links {
		if l.owner == who {
			return i
		}
	}
	match := -1
	for i, l := range links {
		if l.owner.matches(who) {
			if !l.answered {
				return i
			}
			if match < 0 {
				match = i
			}
		}
	}
	return match
}

// put records a tool_call of callID made by who. The stored slices are
// only touched under l.mu, so they are changed in place.
func (l *linker) put(who caller, callID string, v link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v.owner = who
	links, _ := l.calls.Get(callID)
	if i := find(links, who); i >= 0 && (links[i].owner == who || !links[i].owner.known()) {
		// A repeat of the call, or a call whose result was seen from a
		// flow that could not be attributed: the newest call wins.
		links[i] = v
		return
	}
	l.calls.Add(callID, append(links, v))
}

// answer marks the call's result as seen and returns the call's link as it
// was before. Agent loops resend every earlier tool result with each step,
// so only the first request that carries a result should emit a
// tool_result: first is false for the repeats.
func (l *linker) answer(who caller, callID string) (call link, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	links, _ := l.calls.Get(callID)
	i := find(links, who)
	if i < 0 {
		l.calls.Add(callID, append(links, link{owner: who, answered: true}))
		return link{}, true
	}
	call = links[i]
	links[i].answered = true
	if !links[i].owner.known() {
		links[i].owner = who
	}
	return call, !call.answered
}
