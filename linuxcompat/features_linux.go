//go:build linux && amd64

package linuxcompat

import (
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Features probes the kernel for what the eBPF source needs (Required) and
// what it uses when present, for `oisp-sensor doctor`.
func Features() []Feature {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	kernel := unix.ByteSliceToString(uts.Release[:])
	check := func(name string, required bool, err error, detail string) Feature {
		f := Feature{Name: name, Required: required, OK: err == nil, Detail: detail}
		if err != nil {
			f.Detail = err.Error()
		}
		return f
	}
	var rootErr error
	if os.Geteuid() != 0 {
		rootErr = ErrNotSupported
	}
	_, btfErr := os.Stat("/sys/kernel/btf/vmlinux")
	tracefs := "not mounted: syscall hooks fall back to the raw sys_enter/sys_exit tracepoints, which every syscall of the machine pays for (about 200 ns here)"
	if tracefsMounted() {
		tracefs = "mounted: syscall hooks attach to the hooked syscalls' own tracepoints"
	}
	return []Feature{
		{Name: "kernel", OK: true, Detail: kernel},
		check("root", true, rootErr, "euid 0"),
		check("uprobes", true, features.HaveProgramType(ebpf.Kprobe), "kprobe/uprobe program type"),
		check("raw tracepoints", true, features.HaveProgramType(ebpf.RawTracepoint), "process, connect and file events"),
		check("ring buffer", true, features.HaveMapType(ebpf.RingBuf), "Linux >= 5.8"),
		check("bpf_loop", true, features.HaveProgramHelper(ebpf.Kprobe, asm.FnLoop), "Linux >= 5.17"),
		check("uprobe_multi links", false, features.HaveBPFLinkUprobeMulti(), "Linux >= 6.6: fast detach"),
		check("kernel BTF", false, btfErr, "/sys/kernel/btf/vmlinux: CO-RE field offsets"),
		{Name: "tracefs", OK: true, Detail: tracefs},
	}
}

// tracefsMounted says whether tracefs is mounted anywhere, which the
// per-syscall tracepoints need (the kernel lists their ids there).
func tracefsMounted() bool {
	raw, err := os.ReadFile("/proc/mounts")
	return err == nil && strings.Contains(string(raw), " tracefs ")
}
