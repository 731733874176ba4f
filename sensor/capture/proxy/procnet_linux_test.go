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

func TestParseProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000000000000000000001000000:01BB": "[::1]:443",
		"0000000000000000FFFF00000100007F:0050": "127.0.0.1:80",
	} {
		got, err := parseProcAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("%s: %v %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0100007F", "zz00007F:1F90", "0100007F:1F9000", "01007F:1F90"} {
		if _, err := parseProcAddr(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseProcAddr: /proc/net lines come from the kernel, but the parser
// must still never panic on anything.
func FuzzParseProcAddr(f *testing.F) {
	f.Add("0100007F:1F90")
	f.Add("00000000000000000000000001000000:01BB")
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := parseProcAddr(s); err == nil && !a.IsValid() {
			t.Fatalf("%q parsed to an invalid address", s)
		}
	})
}
