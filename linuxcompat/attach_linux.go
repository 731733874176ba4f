//go:build linux && amd64

package linuxcompat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// attachReq asks the attacher to look at one executable file.
type attachReq struct {
	path string // path as the process sees it (or the global path)
	ino  uint64
	dev  uint64 // st_dev encoding
	pid  int    // a process mapping it, for /proc/PID/root lookups (0: none)
}

type fileID struct {
	dev, ino uint64
}

// attacher inspects binaries and libraries and places uprobes, once per
// inode. It runs on its own goroutine so slow ELF parsing (a 100 MB node
// binary takes ~200 ms) never stalls the ring buffer reader or decoder.
//
// A file whose attach failed (or that vanished before it could be opened)
// is tried again the next time a process executes or maps it, up to
// maxAttachTries attempts; after that, and once attached or found to hold
// nothing to probe, it is settled and requests for it are ignored.
type attacher struct {
	s *Source

	mu      sync.Mutex
	pending []attachReq
	queued  map[fileID]bool // waiting in pending, to keep duplicates out
	settled map[fileID]bool // never to be inspected again
	wake    chan struct{}
	closed  bool

	// tries counts failed attempts per file (attacher goroutine only).
	tries map[fileID]int
	self  fileID
	links []link.Link
}

// maxAttachTries bounds the attempts on a file whose attach keeps failing.
const maxAttachTries = MaxAttachAttempts

func newAttacher(s *Source) *attacher {
	a := &attacher{s: s, wake: make(chan struct{}, 1), queued: map[fileID]bool{}, settled: map[fileID]bool{}, tries: map[fileID]int{}}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err == nil {
		a.self = fileID{uint64(st.Dev), st.Ino}
	}
	return a
}

// maxPending bounds the files waiting for inspection.
const maxPending = 4096

// request queues a file for inspection; it never blocks. Files already
// requested are ignored; past maxPending requests are counted and dropped.
func (a *attacher) request(r attachReq) {
	id := fileID{r.dev, r.ino}
	a.mu.Lock()
	switch {
	case a.closed || a.queued[id] || a.settled[id]:
	case len(a.pending) >= maxPending:
		a.s.user.attachQueueFull.Add(1)
	default:
		a.queued[id] = true
		a.pending = append(a.pending, r)
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *attacher) run(ctx context.Context) {
	a.initialScan(ctx)
	close(a.s.ready)
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		for {
			a.mu.Lock()
			batch := a.pending
			a.pending = nil
			for _, r := range batch {
				delete(a.queued, fileID{r.dev, r.ino})
			}
			a.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, r := range batch {
				if ctx.Err() != nil {
					return
				}
				a.handle(r)
			}
		}
	}
}

// close detaches every uprobe.
func (a *attacher) close() {
	a.mu.Lock()
	a.closed = true
	links := a.links
	a.links = nil
	a.mu.Unlock()
	t0 := time.Now()
	closeAll(links)
	a.s.log.Debug("ebpf: uprobes detached", "links", len(links), "took", time.Since(t0))
}

// closeAll closes links concurrently: detaching a uprobe waits for an RCU
// grace period, which adds up to seconds when done one by one.
func closeAll(links []link.Link) {
	var wg sync.WaitGroup
	for _, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Close()
		}()
	}
	wg.Wait()
}

// libraryDirs are scanned at start so that the system TLS libraries are
// probed before the first process loads them.
var libraryDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
	"/lib", "/usr/lib", "/usr/local/lib", "/usr/local/lib64",
}

func (a *attacher) initialScan(ctx context.Context) {
	for _, dir := range libraryDirs {
		for _, pat := range []string{"libssl.so*", "libgnutls.so*"} {
			matches, _ := filepath.Glob(filepath.Join(dir, pat))
			for _, m := range matches {
				var st unix.Stat_t
				if unix.Stat(m, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
					continue
				}
				if real, err := filepath.EvalSymlinks(m); err == nil {
					m = real
				}
				a.handle(attachReq{path: m, ino: st.Ino, dev: uint64(st.Dev)})
			}
		}
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		a.s.log.Warn("ebpf: cannot list processes", "err", err)
		return
	}
	self := os.Getpid()
	for _, e := range entries {
		if ctx.Err() != nil {
			return
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || !a.s.wantProcess(pid) {
			continue
		}
		exe := fmt.Sprintf("%s/%d/exe", procRoot, pid)
		var st unix.Stat_t
		if unix.Stat(exe, &st) == nil {
			target, _ := os.Readlink(exe)
			a.handle(attachReq{path: strings.TrimSuffix(target, " (deleted)"), ino: st.Ino, dev: uint64(st.Dev), pid: pid})
		}
		for _, m := range execMappings(pid) {
			p := filepath.Join(procRoot, strconv.Itoa(pid), "root", m.path)
			if unix.Stat(p, &st) != nil || st.Ino != m.inode {
				continue
			}
			a.handle(attachReq{path: m.path, ino: st.Ino, dev: uint64(st.Dev), pid: pid})
		}
	}
}

// openTarget opens r's file, trying the paths that should name the expected
// inode: the process's root (containers), the path itself, then
// /proc/PID/exe. When none matches but one opens, that one is used: files
// on overlayfs are mapped through their backing inode, which differs from
// the inode stat shows for the overlay path, and uprobes resolve the
// overlay path to that same backing inode.
//
// The file stays open while it is inspected and probed, through
// /proc/self/fd/N: paths under /proc/PID/ vanish when a short-lived
// process exits, which used to fail the attach of a file first seen in
// one.
func openTarget(r attachReq) (*os.File, bool) {
	var cands []string
	if r.pid > 0 {
		cands = append(cands, filepath.Join(procRoot, strconv.Itoa(r.pid), "root", r.path))
	}
	cands = append(cands, r.path)
	if r.pid > 0 {
		cands = append(cands, fmt.Sprintf("%s/%d/exe", procRoot, r.pid))
	}
	var fallback *os.File
	for _, c := range cands {
		f, err := os.Open(c)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			f.Close()
			continue
		}
		if st.Ino == r.ino && (r.dev == 0 || uint64(st.Dev) == r.dev) {
			if fallback != nil {
				fallback.Close()
			}
			return f, true
		}
		if fallback == nil && !strings.HasSuffix(c, "/exe") {
			fallback = f
			continue
		}
		f.Close()
	}
	return fallback, fallback != nil
}

func (a *attacher) isSettled(id fileID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.settled[id]
}

func (a *attacher) settle(id fileID) {
	a.mu.Lock()
	a.settled[id] = true
	a.mu.Unlock()
}

func (a *attacher) handle(r attachReq) {
	id := fileID{r.dev, r.ino}
	if id == a.self || a.isSettled(id) {
		return
	}
	a.markSeen(r)

	f, ok := openTarget(r)
	if !ok {
		// Gone before we looked (short-lived process, deleted file): the
		// next exec or mapping of it asks again.
		a.failed(id, r, nil)
		return
	}
	defer f.Close()
	path := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	ins, err := inspectELFNamed(path, r.path)
	if err != nil {
		// Not an ELF file (scripts exec through their interpreter) or
		// unreadable: nothing to probe.
		a.settle(id)
		return
	}
	rec := Attachment{
		Path: r.path, Inode: r.ino, Dev: r.dev, Library: ins.Library,
		Symbols: ins.Symbols, FirstPID: r.pid, At: time.Now(),
	}
	if len(ins.Probes) == 0 {
		a.settle(id)
		if ins.Unsupported != "" {
			rec.Status, rec.Reason = Unsupported, ins.Unsupported
			a.s.addAttachment(rec)
		}
		return
	}
	var links []link.Link
	if fault := a.s.attachFault; fault != nil {
		err = fault(r)
	}
	if err == nil {
		links, err = a.attach(path, ins.Probes)
	}
	if err != nil {
		rec.Status, rec.Reason = Failed, err.Error()
		a.s.log.Warn("ebpf: attach failed", "path", r.path, "attempt", a.tries[id]+1, "err", err)
		a.failed(id, r, &rec)
		return
	}
	a.settle(id)
	rec.Status, rec.Probes, rec.Attempts = Attached, len(ins.Probes), a.tries[id]+1
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		for _, l := range links {
			l.Close()
		}
		return
	}
	a.links = append(a.links, links...)
	a.mu.Unlock()
	a.s.log.Debug("ebpf: attached", "path", r.path, "library", ins.Library, "probes", len(links))
	a.s.addAttachment(rec)
}

// failed counts a failed attempt on a file. Below maxAttachTries the file
// stays open to another attempt: the kernel forgets it has seen the inode,
// so its next mapping is reported again (an exec always is). rec, when
// set, is reported with the attempt number.
func (a *attacher) failed(id fileID, r attachReq, rec *Attachment) {
	a.tries[id]++
	if a.tries[id] >= maxAttachTries {
		a.settle(id)
	} else {
		key := oispInodeKey{Ino: r.ino, Dev: userDevToKernel(r.dev)}
		_ = a.s.objs.SeenInodes.Delete(&key)
	}
	if rec != nil {
		rec.Attempts = a.tries[id]
		a.s.addAttachment(*rec)
	}
}

// markSeen tells the kernel's library discovery that this inode is handled,
// so later mmaps of it are not reported again.
func (a *attacher) markSeen(r attachReq) {
	key := oispInodeKey{Ino: r.ino, Dev: userDevToKernel(r.dev)}
	one := uint8(1)
	_ = a.s.objs.SeenInodes.Update(&key, &one, ebpf.UpdateAny)
}

func (a *attacher) program(name string, multi bool) *ebpf.Program {
	o := &a.s.objs
	if multi {
		switch name {
		case progTLSEnter:
			return o.multi.TlsEnterMulti
		case progTLSReturn:
			return o.multi.TlsReturnMulti
		case progGoWrite:
			return o.multi.GoWriteMulti
		case progGoReadEnter:
			return o.multi.GoReadEnterMulti
		case progGoReadRet:
			return o.multi.GoReadRetMulti
		case progGoReadCopy:
			return o.multi.GoReadCopyMulti
		}
		return nil
	}
	switch name {
	case progTLSEnter:
		return o.TlsEnter
	case progTLSReturn:
		return o.TlsReturn
	case progGoWrite:
		return o.GoWrite
	case progGoReadEnter:
		return o.GoReadEnter
	case progGoReadRet:
		return o.GoReadRet
	case progGoReadCopy:
		return o.GoReadCopy
	}
	return nil
}

func (a *attacher) attach(path string, probes []probeSpec) ([]link.Link, error) {
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("open executable: %w", err)
	}
	var links []link.Link
	fail := func(err error) ([]link.Link, error) {
		closeAll(links)
		return nil, err
	}
	if a.s.multi {
		// One link per program: all its sites in this file at once.
		type group struct {
			ret            bool
			addrs, cookies []uint64
		}
		groups := map[string]*group{}
		var order []string
		for _, p := range probes {
			g := groups[p.Program]
			if g == nil {
				g = &group{ret: p.Return}
				groups[p.Program] = g
				order = append(order, p.Program)
			}
			g.addrs = append(g.addrs, p.Address+p.Offset)
			g.cookies = append(g.cookies, p.Cookie)
		}
		for _, name := range order {
			g := groups[name]
			prog := a.program(name, true)
			if prog == nil {
				return fail(fmt.Errorf("no BPF program %s", name))
			}
			opts := &link.UprobeMultiOptions{Addresses: g.addrs, Cookies: g.cookies}
			var l link.Link
			if g.ret {
				l, err = ex.UretprobeMulti(nil, prog, opts)
			} else {
				l, err = ex.UprobeMulti(nil, prog, opts)
			}
			if err != nil {
				return fail(fmt.Errorf("uprobe_multi %s (%d sites): %w", name, len(g.addrs), err))
			}
			links = append(links, l)
		}
		return links, nil
	}
	for _, p := range probes {
		prog := a.program(p.Program, false)
		if prog == nil {
			return fail(fmt.Errorf("no BPF program %s", p.Program))
		}
		opts := &link.UprobeOptions{Address: p.Address, Offset: p.Offset, Cookie: p.Cookie}
		var l link.Link
		if p.Return {
			l, err = ex.Uretprobe(p.Symbol, prog, opts)
		} else {
			l, err = ex.Uprobe(p.Symbol, prog, opts)
		}
		if err != nil {
			if errors.Is(err, link.ErrNotSupported) {
				return fail(fmt.Errorf("uprobe %s: %w", p.Symbol, err))
			}
			return fail(fmt.Errorf("uprobe %s+%#x: %w", p.Symbol, p.Offset, err))
		}
		links = append(links, l)
	}
	return links, nil
}
