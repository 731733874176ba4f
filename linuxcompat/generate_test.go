package linuxcompat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// pinnedClang is the compiler the committed object was built with; other
// versions emit different (equally valid) bytes, so the comparison only runs
// with this one.
const pinnedClang = "Debian clang version 14.0.6"

// TestGeneratedObjectUpToDate rebuilds the BPF object with the go:generate
// command from gen.go and compares it with the committed files. It skips
// when clang (the pinned version) or the libbpf headers are missing: builds
// and CI use the committed object and never need clang.
func TestGeneratedObjectUpToDate(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Skip("clang not installed; committed BPF object not rebuilt")
	}
	ver, err := exec.Command(clang, "--version").Output()
	if err != nil || !strings.Contains(string(ver), pinnedClang) {
		t.Skipf("clang is not %q; committed BPF object not compared", pinnedClang)
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("libbpf-dev headers not installed")
	}
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go tool bpf2go "); ok {
			args = splitQuoted(rest)
		}
	}
	if len(args) == 0 {
		t.Fatal("gen.go has no bpf2go go:generate line")
	}
	out := t.TempDir()
	cmdArgs := append([]string{"tool", "bpf2go", "-output-dir", out}, args...)
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), cmdArgs...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=linuxcompat")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, b)
	}
	for _, name := range []string{"oisp_x86_bpfel.o", "oisp_x86_bpfel.go"} {
		want, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh build of bpf/oisp.bpf.c: run go generate ./linuxcompat and commit", name)
		}
	}
}

// splitQuoted splits a go:generate argument string, honouring double quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
