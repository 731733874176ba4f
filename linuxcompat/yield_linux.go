//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"log/slog"
	"os"
	"runtime"
	"strconv"
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
// A thread in SCHED_IDLE on a machine with no idle CPU hardly runs, and
// the Go runtime's stop-the-world phases wait for every running thread, so
// the whole sensor, the reader included, would wait with it while the ring
// fills. So the reader also samples how much CPU the machine leaves idle
// (/proc/stat) and holds the decoder in SCHED_OTHER while that is under
// busyIdle, until it is back over freeIdle; and a ring an eighth full when
// the reader gets to it lifts the decoder too.
//
// The class is managed only where the sensor may leave SCHED_IDLE again
// (CAP_SYS_NICE, or an RLIMIT_NICE that allows its nice value).
type decoderClass struct {
	epoch      time.Time
	stallAfter time.Duration

	cpu        cpuIdleSampler
	nextSample time.Time
	// idleShare returns the machine's idle CPU share since its last call
	// (cpu.sample; tests replace it).
	idleShare func() (float64, bool)

	// progress is when the decoder last finished a batch, or when records
	// started waiting for it (ns since epoch).
	progress atomic.Int64
	lifts    atomic.Int64

	mu     sync.Mutex
	tid    int // the decoder's thread; 0 while the class is not managed
	nice   int
	lifted bool // at SCHED_OTHER until the decoder catches up
	busy   bool // the machine has no idle CPU: stay lifted
}

// Machine-wide idle CPU share below which the decoder stays in
// SCHED_OTHER, the share it must recover before it returns to SCHED_IDLE,
// and how often the reader samples it.
const (
	busyIdle       = 0.05
	freeIdle       = 0.15
	sampleInterval = 200 * time.Millisecond
)

func newDecoderClass(stallAfter time.Duration) *decoderClass {
	c := &decoderClass{epoch: time.Now(), stallAfter: stallAfter}
	c.idleShare = c.cpu.sample
	return c
}

func (c *decoderClass) now() int64 { return int64(time.Since(c.epoch)) }

// enter puts the calling goroutine's thread under the class's control,
// locking the goroutine to it. The returned function restores the
// thread's class and unlocks it; it must run on the same goroutine.
func (c *decoderClass) enter(log *slog.Logger) (leave func()) {
	runtime.LockOSThread()
	tid := unix.Gettid()
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid) // Linux returns 20 - nice
	if err != nil {
		log.Debug("ebpf: the decoder keeps its scheduling class", "err", err)
		runtime.UnlockOSThread()
		return func() {}
	}
	if !mayLeaveIdle(20 - raw) {
		log.Debug("ebpf: the decoder keeps its scheduling class: without CAP_SYS_NICE it could not leave SCHED_IDLE when it falls behind")
		runtime.UnlockOSThread()
		return func() {}
	}
	// The thread starts in SCHED_OTHER, as if lifted on a busy machine:
	// it moves to SCHED_IDLE after the first batch that finds it caught
	// up once a sample has shown idle CPU.
	c.mu.Lock()
	c.tid, c.nice, c.lifted, c.busy = tid, 20-raw, true, true
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
// with no progress for stallAfter lift the decoder, and so does a machine
// without idle CPU.
func (c *decoderClass) check(waitingNow int64) {
	if now := time.Now(); !now.Before(c.nextSample) {
		c.nextSample = now.Add(sampleInterval)
		if idle, ok := c.idleShare(); ok {
			c.machineIdle(idle)
		}
	}
	if waitingNow > 0 && time.Duration(c.now()-c.progress.Load()) > c.stallAfter {
		c.lift()
	}
}

// machineIdle takes the share of CPU time the machine left idle since the
// last sample.
func (c *decoderClass) machineIdle(idle float64) {
	switch {
	case idle < busyIdle:
		c.mu.Lock()
		c.busy = true
		c.mu.Unlock()
		c.lift()
	case idle > freeIdle:
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
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
	if c.tid != 0 && c.lifted && !c.busy && setClass(0, unix.SCHED_IDLE, c.nice) == nil {
		c.lifted = false
	}
}

// cpuIdleSampler reads the machine's idle and total CPU time from
// /proc/stat and returns the idle share since its previous reading.
type cpuIdleSampler struct {
	f           *os.File
	failed      bool
	idle, total uint64
	buf         [512]byte
}

func (s *cpuIdleSampler) sample() (float64, bool) {
	if s.failed {
		return 0, false
	}
	if s.f == nil {
		f, err := os.Open("/proc/stat")
		if err != nil {
			s.failed = true
			return 0, false
		}
		s.f = f
	}
	n, err := s.f.ReadAt(s.buf[:], 0)
	if n == 0 && err != nil {
		s.failed = true
		return 0, false
	}
	idle, total, ok := parseCPUStat(s.buf[:n])
	if !ok {
		s.failed = true
		return 0, false
	}
	prevIdle, prevTotal := s.idle, s.total
	s.idle, s.total = idle, total
	if prevTotal == 0 || total <= prevTotal || idle < prevIdle {
		return 0, false // the first reading, or counters that went back
	}
	return float64(idle-prevIdle) / float64(total-prevTotal), true
}

// close releases the sampler's file.
func (s *cpuIdleSampler) close() {
	if s.f != nil {
		s.f.Close()
	}
}

// parseCPUStat reads the first line of /proc/stat ("cpu  user nice system
// idle iowait irq softirq steal guest guest_nice"): idle counts idle and
// iowait, total the first eight fields (guest time is already counted in
// user and nice).
func parseCPUStat(b []byte) (idle, total uint64, ok bool) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return idle, total, true
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
