//go:build unix

package socket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// shortDir returns a temp dir with a short path: sun_path is ~104 bytes.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "oisp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type running struct {
	once sync.Once
	srv  *Server
	rec  *recorder
	st   *stats.Counters
	stop context.CancelFunc
	done chan error
}

func startServer(t *testing.T, cfg ServerConfig) *running {
	t.Helper()
	st := &stats.Counters{}
	cfg.Stats = st
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, rec: newRecorder(), st: st, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx, r.rec) }()
	t.Cleanup(r.shutdown)
	return r
}

func (r *running) shutdown() {
	r.once.Do(func() {
		r.stop()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			panic("server did not stop")
		}
	})
}

func startClient(t *testing.T, cfg ClientConfig) (*Client, context.CancelFunc) {
	t.Helper()
	c := NewClient(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return c, stop
}

func waitConnected(t *testing.T, c *Client, connects int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := c.Stats()
		if s.Connected && s.Connects >= connects {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client not connected (stats %+v)", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSocketFilePermissionsAndStale(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "s.sock")
	// A stale socket nobody listens on is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	r := startServer(t, ServerConfig{Path: path})
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want socket 0600", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	// A second server on a live socket is refused.
	if _, err := Listen(ServerConfig{Path: path}); err == nil {
		t.Fatal("second server took over a live socket")
	}
	r.shutdown()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file not removed on shutdown: %v", err)
	}
	// Something that is not a socket is never removed.
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(ServerConfig{Path: path}); err == nil {
		t.Fatal("server replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatal("regular file was modified")
	}
}

func TestEndToEnd(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	r := startServer(t, ServerConfig{Path: path})
	c, _ := startClient(t, ClientConfig{Path: path, Name: "test-client"})
	waitConnected(t, c, 1)

	started := time.Unix(1703680000, 0)
	tcp := &flow.Info{ID: "p1", Transport: flow.TCP, RemoteHost: "api.openai.com", RemotePort: 443,
		SNI: "api.openai.com", ALPN: "http/1.1", TLS: true, Method: flow.CaptureMITMProxy, Started: started,
		Local:   netip.MustParseAddrPort("127.0.0.1:50000"),
		Remote:  netip.MustParseAddrPort("[2606:4700::1]:443"),
		Process: flow.Process{PID: 4242, PPID: 1, UID: 1000, Exe: "/usr/bin/python3", BundleID: "org.python"}}
	quic := &flow.Info{ID: "p2", Transport: flow.QUIC, RemoteHost: "h3.example", RemotePort: 443, ALPN: "h3",
		TLS: true, Process: flow.Process{UID: -1}}
	req := []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Length: 2\r\n\r\n{}")
	resp := bytes.Repeat([]byte("data: {\"x\":1}\n\n"), 20000) // 300 KB: several frames
	c.Open(tcp)
	c.Open(quic)
	c.Data("p1", flow.Chunk{Dir: flow.ClientToServer, Data: req[:10], At: started})
	c.Data("p1", flow.Chunk{Dir: flow.ClientToServer, Data: req[10:], At: started, Fin: true})
	c.Data("p2", flow.Chunk{Dir: flow.ClientToServer, Data: []byte{1, 2, 3}, StreamID: 0})
	c.Data("p2", flow.Chunk{Dir: flow.ClientToServer, Data: []byte{0, 4, 0}, StreamID: 2})
	c.Data("p2", flow.Chunk{Dir: flow.ServerToClient, Data: []byte{9}, StreamID: 0, Fin: true})
	c.Data("p1", flow.Chunk{Dir: flow.ServerToClient, Data: resp})
	c.Data("p1", flow.Chunk{Dir: flow.ServerToClient, Fin: true})
	c.Close("p1", flow.CloseInfo{Reason: "eof", At: started.Add(time.Second)})
	c.Close("p2", flow.CloseInfo{Reason: "reset"})
	c.System(flow.SystemEvent{Kind: flow.SysExec, Process: flow.Process{PID: 7, PPID: 1, UID: 0},
		Exe: "/usr/bin/curl", Args: []string{"curl", "-s"}, Cwd: "/tmp"})
	c.System(flow.SystemEvent{Kind: flow.SysConnect, Process: flow.Process{PID: 7, UID: -1},
		Remote: netip.MustParseAddrPort("1.2.3.4:443"), Protocol: "tcp", Success: true})

	rec := r.rec
	rec.WaitFor(t, "both flows closed and system events", func() bool {
		return len(rec.Closes) == 2 && len(rec.Systems) == 2
	})
	rec.Mu.Lock()
	defer rec.Mu.Unlock()
	id1, id2 := rec.FlowByHost("api.openai.com"), rec.FlowByHost("h3.example")
	if id1 == "" || id2 == "" || id1 == id2 {
		t.Fatalf("flow ids %q %q", id1, id2)
	}
	got := rec.Infos[id1]
	if got.Process.PID != 4242 || got.Process.PPID != 1 || got.Process.UID != 1000 ||
		got.Process.Exe != "/usr/bin/python3" || got.Process.Name != "python3" || got.Process.BundleID != "org.python" {
		t.Errorf("process %+v", got.Process)
	}
	if got.SNI != "api.openai.com" || got.ALPN != "http/1.1" || !got.TLS || got.Method != flow.CaptureMITMProxy ||
		got.RemotePort != 443 || got.Local != tcp.Local || got.Remote != tcp.Remote || !got.Started.Equal(started) ||
		got.Transport != flow.TCP {
		t.Errorf("info %+v", got)
	}
	if q := rec.Infos[id2]; q.Transport != flow.QUIC || q.Process.UID != -1 || q.Method != flow.CaptureNetworkExtension {
		t.Errorf("quic info %+v", q)
	}
	ch := rec.Chunks[id1]
	if !bytes.Equal(joined(ch, flow.ClientToServer, 0), req) || !bytes.Equal(joined(ch, flow.ServerToClient, 0), resp) {
		t.Error("TCP payload differs")
	}
	if !finSeen(ch, flow.ClientToServer, 0) || !finSeen(ch, flow.ServerToClient, 0) {
		t.Error("FIN lost")
	}
	if gaps(ch, 0)+gaps(ch, 1) != 0 {
		t.Error("unexpected gaps")
	}
	qc := rec.Chunks[id2]
	if !bytes.Equal(joined(qc, flow.ClientToServer, 2), []byte{0, 4, 0}) ||
		!bytes.Equal(joined(qc, flow.ClientToServer, 0), []byte{1, 2, 3}) || !finSeen(qc, flow.ServerToClient, 0) {
		t.Errorf("QUIC chunks %+v", qc)
	}
	if ci := rec.Closes[id1]; ci.Reason != "eof" || ci.Dropped != 0 || !ci.At.Equal(started.Add(time.Second)) {
		t.Errorf("close %+v", ci)
	}
	if rec.Closes[id2].Reason != "reset" {
		t.Errorf("close %+v", rec.Closes[id2])
	}
	ex := rec.Systems[0]
	if ex.Kind != flow.SysExec || ex.Exe != "/usr/bin/curl" || len(ex.Args) != 2 || ex.Cwd != "/tmp" ||
		ex.Process.PID != 7 || ex.Process.UID != 0 || ex.Method != flow.CaptureNetworkExtension {
		t.Errorf("exec event %+v", ex)
	}
	if cn := rec.Systems[1]; cn.Kind != flow.SysConnect || cn.Remote.String() != "1.2.3.4:443" || !cn.Success || cn.Process.UID != -1 {
		t.Errorf("connect event %+v", cn)
	}
	if r.st.Get("socket.data_bytes") != int64(len(req)+len(resp)+7) {
		t.Errorf("data bytes %d", r.st.Get("socket.data_bytes"))
	}
}

// rawConn connects and speaks the binary protocol by hand.
func rawConn(t *testing.T, path string) (net.Conn, *FrameReader) {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, NewFrameReader(bufio.NewReader(conn))
}

func send(t *testing.T, conn net.Conn, frames ...Frame) {
	t.Helper()
	var b []byte
	for _, f := range frames {
		var err error
		if b, err = AppendFrame(b, f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

// expectGoodbye reads frames until a GOODBYE and then EOF.
func expectGoodbye(t *testing.T, fr *FrameReader, code Code) {
	t.Helper()
	expectGoodbyeCode(t, fr, code)
	if _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("connection not closed after GOODBYE: %v", err)
	}
}

func TestBadPeersCloseOnlyTheirConnection(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	r := startServer(t, ServerConfig{Path: path, MaxFrame: 8192})
	good, _ := startClient(t, ClientConfig{Path: path})
	waitConnected(t, good, 1)
	good.Open(&flow.Info{ID: "g", RemoteHost: "good.test"})
	good.Data("g", flow.Chunk{Data: []byte("before")})

	hello := &Hello{Version: 1, MaxFrame: MinMaxFrame, Name: "raw"}
	cases := []struct {
		name  string
		code  Code
		write func(net.Conn)
	}{
		{"garbage after hello", CodeProtocolError, func(c net.Conn) { c.Write([]byte{0, 0, 0, 3, 0x42, 1, 2}) }},
		{"oversize frame", CodeFrameTooLarge, func(c net.Conn) { c.Write([]byte{0, 0, 0x20, 1, byte(TypeData)}) }},
		{"data for unknown flow", CodeProtocolError, func(c net.Conn) {
			send(t, c, &Data{FlowID: 5, Payload: []byte("x")})
		}},
		{"seq going back", CodeProtocolError, func(c net.Conn) {
			send(t, c, &FlowOpen{FlowID: 1}, &Data{FlowID: 1, Seq: 0, Payload: []byte("abc")},
				&Data{FlowID: 1, Seq: 1, Payload: []byte("x")})
		}},
		{"credit frame from client", CodeProtocolError, func(c net.Conn) { send(t, c, &Credit{Grant: 1}) }},
		{"duplicate flow", CodeProtocolError, func(c net.Conn) { send(t, c, &FlowOpen{FlowID: 3}, &FlowOpen{FlowID: 3}) }},
		{"system with invalid json", CodeProtocolError, func(c net.Conn) { send(t, c, &System{JSON: []byte("{")}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, fr := rawConn(t, path)
			send(t, conn, hello)
			f, err := fr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := f.(*Hello); !ok {
				t.Fatalf("got %s, want HELLO", f.Type())
			}
			tc.write(conn)
			expectGoodbye(t, fr, tc.code)
		})
	}
	// Protocol violation before HELLO: unknown first byte, and a non-HELLO.
	conn, fr := rawConn(t, path)
	conn.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	if _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("HTTP peer: %v", err)
	}
	conn, fr = rawConn(t, path)
	send(t, conn, &Credit{Grant: 1})
	expectGoodbye(t, fr, CodeProtocolError)

	// The well-behaved client was not disturbed.
	good.Data("g", flow.Chunk{Data: []byte(" after")})
	good.Close("g", flow.CloseInfo{Reason: "eof"})
	rec := r.rec
	rec.WaitFor(t, "good flow closed", func() bool {
		return len(rec.Closes) >= 1 && rec.FlowByHost("good.test") != "" &&
			rec.Closes[rec.FlowByHost("good.test")].Reason == "eof"
	})
	rec.Mu.Lock()
	id := rec.FlowByHost("good.test")
	if got := joined(rec.Chunks[id], 0, 0); string(got) != "before after" {
		t.Errorf("good flow got %q", got)
	}
	rec.Mu.Unlock()
	if good.Stats().Connects != 1 {
		t.Errorf("good client reconnected: %+v", good.Stats())
	}
	if r.st.Get("socket.protocol_error") < int64(len(cases)) {
		t.Errorf("protocol errors counted: %d", r.st.Get("socket.protocol_error"))
	}
}

// TestCreditExceededSmallWindow drives the credit check with a window
// small enough for a raw client to overrun.
func TestCreditExceededSmallWindow(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	startServer(t, ServerConfig{Path: path, CreditWindow: 10000})
	conn, fr := rawConn(t, path)
	send(t, conn, &Hello{Version: 1, MaxFrame: MinMaxFrame, Name: "raw"})
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	send(t, conn, &FlowOpen{FlowID: 1}, &Data{FlowID: 1, Payload: make([]byte, 10001)})
	expectGoodbye(t, fr, CodeCreditExceeded)
}

func TestLegacyNDJSON(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	r := startServer(t, ServerConfig{Path: path, LegacyMaxLine: 1024})
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	lines := []string{
		// Exactly as upstream's Swift JSONEncoder writes it (escaped slashes).
		`{"id":"0123456789abcdef0123456789abcdef","timestamp_ns":1703680000000000000,"kind":"SslWrite","pid":12345,"data":"` +
			b64([]byte("GET /v1/models HTTP/1.1\r\n")) + `","metadata":{"comm":"python3","exe":"\/usr\/bin\/python3","uid":501,"ppid":1234},"remote_host":"api.openai.com","remote_port":443}`,
		`not json at all`,
		`{"kind":"SslWrite","pid":1,"data":"AA==","metadata":{"exe":"x","uid":0}}`, // no comm
		`{"kind":"Bogus","pid":1,"data":"AA==","metadata":{"comm":"x","exe":"x","uid":0}}`,
		`{"kind":"SslWrite","pid":1,"data":"***","metadata":{"comm":"x","exe":"x","uid":0}}`,
		`{"kind":"SslWrite","pid":12345,"data":"` + strings.Repeat("A", 2000) + `","metadata":{"comm":"python3","exe":"x","uid":501}}`,
		`{"kind":"SslWrite","pid":12345,"timestamp_ns":1703680000000000001,"data":"` + b64([]byte("Host: api.openai.com\r\n\r\n")) +
			`","metadata":{"comm":"python3","exe":"\/usr\/bin\/python3","uid":501},"remote_host":"api.openai.com","remote_port":443}`,
		`{"kind":"SslRead","pid":12345,"data":"` + b64([]byte("HTTP/1.1 200 OK\r\n\r\n")) +
			`","metadata":{"comm":"python3","exe":"\/usr\/bin\/python3","uid":501},"remote_host":"api.openai.com","remote_port":443}`,
		// Extensions: conn_id separates two connections of one process to one host.
		`{"event":"open","conn_id":"c-1","pid":99,"metadata":{"comm":"node","exe":"\/usr\/bin\/node","uid":501,"bundle_id":"com.example"},"remote_host":"api.anthropic.com","remote_port":443,"sni":"api.anthropic.com","alpn":"h2"}`,
		`{"kind":"SslWrite","conn_id":"c-1","pid":99,"data":"` + b64([]byte("one")) + `","metadata":{"comm":"node","exe":"\/usr\/bin\/node","uid":501},"remote_host":"api.anthropic.com","remote_port":443}`,
		`{"kind":"SslWrite","conn_id":"c-2","pid":99,"data":"` + b64([]byte("two")) + `","metadata":{"comm":"node","exe":"\/usr\/bin\/node","uid":501},"remote_host":"api.anthropic.com","remote_port":443}`,
		`{"event":"close","conn_id":"c-1","pid":99,"metadata":{"comm":"node","exe":"\/usr\/bin\/node","uid":501}}`,
	}
	if _, err := conn.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	rec := r.rec
	rec.WaitFor(t, "conn c-1 closed", func() bool { return len(rec.Closes) == 1 && len(rec.Infos) == 3 })
	conn.Close()
	rec.WaitFor(t, "all legacy flows closed", func() bool { return len(rec.Closes) == 3 })
	rec.Mu.Lock()
	defer rec.Mu.Unlock()
	openai := rec.FlowByHost("api.openai.com")
	info := rec.Infos[openai]
	if info.Process.PID != 12345 || info.Process.Exe != "/usr/bin/python3" || info.Process.Name != "python3" ||
		info.Process.UID != 501 || info.Process.PPID != 1234 || info.RemotePort != 443 || !info.TLS ||
		info.Method != flow.CaptureNetworkExtension || info.Started.UnixNano() != 1703680000000000000 {
		t.Errorf("legacy info %+v", info)
	}
	if got := joined(rec.Chunks[openai], flow.ClientToServer, 0); string(got) != "GET /v1/models HTTP/1.1\r\nHost: api.openai.com\r\n\r\n" {
		t.Errorf("legacy request %q", got)
	}
	if got := joined(rec.Chunks[openai], flow.ServerToClient, 0); string(got) != "HTTP/1.1 200 OK\r\n\r\n" {
		t.Errorf("legacy response %q", got)
	}
	var c1, c2 string
	for id, in := range rec.Infos {
		if in.RemoteHost != "api.anthropic.com" {
			continue
		}
		switch string(joined(rec.Chunks[id], 0, 0)) {
		case "one":
			c1 = id
		case "two":
			c2 = id
		}
	}
	if c1 == "" || c2 == "" {
		t.Fatalf("conn_id flows not separated: %+v", rec.Chunks)
	}
	if in := rec.Infos[c1]; in.SNI != "api.anthropic.com" || in.ALPN != "h2" || in.Process.BundleID != "com.example" {
		t.Errorf("conn_id open info %+v", in)
	}
	if rec.Closes[c1].Reason != "eof" || rec.Closes[c2].Reason != "source_closed" {
		t.Errorf("close reasons %v %v", rec.Closes[c1], rec.Closes[c2])
	}
	if n := r.st.Get("socket.legacy_parse_error"); n != 4 {
		t.Errorf("parse errors %d, want 4", n)
	}
	if n := r.st.Get("socket.legacy_line_too_long"); n != 1 {
		t.Errorf("long lines %d, want 1", n)
	}
}

func TestCheckPeer(t *testing.T) {
	if err := CheckPeer(PeerCred{UID: 501}, []int{0, 501}); err != nil {
		t.Error(err)
	}
	if err := CheckPeer(PeerCred{UID: 502, PID: 9}, []int{0, 501}); err == nil {
		t.Error("uid 502 accepted")
	}
}

func TestPeerCredentialsOfSelf(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("unix", path)
		if err == nil {
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	c, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, err := PeerCredentials(c)
	if err != nil {
		t.Fatal(err)
	}
	if cred.UID != os.Getuid() || cred.PID != os.Getpid() {
		t.Fatalf("cred %+v, want uid %d pid %d", cred, os.Getuid(), os.Getpid())
	}
}

// TestDisallowedUIDRejected runs a real client process under another uid
// (needs root to switch uid) and checks the server turns it away.
func TestDisallowedUIDRejected(t *testing.T) {
	if os.Getenv("OISP_SOCKET_HELPER") != "" {
		t.Skip("helper mode")
	}
	if os.Getuid() != 0 {
		t.Skip("switching uid needs root; TestCheckPeer covers the check itself")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "oisp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(dir, "helper")
	if err := copyFile(exe, helper); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.sock")
	r := startServer(t, ServerConfig{Path: path, AllowedUIDs: []int{0}})
	// Open the file itself so that only the credential check can refuse.
	os.Chmod(path, 0o666)

	run := func(uid uint32) string {
		cmd := exec.Command(helper, "-test.run=^TestHelperClient$", "-test.v")
		cmd.Env = append(os.Environ(), "OISP_SOCKET_HELPER="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as uid %d: %v\n%s", uid, err, out)
		}
		return string(out)
	}
	if out := run(nobody); !strings.Contains(out, "RESULT: refused not_authorized") {
		t.Fatalf("uid %d not refused:\n%s", nobody, out)
	}
	if r.st.Get("socket.peer_rejected") != 1 {
		t.Errorf("peer_rejected = %d", r.st.Get("socket.peer_rejected"))
	}
	if out := run(0); !strings.Contains(out, "RESULT: hello") {
		t.Fatalf("root refused:\n%s", out)
	}
}

// TestHelperClient is the child process of TestDisallowedUIDRejected.
func TestHelperClient(t *testing.T) {
	path := os.Getenv("OISP_SOCKET_HELPER")
	if path == "" {
		t.Skip("only runs as a helper process")
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("RESULT: dial failed", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := AppendFrame(nil, &Hello{Version: 1, MaxFrame: MinMaxFrame, Name: "helper"})
	conn.Write(b)
	f, err := NewFrameReader(bufio.NewReader(conn)).Next()
	switch f := f.(type) {
	case *Goodbye:
		fmt.Println("RESULT: refused", f.Code)
	case *Hello:
		fmt.Println("RESULT: hello")
	default:
		fmt.Println("RESULT: other", err)
	}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	r1 := startServer(t, ServerConfig{Path: path})
	c, _ := startClient(t, ClientConfig{Path: path, MaxBackoff: 200 * time.Millisecond})
	waitConnected(t, c, 1)
	c.Open(&flow.Info{ID: "a", RemoteHost: "a.test"})
	c.Data("a", flow.Chunk{Data: []byte("first-")})
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r1.rec.WaitFor(t, "first bytes", func() bool {
		id := r1.rec.FlowByHost("a.test")
		return id != "" && len(r1.rec.Chunks[id]) == 1
	})
	r1.shutdown()
	r1.rec.WaitFor(t, "flow closed by server stop", func() bool { return len(r1.rec.Closes) == 1 })
	r1.rec.Mu.Lock()
	if ci := r1.rec.Closes[r1.rec.FlowByHost("a.test")]; ci.Reason != "source_closed" {
		t.Errorf("flow on stopped server closed with %q", ci.Reason)
	}
	r1.rec.Mu.Unlock()

	// The stopping server said GOODBYE; once the client has seen it, what
	// it is handed waits in its bounded queue for the next sensor. (Bytes
	// written into a connection the peer has already dropped are lost;
	// the next sensor sees them as a gap.)
	for deadline := time.Now().Add(10 * time.Second); c.Stats().Connected; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("client did not notice the sensor stopping")
		}
	}
	c.Data("a", flow.Chunk{Data: []byte("second")})
	c.Open(&flow.Info{ID: "b", RemoteHost: "b.test"})
	c.Data("b", flow.Chunk{Data: []byte("new flow"), Fin: true})
	c.Close("b", flow.CloseInfo{Reason: "eof"})

	r2 := startServer(t, ServerConfig{Path: path})
	waitConnected(t, c, 2)
	c.Close("a", flow.CloseInfo{Reason: "eof"})
	r2.rec.WaitFor(t, "both flows on the new server", func() bool { return len(r2.rec.Closes) == 2 })
	r2.rec.Mu.Lock()
	defer r2.rec.Mu.Unlock()
	a := r2.rec.Chunks[r2.rec.FlowByHost("a.test")]
	if len(a) != 1 || string(a[0].Data) != "second" || a[0].Gap != int64(len("first-")) {
		t.Errorf("resumed flow chunks %+v, want \"second\" after a gap of 6", a)
	}
	if got := string(joined(r2.rec.Chunks[r2.rec.FlowByHost("b.test")], 0, 0)); got != "new flow" {
		t.Errorf("new flow %q", got)
	}
}

func TestBackpressureDropsAndReportsGaps(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	r := startServer(t, ServerConfig{Path: path, CreditWindow: 16 << 10})
	block := make(chan struct{})
	r.rec.SetGate(block)
	st := &stats.Counters{}
	c, _ := startClient(t, ClientConfig{Path: path, QueueBytes: 64 << 10, Stats: st})
	waitConnected(t, c, 1)
	c.Open(&flow.Info{ID: "f", RemoteHost: "slow.test"})
	chunk := bytes.Repeat([]byte("x"), 4096)
	const n = 200
	for i := 0; i < n; i++ {
		chunk := append([]byte(nil), chunk...)
		chunk[0] = byte(i)
		c.Data("f", flow.Chunk{Data: chunk})
	}
	c.Data("f", flow.Chunk{Fin: true})
	c.Close("f", flow.CloseInfo{Reason: "eof"})
	s := c.Stats()
	if s.DroppedBytes == 0 || st.Get("socket_client.dropped_bytes") != s.DroppedBytes {
		t.Fatalf("blocked sensor did not make the client drop: %+v", s)
	}
	r.rec.SetGate(nil)
	close(block)
	rec := r.rec
	rec.WaitFor(t, "flow closed", func() bool { return len(rec.Closes) == 1 })
	rec.Mu.Lock()
	defer rec.Mu.Unlock()
	id := rec.FlowByHost("slow.test")
	chunks := rec.Chunks[id]
	delivered := int64(len(joined(chunks, 0, 0)))
	gap := gaps(chunks, 0)
	if delivered+gap != n*4096 {
		t.Errorf("delivered %d + gaps %d != sent %d", delivered, gap, n*4096)
	}
	if gap != s.DroppedBytes || rec.Closes[id].Dropped != s.DroppedBytes {
		t.Errorf("gaps %d, close dropped %d, client dropped %d", gap, rec.Closes[id].Dropped, s.DroppedBytes)
	}
	if !finSeen(chunks, 0, 0) {
		t.Error("FIN lost")
	}
	// Every delivered byte sits at its original position: the first byte of
	// each 4 KiB block names the block.
	var off int64
	for _, ch := range chunks {
		off += ch.Gap
		for p := range ch.Data {
			if pos := off + int64(p); pos%4096 == 0 && ch.Data[p] != byte(pos/4096) {
				t.Fatalf("byte at offset %d is %d, want %d", pos, ch.Data[p], byte(pos/4096))
			}
		}
		off += int64(len(ch.Data))
	}
	if r.st.Get("socket.protocol_error") != 0 {
		t.Error("client overran its credit")
	}
}

// TestStoppingServerReadsWhatWasSent: frames a client sent before the
// server began to stop are still delivered. The handler is held inside the
// first DATA while the rest waits in the socket; the server stops (GOODBYE
// shutting_down), the client closes, and only then is the handler let go.
func TestStoppingServerReadsWhatWasSent(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	r := startServer(t, ServerConfig{Path: path})
	gate := make(chan struct{})
	r.rec.SetGate(gate)
	conn, fr := rawConn(t, path)
	send(t, conn, &Hello{Version: 1, MaxFrame: MinMaxFrame, Name: "raw"})
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	send(t, conn, &FlowOpen{FlowID: 1}, &Data{FlowID: 1, Seq: 0, Payload: []byte("first ")})
	// Open is not gated: once it is seen, the server is on to the first
	// DATA, which it had buffered with it, and waits at the gate.
	r.rec.WaitFor(t, "the flow to open", func() bool { return len(r.rec.Order) == 1 })
	send(t, conn, &Data{FlowID: 1, Seq: 6, Payload: []byte("second")}, &FlowClose{FlowID: 1})

	go r.shutdown()
	expectGoodbyeCode(t, fr, CodeShuttingDown)
	conn.Close()
	r.rec.SetGate(nil)
	close(gate)
	r.shutdown()

	r.rec.Mu.Lock()
	defer r.rec.Mu.Unlock()
	id := r.rec.Order[0]
	if got := joined(r.rec.Chunks[id], 0, 0); string(got) != "first second" {
		t.Errorf("delivered %q, want %q", got, "first second")
	}
	if _, ok := r.rec.Closes[id]; !ok {
		t.Error("flow not closed")
	}
	if n := r.st.Get("socket.cut_at_shutdown"); n != 0 {
		t.Errorf("socket.cut_at_shutdown = %d for a client that closed", n)
	}
}

// expectGoodbyeCode reads frames until a GOODBYE with code.
func expectGoodbyeCode(t *testing.T, fr *FrameReader, code Code) {
	t.Helper()
	for {
		f, err := fr.Next()
		if err != nil {
			t.Fatalf("connection ended without GOODBYE %s: %v", code, err)
		}
		if g, ok := f.(*Goodbye); ok {
			if g.Code != code {
				t.Fatalf("GOODBYE %s (%s), want %s", g.Code, g.Message, code)
			}
			return
		}
	}
}
