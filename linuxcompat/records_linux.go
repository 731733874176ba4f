//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"unsafe"
)

// Record types (enum oisp_event_type in bpf/oisp.bpf.c).
const (
	evTLSData   = 1
	evSockClose = 2
	evExec      = 3
	evExit      = 4
	evConnect   = 5
	evFileOpen  = 6
	evFileClose = 7
	evLibMap    = 8
	evFork      = 9
	evTLSBind   = 10 // laid out as evSockClose
)

var le = binary.LittleEndian

// Field offsets come from the bpf2go-generated structs, so the Go decoding
// cannot drift from the C layout.
var (
	offHdrTgid = unsafe.Offsetof(oispEvHdr{}.Tgid)
	offHdrTid  = unsafe.Offsetof(oispEvHdr{}.Tid)
	offHdrTs   = unsafe.Offsetof(oispEvHdr{}.Ts)
	hdrSize    = unsafe.Sizeof(oispEvHdr{})

	tlsConn     = unsafe.Offsetof(oispEvTlsData{}.Conn)
	tlsCallLen  = unsafe.Offsetof(oispEvTlsData{}.CallLen)
	tlsOffset   = unsafe.Offsetof(oispEvTlsData{}.Offset)
	tlsLost     = unsafe.Offsetof(oispEvTlsData{}.LostBefore)
	tlsFd       = unsafe.Offsetof(oispEvTlsData{}.Fd)
	tlsLen      = unsafe.Offsetof(oispEvTlsData{}.Len)
	tlsDir      = unsafe.Offsetof(oispEvTlsData{}.Dir)
	tlsLib      = unsafe.Offsetof(oispEvTlsData{}.Lib)
	tlsDataOff  = unsafe.Offsetof(oispEvTlsData{}.Data)
	sockConn    = unsafe.Offsetof(oispEvSockClose{}.Conn)
	sockFd      = unsafe.Offsetof(oispEvSockClose{}.Fd)
	sockSize    = unsafe.Sizeof(oispEvSockClose{})
	execSize    = unsafe.Sizeof(oispEvExec{})
	exitSize    = unsafe.Sizeof(oispEvExit{})
	forkSize    = unsafe.Sizeof(oispEvFork{})
	connectSize = unsafe.Sizeof(oispEvConnect{})
	fileHead    = unsafe.Offsetof(oispEvFile{}.Path)
	libHead     = unsafe.Offsetof(oispEvLibMap{}.Path)

	unsafeOffLibIno      = unsafe.Offsetof(oispEvLibMap{}.Ino)
	unsafeOffLibDev      = unsafe.Offsetof(oispEvLibMap{}.Dev)
	unsafeOffFileFile    = unsafe.Offsetof(oispEvFile{}.File)
	unsafeOffFileBytes   = unsafe.Offsetof(oispEvFile{}.Bytes)
	unsafeOffFileFlags   = unsafe.Offsetof(oispEvFile{}.Flags)
	unsafeOffFileCreated = unsafe.Offsetof(oispEvFile{}.Created)
)

type hdr struct {
	typ, tgid, tid uint32
	ts             uint64
}

func parseHdr(b []byte) (hdr, bool) {
	if len(b) < int(hdrSize) {
		return hdr{}, false
	}
	return hdr{
		typ:  le.Uint32(b),
		tgid: le.Uint32(b[offHdrTgid:]),
		tid:  le.Uint32(b[offHdrTid:]),
		ts:   le.Uint64(b[offHdrTs:]),
	}, true
}

type tlsRecord struct {
	hdr
	conn, callLen, offset, lostBefore uint64
	fd                                int32
	dir, lib                          uint8
	data                              []byte
}

func parseTLS(b []byte) (tlsRecord, bool) {
	h, ok := parseHdr(b)
	if !ok || h.typ != evTLSData || len(b) < int(tlsDataOff) {
		return tlsRecord{}, false
	}
	n := le.Uint32(b[tlsLen:])
	if int(tlsDataOff)+int(n) > len(b) {
		return tlsRecord{}, false
	}
	return tlsRecord{
		hdr:        h,
		conn:       le.Uint64(b[tlsConn:]),
		callLen:    le.Uint64(b[tlsCallLen:]),
		offset:     le.Uint64(b[tlsOffset:]),
		lostBefore: le.Uint64(b[tlsLost:]),
		fd:         int32(le.Uint32(b[tlsFd:])),
		dir:        b[tlsDir],
		lib:        b[tlsLib],
		data:       b[tlsDataOff : int(tlsDataOff)+int(n) : int(tlsDataOff)+int(n)],
	}, true
}

// decodeFixed copies a fixed-size record into the generated struct.
func decodeFixed[T any](b []byte, size uintptr, out *T) bool {
	if len(b) < int(size) {
		return false
	}
	_, err := binary.Decode(b[:size], le, out)
	return err == nil
}

// pathFromComponents turns the leaf-first, NUL-separated components written
// by walk_path into an absolute path.
func pathFromComponents(b []byte) string {
	parts := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	var sb strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		if len(parts[i]) == 0 {
			continue
		}
		sb.WriteByte('/')
		sb.Write(parts[i])
	}
	if sb.Len() == 0 {
		return "/"
	}
	return sb.String()
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func splitArgs(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

func sockAddr(family uint16, addr [16]uint8, port uint16) netip.AddrPort {
	switch family {
	case 2:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[:4])), port)
	case 10:
		a := netip.AddrFrom16(addr)
		if a.Is4In6() {
			a = a.Unmap()
		}
		return netip.AddrPortFrom(a, port)
	}
	return netip.AddrPort{}
}

// execRecord is an exec event with its byte fields sliced out of the
// record (no copies).
type execRecord struct {
	ppid, uid, exeDev uint32
	exeIno            uint64
	comm, filename    []byte
	args, exe, cwd    []byte
}

var (
	execPpid     = unsafe.Offsetof(oispEvExec{}.Ppid)
	execUid      = unsafe.Offsetof(oispEvExec{}.Uid)
	execIno      = unsafe.Offsetof(oispEvExec{}.ExeIno)
	execDev      = unsafe.Offsetof(oispEvExec{}.ExeDev)
	execArgsLen  = unsafe.Offsetof(oispEvExec{}.ArgsLen)
	execExeLen   = unsafe.Offsetof(oispEvExec{}.ExeLen)
	execCwdLen   = unsafe.Offsetof(oispEvExec{}.CwdLen)
	execComm     = unsafe.Offsetof(oispEvExec{}.Comm)
	execFilename = unsafe.Offsetof(oispEvExec{}.Filename)
	execArgs     = unsafe.Offsetof(oispEvExec{}.Args)
	execExe      = unsafe.Offsetof(oispEvExec{}.Exe)
	execCwd      = unsafe.Offsetof(oispEvExec{}.Cwd)
)

// field returns n bytes at off, capped at capacity bytes.
func field(b []byte, off uintptr, n uint32, capacity int) []byte {
	return b[off : off+uintptr(min(int(n), capacity))]
}

func parseExec(b []byte) (execRecord, bool) {
	if len(b) < int(execSize) {
		return execRecord{}, false
	}
	var e oispEvExec
	return execRecord{
		ppid:     le.Uint32(b[execPpid:]),
		uid:      le.Uint32(b[execUid:]),
		exeIno:   le.Uint64(b[execIno:]),
		exeDev:   le.Uint32(b[execDev:]),
		comm:     b[execComm : execComm+uintptr(len(e.Comm))],
		filename: b[execFilename : execFilename+uintptr(len(e.Filename))],
		args:     field(b, execArgs, le.Uint32(b[execArgsLen:]), len(e.Args)),
		exe:      field(b, execExe, le.Uint32(b[execExeLen:]), len(e.Exe)),
		cwd:      field(b, execCwd, le.Uint32(b[execCwdLen:]), len(e.Cwd)),
	}, true
}

// dropKey names one direction of one connection object in one process.
type dropKey struct {
	tgid uint32
	conn uint64
	dir  uint8
}

type dropEntry struct {
	bytes    int64
	afterSeq uint64 // the first dropped record's sequence number
}

// dropLedger remembers plaintext the reader had to drop, so the decoder can
// report it as a Gap on the flow's next chunk after the drop.
type dropLedger struct {
	mu     sync.Mutex
	m      map[dropKey]dropEntry
	system map[uint32]int64 // dropped system records by type
}

func newDropLedger() *dropLedger {
	return &dropLedger{m: map[dropKey]dropEntry{}, system: map[uint32]int64{}}
}

func (d *dropLedger) add(k dropKey, n int64, seq uint64) {
	d.mu.Lock()
	e, ok := d.m[k]
	if !ok {
		e.afterSeq = seq
	}
	e.bytes += n
	d.m[k] = e
	d.mu.Unlock()
}

func (d *dropLedger) addSystem(raw []byte) {
	h, _ := parseHdr(raw)
	d.mu.Lock()
	d.system[h.typ]++
	d.mu.Unlock()
}

// take returns the bytes dropped before the record with sequence seq.
func (d *dropLedger) take(k dropKey, seq uint64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.m[k]
	if !ok || e.afterSeq >= seq {
		return 0
	}
	delete(d.m, k)
	return e.bytes
}
