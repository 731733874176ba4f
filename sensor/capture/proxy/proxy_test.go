package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

const apiHost = "api.test.invalid"

// echoChat answers like a chat API: it echoes the request body.
func echoChat(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Proto", r.Proto)
	fmt.Fprintf(w, `{"method":%q,"path":%q,"got":%q}`, r.Method, r.URL.Path, body)
}

func TestGoClientThroughProxy(t *testing.T) {
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			w := newWorld(t)
			w.serveTLS(t, apiHost, http.HandlerFunc(echoChat))
			w.start(t, Config{})
			c := w.client(proto, true)
			// Offer ALPN explicitly in the HTTP/1.1 case too: the proxy must
			// mirror it (a Go client with h2 disabled offers none at all).
			c.Transport.(*http.Transport).TLSClientConfig.NextProtos = map[string][]string{
				"http/1.1": {"http/1.1"}, "h2": {"h2", "http/1.1"}}[proto]
			const body = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
			for i := range 2 {
				resp, err := c.Post("https://"+apiHost+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := fmt.Sprintf(`{"method":"POST","path":"/v1/chat/completions","got":%q}`, body)
				if string(got) != want {
					t.Fatalf("request %d: %q", i, got)
				}
				if wantProto := map[string]string{"h2": "HTTP/2.0", "http/1.1": "HTTP/1.1"}[proto]; resp.Proto != wantProto ||
					resp.Header.Get("X-Proto") != wantProto {
					t.Fatalf("client spoke %s, server saw %s, want %s", resp.Proto, resp.Header.Get("X-Proto"), wantProto)
				}
			}
			// The flow opens once its process is attributed: keep the
			// connection until then, or the /proc scan may miss it.
			w.rec.WaitFor(t, "the flow to open", func() bool { return len(w.rec.Order) > 0 })
			c.CloseIdleConnections()
			ids := w.rec.WaitClosed(t, 1)
			if len(ids) != 1 {
				t.Fatalf("%d flows for one kept-alive connection", len(ids))
			}
			id := ids[0]
			info := w.rec.Infos[id]
			if info.SNI != apiHost || info.RemoteHost != apiHost || info.RemotePort != 443 || info.ALPN != proto ||
				!info.TLS || info.Method != flow.CaptureMITMProxy || info.Transport != flow.TCP ||
				!info.Local.Addr().IsLoopback() || info.Remote.String() != w.hosts[apiHost] {
				t.Errorf("flow info %+v", info)
			}
			if runtime.GOOS == "linux" && (info.Process.PID != os.Getpid() || info.Process.UID != os.Getuid() ||
				info.Process.Exe == "") {
				t.Errorf("process attribution %+v, want this test process", info.Process)
			}
			c2s, s2c := w.rec.Bytes(id, flow.ClientToServer, 0), w.rec.Bytes(id, flow.ServerToClient, 0)
			if proto == "h2" {
				if !bytes.HasPrefix(c2s, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) {
					t.Errorf("h2 flow does not start with the preface: %q", c2s[:min(len(c2s), 30)])
				}
				if len(s2c) < 9 || s2c[3] != 0x4 {
					t.Errorf("h2 server side does not start with SETTINGS: %x", s2c[:min(len(s2c), 9)])
				}
				if !bytes.Contains(c2s, []byte(body)) || !bytes.Contains(s2c, []byte(`"path":"/v1/chat/completions"`)) {
					t.Error("h2 DATA not captured")
				}
				return
			}
			// HTTP/1.1: the captured bytes are two complete requests and
			// two complete responses.
			br := bufio.NewReader(bytes.NewReader(c2s))
			rr := bufio.NewReader(bytes.NewReader(s2c))
			for i := range 2 {
				req, err := http.ReadRequest(br)
				if err != nil {
					t.Fatalf("captured request %d: %v", i, err)
				}
				b, _ := io.ReadAll(req.Body)
				if req.Method != "POST" || req.URL.Path != "/v1/chat/completions" || req.Host != apiHost || string(b) != body {
					t.Errorf("captured request %d: %s %s %q", i, req.Method, req.URL, b)
				}
				resp, err := http.ReadResponse(rr, req)
				if err != nil {
					t.Fatalf("captured response %d: %v", i, err)
				}
				rb, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || !strings.Contains(string(rb), `"got"`) {
					t.Errorf("captured response %d: %d %q", i, resp.StatusCode, rb)
				}
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Error("extra bytes after the captured requests")
			}
		})
	}
}

// rawUpstream accepts one TLS connection, reads exactly len(expect) bytes,
// answers with reply in pieces and closes.
func rawUpstream(t *testing.T, w *world, host string, expectLen int, reply [][]byte) <-chan []byte {
	t.Helper()
	leaf, _ := w.upstreamCA.Leaf(host)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*leaf}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	w.hosts[host] = ln.Addr().String()
	got := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		buf := make([]byte, expectLen)
		_, err = io.ReadFull(conn, buf)
		got <- buf
		if err != nil {
			return
		}
		for _, p := range reply {
			conn.Write(p)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return got
}

// connectTLS opens a CONNECT tunnel through the proxy and a TLS client
// over it.
func connectTLS(t *testing.T, w *world, hostport string, conf *tls.Config) (*tls.Conn, error) {
	t.Helper()
	conn, err := net.Dial("tcp", w.proxy.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hostport, hostport)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != 200 {
		conn.Close()
		return nil, fmt.Errorf("CONNECT: %s", resp.Status)
	}
	tc := tls.Client(conn, conf)
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// TestExactBytes checks that the handler receives exactly the bytes each
// side wrote, binary included, with FIN in both directions.
func TestExactBytes(t *testing.T) {
	w := newWorld(t)
	sent := [][]byte{[]byte("HEAD"), {0, 1, 2, 0xff, '\r', '\n'}, bytes.Repeat([]byte{0xab}, 70000)}
	var all []byte
	for _, p := range sent {
		all = append(all, p...)
	}
	reply := [][]byte{[]byte("event one\n"), {0x00, 0x80}, bytes.Repeat([]byte("z"), 100000), []byte("last")}
	var replyAll []byte
	for _, p := range reply {
		replyAll = append(replyAll, p...)
	}
	upstreamGot := rawUpstream(t, w, "raw.test", len(all), reply)
	w.start(t, Config{})
	tc, err := connectTLS(t, w, "raw.test:443", &tls.Config{ServerName: "raw.test", RootCAs: w.sensorCA.CertPool()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	for _, p := range sent {
		if _, err := tc.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := io.ReadAll(tc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, replyAll) {
		t.Fatalf("client got %d bytes, want %d", len(got), len(replyAll))
	}
	if up := <-upstreamGot; !bytes.Equal(up, all) {
		t.Fatal("upstream got different bytes")
	}
	tc.Close()
	id := w.rec.WaitClosed(t, 1)[0]
	if !bytes.Equal(w.rec.Bytes(id, flow.ClientToServer, 0), all) {
		t.Error("captured client bytes differ")
	}
	if !bytes.Equal(w.rec.Bytes(id, flow.ServerToClient, 0), replyAll) {
		t.Error("captured server bytes differ")
	}
	if !w.rec.Fin(id, flow.ServerToClient) {
		t.Error("no FIN server->client")
	}
	w.rec.Mu.Lock()
	defer w.rec.Mu.Unlock()
	for _, c := range w.rec.Chunks[id] {
		if len(c.Data) == 0 && !c.Fin || c.Gap != 0 || c.At.IsZero() {
			t.Fatalf("bad chunk %+v", c)
		}
	}
	if ci := w.rec.Closes[id]; ci.Dropped != 0 || ci.Reason == "" {
		t.Errorf("close %+v", ci)
	}
	if w.rec.Infos[id].ALPN != "" {
		t.Errorf("ALPN %q although the client offered none", w.rec.Infos[id].ALPN)
	}
}

func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	w := newWorld(t)
	w.serveTLS(t, apiHost, http.HandlerFunc(echoChat))
	w.start(t, Config{})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, w.sensorCA.CertPEM(), 0o644)
	for i, c := range []struct{ flag, alpn string }{{"--http1.1", "http/1.1"}, {"--http2", "h2"}} {
		out, err := exec.Command(curl, "-sS", "--fail", c.flag, "--proxy", w.proxyURL().String(), "--cacert", caFile,
			"-H", "Authorization: Bearer sk-test", "--data", `{"model":"claude"}`,
			"https://"+apiHost+"/v1/messages").CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", c.flag, err, out)
		}
		if want := `{"method":"POST","path":"/v1/messages","got":"{\"model\":\"claude\"}"}`; string(out) != want {
			t.Fatalf("curl %s got %s", c.flag, out)
		}
		ids := w.rec.WaitClosed(t, i+1)
		id := ids[i]
		if alpn := w.rec.Infos[id].ALPN; alpn != c.alpn {
			t.Errorf("curl %s: ALPN %q, want %q", c.flag, alpn, c.alpn)
		}
		c2s := w.rec.Bytes(id, flow.ClientToServer, 0)
		if !bytes.Contains(c2s, []byte(`{"model":"claude"}`)) {
			t.Errorf("curl %s: request body not captured", c.flag)
		}
		if c.alpn == "http/1.1" && !bytes.HasPrefix(c2s, []byte("POST /v1/messages HTTP/1.1\r\n")) {
			t.Errorf("curl %s: captured %q", c.flag, c2s[:min(40, len(c2s))])
		}
	}
	// Without our CA curl refuses the forged certificate; the proxy says why.
	out, err := exec.Command(curl, "-sS", "--proxy", w.proxyURL().String(), "--cacert", w.upstreamCA.CertPath(),
		"https://"+apiHost+"/").CombinedOutput()
	if err == nil {
		t.Fatalf("curl accepted an untrusted CA: %s", out)
	}
	waitCount(t, w, "proxy.client_rejected_ca", 1)
}

func waitCount(t *testing.T, w *world, token string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); w.st.Get(token) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d (counters %v)", token, w.st.Get(token), n, w.st.Snapshot())
		}
	}
}

// TestTunnelNotIntercepted: the client sees the real server's certificate,
// which proves the proxy did not terminate TLS, and no flow is emitted.
func TestTunnelNotIntercepted(t *testing.T) {
	w := newWorld(t)
	w.serveTLS(t, "private.test", http.HandlerFunc(echoChat))
	w.start(t, Config{Intercept: func(host string, port int) bool { return host == apiHost }})
	tr := &http.Transport{Proxy: http.ProxyURL(w.proxyURL()), TLSClientConfig: &tls.Config{RootCAs: w.upstreamCA.CertPool()}}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Post("https://private.test/x", "text/plain", strings.NewReader("secret"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"got":"secret"`) {
		t.Fatalf("tunnelled response %q", body)
	}
	if !resp.TLS.PeerCertificates[0].Equal(mustLeaf(t, w, "private.test")) {
		t.Error("client did not see the upstream's own certificate")
	}
	tr.CloseIdleConnections()
	waitCount(t, w, "proxy.connect_tunnelled", 1)
	w.shutdown()
	if n := w.rec.FlowCount(); n != 0 {
		t.Errorf("%d flows emitted for a tunnelled host", n)
	}
}

func mustLeaf(t *testing.T, w *world, host string) *x509.Certificate {
	t.Helper()
	c, err := w.upstreamCA.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf
}

// TestSSEReachesClientChunkByChunk: the upstream holds each event until the
// client has received the previous one through the proxy; any buffering in
// the proxy would deadlock (and time out).
func TestSSEReachesClientChunkByChunk(t *testing.T) {
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			w := newWorld(t)
			next := make(chan struct{})
			w.serveTLS(t, apiHost, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				rw.Header().Set("Content-Type", "text/event-stream")
				for i := range 4 {
					fmt.Fprintf(rw, "data: {\"delta\":%d}\n\n", i)
					rw.(http.Flusher).Flush()
					select {
					case <-next:
					case <-time.After(15 * time.Second):
						return
					}
				}
			}))
			w.start(t, Config{})
			c := w.client(proto, true)
			resp, err := c.Get("https://" + apiHost + "/v1/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			for i := range 4 {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if want := fmt.Sprintf("data: {\"delta\":%d}\n", i); line != want {
					t.Fatalf("event %d: %q", i, line)
				}
				br.ReadString('\n')
				// The handler got the event too before the next is released.
				w.rec.WaitFor(t, "captured event", func() bool {
					for _, id := range w.rec.Order {
						var b bytes.Buffer
						for _, c := range w.rec.Chunks[id] {
							if c.Dir == flow.ServerToClient {
								b.Write(c.Data)
							}
						}
						if bytes.Contains(b.Bytes(), []byte(fmt.Sprintf("{\"delta\":%d}", i))) {
							return true
						}
					}
					return false
				})
				next <- struct{}{}
			}
		})
	}
}

// TestSlowHandlerDoesNotSlowClient: with the handler stuck, a 4 MiB
// download completes; the flow later shows exactly the lost bytes as gaps.
func TestSlowHandlerDoesNotSlowClient(t *testing.T) {
	w := newWorld(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	w.serveTLS(t, apiHost, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Length", fmt.Sprint(len(big)))
		rw.Write(big)
	}))
	gate := make(chan struct{})
	w.rec.SetGate(gate)
	w.start(t, Config{QueueBytes: 256 << 10})
	c := w.client("http/1.1", false)
	resp, err := c.Get("https://" + apiHost + "/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("download while the handler is stuck: %d bytes, %v", len(got), err)
	}
	overflow := w.st.Get("proxy.queue_overflow_bytes")
	if overflow == 0 {
		t.Fatal("no overflow counted")
	}
	w.rec.SetGate(nil)
	close(gate)
	id := w.rec.WaitClosed(t, 1)[0]
	s2c := int64(len(w.rec.Bytes(id, flow.ServerToClient, 0)))
	gap := w.rec.Gap(id, flow.ServerToClient) + w.rec.Gap(id, flow.ClientToServer)
	w.rec.Mu.Lock()
	dropped := w.rec.Closes[id].Dropped
	w.rec.Mu.Unlock()
	if dropped != overflow {
		t.Errorf("close reports %d dropped, counter %d", dropped, overflow)
	}
	if gap > dropped {
		t.Errorf("gaps %d exceed dropped %d", gap, dropped)
	}
	// Everything the server sent is either captured or counted lost.
	if s2c+w.rec.Gap(id, flow.ServerToClient) > int64(len(big))+4096 || s2c >= int64(len(big)) {
		t.Errorf("captured %d + gap %d for a %d byte body", s2c, w.rec.Gap(id, flow.ServerToClient), len(big))
	}
}

func TestErrorsAreCountedAndExplained(t *testing.T) {
	w := newWorld(t)
	w.serveTLS(t, apiHost, http.HandlerFunc(echoChat))
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	w.hosts["refused.test"] = closed.Addr().String()
	closed.Close()
	w.start(t, Config{Resolve: func(host string, port int) string {
		if host == "no-such-host.invalid" {
			return "no-such-host.invalid:443"
		}
		return w.resolve(host, port)
	}})
	c := w.client("http/1.1", false)

	for _, tc := range []struct{ url, token, text string }{
		{"https://no-such-host.invalid/", "proxy.unknown_host", "unknown host"},
		{"https://refused.test/", "proxy.upstream_refused", "refused"},
	} {
		_, err := c.Get(tc.url)
		if err == nil {
			t.Fatalf("%s: no error", tc.url)
		}
		waitCount(t, w, tc.token, 1)
		// A raw CONNECT shows the explanation.
		conn, _ := net.Dial("tcp", w.proxy.Addr().String())
		host := strings.TrimSuffix(strings.TrimPrefix(tc.url, "https://"), "/")
		fmt.Fprintf(conn, "CONNECT %s:443 HTTP/1.1\r\n\r\n", host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), tc.text) {
			t.Errorf("%s: %s %q", tc.url, resp.Status, body)
		}
	}
	// The client does not trust the sensor CA (Go sends bad_certificate).
	untrusting := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(w.proxyURL()),
		TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	if _, err := untrusting.Get("https://" + apiHost + "/"); err == nil {
		t.Fatal("untrusting client accepted the forged certificate")
	}
	waitCount(t, w, "proxy.client_rejected_ca", 1)
	// The upstream certificate is not trusted by the proxy.
	w2 := newWorld(t)
	w2.serveTLS(t, apiHost, http.HandlerFunc(echoChat))
	w2.start(t, Config{})
	w2.proxy.cfg.UpstreamRoots = x509.NewCertPool()
	if _, err := w2.client("h2", false).Get("https://" + apiHost + "/"); err == nil {
		t.Fatal("request succeeded with an untrusted upstream")
	}
	waitCount(t, w2, "proxy.upstream_tls_failed", 1)
	if n := w.rec.FlowCount() + w2.rec.FlowCount(); n != 0 {
		t.Errorf("%d flows for failed connections", n)
	}
	// Garbage instead of a request.
	conn, _ := net.Dial("tcp", w.proxy.Addr().String())
	conn.Write([]byte("\x16\x03\x01 not http\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	conn.Close()
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("garbage request: %v %v", resp, err)
	}
}

func TestPlainHTTP(t *testing.T) {
	w := newWorld(t)
	up := httptest.NewServer(http.HandlerFunc(echoChat))
	defer up.Close()
	upHost, upPort, _ := net.SplitHostPort(up.Listener.Addr().String())
	w.start(t, Config{})
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(w.proxyURL())}, Timeout: 10 * time.Second}
	for i := range 2 {
		resp, err := c.Post(up.URL+"/api/generate", "application/json", strings.NewReader(`{"model":"llama3"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"got":"{\"model\":\"llama3\"}"`) {
			t.Fatalf("request %d: %q", i, body)
		}
	}
	c.CloseIdleConnections()
	id := w.rec.WaitClosed(t, 1)[0]
	info := w.rec.Infos[id]
	if info.TLS || info.RemoteHost != upHost || fmt.Sprint(info.RemotePort) != upPort || info.ALPN != "" {
		t.Errorf("plain flow info %+v", info)
	}
	c2s := w.rec.Bytes(id, flow.ClientToServer, 0)
	br := bufio.NewReader(bytes.NewReader(c2s))
	for i := range 2 {
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("captured request %d: %v\n%q", i, err, c2s)
		}
		if req.RequestURI != "/api/generate" || req.Header.Get("Proxy-Connection") != "" {
			t.Errorf("captured request %d in %q form with headers %v", i, req.RequestURI, req.Header)
		}
		io.Copy(io.Discard, req.Body)
	}
	if s2c := w.rec.Bytes(id, flow.ServerToClient, 0); bytes.Count(s2c, []byte("HTTP/1.1 200 OK")) != 2 {
		t.Errorf("captured responses %q", s2c)
	}
}

// TestPlainUpgrade: a WebSocket-style upgrade through the plain proxy
// becomes a raw relay, captured in both directions.
func TestPlainUpgrade(t *testing.T) {
	w := newWorld(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		buf := make([]byte, 5)
		io.ReadFull(br, buf)
		conn.Write(bytes.ToUpper(buf))
	}()
	w.start(t, Config{})
	conn, _ := net.Dial("tcp", w.proxy.Addr().String())
	defer conn.Close()
	fmt.Fprintf(conn, "GET http://%s/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n", ln.Addr(), ln.Addr())
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	conn.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "HELLO" {
		t.Fatalf("echo %q %v", buf, err)
	}
	conn.Close()
	id := w.rec.WaitClosed(t, 1)[0]
	if c2s := w.rec.Bytes(id, flow.ClientToServer, 0); !bytes.HasSuffix(c2s, []byte("\r\n\r\nhello")) {
		t.Errorf("c2s %q", c2s)
	}
	if s2c := w.rec.Bytes(id, flow.ServerToClient, 0); !bytes.HasSuffix(s2c, []byte("\r\n\r\nHELLO")) ||
		bytes.Count(s2c, []byte("101 Switching")) != 1 {
		t.Errorf("s2c %q", s2c)
	}
}

// TestShutdownClosesFlows: stopping the proxy ends open flows with
// source_closed after their data.
func TestShutdownClosesFlows(t *testing.T) {
	w := newWorld(t)
	hold := make(chan struct{})
	defer close(hold)
	w.serveTLS(t, apiHost, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Write([]byte("partial"))
		rw.(http.Flusher).Flush()
		<-hold
	}))
	w.start(t, Config{})
	resp, err := w.client("http/1.1", true).Get("https://" + apiHost + "/hang")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 7)
	io.ReadFull(resp.Body, buf)
	w.shutdown()
	w.rec.Mu.Lock()
	defer w.rec.Mu.Unlock()
	if len(w.rec.Closes) != 1 {
		t.Fatalf("%d flows closed after shutdown", len(w.rec.Closes))
	}
	for id, ci := range w.rec.Closes {
		if ci.Reason != "source_closed" {
			t.Errorf("close reason %q", ci.Reason)
		}
		var b bytes.Buffer
		for _, c := range w.rec.Chunks[id] {
			b.Write(c.Data)
		}
		if !bytes.Contains(b.Bytes(), []byte("partial")) {
			t.Error("data before shutdown not delivered")
		}
	}
}

// TestConnectByIPDecidesOnSNI: a CONNECT to an IP literal is intercepted
// when its SNI names an intercepted host, and tunnelled intact (the peeked
// ClientHello replayed) when it does not.
func TestConnectByIPDecidesOnSNI(t *testing.T) {
	w := newWorld(t)
	w.serveTLS(t, apiHost, http.HandlerFunc(echoChat))
	w.serveTLS(t, "private.test", http.HandlerFunc(echoChat))
	w.start(t, Config{Intercept: func(host string, port int) bool { return host == apiHost }})
	roundTrip := func(tc *tls.Conn, host string) string {
		fmt.Fprintf(tc, "GET /by-ip HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	tc, err := connectTLS(t, w, w.hosts[apiHost], &tls.Config{ServerName: apiHost, RootCAs: w.sensorCA.CertPool()})
	if err != nil {
		t.Fatalf("intercepted by SNI: %v", err)
	}
	if got := roundTrip(tc, apiHost); !strings.Contains(got, `"path":"/by-ip"`) {
		t.Fatalf("intercepted response %q", got)
	}
	tc.Close()
	id := w.rec.WaitClosed(t, 1)[0]
	if info := w.rec.Infos[id]; info.SNI != apiHost || info.RemoteHost != "127.0.0.1" || info.Host() != apiHost {
		t.Errorf("info %+v", info)
	}
	tc, err = connectTLS(t, w, w.hosts["private.test"], &tls.Config{ServerName: "private.test", RootCAs: w.upstreamCA.CertPool()})
	if err != nil {
		t.Fatalf("tunnel after SNI peek: %v", err)
	}
	if got := roundTrip(tc, "private.test"); !strings.Contains(got, `"path":"/by-ip"`) {
		t.Fatalf("tunnelled response %q", got)
	}
	tc.Close()
	if n := w.rec.FlowCount(); n != 1 {
		t.Errorf("%d flows, want only the intercepted one", n)
	}
}
