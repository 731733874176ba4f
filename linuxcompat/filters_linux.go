//go:build linux && amd64

package linuxcompat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// installFilters fills the kernel filter maps from Config. With any filter
// set, the BPF programs only report processes in the traced map (descendants
// are added at fork, matching executables at exec) or in a target cgroup.
func (s *Source) installFilters() error {
	one := uint8(1)
	for _, pid := range s.cfg.PIDs {
		if pid <= 0 {
			return fmt.Errorf("filter: invalid pid %d", pid)
		}
		if err := s.objs.Traced.Update(uint32(pid), one, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("filter pid %d: %w", pid, err)
		}
	}
	exes := map[fileID]bool{}
	for _, path := range s.cfg.Executables {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return fmt.Errorf("filter executable %s: %w", path, err)
		}
		key := oispInodeKey{Ino: st.Ino, Dev: userDevToKernel(uint64(st.Dev))}
		if err := s.objs.TargetExes.Update(&key, one, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("filter executable %s: %w", path, err)
		}
		exes[fileID{uint64(st.Dev), st.Ino}] = true
	}
	if len(exes) > 0 {
		entries, _ := os.ReadDir(procRoot)
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			var st unix.Stat_t
			if unix.Stat(filepath.Join(procRoot, e.Name(), "exe"), &st) == nil && exes[fileID{uint64(st.Dev), st.Ino}] {
				_ = s.objs.Traced.Update(uint32(pid), one, ebpf.UpdateAny)
			}
		}
	}
	if len(s.cfg.Cgroups) > 0 {
		root, err := cgroup2Mount()
		if err != nil {
			return fmt.Errorf("filter cgroups: %w", err)
		}
		for _, cg := range s.cfg.Cgroups {
			path := cg
			if !strings.HasPrefix(cg, root) {
				path = filepath.Join(root, cg)
			}
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil {
				return fmt.Errorf("filter cgroup %s: %w", cg, err)
			}
			// A cgroup v2 directory's inode number is its cgroup id.
			if err := s.objs.TargetCgroups.Update(st.Ino, one, ebpf.UpdateAny); err != nil {
				return fmt.Errorf("filter cgroup %s: %w", cg, err)
			}
		}
	}
	return nil
}

// traceRunningDescendants adds to the traced map every running process
// whose parent chain reaches a traced one: a pid or executable filter
// covers the descendants that already existed when capture started, not
// only those forked later.
func (s *Source) traceRunningDescendants() {
	if len(s.cfg.PIDs)+len(s.cfg.Executables) == 0 {
		return
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		s.log.Warn("ebpf: cannot list processes to trace the filtered ones' descendants", "err", err)
		return
	}
	parent := map[int]int{}
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if ppid, ok := readPPID(pid); ok {
				parent[pid] = ppid
			}
		}
	}
	one := uint8(1)
	known := map[int]bool{} // pid → traced, for pids already decided
	var chain []int
	for pid := range parent {
		chain = chain[:0]
		traced := false
		for p := pid; ; {
			if v, ok := known[p]; ok {
				traced = v
				break
			}
			var v uint8
			if s.objs.Traced.Lookup(uint32(p), &v) == nil {
				traced = true
				break
			}
			chain = append(chain, p)
			next, ok := parent[p]
			if !ok || next <= 0 || next == p || len(chain) > len(parent) {
				break
			}
			p = next
		}
		for _, p := range chain {
			known[p] = traced
			if traced {
				_ = s.objs.Traced.Update(uint32(p), one, ebpf.UpdateAny)
			}
		}
	}
}

// readPPID reads a process's parent pid from /proc/PID/stat.
func readPPID(pid int) (int, bool) {
	raw, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	// "PID (comm) STATE PPID ...": comm may hold spaces and parentheses,
	// so the fields start after the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// cgroup2Mount finds where the unified cgroup hierarchy is mounted.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... mount-point ... - fstype source options
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		if fs := strings.Fields(right); len(fs) > 0 && fs[0] == "cgroup2" {
			if lf := strings.Fields(left); len(lf) >= 5 {
				return lf[4], nil
			}
		}
	}
	return "", fmt.Errorf("no cgroup2 mount found")
}

// wantProcess reports whether an already running process passes the
// configured filters (the initial scan only probes binaries of processes
// that will be reported).
func (s *Source) wantProcess(pid int) bool {
	if len(s.cfg.PIDs)+len(s.cfg.Executables)+len(s.cfg.Cgroups) == 0 {
		return true
	}
	var one uint8
	if s.objs.Traced.Lookup(uint32(pid), &one) == nil {
		return true
	}
	if len(s.cfg.Cgroups) == 0 {
		return false
	}
	path, _ := readCgroup(pid)
	for _, cg := range s.cfg.Cgroups {
		cg = "/" + strings.Trim(cg, "/")
		if root, err := cgroup2Mount(); err == nil {
			cg = "/" + strings.Trim(strings.TrimPrefix(cg, root), "/")
		}
		if path == cg || strings.HasPrefix(path, cg+"/") {
			return true
		}
	}
	return false
}
