// Package proxy owns the capture proxy: an explicit HTTP proxy (CONNECT and
// plain-HTTP forwarding) that terminates TLS only for the hosts it is told
// to intercept, relays the decrypted bytes between client and server
// unchanged, and tees a copy of every read to a flow.Handler.
//
// The forward path never waits for the handler: each read is copied into a
// bounded per-flow queue (so the handler sees a request before its answer)
// and then written to the other side; when the queue is full the bytes are
// counted and the handler later sees a Gap.
// Hosts that are not intercepted are tunnelled byte for byte and never
// decrypted. ALPN is mirrored: the client's offer goes upstream unchanged
// and the client gets what the server chose, so HTTP/1.1 and h2 pass
// through as they are. An optional UDP listener relays HTTP/3 (QUIC) for
// intercepted hosts through the quicrelay package.
package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Defaults for Config.
const (
	DefaultAddr             = "127.0.0.1:8080"
	DefaultQueueBytes       = 8 << 20
	DefaultTotalQueueBytes  = 256 << 20
	DefaultDialTimeout      = 10 * time.Second
	DefaultHandshakeTimeout = 15 * time.Second
	maxRequestHeader        = 64 << 10
	relayBufferSize         = 32 << 10
)

// Config configures a Proxy.
type Config struct {
	// Addr is the TCP listen address (default 127.0.0.1:8080). Ignored
	// when Listener is set.
	Addr     string
	Listener net.Listener
	// CA forges the certificates shown to clients for intercepted hosts.
	CA *ca.CA
	// Intercept says whether connections to host:port are decrypted and
	// captured. Nil intercepts nothing (every CONNECT is a blind tunnel).
	Intercept func(host string, port int) bool
	// UpstreamRoots are trusted for upstream servers in addition to the
	// system roots (tests, corporate TLS inspection).
	UpstreamRoots *x509.CertPool
	// Resolve maps the requested host and port to the address dialled;
	// nil dials host:port. Tests use it to reach local servers by name.
	Resolve func(host string, port int) string
	// QueueBytes bounds each flow's queue toward the handler;
	// TotalQueueBytes bounds all flows' queues together.
	QueueBytes       int
	TotalQueueBytes  int
	DialTimeout      time.Duration
	HandshakeTimeout time.Duration
	// NoProcessLookup turns off the /proc socket-inode lookup that
	// attributes loopback clients to their process (Linux).
	NoProcessLookup bool
	// H3Addr, when set, opens a UDP listener that relays HTTP/3 to
	// intercepted hosts (clients reach it by pointing the host name at
	// it). H3UpstreamPort is the port dialled upstream (default 443).
	H3Addr         string
	H3UpstreamPort int
	// H3DefaultHost is where QUIC connections that name no server (no
	// SNI: clients pointed at the listener by IP address) are relayed;
	// empty refuses them.
	H3DefaultHost string
	Stats         stats.Recorder
	Logger        *slog.Logger
}

// Proxy is the capture proxy; it implements flow.Source.
type Proxy struct {
	cfg     Config
	ln      net.Listener
	h3      *h3Listener
	log     *slog.Logger
	st      stats.Recorder
	flowSeq atomic.Uint64
	taps    sync.WaitGroup // flows whose handler has not seen Close yet
	budget  *budget
	// dispatch delivers every flow's captured bytes in the order they
	// were forwarded (see tapDispatcher).
	dispatch *tapDispatcher
	procs    procFinder
	// upSessions holds upstream session tickets (scoped per address and
	// server name); verified remembers upstream chains already verified.
	upSessions tls.ClientSessionCache
	verified   *verifiedChains
	// clientTLSConf is built once by clientTLS.
	clientTLSOnce sync.Once
	clientTLSConf *tls.Config

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// New validates cfg and opens the listeners, so Addr is known before Run.
func New(cfg Config) (*Proxy, error) {
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.TotalQueueBytes <= 0 {
		cfg.TotalQueueBytes = DefaultTotalQueueBytes
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.H3UpstreamPort == 0 {
		cfg.H3UpstreamPort = 443
	}
	if cfg.Stats == nil {
		cfg.Stats = stats.Discard{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Intercept != nil && cfg.CA == nil {
		return nil, errors.New("proxy: Intercept is set but there is no CA to forge certificates with")
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger.With("component", "proxy"), st: cfg.Stats, conns: map[net.Conn]struct{}{},
		budget:     &budget{max: int64(cfg.TotalQueueBytes)},
		dispatch:   &tapDispatcher{},
		upSessions: tls.NewLRUClientSessionCache(upstreamSessionCacheSize),
		verified:   newVerifiedChains(verifiedChainCacheSize)}
	p.ln = cfg.Listener
	if p.ln == nil {
		addr := cfg.Addr
		if addr == "" {
			addr = DefaultAddr
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("proxy: listening on %s: %w", addr, err)
		}
		p.ln = ln
	}
	if cfg.H3Addr != "" {
		h3, err := newH3Listener(p, cfg.H3Addr)
		if err != nil {
			p.ln.Close()
			return nil, err
		}
		p.h3 = h3
	}
	return p, nil
}

// Addr is the TCP address clients use as their HTTP(S) proxy.
func (p *Proxy) Addr() net.Addr { return p.ln.Addr() }

// H3Addr is the UDP address of the HTTP/3 relay, or nil.
func (p *Proxy) H3Addr() net.Addr {
	if p.h3 == nil {
		return nil
	}
	return p.h3.addr()
}

// Run serves until ctx ends; open flows are then closed with reason
// "source_closed" after their queued chunks are delivered.
func (p *Proxy) Run(ctx context.Context, h flow.Handler) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, p.shutdown)
	defer stop()
	if p.h3 != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.h3.serve(ctx, h)
		}()
	}
	defer p.taps.Wait()
	defer wg.Wait()
	p.log.Info("capture proxy listening", "addr", p.ln.Addr().String())
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			p.shutdown()
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("proxy: accept: %w", err)
		}
		if !p.track(conn) {
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.untrack(conn)
			p.serveConn(ctx, conn, h)
		}()
	}
}

func (p *Proxy) newTap(h flow.Handler, info *flow.Info, log *slog.Logger, attribute func(*flow.Info)) *flowTap {
	p.taps.Add(1)
	t := newFlowTap(h, info, int64(p.cfg.QueueBytes), p.st, log, attribute, p.dispatch)
	t.shared = p.budget
	go func() {
		t.Wait()
		p.taps.Done()
	}()
	return t
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) shutdown() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	p.ln.Close()
	if p.h3 != nil {
		p.h3.close()
	}
	for _, c := range conns {
		c.Close()
	}
}

// conn state shared by the handlers of one accepted connection.
type clientConn struct {
	p       *Proxy
	conn    net.Conn
	br      *bufio.Reader
	lim     *headerLimit
	h       flow.Handler
	started time.Time
	local   netip.AddrPort // client's address
	proxy   netip.AddrPort // our address as the client sees it
	proc    chan procResult
	log     *slog.Logger
	// replay holds client bytes already read by peekSNI.
	replay []byte
}

type procResult struct {
	p  flow.Process
	ok bool
}

// headerLimit caps how much a client may send before its request header
// is complete; it is lifted for bodies and tunnels.
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	return n, err
}

var errHeaderTooLarge = errors.New("request header too large")

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func (p *Proxy) serveConn(ctx context.Context, conn net.Conn, h flow.Handler) {
	p.st.Count("proxy.connections", 1)
	lim := &headerLimit{r: conn, n: maxRequestHeader}
	c := &clientConn{p: p, conn: conn, br: bufio.NewReaderSize(lim, 16<<10), lim: lim, h: h,
		started: time.Now(), local: addrPort(conn.RemoteAddr()), proxy: addrPort(conn.LocalAddr()),
		proc: make(chan procResult, 1)}
	c.log = p.log.With("client", c.local.String())
	// Attribution runs while the request is read and upstream is dialled.
	if !p.cfg.NoProcessLookup {
		go func() {
			pr, ok := p.procs.lookup("tcp", c.local, c.proxy)
			c.proc <- procResult{pr, ok}
		}()
	} else {
		c.proc <- procResult{p: flow.Process{UID: -1}}
	}
	conn.SetReadDeadline(time.Now().Add(p.cfg.HandshakeTimeout))
	req, err := http.ReadRequest(c.br)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			p.st.Count("proxy.bad_request", 1)
			c.log.Debug("proxy: unreadable request", "err", err)
			if errors.Is(err, errHeaderTooLarge) {
				c.reply(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
			} else {
				c.reply(http.StatusBadRequest, "malformed request")
			}
		}
		return
	}
	conn.SetReadDeadline(time.Time{})
	if req.Method == http.MethodConnect {
		c.serveConnect(ctx, req)
		return
	}
	c.servePlain(ctx, req)
}

// process waits for the attribution lookup.
func (c *clientConn) process() (flow.Process, bool) {
	r := <-c.proc
	c.proc <- r
	return r.p, r.ok
}

// attribute fills info.Process; the tap calls it on its own goroutine just
// before Open, so the lookup never delays forwarding.
func (c *clientConn) attribute(info *flow.Info) {
	pr, ok := c.process()
	info.Process = pr
	if ok {
		c.p.st.Count("proxy.process_attributed", 1)
	}
}

func (c *clientConn) reply(code int, msg string) {
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c.conn, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(msg)+1, msg+"\n")
	c.conn.SetWriteDeadline(time.Time{})
}

func (c *clientConn) newInfo(host string, port int, upstream net.Conn, tls bool) *flow.Info {
	info := &flow.Info{
		ID:         "px" + strconv.FormatUint(c.p.flowSeq.Add(1), 10),
		Transport:  flow.TCP,
		Local:      c.local,
		RemoteHost: host,
		RemotePort: uint16(port),
		TLS:        tls,
		Method:     flow.CaptureMITMProxy,
		Started:    c.started,
	}
	if upstream != nil {
		info.Remote = addrPort(upstream.RemoteAddr())
	}
	return info
}

func splitTarget(hostport string, defaultPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		if defaultPort == 0 || strings.Count(hostport, ":") > 1 && !strings.HasPrefix(hostport, "[") {
			return "", 0, err
		}
		host, portStr = strings.Trim(hostport, "[]"), strconv.Itoa(defaultPort)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("bad target %q", hostport)
	}
	return strings.ToLower(host), port, nil
}

// dial connects to the upstream for host:port, counting and explaining
// failures.
func (c *clientConn) dial(ctx context.Context, host string, port int) (net.Conn, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if c.p.cfg.Resolve != nil {
		addr = c.p.cfg.Resolve(host, port)
	}
	d := net.Dialer{Timeout: c.p.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		c.p.dialFailed(c.log, host, port, err)
		return nil, err
	}
	return conn, nil
}

func (p *Proxy) dialFailed(log *slog.Logger, host string, port int, err error) {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		p.st.Count("proxy.unknown_host", 1)
		log.Warn("proxy: unknown host (DNS lookup found nothing)", "host", host, "port", port)
	case isRefused(err):
		p.st.Count("proxy.upstream_refused", 1)
		log.Warn("proxy: upstream refused the connection", "host", host, "port", port, "err", err)
	case isTimeout(err):
		p.st.Count("proxy.upstream_timeout", 1)
		log.Warn("proxy: upstream did not answer in time", "host", host, "port", port, "timeout", p.cfg.DialTimeout)
	default:
		p.st.Count("proxy.upstream_dial_failed", 1)
		log.Warn("proxy: cannot connect upstream", "host", host, "port", port, "err", err)
	}
}

func badGatewayText(host string, port int, err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Sprintf("oisp-sensor proxy: unknown host %s", host)
	case isRefused(err):
		return fmt.Sprintf("oisp-sensor proxy: %s:%d refused the connection", host, port)
	case isTimeout(err):
		return fmt.Sprintf("oisp-sensor proxy: %s:%d did not answer in time", host, port)
	}
	return fmt.Sprintf("oisp-sensor proxy: cannot connect to %s:%d: %v", host, port, err)
}

func (c *clientConn) serveConnect(ctx context.Context, req *http.Request) {
	host, port, err := splitTarget(req.RequestURI, 0)
	if err != nil {
		c.p.st.Count("proxy.bad_request", 1)
		c.reply(http.StatusBadRequest, "CONNECT needs host:port")
		return
	}
	intercept := c.p.cfg.Intercept != nil && c.p.cfg.Intercept(host, port)
	upstream, err := c.dial(ctx, host, port)
	if err != nil {
		c.reply(http.StatusBadGateway, badGatewayText(host, port, err))
		return
	}
	defer upstream.Close()
	if _, err := io.WriteString(c.conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	c.lim.n = 1 << 62
	if !intercept && c.p.cfg.Intercept != nil {
		if _, err := netip.ParseAddr(host); err == nil {
			// A client that CONNECTs to an IP literal still names the
			// server in its SNI; decide on that name.
			if sni := c.peekSNI(); sni != "" {
				intercept = c.p.cfg.Intercept(sni, port)
			}
		}
	}
	if !intercept {
		c.p.st.Count("proxy.connect_tunnelled", 1)
		c.tunnel(upstream)
		return
	}
	c.p.st.Count("proxy.connect_intercepted", 1)
	// A TLS ClientHello starts with a handshake record (0x16); anything
	// else is a plain-text protocol tunnelled through CONNECT.
	var first byte
	if len(c.replay) > 0 {
		first = c.replay[0]
	} else {
		c.conn.SetReadDeadline(time.Now().Add(c.p.cfg.HandshakeTimeout))
		b, err := c.br.Peek(1)
		c.conn.SetReadDeadline(time.Time{})
		if err != nil {
			return
		}
		first = b[0]
	}
	if first != 0x16 {
		info := c.newInfo(host, port, upstream, false)
		tap := c.p.newTap(c.h, info, c.log, c.attribute)
		c.p.st.Count("proxy.flows", 1)
		reason := relay(readerConn{c.conn, c.clientReader()}, upstream, tap, true)
		tap.Close(flow.CloseInfo{Reason: reason})
		tap.Wait()
		return
	}
	c.intercept(ctx, host, port, upstream)
}

var errSNIPeeked = errors.New("SNI peeked")

// peekSNI reads the client's ClientHello without answering it and returns
// its server name. The bytes read are kept in c.replay and handed on first
// to whichever path (tunnel or interception) takes the connection.
func (c *clientConn) peekSNI() string {
	rec := &recordingReader{r: c.br}
	var sni string
	probe := tls.Server(peekConn{Conn: c.conn, r: rec}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni = strings.ToLower(h.ServerName)
			return nil, errSNIPeeked
		},
	})
	c.conn.SetReadDeadline(time.Now().Add(c.p.cfg.HandshakeTimeout))
	probe.Handshake()
	c.conn.SetReadDeadline(time.Time{})
	c.replay = rec.buf
	return sni
}

// clientReader reads what peekSNI consumed, then the connection.
func (c *clientConn) clientReader() io.Reader {
	if len(c.replay) == 0 {
		return c.br
	}
	return io.MultiReader(bytes.NewReader(c.replay), c.br)
}

type recordingReader struct {
	r   io.Reader
	buf []byte
}

func (r *recordingReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.buf = append(r.buf, b[:n]...)
	return n, err
}

// peekConn lets the SNI probe read and swallows what it writes (the alert
// crypto/tls sends when the probe aborts).
type peekConn struct {
	net.Conn
	r io.Reader
}

func (p peekConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p peekConn) Write(b []byte) (int, error) { return len(b), nil }

// readerConn reads through a bufio.Reader that may hold bytes already
// taken from the connection, and writes to the connection.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (r readerConn) Read(b []byte) (int, error) { return r.r.Read(b) }

// tunnel relays a non-intercepted CONNECT without looking at it.
func (c *clientConn) tunnel(upstream net.Conn) {
	if len(c.replay) > 0 {
		if _, err := upstream.Write(c.replay); err != nil {
			return
		}
	}
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		if _, err := upstream.Write(b); err != nil {
			return
		}
		c.br.Discard(n)
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		// io.Copy between TCP connections splices in the kernel on Linux.
		if _, err := io.Copy(dst, src); err != nil {
			dst.Close()
			src.Close()
			return
		}
		closeWrite(dst)
	}
	go pipe(upstream, c.conn)
	go pipe(c.conn, upstream)
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if rc, ok := c.(readerConn); ok {
		c = rc.Conn
	}
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}

// relay copies both directions between client and upstream, teeing every
// read into tap (if any) after forwarding it; tapS2C false leaves the
// server-to-client direction to a tee further down. It returns the flow's
// close reason.
func relay(client, upstream net.Conn, tap *flowTap, tapS2C bool) string {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failure error
	)
	pump := func(dst, src net.Conn, dir flow.Direction) {
		defer wg.Done()
		tapping := tap != nil && (dir == flow.ClientToServer || tapS2C)
		buf := make([]byte, relayBufferSize)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				// Tap first (a copy into the queue, never a wait): once
				// forwarded, the server's answer can reach the other
				// direction's tap before this chunk, and the decoder would
				// see a response before its request.
				if tapping {
					tap.Chunk(flow.Chunk{Dir: dir, Data: buf[:n], At: time.Now()})
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				if tapping {
					tap.Chunk(flow.Chunk{Dir: dir, Fin: true, At: time.Now()})
				}
				closeWrite(dst)
				return
			}
			mu.Lock()
			if failure == nil {
				failure = err
			}
			mu.Unlock()
			// Unblock the other direction.
			client.Close()
			upstream.Close()
			return
		}
	}
	wg.Add(2)
	go pump(upstream, client, flow.ClientToServer)
	go pump(client, upstream, flow.ServerToClient)
	wg.Wait()
	switch {
	case failure == nil:
		return "eof"
	case errors.Is(failure, net.ErrClosed):
		return "source_closed"
	case isReset(failure):
		return "reset"
	case isTimeout(failure):
		return "timeout"
	}
	return "error"
}

// interception is the state of one intercepted connection's handshakes,
// reached from the proxy-wide client-facing tls.Config through the
// connection it is handshaking on.
type interception struct {
	c           *clientConn
	host        string
	upstreamTCP net.Conn
	ctx         context.Context
	upstream    *tls.Conn
	upErr       error
	sni         string
}

// interceptConn is the client connection handed to tls.Server; it carries
// the interception so configForClient can find it.
type interceptConn struct {
	readerConn
	ic *interception
}

// clientTLS is the proxy-wide configuration for the TLS the proxy serves
// to clients. Being shared, its session-ticket keys are too, so a client
// that resumes its session with the proxy skips the certificate on later
// connections (the upstream leg is still opened and checked every time).
func (p *Proxy) clientTLS() *tls.Config {
	p.clientTLSOnce.Do(func() {
		p.clientTLSConf = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: p.configForClient}
	})
	return p.clientTLSConf
}

// configForClient opens TLS to the server the client named, offering
// exactly the client's ALPN list, and answers the client with the forged
// leaf and the protocol the server chose.
func (p *Proxy) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	conn, ok := hello.Conn.(interceptConn)
	if !ok {
		return nil, errors.New("proxy: handshake on a connection that is not being intercepted")
	}
	ic := conn.ic
	ic.sni = strings.ToLower(hello.ServerName)
	name := ic.sni
	if name == "" {
		name = ic.host
	}
	ic.upstream = tls.Client(ic.upstreamTCP, p.upstreamTLS(name, hello.SupportedProtos, "tcp:"+ic.upstreamTCP.RemoteAddr().String()))
	if err := ic.upstream.HandshakeContext(ic.ctx); err != nil {
		ic.upErr = err
		return nil, fmt.Errorf("upstream TLS: %w", err)
	}
	leaf, err := p.cfg.CA.Leaf(name)
	if err != nil {
		ic.upErr = err
		return nil, err
	}
	conf := &tls.Config{Certificates: []tls.Certificate{*leaf}, MinVersion: tls.VersionTLS12}
	if proto := ic.upstream.ConnectionState().NegotiatedProtocol; proto != "" {
		conf.NextProtos = []string{proto}
	}
	return conf, nil
}

// intercept terminates the client's TLS with a forged leaf and opens TLS
// to the server offering exactly the client's ALPN list.
func (c *clientConn) intercept(ctx context.Context, host string, port int, upstreamTCP net.Conn) {
	hsCtx, cancel := context.WithTimeout(ctx, c.p.cfg.HandshakeTimeout)
	defer cancel()
	ic := &interception{c: c, host: host, upstreamTCP: upstreamTCP, ctx: hsCtx}
	tail := &tailReader{r: c.clientReader()}
	client := tls.Server(interceptConn{readerConn{c.conn, tail}, ic}, c.p.clientTLS())
	if err := client.HandshakeContext(hsCtx); err != nil {
		if ic.upstream != nil {
			ic.upstream.Close()
		}
		c.handshakeFailed(host, port, ic.sni, ic.upErr, err, tail)
		return
	}
	tail.direct = tail.r // stop keeping a tail; reads go straight through
	tail.r = nil
	upstream := ic.upstream
	defer upstream.Close()
	info := c.newInfo(host, port, upstreamTCP, true)
	info.SNI = ic.sni
	info.ALPN = client.ConnectionState().NegotiatedProtocol
	tap := c.p.newTap(c.h, info, c.log, c.attribute)
	c.p.st.Count("proxy.flows", 1)
	reason := relay(client, upstream, tap, true)
	tap.Close(flow.CloseInfo{Reason: reason})
	tap.Wait()
}

// upstreamTLS is the client configuration for the upstream leg to
// serverName offering alpn; scope (transport and dialled address) keeps
// its session tickets apart from other servers'.
func (p *Proxy) upstreamTLS(serverName string, alpn []string, scope string) *tls.Config {
	return &tls.Config{
		ServerName:         serverName,
		NextProtos:         alpn,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: scopedSessionCache{shared: p.upSessions, scope: scope},
		// Verification is done in VerifyConnection against the system
		// roots and then UpstreamRoots; crypto/tls cannot combine pools.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return p.verifyUpstream(cs, serverName)
		},
	}
}

// verifyUpstream checks the upstream's chain for serverName. It runs on
// full handshakes and on resumptions (where the chain is the one the
// resumed session was verified with), and skips the work for a chain it
// verified recently.
func (p *Proxy) verifyUpstream(cs tls.ConnectionState, serverName string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("upstream sent no certificate")
	}
	now := time.Now()
	key := chainKey(serverName, cs.PeerCertificates)
	if p.verified.ok(key, now) {
		p.st.Count("proxy.upstream_verify_cached", 1)
		return nil
	}
	chain, err := p.verifyChain(cs.PeerCertificates, serverName, now)
	if err != nil {
		return err
	}
	p.verified.add(key, chain, now)
	return nil
}

// verifyChain verifies certs (leaf first) for serverName at now and
// returns the chain it built.
func (p *Proxy) verifyChain(certs []*x509.Certificate, serverName string, now time.Time) ([]*x509.Certificate, error) {
	opts := x509.VerifyOptions{DNSName: serverName, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	// The extra roots first: when they are configured (a corporate TLS
	// inspection proxy), most upstream chains end there.
	if p.cfg.UpstreamRoots != nil {
		extra := opts
		extra.Roots = p.cfg.UpstreamRoots
		if chains, err := certs[0].Verify(extra); err == nil {
			return chains[0], nil
		}
	}
	chains, err := certs[0].Verify(opts)
	if err != nil {
		return nil, err
	}
	return chains[0], nil
}

// handshakeFailed explains a failed interception in terms a person can act
// on.
func (c *clientConn) handshakeFailed(host string, port int, sni string, upErr, err error, tail *tailReader) {
	pr, _ := c.process()
	log := c.log.With("host", host, "port", port, "sni", sni)
	if pr.PID > 0 {
		log = log.With("pid", pr.PID, "process", pr.Name)
	}
	switch {
	case upErr != nil:
		c.p.st.Count("proxy.upstream_tls_failed", 1)
		var unknownCA x509.UnknownAuthorityError
		if errors.As(upErr, &unknownCA) {
			log.Warn("proxy: upstream certificate is not trusted (a corporate TLS proxy? add its CA to the upstream roots)", "err", upErr)
		} else {
			log.Warn("proxy: TLS handshake with the upstream server failed", "err", upErr)
		}
	case clientRejectedCA(err) || plaintextCertAlert(tail.tail()):
		c.p.st.Count("proxy.client_rejected_ca", 1)
		log.Warn("proxy: the client does not trust the sensor CA; trust "+c.p.cfg.CA.CertPath()+
			" (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, the system keychain) or stop intercepting this host if the app pins certificates",
			"alert", err.Error())
	default:
		c.p.st.Count("proxy.client_tls_failed", 1)
		log.Warn("proxy: TLS handshake with the client failed", "err", err)
	}
}

// tailReader remembers the last bytes read during the client handshake:
// OpenSSL clients send their alert in plaintext when they reject our
// certificate under TLS 1.3, which crypto/tls reports only as "bad record
// MAC".
type tailReader struct {
	r      io.Reader
	direct io.Reader
	buf    [64]byte
	n      int
}

func (t *tailReader) Read(b []byte) (int, error) {
	if t.r == nil {
		return t.direct.Read(b)
	}
	n, err := t.r.Read(b)
	if n > 0 {
		keep := b[:n]
		if len(keep) > len(t.buf) {
			keep = keep[len(keep)-len(t.buf):]
		}
		shift := min(t.n, len(t.buf)-len(keep))
		copy(t.buf[:shift], t.buf[t.n-shift:t.n])
		copy(t.buf[shift:], keep)
		t.n = shift + len(keep)
	}
	return n, err
}

func (t *tailReader) tail() []byte { return t.buf[:t.n] }

// plaintextCertAlert finds a plaintext fatal alert record saying the
// certificate was rejected: bad_certificate (42), certificate_unknown (46)
// or unknown_ca (48).
func plaintextCertAlert(b []byte) bool {
	for i := len(b) - 7; i >= 0; i-- {
		if b[i] == 0x15 && b[i+1] == 0x03 && b[i+3] == 0x00 && b[i+4] == 0x02 && b[i+5] == 0x02 {
			switch b[i+6] {
			case 42, 46, 48:
				return true
			}
			return false
		}
	}
	return false
}

// clientRejectedCA recognises the alerts clients send when they do not
// trust our certificate: unknown_ca (OpenSSL, BoringSSL), bad_certificate
// (Go), certificate_unknown (Java, NSS).
func clientRejectedCA(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" {
		return false
	}
	msg := op.Err.Error()
	return strings.Contains(msg, "unknown certificate authority") || strings.Contains(msg, "bad certificate") ||
		strings.Contains(msg, "certificate unknown") || strings.Contains(msg, "unknown certificate")
}
