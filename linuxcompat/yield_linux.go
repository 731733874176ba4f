//go:build linux && amd64

package linuxcompat

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// decoderClass keeps the thread that decodes records — and runs the whole
// pipeline behind the handler — in the SCHED_IDLE scheduling class. There
// it runs on CPU time the observed applications leave unused and steps
// aside the moment one of them wakes up, instead of taking turns with them
// (a lower nice value only shrinks its turns). So that it cannot starve
// on a busy machine, the ring reader, which keeps the normal class, lifts
// it back to SCHED_OTHER when it falls behind: a backlog of an eighth of
// the queue, records waiting with no progress for stallAfter, or a record
// that gates probe placement (an exec, a new executable mapping). The
// decoder returns to SCHED_IDLE once it has caught up.
//
// The class is managed only where the sensor may leave SCHED_IDLE again
// (CAP_SYS_NICE, or an RLIMIT_NICE that allows its nice value).
type decoderClass struct {
	epoch      time.Time
	stallAfter time.Duration

	// progress is when the decoder last finished a batch, or when records
	// started waiting for it (ns since epoch).
	progress atomic.Int64
	lifts    atomic.Int64

	mu     sync.Mutex
	tid    int // the decoder's thread; 0 while the class is not managed
	nice   int
	lifted bool // at SCHED_OTHER until the decoder catches up
}

func newDecoderClass(stallAfter time.Duration) *decoderClass {
	return &decoderClass{epoch: time.Now(), stallAfter: stallAfter}
}

func (c *decoderClass) now() int64 { return int64(time.Since(c.epoch)) }

// enter moves the calling goroutine's thread into SCHED_IDLE, locking the
// goroutine to it. The returned function restores the thread's class and
// unlocks it; it must run on the same goroutine.
func (c *decoderClass) enter(log *slog.Logger) (leave func()) {
	runtime.LockOSThread()
	tid := unix.Gettid()
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid) // Linux returns 20 - nice
	if err == nil && !mayLeaveIdle(20-raw) {
		log.Debug("ebpf: the decoder keeps its scheduling class: without CAP_SYS_NICE it could not leave SCHED_IDLE when it falls behind")
		runtime.UnlockOSThread()
		return func() {}
	}
	if err == nil {
		err = setClass(0, unix.SCHED_IDLE, 20-raw)
	}
	if err != nil {
		log.Debug("ebpf: the decoder keeps its scheduling class", "err", err)
		runtime.UnlockOSThread()
		return func() {}
	}
	c.mu.Lock()
	c.tid, c.nice, c.lifted = tid, 20-raw, false
	c.mu.Unlock()
	c.progress.Store(c.now())
	return func() {
		c.mu.Lock()
		c.tid = 0
		nice := c.nice
		c.mu.Unlock()
		// Should that fail, the thread stays locked and the runtime
		// retires it with the goroutine.
		if setClass(0, unix.SCHED_NORMAL, nice) == nil {
			runtime.UnlockOSThread()
		}
	}
}

// waiting is called by the reader after it queued records: waitingBefore
// records were queued before them, waitingNow are now, urgent says whether
// the new ones hold a record that gates probe placement.
func (c *decoderClass) waiting(waitingBefore, waitingNow, limit int64, urgent bool) {
	if waitingBefore == 0 {
		// The decoder had caught up: its clock starts now.
		c.progress.Store(c.now())
	}
	if urgent || waitingNow >= max(limit/8, 1) {
		c.lift()
	}
}

// check is called by the reader on each of its wake-ups: records that wait
// with no progress for stallAfter lift the decoder.
func (c *decoderClass) check(waitingNow int64) {
	if waitingNow > 0 && time.Duration(c.now()-c.progress.Load()) > c.stallAfter {
		c.lift()
	}
}

// lift moves the decoder's thread back to SCHED_OTHER.
func (c *decoderClass) lift() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tid == 0 || c.lifted {
		return
	}
	if setClass(c.tid, unix.SCHED_NORMAL, c.nice) == nil {
		c.lifted = true
		c.lifts.Add(1)
	}
}

// caughtUp is called by the decoder after each batch, on its own thread:
// with nothing left waiting it returns to SCHED_IDLE.
func (c *decoderClass) caughtUp(waitingNow int64) {
	c.progress.Store(c.now())
	if waitingNow > 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tid != 0 && c.lifted && setClass(0, unix.SCHED_IDLE, c.nice) == nil {
		c.lifted = false
	}
}

// setClass sets the scheduling policy of thread tid (0: the caller's),
// keeping its nice value.
func setClass(tid, policy, nice int) error {
	return unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: uint32(policy), Nice: int32(nice)}, 0)
}

// mayLeaveIdle reports whether a thread at this nice value may move from
// SCHED_IDLE back to SCHED_OTHER: the kernel asks for CAP_SYS_NICE or an
// RLIMIT_NICE of at least 20 - nice.
func mayLeaveIdle(nice int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) == nil && data[0].Effective&(1<<unix.CAP_SYS_NICE) != 0 {
		return true
	}
	var rl unix.Rlimit
	return unix.Getrlimit(unix.RLIMIT_NICE, &rl) == nil && rl.Cur >= uint64(20-nice)
}
