//go:build linux && amd64

package linuxcompat

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procRoot is where procfs is mounted.
const procRoot = "/proc"

// readProcess fills a flow.Process-like record from /proc for a process the
// sensor did not see exec (it was running before Run started).
func readProcess(pid int) (procInfo, bool) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return procInfo{}, false
	}
	p := procInfo{pid: pid, uid: -1}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			p.name = v
		case "PPid":
			p.ppid, _ = strconv.Atoi(v)
		case "Uid":
			if f := strings.Fields(v); len(f) > 0 {
				p.uid, _ = strconv.Atoi(f[0])
			}
		}
	}
	p.exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	if raw, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.cmdline = splitArgs(raw)
	}
	p.cgroup, p.containerID = readCgroup(pid)
	return p, true
}

var containerIDPattern = regexp.MustCompile(`([0-9a-f]{64})`)

// readCgroup returns the process's cgroup v2 path (or the first v1 path when
// no unified hierarchy line exists) and a container id found in it.
func readCgroup(pid int) (path, containerID string) {
	raw, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", ""
	}
	var first string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			path = parts[2]
		}
		if first == "" {
			first = parts[2]
		}
	}
	if path == "" {
		path = first
	}
	if m := containerIDPattern.FindStringSubmatch(path); m != nil {
		containerID = m[1]
	}
	return path, containerID
}

// socketAddrs finds the local and remote address of a process's socket fd:
// exactly and cheaply by borrowing the descriptor (pidfd_getfd, Linux 5.6+)
// and asking getsockname/getpeername, else through /proc/PID/fd and
// /proc/PID/net/tcp{,6} (slow when the host has many sockets).
func socketAddrs(pid int, fd int32) (local, remote netip.AddrPort, ok bool) {
	if l, r, ok := borrowedSocketAddrs(pid, fd); ok {
		return l, r, true
	}
	return procSocketAddrs(pid, fd)
}

func borrowedSocketAddrs(pid int, fd int32) (local, remote netip.AddrPort, ok bool) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return local, remote, false
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, int(fd), 0)
	if err != nil {
		return local, remote, false
	}
	defer unix.Close(dup)
	if typ, err := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
		return local, remote, false
	}
	ls, err1 := unix.Getsockname(dup)
	rs, err2 := unix.Getpeername(dup)
	if err1 != nil || err2 != nil {
		return local, remote, false
	}
	local, okL := sockaddrAddrPort(ls)
	remote, okR := sockaddrAddrPort(rs)
	return local, remote, okL && okR
}

func sockaddrAddrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

func procSocketAddrs(pid int, fd int32) (local, remote netip.AddrPort, ok bool) {
	link, err := os.Readlink(fmt.Sprintf("%s/%d/fd/%d", procRoot, pid, fd))
	if err != nil || !strings.HasPrefix(link, "socket:[") {
		return local, remote, false
	}
	inode := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")
	for _, file := range []string{"tcp", "tcp6"} {
		raw, err := os.ReadFile(fmt.Sprintf("%s/%d/net/%s", procRoot, pid, file))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Scan() // header
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 10 || f[9] != inode {
				continue
			}
			l, err1 := parseProcNetAddr(f[1])
			r, err2 := parseProcNetAddr(f[2])
			if err1 != nil || err2 != nil {
				return local, remote, false
			}
			return l, r, true
		}
	}
	return local, remote, false
}

// parseProcNetAddr parses "0100007F:1F90" (IPv4) or the 32-hex-digit IPv6
// form; the address words are in host (little-endian) order.
func parseProcNetAddr(s string) (netip.AddrPort, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port %q: %w", hexPort, err)
	}
	b, err := hex.DecodeString(hexAddr)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", hexAddr)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	var a netip.Addr
	if len(b) == 4 {
		a = netip.AddrFrom4([4]byte(b))
	} else {
		a = netip.AddrFrom16([16]byte(b)).Unmap()
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// procMapping is one executable file mapping of a process.
type procMapping struct {
	path  string
	inode uint64
}

// execMappings lists the distinct executable file mappings of pid.
func execMappings(pid int) []procMapping {
	raw, err := os.ReadFile(fmt.Sprintf("%s/%d/maps", procRoot, pid))
	if err != nil {
		return nil
	}
	seen := map[uint64]bool{}
	var out []procMapping
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.Contains(f[1], "x") || !strings.HasPrefix(f[5], "/") {
			continue
		}
		ino, err := strconv.ParseUint(f[4], 10, 64)
		if err != nil || ino == 0 || seen[ino] {
			continue
		}
		seen[ino] = true
		out = append(out, procMapping{path: strings.Join(f[5:], " "), inode: ino})
	}
	return out
}

// kernelDevToUser converts a kernel dev_t (MKDEV: major<<20 | minor) to the
// st_dev encoding user space sees.
func kernelDevToUser(dev uint32) uint64 {
	major := uint64(dev >> 20)
	minor := uint64(dev & 0xfffff)
	return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor &^ 0xff) << 12) | ((major &^ 0xfff) << 32)
}

// userDevToKernel is the inverse of kernelDevToUser.
func userDevToKernel(dev uint64) uint32 {
	major := uint32((dev>>8)&0xfff) | uint32((dev>>32)&^0xfff)
	minor := uint32(dev&0xff) | uint32((dev>>12)&^0xff)
	return major<<20 | minor
}
