package proxy

import (
	"net"
	"os"
	"testing"
)

// TestSocketOwner checks both ways of finding a socket (sock_diag and the
// /proc/net table) agree, and that the owner is this process.
func TestSocketOwner(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Skip(err)
			}
			defer ln.Close()
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, _ := ln.Accept()
			defer s.Close()
			local, remote := addrPort(c.LocalAddr()), addrPort(c.RemoteAddr())
			uid, inode, err := tcpSocketOwner(local, remote)
			if err != nil {
				t.Fatalf("sock_diag: %v", err)
			}
			table := map[string]string{"tcp4": "/proc/net/tcp", "tcp6": "/proc/net/tcp6"}[network]
			uid2, inode2, err := findSocket(table, local, remote, true)
			if err != nil || inode2 == 0 {
				t.Fatalf("/proc scan: %d %v", inode2, err)
			}
			if inode != inode2 || uid != uid2 || uid != os.Getuid() {
				t.Fatalf("sock_diag %d/%d, /proc %d/%d", uid, inode, uid2, inode2)
			}
			var f procFinder
			p, ok := f.lookup("tcp", local, remote)
			if !ok || p.PID != os.Getpid() || p.UID != os.Getuid() || p.Exe == "" || p.PPID != os.Getppid() || len(p.Cmdline) == 0 {
				t.Fatalf("lookup %+v %v", p, ok)
			}
			// The server side of the same connection is not the client.
			if _, other, _ := tcpSocketOwner(remote, local); other == inode {
				t.Fatal("server socket reported as the client socket")
			}
		})
	}
}

func BenchmarkSocketOwner(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	local, remote := addrPort(c.LocalAddr()), addrPort(c.RemoteAddr())
	b.Run("sock_diag", func(b *testing.B) {
		for b.Loop() {
			tcpSocketOwner(local, remote)
		}
	})
	b.Run("proc_net_tcp", func(b *testing.B) {
		for b.Loop() {
			findSocket("/proc/net/tcp", local, remote, true)
		}
	})
	b.Run("full_lookup", func(b *testing.B) {
		var f procFinder
		for b.Loop() {
			f.lookup("tcp", local, remote)
		}
	})
}
