//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// threadPolicy reads a task's scheduling policy from /proc/<task>/stat
// (field 41), or -1 when it cannot.
func threadPolicy(task string) int {
	raw, err := os.ReadFile("/proc/" + task + "/stat")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 39 {
		return -1
	}
	n, err := strconv.Atoi(f[38]) // fields after the command start at 3
	if err != nil {
		return -1
	}
	return n
}

func needClassControl(t *testing.T) {
	t.Helper()
	if !mayLeaveIdle(0) {
		t.Skip("needs CAP_SYS_NICE (or RLIMIT_NICE ≥ 20) to move a thread out of SCHED_IDLE")
	}
}

// TestDecoderClassLifecycle drives decoderClass by hand: idle while caught
// up; lifted by a backlog of an eighth of the queue, by a record that gates
// probe placement and by records waiting past stallAfter; back to idle once
// nothing waits; and the thread's class restored when it leaves.
func TestDecoderClassLifecycle(t *testing.T) {
	needClassControl(t)
	c := newDecoderClass(50 * time.Millisecond)
	steps := make(chan func(), 1)
	done := make(chan struct{})
	var tid atomic.Int64
	go func() {
		defer close(done)
		leave := c.enter(slog.New(slog.NewTextHandler(io.Discard, nil)))
		tid.Store(int64(unix.Gettid()))
		steps <- nil
		for step := range steps {
			if step == nil {
				break
			}
			step()
			steps <- nil
		}
		leave()
		steps <- func() {}
	}()
	<-steps
	on := func(f func()) { // runs f on the decoder's thread
		steps <- f
		<-steps
	}
	policy := func() int { return threadPolicy(fmt.Sprintf("self/task/%d", tid.Load())) }
	expect := func(what string, want int, lifts int64) {
		t.Helper()
		if got := policy(); got != want {
			t.Errorf("%s: policy %d, want %d", what, got, want)
		}
		if got := c.lifts.Load(); got != lifts {
			t.Errorf("%s: %d lifts, want %d", what, got, lifts)
		}
	}
	expect("after enter", unix.SCHED_IDLE, 0)

	c.waiting(0, 10, 16384, false)
	c.check(10)
	expect("a few records waiting", unix.SCHED_IDLE, 0)
	on(func() { c.caughtUp(0) })

	c.waiting(0, 2048, 16384, false)
	expect("a backlog of an eighth of the queue", unix.SCHED_NORMAL, 1)
	on(func() { c.caughtUp(100) })
	expect("still behind", unix.SCHED_NORMAL, 1)
	on(func() { c.caughtUp(0) })
	expect("caught up", unix.SCHED_IDLE, 1)

	c.waiting(0, 1, 16384, true)
	expect("an exec record", unix.SCHED_NORMAL, 2)
	on(func() { c.caughtUp(0) })

	c.waiting(0, 1, 16384, false)
	time.Sleep(80 * time.Millisecond)
	c.check(1)
	expect("no progress past stallAfter", unix.SCHED_NORMAL, 3)
	on(func() { c.caughtUp(0) })
	expect("caught up again", unix.SCHED_IDLE, 3)

	on(func() { runtime.Gosched() })
	steps <- nil // leave
	<-steps
	<-done
	if got := policy(); got != unix.SCHED_NORMAL && got != -1 { // -1: the thread is gone
		t.Errorf("after leave: policy %d, want %d", got, unix.SCHED_NORMAL)
	}
}

// TestDecoderRunsInIdleClass: the handler runs on a SCHED_IDLE thread by
// default and at the normal class with NoIdleDecoding.
func TestDecoderRunsInIdleClass(t *testing.T) {
	needClassControl(t)
	curl := needTool(t, "curl")
	for _, c := range []struct {
		name   string
		cfg    Config
		wantIn bool // some Data call ran in SCHED_IDLE
	}{
		{"default", Config{}, true},
		{"NoIdleDecoding", Config{NoIdleDecoding: true}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, rec := startSource(t, c.cfg)
			var idle, other atomic.Int64
			hook := func(string, flow.Chunk) {
				if threadPolicy("thread-self") == unix.SCHED_IDLE {
					idle.Add(1)
				} else {
					other.Add(1)
				}
			}
			rec.hook.Store(&hook)
			srv := newTLSServer(t, false)
			body := []byte("class " + c.name)
			pid := curlOnce(t, curl, srv, "/class", body)
			checkHTTP1Exchange(t, rec, pid, "POST", "/class", body)
			// A record of the exec may have lifted the decoder for a
			// moment; some chunk must still have been decoded idle.
			if got := idle.Load() > 0; got != c.wantIn {
				t.Errorf("Data calls in SCHED_IDLE: %d, other: %d; want some in SCHED_IDLE: %v", idle.Load(), other.Load(), c.wantIn)
			}
		})
	}
}

// TestDecoderLiftedWhenBehind: a decoder held up while records queue behind
// it is lifted to the normal class (and counted), and returns to SCHED_IDLE
// once it has caught up.
func TestDecoderLiftedWhenBehind(t *testing.T) {
	needClassControl(t)
	curl := needTool(t, "curl")
	src, rec := startSource(t, Config{})
	release := make(chan struct{})
	var held atomic.Bool
	lifted := make(chan int, 1)
	hook := func(string, flow.Chunk) {
		if held.CompareAndSwap(false, true) {
			<-release
			lifted <- threadPolicy("thread-self")
		}
	}
	rec.hook.Store(&hook)
	srv := newTLSServer(t, false)
	curlOnce(t, curl, srv, "/first", []byte("first"))
	waitFor(t, "the decoder to reach the first chunk", 20*time.Second, held.Load)
	second := curlOnce(t, curl, srv, "/second", []byte("second"))
	waitFor(t, "the decoder to be lifted", 20*time.Second, func() bool { return src.Stats().DecoderLifts > 0 })
	close(release)
	if got := <-lifted; got != unix.SCHED_NORMAL {
		t.Errorf("held decoder's policy after the lift: %d, want %d", got, unix.SCHED_NORMAL)
	}
	checkHTTP1Exchange(t, rec, second, "POST", "/second", []byte("second"))
	var after atomic.Int64
	after.Store(-1)
	probe := func(string, flow.Chunk) { after.CompareAndSwap(-1, int64(threadPolicy("thread-self"))) }
	waitFor(t, "the decoder back in SCHED_IDLE", 20*time.Second, func() bool {
		after.Store(-1)
		rec.hook.Store(&probe)
		curlOnce(t, curl, srv, "/third", []byte("third"))
		waitFor(t, "a chunk of the third request", 20*time.Second, func() bool { return after.Load() != -1 })
		return after.Load() == unix.SCHED_IDLE
	})
}
