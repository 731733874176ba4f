package socket

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// recorder is a flow.Handler + SystemHandler that keeps everything.
type recorder struct {
	mu      sync.Mutex
	changed chan struct{}
	order   []string
	infos   map[string]*flow.Info
	chunks  map[string][]flow.Chunk
	closes  map[string]flow.CloseInfo
	systems []flow.SystemEvent
	block   chan struct{} // when non-nil, Data waits on it
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}, 1), infos: map[string]*flow.Info{},
		chunks: map[string][]flow.Chunk{}, closes: map[string]flow.CloseInfo{}}
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Open(info *flow.Info) {
	r.mu.Lock()
	r.infos[info.ID] = info
	r.order = append(r.order, info.ID)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Data(id string, c flow.Chunk) {
	r.mu.Lock()
	b := r.block
	r.mu.Unlock()
	if b != nil {
		<-b
	}
	r.mu.Lock()
	r.chunks[id] = append(r.chunks[id], c)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Close(id string, ci flow.CloseInfo) {
	r.mu.Lock()
	r.closes[id] = ci
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) System(ev flow.SystemEvent) {
	r.mu.Lock()
	r.systems = append(r.systems, ev)
	r.mu.Unlock()
	r.poke()
}

// waitFor polls cond (under the lock) until it holds or 10 s pass.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// flowByHost returns the id of the first flow whose RemoteHost is host.
func (r *recorder) flowByHost(host string) string {
	for _, id := range r.order {
		if r.infos[id].RemoteHost == host {
			return id
		}
	}
	return ""
}

// joined concatenates the payload of one direction (and stream).
func joined(chunks []flow.Chunk, dir flow.Direction, stream int64) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		if c.Dir == dir && c.StreamID == stream {
			b.Write(c.Data)
		}
	}
	return b.Bytes()
}

func gaps(chunks []flow.Chunk, dir flow.Direction) int64 {
	var n int64
	for _, c := range chunks {
		if c.Dir == dir {
			n += c.Gap
		}
	}
	return n
}

func finSeen(chunks []flow.Chunk, dir flow.Direction, stream int64) bool {
	for _, c := range chunks {
		if c.Dir == dir && c.StreamID == stream && c.Fin {
			return true
		}
	}
	return false
}
