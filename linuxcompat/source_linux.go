//go:build linux && amd64

package linuxcompat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// System event bits (sys_events in bpf/oisp.bpf.c).
const (
	sysExec    = 1
	sysExit    = 2
	sysConnect = 4
	sysFiles   = 8
	sysLibs    = 16
)

// Available reports whether this machine can run the eBPF source: root (or
// CAP_BPF+CAP_PERFMON), uprobes, raw tracepoints and BPF ring buffers.
func Available() bool {
	return availability() == nil
}

func availability() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (CAP_BPF, CAP_PERFMON)", ErrNotSupported)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"kprobe/uprobe programs", features.HaveProgramType(ebpf.Kprobe)},
		{"raw tracepoint programs", features.HaveProgramType(ebpf.RawTracepoint)},
		{"ring buffer maps (Linux >= 5.8)", features.HaveMapType(ebpf.RingBuf)},
		{"bpf_loop (Linux >= 5.17)", features.HaveProgramHelper(ebpf.Kprobe, asm.FnLoop)},
	}
	for _, c := range checks {
		if c.err != nil {
			return fmt.Errorf("%w: %s: %v", ErrNotSupported, c.name, c.err)
		}
	}
	return nil
}

// Source captures TLS plaintext and host activity with eBPF. Create it with
// New and call Run once.
type Source struct {
	cfg  Config
	log  *slog.Logger
	objs bpfObjects
	// multi is true when probes attach through uprobe_multi links.
	multi bool

	// bootWall is the wall-clock time of CLOCK_MONOTONIC zero, to convert
	// bpf_ktime_get_ns timestamps.
	bootWall time.Time

	ready   chan struct{}
	ran     atomic.Bool
	closing atomic.Bool

	mu          sync.Mutex
	attachments []Attachment
	// finalKernel holds the kernel counters read just before the maps were
	// closed, so Stats stays meaningful after Run returns.
	finalKernel map[oispStatId]int64

	user userCounters
	// class is the decoder's scheduling class while Run is active (nil
	// with NoIdleDecoding).
	class atomic.Pointer[decoderClass]

	// attachFault, when set (tests only), is asked before each attach and
	// makes it fail with the error it returns, as the kernel may.
	attachFault func(attachReq) error
	// syscallHooks is how the syscall programs were attached (a string).
	syscallHooks atomic.Value
	// noSyscallTracepoints (tests only) makes Run use the raw syscall
	// tracepoints, as where tracefs is missing.
	noSyscallTracepoints bool
	// idleShare, when set (tests only), stands in for the machine's idle
	// CPU share that the decoder's class samples.
	idleShare func() (float64, bool)
}

type userCounters struct {
	recordsRead, queueDropRecords, queueDropBytes, decodeErrors atomic.Int64
	flowsOpened, flowsClosed                                    atomic.Int64
	attachFailures, attachedFiles, unsupportedFiles             atomic.Int64
	processes, attachQueueFull                                  atomic.Int64
	holdsExpired                                                atomic.Int64
}

// New loads the BPF programs and maps (nothing is attached until Run).
// It returns an error wrapping ErrNotSupported when the kernel or the
// privileges do not allow eBPF capture.
func New(cfg Config) (*Source, error) {
	cfg = cfg.withDefaults()
	if err := availability(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	spec, err := loadOisp()
	if err != nil {
		return nil, fmt.Errorf("load BPF spec: %w", err)
	}
	filtered := len(cfg.PIDs)+len(cfg.Executables)+len(cfg.Cgroups) > 0
	var events uint32 = sysLibs | sysExit | sysExec
	if !cfg.NoSystemEvents {
		events |= sysConnect
		if !cfg.NoFileEvents {
			events |= sysFiles
		}
	}
	settings := map[string]uint32{
		"self_tgid":      uint32(os.Getpid()),
		"filter_mode":    boolU32(filtered),
		"filter_cgroups": boolU32(len(cfg.Cgroups) > 0),
		"max_call_bytes": uint32(cfg.MaxCallBytes),
		"sys_events":     events,
	}
	for name, v := range settings {
		vs, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("BPF object lacks variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	if vs, ok := spec.Variables["wake_bytes"]; !ok {
		return nil, fmt.Errorf("BPF object lacks variable wake_bytes")
	} else if err := vs.Set(uint64(cfg.RingBufferBytes / wakeFraction)); err != nil {
		return nil, fmt.Errorf("set wake_bytes: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(cfg.RingBufferBytes)

	s := &Source{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}
	s.multi = features.HaveBPFLinkUprobeMulti() == nil
	if err := s.objs.load(spec, s.multi); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load BPF objects: %w (verifier log tail: %s)", err, tail(ve.Log, 5))
		}
		return nil, fmt.Errorf("load BPF objects: %w", err)
	}
	if err := s.installFilters(); err != nil {
		s.objs.Close()
		return nil, err
	}
	mono := monotonicNow()
	s.bootWall = time.Now().Add(-time.Duration(mono))
	return s, nil
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

func monotonicNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// wall converts a bpf_ktime_get_ns timestamp to wall-clock time.
func (s *Source) wall(ns uint64) time.Time {
	return s.bootWall.Add(time.Duration(ns))
}

// Ready is closed once Run has attached to the processes and libraries that
// existed when it started. Tests and the CLI wait on it before generating
// traffic they expect to see.
func (s *Source) Ready() <-chan struct{} { return s.ready }

// Attachments returns the attach report so far: every TLS-capable binary or
// library found, probed or not, and why not.
func (s *Source) Attachments() []Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Attachment(nil), s.attachments...)
}

// addAttachment records the latest outcome for a file: a retry replaces
// the earlier record of the same inode.
func (s *Source) addAttachment(a Attachment) {
	s.mu.Lock()
	replaced := false
	for i, old := range s.attachments {
		if old.Inode == a.Inode && old.Dev == a.Dev {
			s.attachments[i] = a
			replaced = true
			break
		}
	}
	if !replaced {
		s.attachments = append(s.attachments, a)
	}
	s.mu.Unlock()
	switch a.Status {
	case Attached:
		s.user.attachedFiles.Add(1)
	case Failed:
		s.user.attachFailures.Add(1)
	case Unsupported:
		s.user.unsupportedFiles.Add(1)
	}
}

// Stats returns the kernel counters (summed over CPUs) and the user-space
// reader/decoder counters. After Run returns it keeps returning the final
// values. Safe for concurrent use.
func (s *Source) Stats() Stats {
	var st Stats
	k := s.kernelStats()
	{
		st.TLSCalls = k[oispStatIdST_TLS_CALLS]
		st.TLSChunks = k[oispStatIdST_TLS_CHUNKS]
		st.TLSBytes = k[oispStatIdST_TLS_BYTES]
		st.TruncatedCalls = k[oispStatIdST_TLS_TRUNC_CALLS]
		st.TruncatedBytes = k[oispStatIdST_TLS_TRUNC_BYTES]
		st.RingFullTLSRecords = k[oispStatIdST_RB_FAIL_TLS]
		st.RingFullTLSBytes = k[oispStatIdST_RB_FAIL_TLS_BYTES]
		st.RingFullSysRecords = k[oispStatIdST_RB_FAIL_SYS]
		st.ReadUserFailures = k[oispStatIdST_READ_USER_FAIL]
		st.ReadUserFailedBytes = k[oispStatIdST_READ_USER_FAIL_BYTES]
		st.ReturnsWithoutEntry = k[oispStatIdST_RET_WITHOUT_ENTRY]
		st.SystemRecords = k[oispStatIdST_SYS_EVENTS]
		st.FileWriteBytes = k[oispStatIdST_FILE_WRITE_BYTES]
		st.TrackedFilesFull = k[oispStatIdST_TRACKED_FILES_FULL]
		st.TLSBinds = k[oispStatIdST_TLS_BINDS]
	}
	st.RecordsRead = s.user.recordsRead.Load()
	st.QueueDropRecords = s.user.queueDropRecords.Load()
	st.QueueDropBytes = s.user.queueDropBytes.Load()
	st.DecodeErrors = s.user.decodeErrors.Load()
	if c := s.class.Load(); c != nil {
		st.DecoderLifts = c.lifts.Load()
	}
	st.FlowsOpened = s.user.flowsOpened.Load()
	st.FlowsClosed = s.user.flowsClosed.Load()
	st.AttachFailures = s.user.attachFailures.Load()
	st.AttachedFiles = s.user.attachedFiles.Load()
	st.UnsupportedFiles = s.user.unsupportedFiles.Load()
	st.ProcessesObserved = s.user.processes.Load()
	st.AttachQueueFull = s.user.attachQueueFull.Load()
	st.UnboundFlows = s.user.holdsExpired.Load()
	return st
}

func (s *Source) kernelStats() map[oispStatId]int64 {
	if s.closing.Load() {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.finalKernel
	}
	out := map[oispStatId]int64{}
	for i := oispStatId(0); i < oispStatIdST_MAX; i++ {
		var perCPU []uint64
		if err := s.objs.Stats.Lookup(uint32(i), &perCPU); err != nil {
			continue
		}
		var sum uint64
		for _, v := range perCPU {
			sum += v
		}
		out[i] = int64(sum)
	}
	return out
}

// Run attaches the probes, delivers flows and system events to h until ctx
// is cancelled, then detaches everything and closes open flows with reason
// "source_closed". h may implement flow.SystemHandler to receive host
// activity. Run may be called once.
func (s *Source) Run(ctx context.Context, h flow.Handler) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("linuxcompat: Run called twice")
	}
	defer s.objs.Close()
	defer func() {
		final := s.kernelStats()
		s.mu.Lock()
		s.finalKernel = final
		s.mu.Unlock()
		s.closing.Store(true)
	}()

	var links []link.Link
	defer func() { closeAll(links) }()
	for _, tp := range []struct {
		name string
		prog *ebpf.Program
	}{
		{"sched_process_exec", s.objs.OnExec},
		{"sched_process_exit", s.objs.OnExit},
		{"sched_process_fork", s.objs.OnFork},
	} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: tp.prog})
		if err != nil {
			return fmt.Errorf("attach raw tracepoint %s: %w", tp.name, err)
		}
		links = append(links, l)
	}
	sysLinks, err := s.attachSyscallHooks()
	if err != nil {
		return err
	}
	links = append(links, sysLinks...)
	// With the fork tracepoint in place, children forked from now on are
	// traced by the kernel; those already running are found in /proc.
	s.traceRunningDescendants()

	rd, err := ringbuf.NewReader(s.objs.Events)
	if err != nil {
		return fmt.Errorf("open ring buffer: %w", err)
	}
	defer rd.Close()

	att := newAttacher(s)
	defer att.close()

	// Every batch holds at least one record and at most QueueRecords are
	// queued at once (inQueue), so a send on queue never blocks.
	queue := make(chan []queued, s.cfg.QueueRecords)
	var inQueue atomic.Int64
	drops := newDropLedger()
	var wg sync.WaitGroup

	waiter, err := newRingWaiter(s.objs.Events)
	if err != nil {
		s.log.Debug("ebpf: ring buffer reader falls back to blocking reads", "err", err)
		waiter = nil
	}
	var class *decoderClass
	if !s.cfg.NoIdleDecoding {
		class = newDecoderClass(4 * s.cfg.ReadInterval)
		defer class.cpu.close()
		if s.idleShare != nil {
			class.idleShare = s.idleShare
		}
		s.class.Store(class)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		s.readLoop(rd, waiter, queue, &inQueue, drops, class)
	}()

	attachCtx, stopAttach := context.WithCancel(ctx)
	defer stopAttach()
	wg.Add(1)
	go func() {
		defer wg.Done()
		att.run(attachCtx)
	}()

	stopStats := s.startStatsExport(ctx)
	defer stopStats()

	dec := newDecoder(s, h, att, drops)
	go func() {
		<-ctx.Done()
		// Unblocks readLoop, which closes queue.
		if waiter != nil {
			waiter.closeReader(rd)
		} else {
			rd.Close()
		}
	}()
	decoded := make(chan struct{})
	go func() {
		defer close(decoded)
		s.decodeLoop(dec, queue, &inQueue, class)
	}()
	<-decoded
	dec.closeAll("source_closed")
	stopAttach()
	wg.Wait()
	stopStats()
	return nil
}

// decodeLoop decodes batches until the queue closes. With class set it
// runs on a thread of its own in the SCHED_IDLE class (decoderClass).
func (s *Source) decodeLoop(dec *decoder, queue <-chan []queued, inQueue *atomic.Int64, class *decoderClass) {
	if class != nil {
		defer class.enter(s.log)()
	}
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	// held fires when flows still wait for their socket and no batch came
	// to end their wait (see decoder.endBatch).
	held := time.NewTimer(time.Hour)
	held.Stop()
	defer held.Stop()
	for running := true; running; {
		select {
		case batch, ok := <-queue:
			if !ok {
				running = false
				break
			}
			for _, q := range batch {
				dec.handle(q)
			}
			waiting := inQueue.Add(-int64(len(batch)))
			dec.endBatch(time.Now())
			if class != nil {
				class.caughtUp(waiting)
			}
			if len(dec.holding) > 0 {
				held.Reset(2 * s.cfg.ReadInterval)
			}
		case <-held.C:
			dec.releaseHeld(time.Now())
		case <-sweep.C:
			dec.sweep()
		}
	}
}

// sweepInterval is how often the decoder forgets processes whose exit event
// it never saw (lost records), so its tables stay bounded.
const sweepInterval = 30 * time.Second

// queued is one ring buffer record waiting for the decoder.
type queued struct {
	seq uint64
	raw []byte
}

// wakeFraction: the kernel wakes the reader as soon as this fraction of
// the ring (1/wakeFraction) is unread, well before a burst could fill it.
const wakeFraction = 8

// maxBatch bounds the records handed to the decoder at once, so that the
// decoder starts on a long drain before it ends.
const maxBatch = 256

// readLoop copies records out of the ring into the bounded queue and never
// blocks on the decoder: when the queue is full the record is dropped,
// counted and remembered as a gap for its flow.
//
// Records arrive in bursts (the kernel does not wake the reader per
// record, see ring_flags in bpf/oisp.bpf.c): the reader wakes on its own
// every ReadInterval (or when the kernel wakes it), drains what is there
// and hands it over as one batch, so a burst costs one wake-up of the
// reader and one of the decoder instead of one each per record. A ring
// that stays empty stretches the ticks towards IdleReadInterval (readPacer).
func (s *Source) readLoop(rd *ringbuf.Reader, w *ringWaiter, queue chan<- []queued, inQueue *atomic.Int64, drops *dropLedger, class *decoderClass) {
	var (
		rec    ringbuf.Record
		seq    uint64
		batch  []queued
		urgent bool // batch holds a record that gates probe placement
	)
	pace := newReadPacer(s.cfg.ReadInterval, s.cfg.IdleReadInterval)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		now := inQueue.Add(int64(len(batch)))
		queue <- batch
		if class != nil {
			class.waiting(now-int64(len(batch)), now, int64(s.cfg.QueueRecords), urgent)
		}
		batch, urgent = nil, false
	}
	for {
		if class != nil {
			class.check(inQueue.Load())
		}
		// Drain: with the waiter, the reader never blocks (a deadline in
		// the past makes it return os.ErrDeadlineExceeded once the ring
		// is empty); without it, the reader itself sleeps up to one tick.
		if w != nil {
			if w.empty(rd) {
				// Nothing to read: sleep until a wake-up or the next tick.
				if err := w.wait(pace.empty()); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					// Closed: the next read reports it and ends the loop.
					w = nil
				}
				continue
			}
			pace.busy()
			if class != nil && rd.AvailableBytes() >= s.cfg.RingBufferBytes/wakeFraction {
				// The reader itself fell behind (the process was
				// stopped, perhaps waiting for the decoder's thread).
				class.lift()
			}
			rd.SetDeadline(time.Unix(0, 1))
		} else {
			rd.SetDeadline(time.Now().Add(s.cfg.ReadInterval))
		}
		for {
			err := rd.ReadInto(&rec)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				flush()
				if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
					return
				}
				s.log.Warn("ebpf ring buffer read failed", "err", err)
				break
			}
			seq++
			s.user.recordsRead.Add(1)
			if inQueue.Load()+int64(len(batch)) >= int64(s.cfg.QueueRecords) {
				s.user.queueDropRecords.Add(1)
				if t, ok := parseTLS(rec.RawSample); ok {
					s.user.queueDropBytes.Add(int64(len(t.data)))
					drops.add(dropKey{tgid: t.tgid, conn: t.conn, dir: t.dir}, int64(len(t.data)), seq)
				} else {
					drops.addSystem(rec.RawSample)
				}
				continue
			}
			// One exact-size copy per record: the chunk's bytes are handed
			// to the flow handler, which owns them from then on.
			raw := make([]byte, len(rec.RawSample))
			copy(raw, rec.RawSample)
			if batch == nil {
				batch = make([]queued, 0, 16)
			}
			batch = append(batch, queued{seq: seq, raw: raw})
			if len(raw) >= 4 {
				typ := le.Uint32(raw)
				urgent = urgent || typ == evExec || typ == evLibMap
			}
			if len(batch) >= maxBatch {
				flush()
			}
		}
		// Back to the top: records that came in during the drain are read
		// at once, and the wait starts only on an empty ring.
		flush()
	}
}

// ringWaiter sleeps until the kernel wakes the ring buffer's readers or a
// tick passes, through Go's network poller: the tick is a runtime timer and
// the wait parks only the goroutine, where a blocking epoll_wait with a
// timeout would take an OS thread out of the scheduler every tick.
type ringWaiter struct {
	f  *os.File
	rc syscall.RawConn

	// mu orders empty against closeReader: the reader's mapping of the
	// ring is gone once it is closed.
	mu     sync.Mutex
	closed bool
}

// empty reports whether the ring holds no records (true once closed, so the
// caller goes on to wait and sees the close).
func (w *ringWaiter) empty(rd *ringbuf.Reader) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed || rd.AvailableBytes() == 0
}

// closeReader closes rd and then the waiter, ending readLoop.
func (w *ringWaiter) closeReader(rd *ringbuf.Reader) {
	w.mu.Lock()
	w.closed = true
	rd.Close()
	w.mu.Unlock()
	w.f.Close()
}

func newRingWaiter(m *ebpf.Map) (*ringWaiter, error) {
	fd, err := unix.FcntlInt(uintptr(m.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup ring buffer fd: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ring buffer fd non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "oisp-ringbuf")
	// A deadline is only accepted on a descriptor the poller took.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("ring buffer fd not pollable: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &ringWaiter{f: f, rc: rc}, nil
}

// wait returns when the ring's fd signals readable or after d
// (os.ErrDeadlineExceeded); a wake-up lost between the last drain and the
// wait costs at most d.
func (w *ringWaiter) wait(d time.Duration) error {
	if err := w.f.SetReadDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	waited := false
	return w.rc.Read(func(uintptr) bool {
		if waited {
			return true
		}
		waited = true
		return false
	})
}

// startStatsExport pushes counter deltas to cfg.Stats every second and once
// more when stopped.
func (s *Source) startStatsExport(ctx context.Context) func() {
	if s.cfg.Stats == nil {
		return func() {}
	}
	last := map[string]int64{}
	push := func() {
		for tok, v := range s.Stats().tokens() {
			if d := v - last[tok]; d != 0 {
				s.cfg.Stats.Count(tok, d)
				last[tok] = v
			}
		}
	}
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				push()
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			push()
		})
	}
}
