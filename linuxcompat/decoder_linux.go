//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// procInfo is what the decoder knows about a process.
type procInfo struct {
	pid, ppid, uid      int
	exe, name           string
	cmdline             []string
	cgroup, containerID string
	start               time.Time
}

func (p *procInfo) process() flow.Process {
	return flow.Process{
		PID:         p.pid,
		PPID:        p.ppid,
		UID:         p.uid,
		Exe:         p.exe,
		Name:        p.name,
		Cmdline:     append([]string(nil), p.cmdline...),
		ContainerID: p.containerID,
		Cgroup:      p.cgroup,
	}
}

type flowKey struct {
	tgid uint32
	conn uint64
}

type fdKey struct {
	tgid uint32
	fd   int32
}

type flowState struct {
	id  string
	key flowKey
	fd  int32

	// held is the flow's Info while it waits for its socket: a memory-BIO
	// TLS user's first write carries no fd, and the kernel binds the
	// connection (evTLSBind) when the ciphertext reaches the socket just
	// after. Its chunks wait in heldChunks, so the flow opens once, with
	// its addresses, within a batch or two.
	held       *flow.Info
	heldChunks []flow.Chunk
	heldBytes  int
	heldEnds   int // batch ends seen while held
}

// Records from memory-BIO TLS libraries (OpenSSL/GnuTLS used by Node.js)
// name no socket; lib values from enum in bpf/oisp.bpf.c.
const libGo = 3

// maxHeldBytes bounds what a flow waiting for its socket may hold before it
// opens without one.
const maxHeldBytes = 1 << 20

type openFile struct {
	tgid    uint32
	path    string
	flags   uint32
	created bool // the open created the file (FMODE_CREATED)
}

// decoder turns ring buffer records into flows and system events. It runs on
// one goroutine, so handler calls are serialised.
type decoder struct {
	s     *Source
	h     flow.Handler
	sys   flow.SystemHandler // nil when h does not take system events
	att   *attacher
	drops *dropLedger

	procs    map[uint32]*procInfo
	flows    map[flowKey]*flowState
	byFd     map[fdKey]*flowState
	connects map[fdKey]netip.AddrPort
	files    map[uint64]openFile
	nextID   uint64
	// holding are the flows waiting for their socket (flowState.held).
	holding map[*flowState]struct{}
}

func newDecoder(s *Source, h flow.Handler, att *attacher, drops *dropLedger) *decoder {
	d := &decoder{
		s: s, h: h, att: att, drops: drops,
		procs:    map[uint32]*procInfo{},
		flows:    map[flowKey]*flowState{},
		byFd:     map[fdKey]*flowState{},
		connects: map[fdKey]netip.AddrPort{},
		files:    map[uint64]openFile{},
		holding:  map[*flowState]struct{}{},
	}
	if sh, ok := h.(flow.SystemHandler); ok && !s.cfg.NoSystemEvents {
		d.sys = sh
	}
	return d
}

func (d *decoder) handle(q queued) {
	h, ok := parseHdr(q.raw)
	if !ok {
		d.s.user.decodeErrors.Add(1)
		return
	}
	switch h.typ {
	case evTLSData:
		rec, ok := parseTLS(q.raw)
		if !ok {
			d.s.user.decodeErrors.Add(1)
			return
		}
		d.tlsData(rec, q.seq)
	case evSockClose:
		if len(q.raw) < int(sockSize) {
			d.s.user.decodeErrors.Add(1)
			return
		}
		conn := le.Uint64(q.raw[sockConn:])
		if st := d.flows[flowKey{h.tgid, conn}]; st != nil {
			d.closeFlow(st, "closed", d.s.wall(h.ts))
		}
	case evTLSBind:
		if len(q.raw) < int(sockSize) {
			d.s.user.decodeErrors.Add(1)
			return
		}
		conn := le.Uint64(q.raw[sockConn:])
		fd := int32(le.Uint32(q.raw[sockFd:]))
		st := d.flows[flowKey{h.tgid, conn}]
		switch {
		case st == nil || fd < 0:
		case st.held != nil:
			d.release(st, fd, d.s.wall(h.ts))
		case st.fd < 0:
			d.bindFd(st, fd, d.s.wall(h.ts))
		}
	case evExec:
		e, ok := parseExec(q.raw)
		if !ok {
			d.s.user.decodeErrors.Add(1)
			return
		}
		d.exec(h, &e)
	case evExit:
		var e oispEvExit
		if !decodeFixed(q.raw, exitSize, &e) {
			d.s.user.decodeErrors.Add(1)
			return
		}
		d.exit(h, &e)
	case evFork:
		var e oispEvFork
		if !decodeFixed(q.raw, forkSize, &e) {
			d.s.user.decodeErrors.Add(1)
			return
		}
		d.fork(h, &e)
	case evConnect:
		var e oispEvConnect
		if !decodeFixed(q.raw, connectSize, &e) {
			d.s.user.decodeErrors.Add(1)
			return
		}
		d.connect(h, &e)
	case evFileOpen, evFileClose:
		d.file(h, q.raw)
	case evLibMap:
		if len(q.raw) < int(libHead) {
			d.s.user.decodeErrors.Add(1)
			return
		}
		ino := le.Uint64(q.raw[unsafeOffLibIno:])
		dev := le.Uint32(q.raw[unsafeOffLibDev:])
		path := pathFromComponents(q.raw[libHead:])
		d.att.request(attachReq{path: path, ino: ino, dev: kernelDevToUser(dev), pid: int(h.tgid)})
	default:
		d.s.user.decodeErrors.Add(1)
	}
}

// proc returns what is known about tgid, reading /proc for processes that
// started before the sensor.
func (d *decoder) proc(tgid uint32) *procInfo {
	if p := d.procs[tgid]; p != nil {
		return p
	}
	p, ok := readProcess(int(tgid))
	if !ok {
		p = procInfo{pid: int(tgid), uid: -1}
	}
	d.s.user.processes.Add(1)
	d.procs[tgid] = &p
	return &p
}

func (d *decoder) tlsData(rec tlsRecord, seq uint64) {
	key := flowKey{rec.tgid, rec.conn}
	at := d.s.wall(rec.ts)
	st := d.flows[key]
	if st != nil && rec.fd >= 0 && st.fd >= 0 && rec.fd != st.fd {
		// The connection object now talks over another socket: a new
		// connection reusing a freed SSL*.
		d.closeFlow(st, "fd_changed", at)
		st = nil
	}
	if st == nil {
		// A client's first write with no socket may be a memory-BIO
		// library's: wait for the kernel to bind it.
		hold := rec.fd < 0 && rec.dir == 0 && rec.lib != libGo
		st = d.openFlow(key, rec.fd, at, sniffALPN(rec), hold)
	} else if st.held != nil && rec.fd >= 0 {
		d.release(st, rec.fd, at)
	} else if st.fd < 0 && rec.fd >= 0 {
		d.bindFd(st, rec.fd, at)
	}
	gap := int64(rec.lostBefore) + d.drops.take(dropKey{rec.tgid, rec.conn, rec.dir}, seq)
	dir := flow.ClientToServer
	if rec.dir == 1 {
		dir = flow.ServerToClient
	}
	ch := flow.Chunk{Dir: dir, Data: rec.data, At: at, Gap: gap}
	if st.held != nil {
		st.heldChunks = append(st.heldChunks, ch)
		st.heldBytes += len(ch.Data)
		if st.heldBytes > maxHeldBytes {
			d.release(st, -1, at)
		}
		return
	}
	d.h.Data(st.id, ch)
}

// release opens a flow that waited for its socket, with fd's addresses
// when fd >= 0, and hands over its held chunks.
func (d *decoder) release(st *flowState, fd int32, at time.Time) {
	info := st.held
	st.held = nil
	delete(d.holding, st)
	if fd >= 0 {
		d.fillAddrs(info, st.key.tgid, fd)
		d.bindFd(st, fd, at)
	} else {
		d.s.user.holdsExpired.Add(1)
	}
	d.s.user.flowsOpened.Add(1)
	d.h.Open(info)
	for _, ch := range st.heldChunks {
		d.h.Data(st.id, ch)
	}
	st.heldChunks, st.heldBytes = nil, 0
}

// endBatch is called after each batch of records: a flow still waiting
// for its socket after two batch ends opens without one (its bind record,
// if any, comes right behind its first write).
func (d *decoder) endBatch(now time.Time) {
	for st := range d.holding {
		st.heldEnds++
		if st.heldEnds >= 2 {
			d.release(st, -1, now)
		}
	}
}

// releaseHeld opens every flow still waiting for its socket (nothing more
// arrived to end a batch).
func (d *decoder) releaseHeld(now time.Time) {
	for st := range d.holding {
		d.release(st, -1, now)
	}
}

func (d *decoder) bindFd(st *flowState, fd int32, at time.Time) {
	fk := fdKey{st.key.tgid, fd}
	if old := d.byFd[fk]; old != nil && old != st {
		d.closeFlow(old, "fd_reused", at)
	}
	st.fd = fd
	d.byFd[fk] = st
}

// sniffALPN names the application protocol from the first bytes a client
// writes: the HTTP/2 connection preface or an HTTP/1.x request line. The
// eBPF source never sees the TLS handshake, so this stands in for ALPN; it
// stays empty when the flow starts mid-stream.
func sniffALPN(rec tlsRecord) string {
	if rec.dir != 0 || rec.offset != 0 {
		return ""
	}
	if bytes.HasPrefix(rec.data, []byte("PRI * HTTP/2.0\r\n")) {
		return "h2"
	}
	if line, _, ok := bytes.Cut(rec.data, []byte("\r\n")); ok && bytes.HasSuffix(line, []byte(" HTTP/1.1")) {
		if sp := bytes.IndexByte(line, ' '); sp > 0 && isToken(line[:sp]) {
			return "http/1.1"
		}
	}
	return ""
}

func isToken(b []byte) bool {
	for _, c := range b {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return len(b) > 0
}

func (d *decoder) fillAddrs(info *flow.Info, tgid uint32, fd int32) {
	if local, remote, ok := socketAddrs(int(tgid), fd); ok {
		info.Local, info.Remote = local, remote
	}
	if !info.Remote.IsValid() {
		info.Remote = d.connects[fdKey{tgid, fd}]
	}
	if info.Remote.IsValid() {
		info.RemotePort = info.Remote.Port()
	}
}

func (d *decoder) openFlow(key flowKey, fd int32, at time.Time, alpn string, hold bool) *flowState {
	d.nextID++
	st := &flowState{id: fmt.Sprintf("ebpf-%d-%d", key.tgid, d.nextID), key: key, fd: -1}
	info := &flow.Info{
		ID:        st.id,
		Transport: flow.TCP,
		Process:   d.proc(key.tgid).process(),
		ALPN:      alpn,
		TLS:       true,
		Method:    flow.CaptureEBPFUprobe,
		Started:   at,
	}
	d.flows[key] = st
	if hold {
		st.held = info
		d.holding[st] = struct{}{}
		return st
	}
	if fd >= 0 {
		d.fillAddrs(info, key.tgid, fd)
		d.bindFd(st, fd, at)
	}
	d.s.user.flowsOpened.Add(1)
	d.h.Open(info)
	return st
}

func (d *decoder) closeFlow(st *flowState, reason string, at time.Time) {
	if st.held != nil {
		d.release(st, -1, at)
	}
	if d.flows[st.key] == st {
		delete(d.flows, st.key)
	}
	if st.fd >= 0 {
		fk := fdKey{st.key.tgid, st.fd}
		if d.byFd[fk] == st {
			delete(d.byFd, fk)
		}
	}
	d.s.user.flowsClosed.Add(1)
	d.h.Close(st.id, flow.CloseInfo{At: at, Reason: reason, Dropped: d.pendingLoss(st.key)})
}

// pendingLoss collects bytes the kernel lost for a connection that no later
// chunk reported (the loss hit the last call in a direction).
func (d *decoder) pendingLoss(k flowKey) int64 {
	var total int64
	for dir := uint32(0); dir < 2; dir++ {
		key := oispConnKey{Conn: k.conn, Tgid: k.tgid, Dir: dir}
		var lost uint64
		if d.s.objs.ConnLost.Lookup(&key, &lost) == nil {
			total += int64(lost)
			_ = d.s.objs.ConnLost.Delete(&key)
		}
		total += d.drops.take(dropKey{k.tgid, k.conn, uint8(dir)}, ^uint64(0))
	}
	return total
}

// closeAll ends every open flow (Run is returning).
func (d *decoder) closeAll(reason string) {
	now := time.Now()
	for _, st := range d.flows {
		d.closeFlow(st, reason, now)
	}
}

func (d *decoder) closeProcessFlows(tgid uint32, reason string, at time.Time) {
	for k, st := range d.flows {
		if k.tgid == tgid {
			d.closeFlow(st, reason, at)
		}
	}
}

func (d *decoder) system(ev flow.SystemEvent) {
	if d.sys == nil {
		return
	}
	ev.Method = flow.CaptureEBPFTracepoint
	d.sys.System(ev)
}

func (d *decoder) exec(h hdr, e *execRecord) {
	at := d.s.wall(h.ts)
	exe := pathFromComponents(e.exe)
	args := splitArgs(e.args)
	cwd := pathFromComponents(e.cwd)
	if len(e.exe) == 0 {
		exe = cString(e.filename)
	}
	// A process that execs again replaces its image: its TLS objects are gone.
	d.closeProcessFlows(h.tgid, "exec", at)

	p := &procInfo{
		pid:     int(h.tgid),
		ppid:    int(e.ppid),
		uid:     int(e.uid),
		exe:     exe,
		name:    cString(e.comm),
		cmdline: args,
		start:   at,
	}
	if p.name == "" {
		p.name = filepath.Base(exe)
	}
	p.cgroup, p.containerID = readCgroup(p.pid)
	if _, known := d.procs[h.tgid]; !known {
		d.s.user.processes.Add(1)
	}
	d.procs[h.tgid] = p

	d.att.request(attachReq{path: exe, ino: e.exeIno, dev: kernelDevToUser(e.exeDev), pid: int(h.tgid)})
	d.system(flow.SystemEvent{
		Kind: flow.SysExec, At: at, Process: p.process(),
		Exe: exe, Args: args, Cwd: cwd,
	})
}

func (d *decoder) fork(h hdr, e *oispEvFork) {
	parent := d.proc(h.tgid)
	child := *parent
	child.pid = int(e.ChildTgid)
	child.ppid = int(h.tgid)
	child.cmdline = append([]string(nil), parent.cmdline...)
	child.start = d.s.wall(h.ts)
	if _, known := d.procs[e.ChildTgid]; !known {
		d.s.user.processes.Add(1)
	}
	d.procs[e.ChildTgid] = &child
	d.system(flow.SystemEvent{Kind: flow.SysFork, At: child.start, Process: parent.process(), ChildPID: child.pid})
}

func (d *decoder) exit(h hdr, e *oispEvExit) {
	at := d.s.wall(h.ts)
	p := d.proc(h.tgid)
	d.closeProcessFlows(h.tgid, "process_exit", at)
	d.flushFiles(h.tgid, p, at)
	var runtime time.Duration
	if e.StartNs > 0 && h.ts > e.StartNs {
		runtime = time.Duration(h.ts - e.StartNs)
	}
	d.system(flow.SystemEvent{
		Kind: flow.SysExit, At: at, Process: p.process(),
		ExitCode: int(e.ExitCode), Signal: int(e.Signal), Runtime: runtime,
	})
	delete(d.procs, h.tgid)
	for k := range d.connects {
		if k.tgid == h.tgid {
			delete(d.connects, k)
		}
	}
}

// sweep ends what belongs to processes that are gone without an exit event
// (the record was lost): their flows close, their files report, their
// table entries go.
func (d *decoder) sweep() {
	now := time.Now()
	gone := map[uint32]bool{}
	alive := func(tgid uint32) bool {
		if v, ok := gone[tgid]; ok {
			return !v
		}
		_, err := os.Stat(procRoot + "/" + strconv.Itoa(int(tgid)))
		gone[tgid] = err != nil
		return err == nil
	}
	for tgid, p := range d.procs {
		if !alive(tgid) {
			d.closeProcessFlows(tgid, "process_exit", now)
			d.flushFiles(tgid, p, now)
			delete(d.procs, tgid)
		}
	}
	for k := range d.flows {
		if !alive(k.tgid) {
			d.closeProcessFlows(k.tgid, "process_exit", now)
		}
	}
	for k := range d.connects {
		if !alive(k.tgid) {
			delete(d.connects, k)
		}
	}
	for _, of := range d.files {
		if !alive(of.tgid) {
			d.flushFiles(of.tgid, &procInfo{pid: int(of.tgid), uid: -1}, now)
		}
	}
}

const errEINPROGRESS = -int32(syscall.EINPROGRESS)

func (d *decoder) connect(h hdr, e *oispEvConnect) {
	at := d.s.wall(h.ts)
	remote := sockAddr(e.Family, e.Addr, e.Port)
	ok := e.Ret == 0 || e.Ret == errEINPROGRESS
	fk := fdKey{h.tgid, e.Fd}
	if ok {
		if st := d.byFd[fk]; st != nil {
			d.closeFlow(st, "fd_reused", at)
		}
		d.connects[fk] = remote
	}
	ev := flow.SystemEvent{
		Kind: flow.SysConnect, At: at, Process: d.proc(h.tgid).process(),
		Remote: remote, Protocol: "tcp", Success: ok,
		Latency: time.Duration(e.LatencyNs),
	}
	switch {
	case e.Ret == errEINPROGRESS:
		// Non-blocking connect: pending, not a failure.
		ev.Error = "in_progress"
	case e.Ret < 0:
		ev.Error = syscall.Errno(-e.Ret).Error()
	}
	d.system(ev)
}

// Open flags (x86_64 values).
const (
	oWronly = 01
	oRdwr   = 02
	oCreat  = 0100
	oExcl   = 0200
	oTrunc  = 01000
	oAppend = 02000
)

func openFlags(fl uint32) []string {
	var out []string
	if fl&oRdwr != 0 {
		out = append(out, "read")
	}
	out = append(out, "write")
	for _, f := range []struct {
		bit  uint32
		name string
	}{{oAppend, "append"}, {oCreat, "create"}, {oTrunc, "truncate"}, {oExcl, "exclusive"}} {
		if fl&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	return out
}

func (d *decoder) file(h hdr, raw []byte) {
	if len(raw) < int(fileHead) {
		d.s.user.decodeErrors.Add(1)
		return
	}
	at := d.s.wall(h.ts)
	filePtr := le.Uint64(raw[unsafeOffFileFile:])
	bytesWritten := le.Uint64(raw[unsafeOffFileBytes:])
	flags := le.Uint32(raw[unsafeOffFileFlags:])
	created := le.Uint32(raw[unsafeOffFileCreated:]) != 0
	path := pathFromComponents(raw[fileHead:])
	if h.typ == evFileOpen {
		d.files[filePtr] = openFile{tgid: h.tgid, path: path, flags: flags, created: created}
		d.system(flow.SystemEvent{
			Kind: flow.SysFileOpen, At: at, Process: d.proc(h.tgid).process(),
			Path: path, Flags: openFlags(flags), Created: created, Truncated: flags&oTrunc != 0,
		})
		return
	}
	opener, known := d.files[filePtr]
	delete(d.files, filePtr)
	owner := h.tgid
	if known {
		owner = opener.tgid
	}
	if bytesWritten == 0 {
		return
	}
	// The close record reads FMODE_CREATED from the same struct file the
	// open did (the bit is never cleared), so it stands when the open
	// record was not seen.
	d.system(flow.SystemEvent{
		Kind: flow.SysFileWrite, At: at, Process: d.proc(owner).process(),
		Path: path, BytesWritten: int64(bytesWritten), Flags: openFlags(flags),
		Created: created || opener.created, Truncated: flags&oTrunc != 0,
	})
}

// flushFiles reports write totals of files tgid opened and never closed
// through close(2) (still open at exit, or closed by dup2/exec).
func (d *decoder) flushFiles(tgid uint32, p *procInfo, at time.Time) {
	for ptr, of := range d.files {
		if of.tgid != tgid {
			continue
		}
		delete(d.files, ptr)
		var tf oispTrackedFile
		if err := d.s.objs.TrackedFiles.Lookup(ptr, &tf); err != nil {
			continue
		}
		_ = d.s.objs.TrackedFiles.Delete(ptr)
		if tf.Bytes == 0 {
			continue
		}
		d.system(flow.SystemEvent{
			Kind: flow.SysFileWrite, At: at, Process: p.process(),
			Path: of.path, BytesWritten: int64(tf.Bytes), Flags: openFlags(of.flags),
			Created: of.created, Truncated: of.flags&oTrunc != 0,
		})
	}
}
