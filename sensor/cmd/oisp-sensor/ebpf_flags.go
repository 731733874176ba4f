package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// ebpfOnlyFlags names the flags that only configure eBPF capture.
const ebpfOnlyFlags = "--pid, --exe, --cgroup, --no-system-events and --no-file-events"

// ebpfFilterFlags limit what eBPF capture observes.
type ebpfFilterFlags struct {
	pids           []int
	exes, cgroups  []string
	noSystemEvents bool
	noFileEvents   bool
}

func (f *ebpfFilterFlags) register(fl *pflag.FlagSet) {
	fl.IntSliceVar(&f.pids, "pid", nil, "eBPF: capture only process `PID` and its descendants (repeatable; combines with --exe and --cgroup)")
	fl.StringSliceVar(&f.exes, "exe", nil, "eBPF: capture only processes running executable `PATH` and their descendants (repeatable)")
	fl.StringSliceVar(&f.cgroups, "cgroup", nil, "eBPF: capture only processes in cgroup v2 `PATH` (relative to the cgroup2 mount, e.g. system.slice/app.service; repeatable)")
	fl.BoolVar(&f.noSystemEvents, "no-system-events", false, "eBPF: no process, network or file events, only AI traffic")
	fl.BoolVar(&f.noFileEvents, "no-file-events", false, "eBPF: no file.open and file.write events")
}

// set reports whether any eBPF-only flag was given.
func (f *ebpfFilterFlags) set() bool {
	return len(f.pids)+len(f.exes)+len(f.cgroups) > 0 || f.noSystemEvents || f.noFileEvents
}

// check refuses eBPF options that cannot take effect.
func (f *ebpfFilterFlags) check(mode string) error {
	for _, pid := range f.pids {
		if pid <= 0 {
			return fmt.Errorf("--pid %d: want a process id", pid)
		}
	}
	if mode == "off" && f.set() {
		return errors.New(ebpfOnlyFlags + " configure eBPF capture, which --ebpf off turns off")
	}
	return nil
}
