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
	"strconv"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// lookupProcess finds the process owning the socket whose local address is
// client and whose peer is server, using the socket tables in /proc/net
// (which give the uid and inode) and a scan of /proc/*/fd for that inode.
// proto is "tcp" or "udp". It is best effort: ok is false when the socket
// is not in our network namespace or the owner is not visible to us.
func lookupProcess(proto string, client, server netip.AddrPort) (flow.Process, bool) {
	if !client.Addr().IsLoopback() {
		return flow.Process{}, false
	}
	tables := []string{"/proc/net/" + proto, "/proc/net/" + proto + "6"}
	for _, table := range tables {
		uid, inode, err := findSocket(table, client, server, proto == "tcp")
		if err != nil || inode == 0 {
			continue
		}
		pid := findInodeOwner(inode)
		if pid == 0 {
			return flow.Process{UID: uid}, false
		}
		p := describeProcess(pid)
		p.UID = uid
		return p, true
	}
	return flow.Process{}, false
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

func findInodeOwner(inode uint64) int {
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && link == want {
				return pid
			}
		}
	}
	return 0
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
