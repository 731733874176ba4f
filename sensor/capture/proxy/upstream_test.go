package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/ca"
)

// handshakeLog is an upstream handler that records, per request, the
// server name, whether the upstream TLS session was resumed and what ALPN
// it negotiated.
type handshakeLog struct {
	mu   sync.Mutex
	seen []tls.ConnectionState
}

func (l *handshakeLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.seen = append(l.seen, *r.TLS)
	l.mu.Unlock()
	io.WriteString(w, "ok")
}

func (l *handshakeLog) all() []tls.ConnectionState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tls.ConnectionState(nil), l.seen...)
}

func mustGet(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestUpstreamSessionsResume: a second new client connection to the same
// host resumes the upstream TLS session, and ALPN is still mirrored from
// each client's own offer.
func TestUpstreamSessionsResume(t *testing.T) {
	w := newWorld(t)
	log := &handshakeLog{}
	w.serveTLS(t, apiHost, log)
	w.start(t, Config{Logger: quiet(), NoProcessLookup: true})
	h1 := w.client("http/1.1", false)
	h2 := w.client("h2", false)
	u := "https://" + apiHost + "/v1/models"
	for i, c := range []*http.Client{h1, h2, h1, h2} {
		resp := mustGet(t, c, u)
		want := "HTTP/1.1"
		if c == h2 {
			want = "HTTP/2.0"
		}
		if resp.Proto != want {
			t.Errorf("request %d: client spoke %s, want %s", i+1, resp.Proto, want)
		}
	}
	seen := log.all()
	if len(seen) != 4 {
		t.Fatalf("upstream saw %d requests, want 4", len(seen))
	}
	for i, cs := range seen {
		if resumed := i > 0; cs.DidResume != resumed {
			t.Errorf("upstream handshake %d: DidResume %v, want %v", i+1, cs.DidResume, resumed)
		}
		wantALPN := "" // the HTTP/1.1 client offers no ALPN at all
		if i%2 == 1 {
			wantALPN = "h2"
		}
		if cs.NegotiatedProtocol != wantALPN {
			t.Errorf("upstream handshake %d: ALPN %q, want %q", i+1, cs.NegotiatedProtocol, wantALPN)
		}
	}
	if n := w.st.Get("proxy.upstream_verify_cached"); n < 3 {
		t.Errorf("proxy.upstream_verify_cached = %d, want >= 3 (the chain is verified once)", n)
	}
	if n := w.proxy.verified.len(); n != 1 {
		t.Errorf("%d verified chains remembered, want 1", n)
	}
}

// TestUpstreamSessionsAreScopedPerHost: two host names served by the same
// server (same ticket keys) never share a ticket: the first connection to
// each name is a full handshake.
func TestUpstreamSessionsAreScopedPerHost(t *testing.T) {
	w := newWorld(t)
	log := &handshakeLog{}
	const other = "other.test.invalid"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: log, TLSConfig: &tls.Config{GetCertificate: w.upstreamCA.GetCertificate}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	w.hosts[apiHost] = ln.Addr().String()
	w.hosts[other] = ln.Addr().String()
	w.start(t, Config{Logger: quiet(), NoProcessLookup: true})
	c := w.client("http/1.1", false)
	for _, host := range []string{apiHost, apiHost, other, other, apiHost} {
		mustGet(t, c, "https://"+host+"/")
	}
	seen := log.all()
	want := []struct {
		name    string
		resumed bool
	}{{apiHost, false}, {apiHost, true}, {other, false}, {other, true}, {apiHost, true}}
	if len(seen) != len(want) {
		t.Fatalf("upstream saw %d requests, want %d", len(seen), len(want))
	}
	for i, cs := range seen {
		if cs.ServerName != want[i].name || cs.DidResume != want[i].resumed {
			t.Errorf("upstream handshake %d: SNI %q resumed %v, want %q resumed %v",
				i+1, cs.ServerName, cs.DidResume, want[i].name, want[i].resumed)
		}
	}
}

// TestUpstreamResumptionStillVerifies: a resumed upstream session is
// checked again against the proxy's trust when the verification result is
// no longer remembered, and fails when the chain is not trusted.
func TestUpstreamResumptionStillVerifies(t *testing.T) {
	upCA, err := ca.Create(t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: upCA.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					io.WriteString(c, "hi")
				}
			}()
		}
	}()
	sensorCA, err := ca.Create(t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Addr: "127.0.0.1:0", CA: sensorCA, UpstreamRoots: upCA.CertPool(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.ln.Close()
	handshake := func() (tls.ConnectionState, error) {
		raw, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c := tls.Client(raw, p.upstreamTLS(apiHost, nil, "tcp:"+ln.Addr().String()))
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := c.Handshake(); err != nil {
			return tls.ConnectionState{}, err
		}
		// Reading takes the server's session ticket.
		if _, err := io.ReadAll(c); err != nil {
			return tls.ConnectionState{}, err
		}
		return c.ConnectionState(), nil
	}
	if cs, err := handshake(); err != nil || cs.DidResume {
		t.Fatalf("first handshake: resumed %v, err %v", cs.DidResume, err)
	}
	if cs, err := handshake(); err != nil || !cs.DidResume {
		t.Fatalf("second handshake: resumed %v, err %v; want a resumption", cs.DidResume, err)
	}
	// Forget the verification and stop trusting the upstream CA: the
	// resumption must now be refused.
	p.verified = newVerifiedChains(verifiedChainCacheSize)
	p.cfg.UpstreamRoots = x509.NewCertPool()
	if _, err := handshake(); err == nil {
		t.Fatal("a resumed session with an untrusted chain was accepted")
	}
	// crypto/tls forgets the refused session: trusted again, the next handshake
	// is a full one.
	p.cfg.UpstreamRoots = upCA.CertPool()
	if cs, err := handshake(); err != nil || cs.DidResume {
		t.Fatalf("after a refused resumption: resumed %v, err %v; want a full handshake", cs.DidResume, err)
	}
}

func TestVerifiedChainsExpireAndStayBounded(t *testing.T) {
	upCA, err := ca.Create(t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := upCA.Leaf(apiHost)
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{leaf.Leaf, upCA.Certificate()}
	now := time.Now()
	v := newVerifiedChains(2)
	k := chainKey(apiHost, chain)
	if v.ok(k, now) {
		t.Fatal("empty cache reports a verified chain")
	}
	v.add(k, chain, now)
	if !v.ok(k, now.Add(time.Minute)) {
		t.Error("a chain verified a minute ago is not remembered")
	}
	if v.ok(chainKey("other.test", chain), now) {
		t.Error("a chain verified for one name counts for another")
	}
	if v.ok(k, now.Add(verifiedChainTTL+time.Second)) {
		t.Error("a verification is reused after its TTL")
	}
	late := leaf.Leaf.NotAfter.Add(-10 * time.Minute)
	v.add(k, chain, late)
	if !v.ok(k, late.Add(5*time.Minute)) {
		t.Error("a chain verified five minutes ago is not remembered")
	}
	if v.ok(k, leaf.Leaf.NotAfter.Add(time.Second)) {
		t.Error("a verification is reused after the leaf expired")
	}
	for i := range 5 {
		v.add(chainKey(string(rune('a'+i)), chain), chain, now)
	}
	if v.len() != 2 {
		t.Errorf("cache holds %d chains, want at most 2", v.len())
	}
}

// TestClientSessionsResumeWithTheProxy: a client that keeps session
// tickets resumes its TLS session with the proxy on a new connection,
// and the connection is still intercepted and captured with the ALPN the
// server chose.
func TestClientSessionsResumeWithTheProxy(t *testing.T) {
	w := newWorld(t)
	log := &handshakeLog{}
	w.serveTLS(t, apiHost, log)
	w.start(t, Config{Logger: quiet(), NoProcessLookup: true})
	c := w.client("h2", false)
	c.Transport.(*http.Transport).TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	for i := range 3 {
		resp := mustGet(t, c, "https://"+apiHost+"/v1/models")
		if resp.Proto != "HTTP/2.0" {
			t.Errorf("request %d: client spoke %s, want HTTP/2.0", i+1, resp.Proto)
		}
		if resumed := i > 0; resp.TLS.DidResume != resumed {
			t.Errorf("request %d: client session resumed %v, want %v", i+1, resp.TLS.DidResume, resumed)
		}
	}
	if n := len(log.all()); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3", n)
	}
	ids := w.rec.WaitClosed(t, 3)
	for _, id := range ids {
		info := w.rec.Infos[id]
		if info.SNI != apiHost || info.ALPN != "h2" || !info.TLS {
			t.Errorf("flow %s: SNI %q ALPN %q TLS %v, want %s h2 TLS", id, info.SNI, info.ALPN, info.TLS, apiHost)
		}
	}
}
