//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
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

// idleMachine makes a Source's decoder class see a machine with idle CPU,
// whatever the load on the test machine.
func idleMachine(s *Source) { s.idleShare = func() (float64, bool) { return 1, true } }

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
	c.idleShare = func() (float64, bool) { return 0, false } // driven by hand below
	// The decoder's thread runs what it is sent on run and answers on ran
	// (two channels: one used both ways could hand a step back to its
	// sender).
	run, ran, done := make(chan func()), make(chan struct{}), make(chan struct{})
	var tid atomic.Int64
	go func() {
		defer close(done)
		leave := c.enter(slog.New(slog.NewTextHandler(io.Discard, nil)))
		tid.Store(int64(unix.Gettid()))
		ran <- struct{}{}
		for f := range run {
			f()
			ran <- struct{}{}
		}
		leave()
	}()
	<-ran
	on := func(f func()) { // runs f on the decoder's thread
		run <- f
		<-ran
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
	expect("after enter", unix.SCHED_NORMAL, 0)
	on(func() { c.caughtUp(0) })
	expect("caught up before the machine's idle CPU is known", unix.SCHED_NORMAL, 0)
	c.machineIdle(0.5)
	on(func() { c.caughtUp(0) })
	expect("caught up on a machine with idle CPU", unix.SCHED_IDLE, 0)

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

	c.machineIdle(0.01)
	expect("no idle CPU left", unix.SCHED_NORMAL, 4)
	on(func() { c.caughtUp(0) })
	expect("caught up on a busy machine", unix.SCHED_NORMAL, 4)
	c.machineIdle(0.10)
	on(func() { c.caughtUp(0) })
	expect("a little idle CPU (hysteresis)", unix.SCHED_NORMAL, 4)
	c.machineIdle(0.5)
	on(func() { c.caughtUp(0) })
	expect("idle CPU again", unix.SCHED_IDLE, 4)

	close(run) // leave
	<-done
	if got := policy(); got != unix.SCHED_NORMAL && got != -1 { // -1: the thread is gone
		t.Errorf("after leave: policy %d, want %d", got, unix.SCHED_NORMAL)
	}
}

// decodedIdle sends a request and reports whether its first chunk was
// decoded (the handler ran) on a thread in SCHED_IDLE.
func decodedIdle(t *testing.T, rec *recorder, curl string, srv *tlsServer) bool {
	t.Helper()
	var seen atomic.Int64
	seen.Store(-1)
	probe := func(string, flow.Chunk) { seen.CompareAndSwap(-1, int64(threadPolicy("thread-self"))) }
	rec.hook.Store(&probe)
	curlOnce(t, curl, srv, "/idle", []byte("idle"))
	waitFor(t, "a chunk of the request", 20*time.Second, func() bool { return seen.Load() != -1 })
	return seen.Load() == unix.SCHED_IDLE
}

// TestDecoderRunsInIdleClass: the handler runs on a SCHED_IDLE thread by
// default (once a sample has shown idle CPU; an exec record may lift it
// for a moment, so a few requests may be needed) and never with
// NoIdleDecoding.
func TestDecoderRunsInIdleClass(t *testing.T) {
	needClassControl(t)
	curl := needTool(t, "curl")
	t.Run("default", func(t *testing.T) {
		_, rec := startSourceWith(t, Config{}, idleMachine)
		srv := newTLSServer(t, false)
		waitFor(t, "a request decoded in SCHED_IDLE", 20*time.Second, func() bool { return decodedIdle(t, rec, curl, srv) })
	})
	t.Run("NoIdleDecoding", func(t *testing.T) {
		_, rec := startSourceWith(t, Config{NoIdleDecoding: true}, idleMachine)
		srv := newTLSServer(t, false)
		for range 3 {
			if decodedIdle(t, rec, curl, srv) {
				t.Fatal("a request was decoded in SCHED_IDLE with NoIdleDecoding")
			}
		}
	})
}

// TestDecoderLiftedWhenBehind: a decoder held up while records queue behind
// it is lifted to the normal class (and counted), and returns to SCHED_IDLE
// once it has caught up.
func TestDecoderLiftedWhenBehind(t *testing.T) {
	needClassControl(t)
	curl := needTool(t, "curl")
	src, rec := startSourceWith(t, Config{}, idleMachine)
	srv := newTLSServer(t, false)
	untilIdle := func(what string) {
		t.Helper()
		waitFor(t, what, 20*time.Second, func() bool { return decodedIdle(t, rec, curl, srv) })
	}
	untilIdle("the decoder in SCHED_IDLE")

	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var held atomic.Bool
	var liftsWhenHeld atomic.Int64
	lifted := make(chan int, 1)
	// The hook runs on the decoder's thread only. It holds the first chunk
	// it sees in SCHED_IDLE: curl's exec record lifts the decoder, and when
	// the request's chunks come in the same batch as the exec they are
	// decoded lifted, where there is nothing left to lift; such a request
	// is let through and another is sent. The lift count is read before
	// the class is: a lift that lands in between (on a loaded machine the
	// idle-class thread may wait long here) is then counted as the one
	// awaited, not taken for an earlier one.
	hook := func(string, flow.Chunk) {
		if held.Load() {
			return
		}
		lifts := src.Stats().DecoderLifts
		if threadPolicy("thread-self") != unix.SCHED_IDLE {
			return
		}
		liftsWhenHeld.Store(lifts)
		held.Store(true)
		<-release
		lifted <- threadPolicy("thread-self")
	}
	rec.hook.Store(&hook)
	for try := 0; !held.Load(); try++ {
		if try == 10 {
			t.Fatal("10 requests reached the decoder, none while it was in SCHED_IDLE")
		}
		curlOnce(t, curl, srv, fmt.Sprintf("/first-%d", try), []byte("first"))
		for deadline := time.Now().Add(3 * time.Second); !held.Load() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	second := curlOnce(t, curl, srv, "/second", []byte("second"))
	waitFor(t, "the held decoder to be lifted", 20*time.Second, func() bool {
		return src.Stats().DecoderLifts > liftsWhenHeld.Load()
	})
	releaseOnce.Do(func() { close(release) })
	if got := <-lifted; got != unix.SCHED_NORMAL {
		t.Errorf("held decoder's policy after the lift: %d, want %d", got, unix.SCHED_NORMAL)
	}
	checkHTTP1Exchange(t, rec, second, "POST", "/second", []byte("second"))
	untilIdle("the decoder back in SCHED_IDLE once caught up")
}

// TestParseCPUStat reads idle (idle + iowait) and total CPU time from the
// first line of /proc/stat, and this machine's file parses.
func TestParseCPUStat(t *testing.T) {
	idle, total, ok := parseCPUStat([]byte("cpu  10 2 30 400 5 6 7 8 50 60\ncpu0 1 1 1 1 1 1 1 1 0 0\n"))
	if !ok || idle != 405 || total != 468 {
		t.Errorf("parseCPUStat = %d, %d, %v; want 405, 468 (guest time not counted twice), true", idle, total, ok)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5\n", "cpu 1 2 x 4 5\n", "cpu 1 2 3\n"} {
		if _, _, ok := parseCPUStat([]byte(bad)); ok {
			t.Errorf("parseCPUStat(%q) ok", bad)
		}
	}
	var s cpuIdleSampler
	defer s.close()
	if _, ok := s.sample(); ok {
		t.Error("first sample: ok, want a baseline only")
	}
	time.Sleep(30 * time.Millisecond)
	share, ok := s.sample()
	if s.failed || (ok && (share < 0 || share > 1)) {
		t.Errorf("second sample: %v, %v (failed %v)", share, ok, s.failed)
	}
}
