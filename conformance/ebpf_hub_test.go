package conformance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oisp/oisp-sensor/linuxcompat"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// requireEBPFEnv, set to 1 (CI does), turns every reason the eBPF paths
// would skip into a failure.
const requireEBPFEnv = "OISP_REQUIRE_EBPF"

func ebpfRequired() bool { return os.Getenv(requireEBPFEnv) == "1" }

// requireNote ends a reason the eBPF tests cannot run with what it does.
func requireNote() string {
	if ebpfRequired() {
		return " (" + requireEBPFEnv + "=1: failing instead of skipping)"
	}
	return " (skipped; " + requireEBPFEnv + "=1 makes this a failure)"
}

// ebpfIdleStop is how long the shared capture stays attached with no test
// using it. Probes on the system libssl cost every process on the machine
// something while they are attached, so they come off between uses.
const ebpfIdleStop = 5 * time.Second

// ebpfHub is the suite's one eBPF capture: a linuxcompat.Source that
// follows the test process's children (the test process itself is never
// traced) and hands each flow and system event to the claim that owns its
// process, if any; everything else is ignored. Starting a Source costs
// about a second, so one serves every fixture; it starts on first use and
// stops after ebpfIdleStop without users.
type ebpfHub struct {
	mu     sync.Mutex
	src    *linuxcompat.Source
	stop   context.CancelFunc
	done   chan error
	failed error // a start that failed is not retried
	users  int
	idle   *time.Timer
	// warmed holds the inodes a warm-up run attached in the current
	// source.
	warmed map[uint64]bool

	rmu    sync.Mutex
	byPID  map[int]*ebpfClaim
	byFlow map[string]*ebpfClaim
	// ownFlows counts flows attributed to the test process itself, which
	// the source must never report.
	ownFlows atomic.Int64
}

// ebpf is the shared capture (test-only state, like runOutcomes).
var ebpf = &ebpfHub{}

// unavailable returns why eBPF capture cannot run here, "" when it can.
func (h *ebpfHub) unavailable() string {
	if err := h.acquire(); err != nil {
		return err.Error()
	}
	h.release()
	return ""
}

// acquire starts the capture if needed and holds it until release.
func (h *ebpfHub) acquire() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return h.failed
	}
	if h.idle != nil {
		h.idle.Stop()
		h.idle = nil
	}
	if h.src == nil {
		if err := h.startLocked(); err != nil {
			h.failed = err
			return err
		}
	}
	h.users++
	return nil
}

func (h *ebpfHub) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.users--
	if h.users == 0 && h.src != nil {
		h.idle = time.AfterFunc(ebpfIdleStop, h.stopIfIdle)
	}
}

func (h *ebpfHub) startLocked() error {
	if !linuxcompat.Available() {
		_, err := linuxcompat.New(linuxcompat.Config{})
		if err == nil {
			err = errors.New("linuxcompat.Available reports false")
		}
		return fmt.Errorf("eBPF capture unavailable (%v): needs root on Linux >= 5.17 with BTF%s", err, requireNote())
	}
	src, err := linuxcompat.New(linuxcompat.Config{
		PIDs:   []int{os.Getpid()},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("eBPF capture cannot load: %v%s", err, requireNote())
	}
	h.rmu.Lock()
	h.byPID, h.byFlow = map[int]*ebpfClaim{}, map[string]*ebpfClaim{}
	h.rmu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, hubHandler{h}) }()
	select {
	case <-src.Ready():
	case err := <-done:
		cancel()
		return fmt.Errorf("eBPF capture stopped while starting: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		return errors.New("eBPF capture: the start-up attach scan did not finish within 60 s")
	}
	h.src, h.stop, h.done = src, cancel, done
	h.warmed = map[uint64]bool{}
	return nil
}

func (h *ebpfHub) stopIfIdle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users > 0 || h.src == nil {
		return
	}
	h.stop()
	<-h.done
	h.src, h.stop, h.done, h.idle = nil, nil, nil, nil
}

// source returns the running Source (between acquire and release).
func (h *ebpfHub) source() *linuxcompat.Source {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.src
}

// ensureAttached makes sure each file is attached in the running source:
// the start-up scan covers system libraries; a new binary (a Go program
// just built, node) is attached when a process executes it, so warmup (a
// command that starts, loads the files and waits for stdin to close) runs
// once per source for those.
func (h *ebpfHub) ensureAttached(files []string, warmup []string) error {
	src := h.source()
	var missing []uint64
	for _, f := range files {
		ino, err := inodeOf(f)
		if err != nil {
			return err
		}
		// A failed attach is retried when the file next executes (the
		// warm-up below), so only an attached file needs nothing more.
		a, ok := attachmentFor(src, ino)
		if ok && a.Status == linuxcompat.Unsupported {
			return fmt.Errorf("eBPF capture did not attach to %s: %s: %s", f, a.Status, a.Reason)
		}
		if !ok || a.Status != linuxcompat.Attached {
			missing = append(missing, ino)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	h.mu.Lock()
	warmed := true
	for _, ino := range missing {
		warmed = warmed && h.warmed[ino]
	}
	h.mu.Unlock()
	if len(warmup) > 0 && !warmed {
		if err := runWarmup(warmup, func() bool { return allAttached(src, missing) }); err != nil {
			return err
		}
		h.mu.Lock()
		for _, ino := range missing {
			h.warmed[ino] = true
		}
		h.mu.Unlock()
	}
	deadline := time.Now().Add(20 * time.Second)
	for !allAttached(src, missing) {
		if time.Now().After(deadline) {
			return fmt.Errorf("eBPF capture did not attach to %s within 20 s", strings.Join(files, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, ino := range missing {
		if a, _ := attachmentFor(src, ino); a.Status != linuxcompat.Attached {
			return fmt.Errorf("eBPF capture did not attach to %s: %s: %s", a.Path, a.Status, a.Reason)
		}
	}
	return nil
}

// runWarmup runs argv with an open stdin until done reports true (or 30 s
// pass), then closes stdin and waits for it.
func runWarmup(argv []string, done func() bool) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("warm-up %s: %w", argv[0], err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !done() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("warm-up %s: %w: %s", argv[0], err, stderr.String())
	}
	return nil
}

func inodeOf(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no inode", path)
	}
	return st.Ino, nil
}

func attachmentFor(src *linuxcompat.Source, ino uint64) (linuxcompat.Attachment, bool) {
	if src == nil {
		return linuxcompat.Attachment{}, false
	}
	for _, a := range src.Attachments() {
		if a.Inode == ino {
			return a, true
		}
	}
	return linuxcompat.Attachment{}, false
}

// allAttached reports whether every file has an outcome that will not
// change: attached, unsupported, or failed for the last time.
func allAttached(src *linuxcompat.Source, inodes []uint64) bool {
	for _, ino := range inodes {
		a, ok := attachmentFor(src, ino)
		if !ok || (a.Status == linuxcompat.Failed && a.Attempts < linuxcompat.MaxAttachAttempts) {
			return false
		}
	}
	return true
}

// claim routes the flows (and, when sys is set, the system events) of the
// processes added to it, and of their descendants, to h.
func (h *ebpfHub) claim(fh flow.Handler, sys flow.SystemHandler) *ebpfClaim {
	return &ebpfClaim{hub: h, h: fh, sys: sys, pids: map[int]bool{}, exited: map[int]bool{}, open: map[string]bool{}, changed: make(chan struct{}, 1)}
}

// ebpfClaim is the part of the shared capture one test owns: the
// processes it started.
type ebpfClaim struct {
	hub *ebpfHub
	h   flow.Handler
	sys flow.SystemHandler

	mu     sync.Mutex
	pids   map[int]bool
	exited map[int]bool
	open   map[string]bool
	flows  int
	// unaddressed counts flows opened without a remote address: every
	// real client's connection must be tied to its socket.
	unaddressed int
	// changed is signalled (without blocking) on every change.
	changed chan struct{}
}

// add claims pid, which must not have started its program yet.
func (c *ebpfClaim) add(pid int) error {
	c.hub.rmu.Lock()
	if c.hub.byPID == nil {
		c.hub.rmu.Unlock()
		return errors.New("eBPF capture is not running")
	}
	c.hub.byPID[pid] = c
	c.hub.rmu.Unlock()
	c.mu.Lock()
	c.pids[pid] = true
	c.mu.Unlock()
	return nil
}

// PIDs returns the processes claimed so far (with descendants).
func (c *ebpfClaim) PIDs() map[int]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]bool, len(c.pids))
	for p := range c.pids {
		out[p] = true
	}
	return out
}

func (c *ebpfClaim) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// wait returns once every claimed process has exited and every flow of
// theirs is closed, or fails after timeout.
func (c *ebpfClaim) wait(timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		var running []int
		for p := range c.pids {
			if !c.exited[p] {
				running = append(running, p)
			}
		}
		open := len(c.open)
		c.mu.Unlock()
		if len(running) == 0 && open == 0 {
			return nil
		}
		select {
		case <-c.changed:
		case <-deadline:
			return fmt.Errorf("eBPF capture: after %v, no exit event for pids %v or %d flows still open", timeout, running, open)
		}
	}
}

// release stops routing to the claim.
func (c *ebpfClaim) release() {
	c.hub.rmu.Lock()
	defer c.hub.rmu.Unlock()
	for p, owner := range c.hub.byPID {
		if owner == c {
			delete(c.hub.byPID, p)
		}
	}
	for id, owner := range c.hub.byFlow {
		if owner == c {
			delete(c.hub.byFlow, id)
		}
	}
}

// hubHandler is the flow.Handler and flow.SystemHandler the shared Source
// delivers to.
type hubHandler struct{ h *ebpfHub }

func (hh hubHandler) Open(info *flow.Info) {
	h := hh.h
	if info.Process.PID == os.Getpid() {
		h.ownFlows.Add(1)
	}
	h.rmu.Lock()
	c := h.byPID[info.Process.PID]
	if c != nil {
		h.byFlow[info.ID] = c
	}
	h.rmu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	c.open[info.ID] = true
	c.flows++
	if !info.Remote.IsValid() {
		c.unaddressed++
	}
	c.mu.Unlock()
	c.h.Open(info)
}

func (hh hubHandler) Data(id string, ch flow.Chunk) {
	hh.h.rmu.Lock()
	c := hh.h.byFlow[id]
	hh.h.rmu.Unlock()
	if c != nil {
		c.h.Data(id, ch)
	}
}

func (hh hubHandler) Close(id string, ci flow.CloseInfo) {
	hh.h.rmu.Lock()
	c := hh.h.byFlow[id]
	delete(hh.h.byFlow, id)
	hh.h.rmu.Unlock()
	if c == nil {
		return
	}
	c.h.Close(id, ci)
	c.mu.Lock()
	delete(c.open, id)
	c.mu.Unlock()
	c.signal()
}

func (hh hubHandler) System(se flow.SystemEvent) {
	h := hh.h
	h.rmu.Lock()
	c := h.byPID[se.Process.PID]
	if c != nil && se.Kind == flow.SysFork {
		h.byPID[se.ChildPID] = c
	}
	h.rmu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	switch se.Kind {
	case flow.SysFork:
		c.pids[se.ChildPID] = true
	case flow.SysExit:
		c.exited[se.Process.PID] = true
	}
	c.mu.Unlock()
	if c.sys != nil {
		c.sys.System(se)
	}
	c.signal()
}
