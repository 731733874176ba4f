//go:build linux && amd64

package linuxcompat

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// bothSyscallHooks runs test with the syscall hooks attached per syscall and
// through the raw tracepoints (as where tracefs is missing), checking each
// Source attached them that way.
func bothSyscallHooks(t *testing.T, test func(t *testing.T, hooks func(*Source))) {
	for _, c := range []struct {
		name string
		raw  bool
		want string
	}{{"tracepoints", false, SyscallTracepoints}, {"raw", true, SyscallRawTracepoints}} {
		t.Run(c.name, func(t *testing.T) {
			if !c.raw && !tracefsMounted() {
				const why = "tracefs is not mounted, so the per-syscall tracepoints cannot attach (as root: mount -t tracefs nodev /sys/kernel/tracing)"
				if os.Getenv("OISP_REQUIRE_EBPF") == "1" {
					t.Fatal(why + "; OISP_REQUIRE_EBPF=1 requires both syscall hooks")
				}
				t.Skip(why)
			}
			test(t, func(s *Source) {
				s.noSyscallTracepoints = c.raw
				t.Cleanup(func() {
					if got := s.SyscallHooks(); got != c.want && got != "" {
						t.Errorf("syscall hooks attached as %q, want %q", got, c.want)
					}
				})
			})
		})
	}
}

// TestSyscallListsMatchBPF: the syscalls the loader attaches tracepoints to
// are exactly the case labels of sys_enter_wanted and sys_exit_wanted in
// the BPF source, so per-syscall and raw hooks see the same syscalls.
func TestSyscallListsMatchBPF(t *testing.T) {
	src, err := os.ReadFile("bpf/oisp.bpf.c")
	if err != nil {
		t.Fatal(err)
	}
	labels := func(fn string) []string {
		i := strings.Index(string(src), "bool "+fn+"(long nr)")
		if i < 0 {
			t.Fatalf("no %s in bpf/oisp.bpf.c", fn)
		}
		body := string(src[i:])
		body = body[:strings.Index(body, "\n}\n")]
		var out []string
		for _, m := range regexp.MustCompile(`case NR_(\w+):`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	if got, want := slices.Sorted(maps.Keys(enterSyscalls)), labels("sys_enter_wanted"); !slices.Equal(got, want) {
		t.Errorf("enterSyscalls %v, BPF sys_enter_wanted %v", got, want)
	}
	if got, want := slices.Sorted(slices.Values(exitSyscalls)), labels("sys_exit_wanted"); !slices.Equal(got, want) {
		t.Errorf("exitSyscalls %v, BPF sys_exit_wanted %v", got, want)
	}
}
