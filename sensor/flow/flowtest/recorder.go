// Package flowtest owns a flow handler for the tests of capture sources: a
// Recorder keeps every flow, chunk, close and system event a source hands
// it, and lets a test wait until what it expects has arrived.
package flowtest

import (
	"bytes"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// waitLimit bounds every wait: a source that never delivers fails the test
// instead of hanging it.
const waitLimit = 15 * time.Second

// Recorder is a flow.Handler and flow.SystemHandler that keeps everything.
// Its fields may be read under Mu (WaitFor's condition runs under it).
type Recorder struct {
	Mu      sync.Mutex
	Order   []string // flow ids in the order they were opened
	Infos   map[string]*flow.Info
	Chunks  map[string][]flow.Chunk
	Closes  map[string]flow.CloseInfo
	Systems []flow.SystemEvent

	changed chan struct{}
	gate    chan struct{}
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		Infos:   map[string]*flow.Info{},
		Chunks:  map[string][]flow.Chunk{},
		Closes:  map[string]flow.CloseInfo{},
		changed: make(chan struct{}, 1),
	}
}

// SetGate makes Data wait until gate is closed, to simulate a slow
// consumer; nil lets data through again.
func (r *Recorder) SetGate(gate chan struct{}) {
	r.Mu.Lock()
	r.gate = gate
	r.Mu.Unlock()
}

func (r *Recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Open implements flow.Handler.
func (r *Recorder) Open(info *flow.Info) {
	r.Mu.Lock()
	r.Infos[info.ID] = info
	r.Order = append(r.Order, info.ID)
	r.Mu.Unlock()
	r.poke()
}

// Data implements flow.Handler.
func (r *Recorder) Data(id string, c flow.Chunk) {
	r.Mu.Lock()
	gate := r.gate
	r.Mu.Unlock()
	if gate != nil {
		<-gate
	}
	r.Mu.Lock()
	r.Chunks[id] = append(r.Chunks[id], c)
	r.Mu.Unlock()
	r.poke()
}

// Close implements flow.Handler.
func (r *Recorder) Close(id string, ci flow.CloseInfo) {
	r.Mu.Lock()
	r.Closes[id] = ci
	r.Mu.Unlock()
	r.poke()
}

// System implements flow.SystemHandler.
func (r *Recorder) System(ev flow.SystemEvent) {
	r.Mu.Lock()
	r.Systems = append(r.Systems, ev)
	r.Mu.Unlock()
	r.poke()
}

// WaitFor polls cond, called under Mu, until it holds; the test fails after
// 15 s naming what it waited for.
func (r *Recorder) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		r.Mu.Lock()
		ok := cond()
		r.Mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// WaitClosed waits for n closed flows and returns every flow id in open
// order.
func (r *Recorder) WaitClosed(t testing.TB, n int) []string {
	t.Helper()
	r.WaitFor(t, strconv.Itoa(n)+" closed flows", func() bool { return len(r.Closes) >= n })
	r.Mu.Lock()
	defer r.Mu.Unlock()
	return append([]string(nil), r.Order...)
}

// FlowCount reports how many flows were opened.
func (r *Recorder) FlowCount() int {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	return len(r.Order)
}

// FlowByHost returns the id of the first flow whose RemoteHost is host, or
// "". It does not lock: call it in a WaitFor condition or once the source
// has stopped delivering.
func (r *Recorder) FlowByHost(host string) string {
	for _, id := range r.Order {
		if r.Infos[id].RemoteHost == host {
			return id
		}
	}
	return ""
}

// Bytes joins the payload of one flow's direction and stream.
func (r *Recorder) Bytes(id string, dir flow.Direction, stream int64) []byte {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	return Joined(r.Chunks[id], dir, stream)
}

// Gap sums the bytes one flow's direction reported lost.
func (r *Recorder) Gap(id string, dir flow.Direction) int64 {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	return Gaps(r.Chunks[id], dir)
}

// Fin reports whether any stream of one flow's direction ended.
func (r *Recorder) Fin(id string, dir flow.Direction) bool {
	r.Mu.Lock()
	defer r.Mu.Unlock()
	for _, c := range r.Chunks[id] {
		if c.Dir == dir && c.Fin {
			return true
		}
	}
	return false
}

// Joined concatenates the payload of chunks in one direction and stream.
func Joined(chunks []flow.Chunk, dir flow.Direction, stream int64) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		if c.Dir == dir && c.StreamID == stream {
			b.Write(c.Data)
		}
	}
	return b.Bytes()
}

// Gaps sums the lost bytes reported by chunks in one direction.
func Gaps(chunks []flow.Chunk, dir flow.Direction) int64 {
	var n int64
	for _, c := range chunks {
		if c.Dir == dir {
			n += c.Gap
		}
	}
	return n
}

// FinSeen reports whether a chunk ended the stream in that direction.
func FinSeen(chunks []flow.Chunk, dir flow.Direction, stream int64) bool {
	for _, c := range chunks {
		if c.Dir == dir && c.StreamID == stream && c.Fin {
			return true
		}
	}
	return false
}
