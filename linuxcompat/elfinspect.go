package linuxcompat

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// Attach cookies: the BPF program tells the probed function by these values.
// They match enum oisp_tls_fn in bpf/oisp.bpf.c.
const (
	fnSSLWrite    = 1
	fnSSLRead     = 2
	fnSSLWriteEx  = 3
	fnSSLReadEx   = 4
	fnGnuTLSSend  = 5
	fnGnuTLSRecv  = 6
	fnGoWrite     = 7
	fnGoReadEnter = 8
	fnSSLFree     = 9
	fnGnuTLSFree  = 10
	// The internal function that SSL_write and SSL_write_ex (SSL_read and
	// SSL_read_ex) both call: (SSL *, buf, size_t num, size_t *done),
	// returning > 0 on success with *done set.
	fnSSLWriteInternal = 11
	fnSSLReadInternal  = 12
)

// BPF program names in the object (SEC functions).
const (
	progTLSEnter    = "tls_enter"
	progTLSReturn   = "tls_return"
	progGoWrite     = "go_write"
	progGoReadEnter = "go_read_enter"
	progGoReadRet   = "go_read_ret"
	progGoReadCopy  = "go_read_copy"
)

// probeSpec is one uprobe to place in a file.
type probeSpec struct {
	Symbol  string
	Address uint64 // file offset of the function entry
	Offset  uint64 // added to Address (Go RET sites)
	Program string
	Return  bool // uretprobe (never for Go code)
	Cookie  uint64
}

// inspection is what a binary or library offers for TLS capture.
type inspection struct {
	Library string // "openssl", "gnutls", "go"; "" when nothing to probe
	Symbols []string
	Probes  []probeSpec
	// Unsupported is set when the file looks TLS-related but cannot be
	// probed (report it); empty with no probes means "not interesting".
	Unsupported string
}

var cFunctions = []struct {
	lib    string
	name   string
	cookie uint64
	// lifecycle functions get an entry probe only and do not by themselves
	// make a file a TLS target.
	lifecycle bool
}{
	{"openssl", "SSL_write", fnSSLWrite, false},
	{"openssl", "SSL_read", fnSSLRead, false},
	{"openssl", "SSL_write_ex", fnSSLWriteEx, false},
	{"openssl", "SSL_read_ex", fnSSLReadEx, false},
	{"openssl", "SSL_free", fnSSLFree, true},
	{"gnutls", "gnutls_record_send", fnGnuTLSSend, false},
	{"gnutls", "gnutls_record_recv", fnGnuTLSRecv, false},
	{"gnutls", "gnutls_deinit", fnGnuTLSFree, true},
}

const (
	goTLSWrite = "crypto/tls.(*Conn).Write"
	goTLSRead  = "crypto/tls.(*Conn).Read"
	goMemmove  = "runtime.memmove"
)

// tlsLibraryName reports whether a file name looks like a TLS library we
// would expect symbols in (used to report unsupported copies).
func tlsLibraryName(path string) bool {
	base := filepath.Base(path)
	for _, p := range []string{"libssl", "libgnutls", "libnss3", "libwolfssl", "libmbedtls", "libboringssl", "libbssl"} {
		if strings.HasPrefix(base, p) {
			return true
		}
	}
	return false
}

// inspectELF finds the TLS functions in the ELF file at path: exported C
// functions of OpenSSL and GnuTLS (shared libraries and binaries that link
// them statically and export them, like Node.js) and Go crypto/tls, also in
// stripped Go binaries through .gopclntab.
func inspectELF(path string) (inspection, error) {
	return inspectELFNamed(path, path)
}

// inspectELFNamed is inspectELF for a file opened under one path (such as
// /proc/self/fd/N) and known by another, which decides whether a file
// without TLS symbols is reported (a libssl-named one is).
func inspectELFNamed(path, name string) (inspection, error) {
	f, err := elf.Open(path)
	if err != nil {
		return inspection{}, fmt.Errorf("open elf: %w", err)
	}
	defer f.Close()

	if ins, ok := inspectGo(f, path); ok {
		return ins, nil
	}
	return inspectC(f, name)
}

func inspectC(f *elf.File, name string) (inspection, error) {
	names := make([]string, len(cFunctions))
	for i, fn := range cFunctions {
		names[i] = fn.name
	}
	found, err := lookupSymbols(f, elf.SHT_DYNSYM, names)
	if err != nil {
		return inspection{}, err
	}
	if len(found) == 0 {
		if found, err = lookupSymbols(f, elf.SHT_SYMTAB, names); err != nil {
			return inspection{}, err
		}
	}

	shared := opensslSharedSites(f, found)
	placed := map[uint64]bool{}
	var ins inspection
	for _, fn := range cFunctions {
		s, ok := found[fn.name]
		if !ok {
			continue
		}
		if site, ok := shared[fn.name]; ok {
			ins.Library = fn.lib
			ins.Symbols = append(ins.Symbols, fn.name)
			if !placed[site.offset] {
				placed[site.offset] = true
				ins.Probes = append(ins.Probes,
					probeSpec{Symbol: fn.name, Address: site.offset, Program: progTLSEnter, Cookie: site.cookie},
					probeSpec{Symbol: fn.name, Address: site.offset, Program: progTLSReturn, Return: true, Cookie: site.cookie})
			}
			continue
		}
		if fn.lifecycle {
			if !ins.hasLib(fn.lib) {
				continue // e.g. SSL_free without SSL_read/SSL_write
			}
			off, err := fileOffset(f, s.value)
			if err != nil {
				return inspection{}, fmt.Errorf("symbol %s: %w", fn.name, err)
			}
			ins.Symbols = append(ins.Symbols, fn.name)
			ins.Probes = append(ins.Probes, probeSpec{Symbol: fn.name, Address: off, Program: progTLSEnter, Cookie: fn.cookie})
			continue
		}
		off, err := fileOffset(f, s.value)
		if err != nil {
			return inspection{}, fmt.Errorf("symbol %s: %w", fn.name, err)
		}
		if ins.Library != "" && ins.Library != fn.lib {
			// A file exporting both families: keep both, name the first.
			ins.Library += "+" + fn.lib
		} else if ins.Library == "" {
			ins.Library = fn.lib
		}
		ins.Symbols = append(ins.Symbols, fn.name)
		ins.Probes = append(ins.Probes,
			probeSpec{Symbol: fn.name, Address: off, Program: progTLSEnter, Cookie: fn.cookie},
			probeSpec{Symbol: fn.name, Address: off, Program: progTLSReturn, Return: true, Cookie: fn.cookie})
	}
	if len(ins.Probes) == 0 {
		switch {
		case tlsLibraryName(name):
			ins.Unsupported = "no OpenSSL or GnuTLS record functions exported (library family not supported or symbols stripped)"
		default:
			ins.Unsupported = embeddedTLSStack(f)
		}
	}
	return ins, nil
}

// embeddedTLSStacks are markers (crate and source paths left in panic and
// assertion messages) of TLS stacks compiled into a binary without symbols
// we could probe.
var embeddedTLSStacks = []struct {
	marker, reason string
}{
	{"/rustls-0.", "statically linked rustls: no stable symbols to probe"},
	{"third_party/boringssl/", "statically linked BoringSSL without exported SSL_read/SSL_write"},
}

// maxMarkerScan bounds the read-only data scanned for embeddedTLSStacks.
const maxMarkerScan = 64 << 20

// embeddedTLSStack reports, for the attach report, a TLS stack compiled into
// the file that we cannot probe; "" when none is recognised.
func embeddedTLSStack(f *elf.File) string {
	sec := f.Section(".rodata")
	if sec == nil || sec.Type == elf.SHT_NOBITS || sec.Size > maxMarkerScan {
		return ""
	}
	data, err := sec.Data()
	if err != nil {
		return ""
	}
	for _, m := range embeddedTLSStacks {
		if bytes.Contains(data, []byte(m.marker)) {
			return m.reason
		}
	}
	return ""
}

func (ins *inspection) hasLib(lib string) bool {
	for _, l := range strings.Split(ins.Library, "+") {
		if l == lib {
			return true
		}
	}
	return false
}

// fileOffset converts a virtual address to the file offset uprobes take.
func fileOffset(f *elf.File, vaddr uint64) (uint64, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 {
			continue
		}
		if vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			return vaddr - p.Vaddr + p.Off, nil
		}
	}
	return 0, fmt.Errorf("address %#x not in an executable segment", vaddr)
}

// goFunc is a function's entry and end virtual addresses.
type goFunc struct {
	entry, end uint64
}

// inspectGo handles Go binaries. ok is false when the file is not Go.
func inspectGo(f *elf.File, path string) (inspection, bool) {
	pcln := f.Section(".gopclntab")
	if pcln == nil && f.Section(".go.buildinfo") == nil {
		return inspection{}, false
	}
	ins := inspection{Library: "go"}
	if f.Machine != elf.EM_X86_64 {
		ins.Library = ""
		ins.Unsupported = fmt.Sprintf("Go binary for %s: only amd64 register ABI probes are implemented", f.Machine)
		return ins, true
	}
	if bi, err := buildinfo.ReadFile(path); err == nil && !goVersionAtLeast(bi.GoVersion, 17) {
		ins.Library = ""
		ins.Unsupported = bi.GoVersion + " predates the register ABI (go1.17)"
		return ins, true
	}

	funcs, err := goFunctions(f, pcln, []string{goTLSWrite, goTLSRead}, goMemmove)
	if err != nil {
		ins.Library = ""
		ins.Unsupported = "cannot read Go symbol table: " + err.Error()
		return ins, true
	}
	w, hasW := funcs[goTLSWrite]
	r, hasR := funcs[goTLSRead]
	if !hasW && !hasR {
		// A Go program that does not use crypto/tls: nothing to report.
		return inspection{}, true
	}
	if hasW {
		off, err := fileOffset(f, w.entry)
		if err != nil {
			return inspection{Unsupported: err.Error()}, true
		}
		code, err := funcCode(f, w)
		if err != nil {
			return inspection{Unsupported: err.Error()}, true
		}
		ins.Symbols = append(ins.Symbols, goTLSWrite)
		ins.Probes = append(ins.Probes, probeSpec{Symbol: goTLSWrite, Address: off, Offset: goBodyStart(code), Program: progGoWrite, Cookie: fnGoWrite})
	}
	if hasR {
		off, err := fileOffset(f, r.entry)
		if err != nil {
			return inspection{Unsupported: err.Error()}, true
		}
		code, err := funcCode(f, r)
		if err != nil {
			return inspection{Unsupported: err.Error()}, true
		}
		ins.Probes = append(ins.Probes, probeSpec{Symbol: goTLSRead, Address: off, Offset: goBodyStart(code), Program: progGoReadEnter, Cookie: fnGoReadEnter})
		if mm, ok := funcs[goMemmove]; ok {
			if calls, err := findCallsTo(code, r.entry, mm.entry); err == nil && len(calls) == 1 {
				ins.Symbols = append(ins.Symbols, goTLSRead+"+copy")
				ins.Probes = append(ins.Probes, probeSpec{Symbol: goTLSRead, Address: off, Offset: calls[0], Program: progGoReadCopy, Cookie: fnGoReadEnter})
				return ins, true
			}
		}
		rets, err := findRETs(code)
		if err != nil || len(rets) == 0 {
			reason := "no RET instructions found in " + goTLSRead
			if err != nil {
				reason = err.Error()
			}
			return inspection{Unsupported: reason}, true
		}
		ins.Symbols = append(ins.Symbols, goTLSRead+"+"+strconv.Itoa(len(rets))+"ret")
		for _, ro := range rets {
			ins.Probes = append(ins.Probes, probeSpec{Symbol: goTLSRead, Address: off, Offset: ro, Program: progGoReadRet, Cookie: fnGoReadEnter})
		}
	}
	return ins, true
}

func goVersionAtLeast(v string, minor int) bool {
	v = strings.TrimPrefix(v, "go")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return true // devel or unknown: assume recent
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return true
	}
	digits := strings.IndexFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
	if digits >= 0 {
		parts[1] = parts[1][:digits]
	}
	m, err := strconv.Atoi(parts[1])
	if err != nil {
		return true
	}
	return major > 1 || m >= minor
}

// goFunctions finds functions by name: from .symtab when present, else from
// .gopclntab (which survives -ldflags=-s -w). companions are looked up as
// well, but they are runtime functions every Go binary has
// (runtime.memmove), so only names decide whether .gopclntab, slow to
// parse in a big binary, is worth parsing at all.
func goFunctions(f *elf.File, pcln *elf.Section, names []string, companions ...string) (map[string]goFunc, error) {
	out := map[string]goFunc{}
	wanted := names
	names = append(slices.Clip(names), companions...)
	syms, err := lookupSymbols(f, elf.SHT_SYMTAB, names)
	if err != nil {
		return nil, err
	}
	for name, s := range syms {
		if s.size != 0 {
			out[name] = goFunc{entry: s.value, end: s.value + s.size}
		}
	}
	if len(out) == len(names) {
		return out, nil
	}
	if pcln == nil {
		if len(out) > 0 {
			return out, nil
		}
		return nil, errors.New("no .symtab and no .gopclntab")
	}
	data, err := pcln.Data()
	if err != nil {
		return nil, fmt.Errorf("read .gopclntab: %w", err)
	}
	// Parsing the whole table is slow for big binaries; most Go programs
	// do not contain crypto/tls at all.
	present := false
	for _, n := range wanted {
		if bytes.Contains(data, append([]byte(n), 0)) {
			present = true
		}
	}
	if !present {
		return out, nil
	}
	var textStart uint64
	if text := f.Section(".text"); text != nil {
		textStart = text.Addr
	}
	table, err := gosym.NewTable(nil, gosym.NewLineTable(data, textStart))
	if err != nil {
		return nil, fmt.Errorf("parse .gopclntab: %w", err)
	}
	for _, n := range names {
		if _, ok := out[n]; ok {
			continue
		}
		if fn := table.LookupFunc(n); fn != nil {
			out[n] = goFunc{entry: fn.Entry, end: fn.End}
		}
	}
	return out, nil
}

// retOffsets disassembles fn and returns the offsets of its RET instructions
// relative to the entry.
func retOffsets(f *elf.File, fn goFunc) ([]uint64, error) {
	code, err := funcCode(f, fn)
	if err != nil {
		return nil, err
	}
	return findRETs(code)
}

// goBodyStart returns the offset of the PUSHQ BP that follows a Go
// function's stack-growth check, or 0 when there is none in the prologue.
//
// Probing there instead of at the entry matters twice: when the stack must
// grow, runtime.morestack re-runs the function from its entry, so an entry
// probe would report the same Write twice; and x86 uprobes emulate PUSH
// (about 0.6 µs) but single-step the entry's CMPQ/LEAQ (about 11 µs on our
// VMs). The argument registers (AX, BX, CX) and R14 are unchanged there.
func goBodyStart(code []byte) uint64 {
	for pc, n := 0, 0; pc < len(code) && n < 8; n++ {
		inst, err := x86asm.Decode(code[pc:], 64)
		if err != nil {
			return 0
		}
		if inst.Op == x86asm.PUSH && inst.Args[0] == x86asm.RBP {
			return uint64(pc)
		}
		switch inst.Op {
		case x86asm.CMP, x86asm.LEA, x86asm.JBE, x86asm.JA, x86asm.JB, x86asm.JAE:
		default:
			return 0 // not the stack check we know: stay at the entry
		}
		pc += inst.Len
	}
	return 0
}

// funcCode reads the machine code of fn from the file.
func funcCode(f *elf.File, fn goFunc) ([]byte, error) {
	if fn.end <= fn.entry || fn.end-fn.entry > 1<<20 {
		return nil, fmt.Errorf("implausible function bounds %#x-%#x", fn.entry, fn.end)
	}
	code := make([]byte, fn.end-fn.entry)
	off, err := fileOffset(f, fn.entry)
	if err != nil {
		return nil, err
	}
	ra, ok := sectionReaderFor(f, off)
	if !ok {
		return nil, errors.New("function bytes not readable")
	}
	if _, err := ra.ReadAt(code, int64(off)); err != nil {
		return nil, fmt.Errorf("read function bytes: %w", err)
	}
	return code, nil
}

func sectionReaderFor(f *elf.File, off uint64) (io.ReaderAt, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && off >= p.Off && off < p.Off+p.Filesz {
			return readerAtOffset{p}, true
		}
	}
	return nil, false
}

// readerAtOffset reads a PT_LOAD segment with absolute file offsets.
type readerAtOffset struct{ p *elf.Prog }

func (r readerAtOffset) ReadAt(b []byte, off int64) (int, error) {
	return r.p.ReadAt(b, off-int64(r.p.Off))
}

// sharedSite is a probe site that serves two exported functions.
type sharedSite struct {
	offset uint64 // file offset
	cookie uint64
}

// opensslSharedSites finds, for OpenSSL builds whose SSL_write/SSL_read
// entries x86 uprobes would single-step, the internal function both the
// plain and the _ex form call first (ssl_write_internal and
// ssl_read_internal in OpenSSL 1.1.1 to 3.1) when that one starts with a
// PUSH, which uprobes emulate. Debian's libssl starts SSL_write with
// "sub $0x18,%rsp": a probe there costs about 7 µs a call on our VMs, one
// on ssl_write_internal's "push %r14" about 3 µs, and one site now serves
// both forms. The result maps each exported name to its shared site; it
// is empty (keep the exported entries) unless both wrappers call the same
// function inside this file's text first, passing four arguments, and that
// function starts with a PUSH while the wrappers do not.
func opensslSharedSites(f *elf.File, found map[string]elfSym) map[string]sharedSite {
	out := map[string]sharedSite{}
	text := f.Section(".text")
	if text == nil {
		return out
	}
	for _, pair := range []struct {
		plain, ex string
		cookie    uint64
	}{{"SSL_write", "SSL_write_ex", fnSSLWriteInternal}, {"SSL_read", "SSL_read_ex", fnSSLReadInternal}} {
		plain, ok1 := found[pair.plain]
		ex, ok2 := found[pair.ex]
		if !ok1 || !ok2 {
			continue
		}
		t1, ok1 := firstCallTarget(f, plain)
		t2, ok2 := firstCallTarget(f, ex)
		if !ok1 || !ok2 || t1 != t2 || t1 < text.Addr || t1 >= text.Addr+text.Size {
			continue
		}
		if startsWithPush(f, plain.value) || startsWithPush(f, ex.value) || !startsWithPush(f, t1) {
			continue
		}
		off, err := fileOffset(f, t1)
		if err != nil {
			continue
		}
		out[pair.plain] = sharedSite{off, pair.cookie}
		out[pair.ex] = sharedSite{off, pair.cookie}
	}
	return out
}

// firstCallTarget returns the target of the first direct CALL in the
// function s, when it passes four arguments (see fourArgCall).
func firstCallTarget(f *elf.File, s elfSym) (uint64, bool) {
	if s.size == 0 || s.size > 4096 {
		return 0, false
	}
	code, err := funcCode(f, goFunc{entry: s.value, end: s.value + s.size})
	if err != nil {
		return 0, false
	}
	return fourArgCall(code, s.value)
}

// fourArgCall decodes a wrapper's code (at address entry) up to its first
// CALL and returns the CALL's target, unless that CALL is indirect or an
// instruction before it writes R8, the fifth argument register. OpenSSL
// 3.0 and 1.1.1 call ssl_write_internal(s, buf, num, written); 3.2 added
// a flags argument before written, ssl_write_internal(s, buf, num, flags,
// written), which moves the out-parameter to R8. The BPF program reads the
// out-parameter from the fourth argument, so such a build keeps its
// probes on the exported functions.
func fourArgCall(code []byte, entry uint64) (uint64, bool) {
	for pc := 0; pc < len(code); {
		inst, err := x86asm.Decode(code[pc:], 64)
		if err != nil {
			return 0, false
		}
		if inst.Op == x86asm.CALL {
			rel, ok := inst.Args[0].(x86asm.Rel)
			if !ok || code[pc] != 0xe8 {
				return 0, false
			}
			return entry + uint64(pc+inst.Len) + uint64(int64(rel)), true
		}
		switch inst.Args[0] {
		case x86asm.R8, x86asm.R8L, x86asm.R8W, x86asm.R8B:
			return 0, false
		}
		pc += inst.Len
	}
	return 0, false
}

// startsWithPush reports whether the instruction at vaddr pushes a
// register (which x86 uprobes emulate instead of single-stepping).
func startsWithPush(f *elf.File, vaddr uint64) bool {
	code, err := funcCode(f, goFunc{entry: vaddr, end: vaddr + 16})
	if err != nil {
		return false
	}
	inst, err := x86asm.Decode(code, 64)
	if err != nil || inst.Op != x86asm.PUSH {
		return false
	}
	_, isReg := inst.Args[0].(x86asm.Reg)
	return isReg
}

// findCallsTo decodes amd64 machine code linearly (code starts at address
// entry) and returns the offsets of every direct CALL to target.
//
// (*Conn).Read copies the decrypted plaintext into the caller's buffer with
// one CALL runtime.memmove (bytes.Reader.Read inlined); when there is
// exactly one, a uprobe on it sees destination, source and length in AX,
// BX and CX and replaces the probes on every RET. x86 uprobes emulate a
// CALL but single-step a RET, which costs several microseconds a hit on
// our VMs. Any other count (a future Go that compiles Read differently)
// keeps the RET probes.
func findCallsTo(code []byte, entry, target uint64) ([]uint64, error) {
	var calls []uint64
	for pc := 0; pc < len(code); {
		inst, err := x86asm.Decode(code[pc:], 64)
		if err != nil {
			return nil, fmt.Errorf("decode instruction at +%#x: %w", pc, err)
		}
		if inst.Op == x86asm.CALL && inst.Len == 5 && code[pc] == 0xe8 {
			if rel, ok := inst.Args[0].(x86asm.Rel); ok && entry+uint64(pc+inst.Len)+uint64(int64(rel)) == target {
				calls = append(calls, uint64(pc))
			}
		}
		pc += inst.Len
	}
	return calls, nil
}

// findRETs decodes amd64 machine code linearly and returns every RET offset.
func findRETs(code []byte) ([]uint64, error) {
	var rets []uint64
	for pc := 0; pc < len(code); {
		inst, err := x86asm.Decode(code[pc:], 64)
		if err != nil {
			return nil, fmt.Errorf("decode instruction at +%#x: %w", pc, err)
		}
		if inst.Op == x86asm.RET {
			rets = append(rets, uint64(pc))
		}
		pc += inst.Len
	}
	return rets, nil
}

// elfSym is the part of a symbol table entry we need.
type elfSym struct {
	value, size uint64
}

// lookupSymbols scans a symbol table (SHT_SYMTAB or SHT_DYNSYM) for defined
// functions with the given names, without materialising every symbol (big
// binaries have hundreds of thousands). Only 64-bit little-endian ELF files
// are handled; others yield no symbols.
func lookupSymbols(f *elf.File, typ elf.SectionType, names []string) (map[string]elfSym, error) {
	out := map[string]elfSym{}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return out, nil
	}
	sec := f.SectionByType(typ)
	if sec == nil || int(sec.Link) >= len(f.Sections) {
		return out, nil
	}
	syms, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", sec.Name, err)
	}
	strs, err := f.Sections[sec.Link].Data()
	if err != nil {
		return nil, fmt.Errorf("read %s strings: %w", sec.Name, err)
	}
	const entSize = 24 // Elf64_Sym
	le := binary.LittleEndian
	for i := entSize; i+entSize <= len(syms); i += entSize {
		e := syms[i : i+entSize]
		info, shndx := e[4], le.Uint16(e[6:])
		if elf.ST_TYPE(info) != elf.STT_FUNC || elf.SectionIndex(shndx) == elf.SHN_UNDEF {
			continue
		}
		nameOff := int(le.Uint32(e))
		if nameOff >= len(strs) {
			continue
		}
		for _, n := range names {
			end := nameOff + len(n)
			if end < len(strs) && strs[end] == 0 && string(strs[nameOff:end]) == n {
				if _, dup := out[n]; !dup && le.Uint64(e[8:]) != 0 {
					out[n] = elfSym{value: le.Uint64(e[8:]), size: le.Uint64(e[16:])}
				}
			}
		}
	}
	return out, nil
}
