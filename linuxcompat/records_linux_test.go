//go:build linux && amd64

package linuxcompat

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

func tlsRecordBytes(tgid uint32, conn uint64, dir uint8, data []byte) []byte {
	b := make([]byte, int(tlsDataOff)+len(data))
	binary.LittleEndian.PutUint32(b, evTLSData)
	binary.LittleEndian.PutUint32(b[offHdrTgid:], tgid)
	binary.LittleEndian.PutUint64(b[tlsConn:], conn)
	binary.LittleEndian.PutUint64(b[tlsCallLen:], uint64(len(data)))
	binary.LittleEndian.PutUint32(b[tlsFd:], 5)
	binary.LittleEndian.PutUint32(b[tlsLen:], uint32(len(data)))
	b[tlsDir] = dir
	copy(b[tlsDataOff:], data)
	return b
}

func TestParseTLS(t *testing.T) {
	rec, ok := parseTLS(tlsRecordBytes(42, 0xdead, 1, []byte("HTTP/1.1 200 OK\r\n")))
	if !ok || rec.tgid != 42 || rec.conn != 0xdead || rec.dir != 1 || rec.fd != 5 || string(rec.data) != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("parsed %+v ok=%v", rec, ok)
	}
	short := tlsRecordBytes(1, 1, 0, []byte("abc"))
	if _, ok := parseTLS(short[:len(short)-1]); ok {
		t.Fatal("record shorter than its len field accepted")
	}
}

func TestPathFromComponents(t *testing.T) {
	for in, want := range map[string]string{
		"out.bin\x00001\x00TestX\x00tmp\x00": "/tmp/TestX/001/out.bin",
		"":                                   "/",
		"bash\x00bin\x00usr\x00":             "/usr/bin/bash",
	} {
		if got := pathFromComponents([]byte(in)); got != want {
			t.Errorf("pathFromComponents(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseProcNetAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000000000000000000001000000:01BB": "[::1]:443",
		"0000000000000000FFFF00000100007F:0050": "127.0.0.1:80",
	} {
		got, err := parseProcNetAddr(in)
		if err != nil || got != netip.MustParseAddrPort(want) {
			t.Errorf("parseProcNetAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseProcNetAddr("zz:1"); err == nil {
		t.Error("bad address accepted")
	}
}

func TestDevConversionRoundTrip(t *testing.T) {
	for _, dev := range []uint32{0, 1<<20 | 1, 253<<20 | 0x12345, 8<<20 | 17} {
		if got := userDevToKernel(kernelDevToUser(dev)); got != dev {
			t.Errorf("round trip %#x -> %#x", dev, got)
		}
	}
	// /dev/vda (253:0) is 0xfd00 in st_dev and 253<<20 in the kernel.
	if got := kernelDevToUser(253 << 20); got != 0xfd00 {
		t.Errorf("kernelDevToUser(253:0) = %#x", got)
	}
}

func TestDropLedgerAppliesAfterTheDrop(t *testing.T) {
	d := newDropLedger()
	k := dropKey{tgid: 1, conn: 2, dir: 0}
	d.add(k, 100, 10)
	if n := d.take(k, 9); n != 0 {
		t.Fatalf("record before the drop got gap %d", n)
	}
	if n := d.take(k, 11); n != 100 {
		t.Fatalf("record after the drop got gap %d, want 100", n)
	}
	if n := d.take(k, 12); n != 0 {
		t.Fatalf("gap reported twice (%d)", n)
	}
}

func FuzzParseTLS(f *testing.F) {
	f.Add(tlsRecordBytes(7, 9, 0, []byte("POST /v1/chat/completions HTTP/1.1\r\n")))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, ok := parseTLS(b)
		if ok && int(tlsDataOff)+len(rec.data) > len(b) {
			t.Fatalf("data beyond record")
		}
		_ = pathFromComponents(b)
		_ = splitArgs(b)
		if e, ok := parseExec(append(b, make([]byte, int(execSize))...)); ok {
			_ = pathFromComponents(e.exe)
			_ = splitArgs(e.args)
		}
	})
}

// TestSocketAddrsBothWays: the pidfd_getfd path and the /proc path agree on
// a real connected socket of this process.
func TestSocketAddrsBothWays(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			defer c.Close()
			time.Sleep(2 * time.Second)
		}
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, _ := c.(*net.TCPConn).SyscallConn()
	var fd int32
	raw.Control(func(f uintptr) { fd = int32(f) })
	wantLocal, wantRemote := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
	l, r, ok := procSocketAddrs(os.Getpid(), fd)
	if !ok || l != wantLocal || r != wantRemote {
		t.Errorf("/proc: %v %v %v, want %v %v", l, r, ok, wantLocal, wantRemote)
	}
	l, r, ok = borrowedSocketAddrs(os.Getpid(), fd)
	if !ok {
		t.Skip("pidfd_getfd unavailable")
	}
	if l != wantLocal || r != wantRemote {
		t.Errorf("pidfd_getfd: %v %v, want %v %v", l, r, wantLocal, wantRemote)
	}
}
