package linuxcompat

import (
	"bytes"
	"crypto/tls"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// The test binary links crypto/tls, so it is a real Go target to inspect.
var _ = (*tls.Conn).Read

func TestInspectGoBinaryFindsTLSFunctions(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("Go probes are amd64 only")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("test binary is not ELF: %v", err)
	}
	defer f.Close()
	funcs, err := goFunctions(f, f.Section(".gopclntab"), []string{goTLSWrite, goTLSRead}, goMemmove)
	if err != nil {
		t.Fatal(err)
	}
	memmove, ok := funcs[goMemmove]
	if !ok {
		t.Fatal("runtime.memmove not found")
	}
	// Cross-check against the runtime's own view of the function (the test
	// binary is not position independent, so addresses match).
	for name, fn := range map[string]any{goTLSWrite: (*tls.Conn).Write, goTLSRead: (*tls.Conn).Read} {
		rf := runtime.FuncForPC(reflect.ValueOf(fn).Pointer())
		got, ok := funcs[name]
		if !ok {
			t.Fatalf("%s not found", name)
		}
		if rf.Name() == name && uint64(rf.Entry()) != got.entry {
			t.Errorf("%s entry %#x, runtime says %#x", name, got.entry, rf.Entry())
		}
	}
	rets, err := retOffsets(f, funcs[goTLSRead])
	if err != nil || len(rets) == 0 {
		t.Fatalf("RET offsets: %v %v", rets, err)
	}
	// Every offset must hold a RET opcode (0xC3) in the file.
	raw, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	entryOff, err := fileOffset(f, funcs[goTLSRead].entry)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rets {
		if b := raw[entryOff+r]; b != 0xC3 {
			t.Errorf("offset +%#x holds %#x, not RET", r, b)
		}
	}
	ins, err := inspectELF(exe)
	if err != nil {
		t.Fatal(err)
	}
	// Go 1.26 copies the plaintext with one CALL runtime.memmove: Write,
	// Read's entry and that call, no RET probes.
	if ins.Library != "go" || len(ins.Probes) != 3 || ins.Probes[2].Program != progGoReadCopy {
		t.Errorf("inspection = %+v", ins)
	}
	for _, p := range ins.Probes {
		if p.Return {
			t.Errorf("Go probe %s uses a uretprobe", p.Symbol)
		}
		if p.Program == progGoWrite || p.Program == progGoReadEnter {
			// After the stack check, on PUSHQ BP (0x55).
			if p.Offset == 0 || raw[p.Address+p.Offset] != 0x55 {
				t.Errorf("%s probe at +%#x, not on PUSHQ BP", p.Program, p.Offset)
			}
		}
		if p.Program == progGoReadCopy {
			// On a direct CALL (0xE8) to runtime.memmove.
			at := p.Address + p.Offset
			rel := int32(binary.LittleEndian.Uint32(raw[at+1:]))
			target := funcs[goTLSRead].entry + p.Offset + 5 + uint64(int64(rel))
			if raw[at] != 0xe8 || target != memmove.entry {
				t.Errorf("copy probe at +%#x is not a CALL runtime.memmove (%#x -> %#x, memmove at %#x)", p.Offset, raw[at], target, memmove.entry)
			}
		}
	}
}

func TestInspectOpenSSLMatchesDebugELF(t *testing.T) {
	var lib string
	for _, p := range []string{"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib64/libssl.so.3"} {
		if _, err := os.Stat(p); err == nil {
			lib = p
			break
		}
	}
	if lib == "" {
		t.Skip("libssl.so.3 not installed")
	}
	ins, err := inspectELF(lib)
	if err != nil {
		t.Fatal(err)
	}
	// Four data functions and SSL_free. Debian's SSL_write/SSL_read start
	// with "sub $0x18,%rsp" (single-stepped): the plain and _ex forms share
	// one entry + return pair on the internal function both call first,
	// which starts with a PUSH. Otherwise each has its own pair.
	if ins.Library != "openssl" || len(ins.Symbols) != 5 || (len(ins.Probes) != 5 && len(ins.Probes) != 9) {
		t.Fatalf("inspection = %+v", ins)
	}
	f, err := elf.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dyn, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for _, s := range dyn {
		if s.Section != elf.SHN_UNDEF && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			if off, err := fileOffset(f, s.Value); err == nil {
				want[s.Name] = off
			}
		}
	}
	raw, err := os.ReadFile(lib)
	if err != nil {
		t.Fatal(err)
	}
	isPush := func(off uint64) bool {
		b := raw[off]
		return b >= 0x50 && b <= 0x57 || b == 0x41 && raw[off+1] >= 0x50 && raw[off+1] <= 0x57
	}
	if !isPush(want["SSL_write"]) && len(ins.Probes) != 5 {
		t.Errorf("SSL_write starts with %#x (not a PUSH), yet no shared internal site: %+v", raw[want["SSL_write"]], ins.Probes)
	}
	// callsAt reports whether the exported function name holds a CALL
	// rel32 to file offset site within its first 256 bytes (both lie in
	// the text segment, so the relative target works on file offsets).
	callsAt := func(name string, site uint64) bool {
		start := want[name]
		for pc := start; pc < start+256 && pc+5 <= uint64(len(raw)); pc++ {
			rel := int32(binary.LittleEndian.Uint32(raw[pc+1:]))
			if raw[pc] == 0xe8 && pc+5+uint64(int64(rel)) == site {
				return true
			}
		}
		return false
	}
	for _, p := range ins.Probes {
		switch p.Cookie {
		case fnSSLWriteInternal, fnSSLReadInternal:
			plain, ex := "SSL_write", "SSL_write_ex"
			if p.Cookie == fnSSLReadInternal {
				plain, ex = "SSL_read", "SSL_read_ex"
			}
			if !isPush(p.Address) || !callsAt(plain, p.Address) || !callsAt(ex, p.Address) {
				t.Errorf("shared site %#x for %s/%s: not a PUSH both call", p.Address, plain, ex)
			}
		default:
			if want[p.Symbol] != p.Address {
				t.Errorf("%s at %#x, debug/elf says %#x", p.Symbol, p.Address, want[p.Symbol])
			}
		}
	}
}

func TestFourArgCall(t *testing.T) {
	const entry = 0x2000
	for _, tc := range []struct {
		name   string
		code   []byte
		target uint64
		ok     bool
	}{
		{"OpenSSL 3.0 SSL_write_ex", []byte{
			0x48, 0x83, 0xec, 0x08, // sub $0x8,%rsp
			0xe8, 0xf7, 0x00, 0x00, 0x00, // call 0x2100 (0x2009 + 0xf7)
			0xc3,
		}, 0x2100, true},
		{"OpenSSL 3.0 SSL_write", []byte{
			0x48, 0x83, 0xec, 0x18, // sub $0x18,%rsp
			0x48, 0x89, 0xe1, // mov %rsp,%rcx
			0x48, 0x63, 0xd2, // movslq %edx,%rdx
			0xe8, 0xf1, 0x00, 0x00, 0x00, // call 0x2100 (0x200f + 0xf1)
			0xc3,
		}, 0x2100, true},
		{"OpenSSL 3.2 SSL_write_ex (flags before written)", []byte{
			0x48, 0x83, 0xec, 0x08, // sub $0x8,%rsp
			0x49, 0x89, 0xc8, // mov %rcx,%r8
			0x31, 0xc9, // xor %ecx,%ecx
			0xe8, 0xf2, 0x00, 0x00, 0x00, // call 0x2100
			0xc3,
		}, 0, false},
		{"OpenSSL 3.2 SSL_write (lea of written into r8)", []byte{
			0x48, 0x83, 0xec, 0x18, // sub $0x18,%rsp
			0x4c, 0x8d, 0x04, 0x24, // lea (%rsp),%r8
			0x31, 0xc9, // xor %ecx,%ecx
			0xe8, 0xf1, 0x00, 0x00, 0x00, // call 0x2100
			0xc3,
		}, 0, false},
		{"indirect call", []byte{
			0xff, 0xd0, // call *%rax
			0xc3,
		}, 0, false},
		{"no call", []byte{0x31, 0xc0, 0xc3}, 0, false},
	} {
		got, ok := fourArgCall(tc.code, entry)
		if got != tc.target || ok != tc.ok {
			t.Errorf("%s: got %#x %v, want %#x %v", tc.name, got, ok, tc.target, tc.ok)
		}
	}
}

func TestFindCallsTo(t *testing.T) {
	const entry, target = 0x1000, 0x1100
	code := []byte{
		0x55,                         // push rbp
		0xe8, 0xfa, 0x00, 0x00, 0x00, // call 0x1100 (0x1006 + 0xfa)
		0xe8, 0x00, 0x00, 0x00, 0x00, // call 0x100b (elsewhere)
		0xff, 0xd0, // call rax
		0xe8, 0xf0, 0x00, 0x00, 0x00, // call 0x1102: not the target
		0xe8, 0xe9, 0x00, 0x00, 0x00, // call 0x1100 again (0x1017 + 0xe9)
		0xc3, // ret
	}
	got, err := findCallsTo(code, entry, target)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []uint64{1, 18}) {
		t.Fatalf("calls at %v, want [1 18]", got)
	}
}

func TestFindRETs(t *testing.T) {
	code := []byte{
		0x55,             // push rbp
		0x48, 0x89, 0xe5, // mov rbp, rsp
		0xc3,             // ret
		0x48, 0x31, 0xc0, // xor rax, rax
		0xc3, // ret
		0xcc, // int3
	}
	got, err := findRETs(code)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []uint64{4, 8}) {
		t.Fatalf("RETs at %v, want [4 8]", got)
	}
}

func TestGoVersionAtLeast(t *testing.T) {
	for v, want := range map[string]bool{
		"go1.16.15": false, "go1.17": true, "go1.26.8": true, "go1.21rc2": true, "go1.9": false, "devel": true,
	} {
		if got := goVersionAtLeast(v, 17); got != want {
			t.Errorf("goVersionAtLeast(%q) = %v", v, got)
		}
	}
}

// FuzzInspectELFBytes feeds arbitrary bytes to the ELF symbol scanner and
// the Go function lookup; they must fail cleanly, never panic.
func FuzzInspectELFBytes(f *testing.F) {
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
			break
		}
	}
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ef, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			return
		}
		_, _ = lookupSymbols(ef, elf.SHT_DYNSYM, []string{"SSL_write"})
		_, _ = lookupSymbols(ef, elf.SHT_SYMTAB, []string{goTLSRead})
		if funcs, err := goFunctions(ef, ef.Section(".gopclntab"), []string{goTLSRead}); err == nil {
			for _, fn := range funcs {
				_, _ = retOffsets(ef, fn)
			}
		}
	})
}

// FuzzFindRETs: the disassembly scan never panics and only reports offsets
// inside the code.
func FuzzFindRETs(f *testing.F) {
	f.Add([]byte{0x55, 0x48, 0x89, 0xe5, 0xc3})
	f.Add([]byte{0xc3, 0xc2, 0x08, 0x00})
	f.Fuzz(func(t *testing.T, code []byte) {
		rets, err := findRETs(code)
		if err != nil {
			return
		}
		for _, r := range rets {
			if r >= uint64(len(code)) {
				t.Fatalf("RET offset %d beyond %d bytes", r, len(code))
			}
		}
	})
}

func TestGoBodyStart(t *testing.T) {
	// CMPQ SP, 0x10(R14); JBE +0x40; PUSHQ BP; MOVQ SP, BP
	small := []byte{0x49, 0x3b, 0x66, 0x10, 0x76, 0x40, 0x55, 0x48, 0x89, 0xe5}
	if got := goBodyStart(small); got != 6 {
		t.Errorf("small frame: body starts at %d, want 6", got)
	}
	// LEAQ -0x28(SP), R12; CMPQ R12, 0x10(R14); JBE +0x40; PUSHQ BP
	large := []byte{0x4c, 0x8d, 0x64, 0x24, 0xd8, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x40, 0x00, 0x00, 0x00, 0x55}
	if got := goBodyStart(large); got != 15 {
		t.Errorf("large frame: body starts at %d, want 15", got)
	}
	// Something else first (MOVQ AX, BX): stay at the entry.
	if got := goBodyStart([]byte{0x48, 0x89, 0xc3, 0x55}); got != 0 {
		t.Errorf("unknown prologue: %d, want 0", got)
	}
}

// TestEmbeddedRustlsReportedUnsupported plants a rustls crate path in the
// .rodata of a copy of a real binary: it must be reported as unsupported.
func TestEmbeddedRustlsReportedUnsupported(t *testing.T) {
	raw, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("/bin/true not readable")
	}
	f, err := elf.NewFile(bytes.NewReader(raw))
	if err != nil {
		t.Skipf("/bin/true is not ELF: %v", err)
	}
	ro := f.Section(".rodata")
	marker := []byte("/root/.cargo/registry/src/rustls-0.23.12/src/conn.rs")
	if ro == nil || ro.Size < uint64(len(marker)) {
		t.Skip("no .rodata to plant a marker in")
	}
	f.Close()
	planted := append([]byte(nil), raw...)
	copy(planted[ro.Offset:], marker)
	path := filepath.Join(t.TempDir(), "rusty")
	if err := os.WriteFile(path, planted, 0o755); err != nil {
		t.Fatal(err)
	}
	ins, err := inspectELF(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins.Probes) != 0 || !strings.Contains(ins.Unsupported, "rustls") {
		t.Fatalf("inspection = %+v", ins)
	}
	// The untouched binary is simply not interesting.
	if ins, err := inspectELF("/bin/true"); err != nil || ins.Unsupported != "" || len(ins.Probes) != 0 {
		t.Fatalf("/bin/true: %+v %v", ins, err)
	}
}
