//go:build linux && amd64

package linuxcompat

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// The syscalls whose entry and return the BPF side handles: the case
// labels of sys_enter_wanted and sys_exit_wanted in bpf/oisp.bpf.c
// (TestSyscallListsMatchBPF keeps them equal).
var (
	// enterSyscalls maps each hooked syscall to how many of its arguments
	// the entry handler reads (its tracepoint's record holds only the
	// syscall's own arguments, and the kernel will not attach a program
	// that may read past it).
	enterSyscalls = map[string]int{
		"read": 3, "write": 3, "open": 3, "close": 1, "mmap": 5, "pwrite64": 3, "readv": 3,
		"writev": 3, "connect": 3, "sendto": 3, "recvfrom": 3, "sendmsg": 3, "recvmsg": 3,
		"creat": 2, "openat": 3, "pwritev": 3, "pwritev2": 3, "dup2": 2, "dup3": 3,
	}
	exitSyscalls = []string{
		"write", "pwrite64", "writev", "pwritev", "pwritev2", "connect", "open", "creat", "openat",
	}
)

// Ways the syscall hooks are attached (Source.SyscallHooks).
const (
	// SyscallTracepoints: one tracepoint per hooked syscall
	// (syscalls/sys_enter_<name>, sys_exit_<name>), through tracefs. Other
	// syscalls run no BPF at all.
	SyscallTracepoints = "per-syscall tracepoints"
	// SyscallRawTracepoints: the raw sys_enter/sys_exit tracepoints, for
	// when tracefs is not mounted: a BPF program runs on every syscall of
	// every process and filters by number.
	SyscallRawTracepoints = "raw sys_enter/sys_exit tracepoints"
)

// attachSyscallHooks attaches the syscall programs: per-syscall tracepoints
// where tracefs allows it, else the raw tracepoints. Measured here, a
// getppid() took 270 ns unobserved, 480–540 ns under the raw tracepoints
// and 340–360 ns under per-syscall ones.
func (s *Source) attachSyscallHooks() ([]link.Link, error) {
	links, err := s.attachSyscallTracepoints()
	if err == nil {
		s.syscallHooks.Store(SyscallTracepoints)
		return links, nil
	}
	s.log.Debug("ebpf: per-syscall tracepoints unavailable, using raw sys_enter/sys_exit (every syscall of the machine pays for it)", "err", err)
	enter, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: s.objs.OnSysEnter})
	if err != nil {
		return nil, fmt.Errorf("attach raw tracepoint sys_enter: %w", err)
	}
	exit, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_exit", Program: s.objs.OnSysExit})
	if err != nil {
		enter.Close()
		return nil, fmt.Errorf("attach raw tracepoint sys_exit: %w", err)
	}
	s.syscallHooks.Store(SyscallRawTracepoints)
	return []link.Link{enter, exit}, nil
}

// attachSyscallTracepoints attaches every hooked syscall's tracepoints, or
// none.
func (s *Source) attachSyscallTracepoints() ([]link.Link, error) {
	if s.noSyscallTracepoints {
		return nil, errors.New("disabled")
	}
	var links []link.Link
	add := func(event string, prog *ebpf.Program) error {
		l, err := link.Tracepoint("syscalls", event, prog, nil)
		if err != nil {
			return fmt.Errorf("tracepoint syscalls/%s: %w", event, err)
		}
		links = append(links, l)
		return nil
	}
	byArgs := map[int]*ebpf.Program{1: s.objs.OnSysEnterTp1, 2: s.objs.OnSysEnterTp2, 3: s.objs.OnSysEnterTp3, 5: s.objs.OnSysEnterTp5}
	for _, name := range slices.Sorted(maps.Keys(enterSyscalls)) {
		if err := add("sys_enter_"+name, byArgs[enterSyscalls[name]]); err != nil {
			closeAll(links)
			return nil, err
		}
	}
	for _, name := range exitSyscalls {
		if err := add("sys_exit_"+name, s.objs.OnSysExitTp); err != nil {
			closeAll(links)
			return nil, err
		}
	}
	return links, nil
}

// SyscallHooks says how the syscall hooks were attached
// (SyscallTracepoints or SyscallRawTracepoints); empty before Run attached
// them.
func (s *Source) SyscallHooks() string {
	v, _ := s.syscallHooks.Load().(string)
	return v
}
