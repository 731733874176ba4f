package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// procFinder attributes loopback connections to processes: the kernel
// gives the client socket's uid and inode (sock_diag for TCP, the
// /proc/net tables otherwise), and the inode's owner is found among
// /proc/*/fd, trying recently seen owners first since one client tends to
// open many connections.
type procFinder struct {
	mu     sync.Mutex
	recent []int // most recent first
}

const recentOwners = 16

// lookup finds the process owning the socket whose local address is
// client and whose peer is server; proto is "tcp" or "udp". It is best
// effort: ok is false when the socket is not in our network namespace or
// its owner is not visible to us.
func (f *procFinder) lookup(proto string, client, server netip.AddrPort) (flow.Process, bool) {
	if !client.Addr().IsLoopback() {
		return flow.Process{UID: -1}, false
	}
	uid, inode := -1, uint64(0)
	if proto == "tcp" {
		if u, i, err := tcpSocketOwner(client, server); err == nil {
			uid, inode = u, i
		}
	}
	if inode == 0 {
		for _, table := range []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"} {
			u, i, err := findSocket(table, client, server, proto == "tcp")
			if err == nil && i != 0 {
				uid, inode = u, i
				break
			}
		}
	}
	if inode == 0 {
		return flow.Process{UID: -1}, false
	}
	pid := f.findInodeOwner(inode)
	if pid == 0 {
		return flow.Process{UID: uid}, false
	}
	p := describeProcess(pid)
	p.UID = uid
	return p, true
}

func (f *procFinder) remember(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.recent, pid); i >= 0 {
		f.recent = slices.Delete(f.recent, i, i+1)
	}
	f.recent = slices.Insert(f.recent, 0, pid)
	if len(f.recent) > recentOwners {
		f.recent = f.recent[:recentOwners]
	}
}

func (f *procFinder) findInodeOwner(inode uint64) int {
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	f.mu.Lock()
	recent := slices.Clone(f.recent)
	f.mu.Unlock()
	for _, pid := range recent {
		if ownsSocket(pid, want) {
			f.remember(pid)
			return pid
		}
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || slices.Contains(recent, pid) {
			continue
		}
		if ownsSocket(pid, want) {
			f.remember(pid)
			return pid
		}
	}
	return 0
}

func ownsSocket(pid int, want string) bool {
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && link == want {
			return true
		}
	}
	return false
}

// findSocket scans one /proc/net table for a socket with the given local
// and remote addresses. For UDP the remote may be unset (unconnected
// socket), so only the local address has to match.
func findSocket(table string, local, remote netip.AddrPort, matchRemote bool) (uid int, inode uint64, err error) {
	f, err := os.Open(table)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		l, err := parseProcAddr(fields[1])
		if err != nil || !sameAddrPort(l, local) {
			continue
		}
		if matchRemote {
			r, err := parseProcAddr(fields[2])
			if err != nil || !sameAddrPort(r, remote) {
				continue
			}
		}
		uid, _ = strconv.Atoi(fields[7])
		inode, _ = strconv.ParseUint(fields[9], 10, 64)
		return uid, inode, nil
	}
	return 0, 0, sc.Err()
}

func sameAddrPort(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap() == b.Addr().Unmap()
}

// parseProcAddr decodes "0100007F:1F90": the address as 32-bit words in
// host byte order, the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, errors.New("no port")
	}
	raw, err := hex.DecodeString(hexAddr)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", hexAddr)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	// Each 32-bit word was printed as a host-order integer.
	for i := 0; i < len(raw); i += 4 {
		w := binary.NativeEndian.Uint32(raw[i:])
		binary.BigEndian.PutUint32(raw[i:], w)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

func describeProcess(pid int) flow.Process {
	p := flow.Process{PID: pid, UID: -1}
	dir := "/proc/" + strconv.Itoa(pid)
	if exe, err := os.Readlink(dir + "/exe"); err == nil {
		p.Exe = strings.TrimSuffix(exe, " (deleted)")
	}
	if comm, err := os.ReadFile(dir + "/comm"); err == nil {
		p.Name = strings.TrimSpace(string(comm))
	}
	if cmd, err := os.ReadFile(dir + "/cmdline"); err == nil && len(cmd) > 0 {
		p.Cmdline = strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	}
	if stat, err := os.ReadFile(dir + "/stat"); err == nil {
		// The comm field may hold spaces and parentheses: split after the
		// last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 {
			f := strings.Fields(string(stat[i+1:]))
			if len(f) > 1 {
				p.PPID, _ = strconv.Atoi(f[1])
			}
		}
	}
	if cg, err := os.ReadFile(dir + "/cgroup"); err == nil {
		p.Cgroup = strings.TrimSpace(strings.SplitN(string(cg), "\n", 2)[0])
	}
	return p
}
