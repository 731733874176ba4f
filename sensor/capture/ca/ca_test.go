package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestCreateSetsOwnerOnlyPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "oisp-sensor")
	c, err := Create(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("dir mode %04o, want 0700", got)
	}
	if got := mode(t, filepath.Join(dir, KeyFile)); got != 0o600 {
		t.Errorf("key mode %04o, want 0600", got)
	}
	if got := mode(t, c.CertPath()); got != 0o644 {
		t.Errorf("cert mode %04o, want 0644", got)
	}
	cert := c.Certificate()
	if !cert.IsCA || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("root constraints wrong: IsCA=%v MaxPathLen=%d", cert.IsCA, cert.MaxPathLen)
	}
	if cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("root key %v, want ECDSA", cert.PublicKeyAlgorithm)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("root lacks certSign key usage")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("CA dir holds %d entries, want exactly cert and key", len(entries))
	}
}

func TestCreateTightensExistingDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("dir mode %04o, want 0700", got)
	}
}

func TestLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	created, err := Create(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(loaded.CertPEM()) != string(created.CertPEM()) {
		t.Error("loaded CA differs from created CA")
	}
	if _, err := Create(dir, Options{}); !errors.Is(err, ErrExist) {
		t.Errorf("second Create: got %v, want ErrExist", err)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none"), Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
}

func TestLoadRefusesReadableKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, Options{}); err == nil {
		t.Fatal("Load accepted a world-readable key")
	}
}

func TestLoadRefusesMismatchedKey(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := Create(a, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(b, Options{}); err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(filepath.Join(b, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, CertFile), other, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(a, Options{}); err == nil {
		t.Fatal("Load accepted a key that does not match the certificate")
	}
}

func TestLoadRefusesExpiredRoot(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(dir, Options{RootValidity: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return time.Now().Add(72 * time.Hour) }
	if _, err := Load(dir, Options{Now: later}); err == nil {
		t.Fatal("Load accepted an expired root")
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 8
	pems := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := LoadOrCreate(dir, Options{})
			errs[i] = err
			if err == nil {
				pems[i] = string(c.CertPEM())
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if pems[i] != pems[0] {
			t.Fatalf("caller %d got a different CA", i)
		}
	}
}

func verify(t *testing.T, c *CA, leaf *tls.Certificate, name string) {
	t.Helper()
	_, err := leaf.Leaf.Verify(x509.VerifyOptions{
		DNSName:   name,
		Roots:     c.CertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatalf("leaf for %s does not verify: %v", name, err)
	}
}

func TestLeafNamesAndCache(t *testing.T) {
	c, err := Create(t.TempDir(), Options{CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	dns, err := c.Leaf("API.OpenAI.com.")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, c, dns, "api.openai.com")
	if len(dns.Leaf.IPAddresses) != 0 || len(dns.Leaf.DNSNames) != 1 {
		t.Errorf("DNS leaf SANs: %v %v", dns.Leaf.DNSNames, dns.Leaf.IPAddresses)
	}
	v4, err := c.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, c, v4, "127.0.0.1")
	if len(v4.Leaf.DNSNames) != 0 {
		t.Errorf("IP leaf has DNS SANs %v", v4.Leaf.DNSNames)
	}
	v6, err := c.Leaf("[::1]")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, c, v6, "::1")
	if c.CachedLeaves() != 2 {
		t.Errorf("cache holds %d leaves, want bound 2", c.CachedLeaves())
	}
	again, _ := c.Leaf("127.0.0.1")
	if again != v4 {
		t.Error("recently used leaf was not served from cache")
	}
	evicted, _ := c.Leaf("api.openai.com")
	if evicted == dns {
		t.Error("least recently used leaf was not evicted")
	}
	if _, err := c.Leaf(""); err == nil {
		t.Error("empty host accepted")
	}
}

func TestLeafRenewedBeforeExpiry(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	c, err := Create(t.TempDir(), Options{LeafValidity: 2 * time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := c.Leaf("a.test")
	now = now.Add(90 * time.Minute) // within an hour of NotAfter
	second, _ := c.Leaf("a.test")
	if first == second {
		t.Fatal("leaf about to expire was served from cache")
	}
	if !second.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatal("renewed leaf does not live longer")
	}
}

func TestLeafConcurrentSameHost(t *testing.T) {
	c, err := Create(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	got := make([]*tls.Certificate, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = c.Leaf("same.test")
		}()
	}
	wg.Wait()
	for i := range n {
		if got[i] == nil || got[i] != got[0] {
			t.Fatal("concurrent callers got different leaves for one host")
		}
	}
}

// TestTLSHandshake runs real TLS handshakes against a server that forges its
// certificate per SNI, with a client that trusts only the CA.
func TestTLSHandshake(t *testing.T) {
	c, err := Create(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: c.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 5)
				if n, err := conn.Read(buf); err == nil {
					conn.Write(buf[:n])
				}
			}()
		}
	}()
	addr := ln.Addr().String()
	for _, name := range []string{"api.anthropic.com", ""} {
		// With no ServerName, tls.Dial verifies the IP of addr and sends no
		// SNI, so the server must forge a leaf for its local IP.
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: c.CertPool(), ServerName: name})
		if err != nil {
			t.Fatalf("handshake for %q: %v", name, err)
		}
		if _, err := conn.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := conn.Read(buf); err != nil || string(buf) != "hello" {
			t.Fatalf("echo for %q: %q %v", name, buf, err)
		}
		st := conn.ConnectionState()
		leaf := st.PeerCertificates[0]
		if name != "" && leaf.DNSNames[0] != name {
			t.Errorf("leaf DNS SAN %v, want %s", leaf.DNSNames, name)
		}
		if name == "" && !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
			t.Errorf("leaf IP SAN %v, want 127.0.0.1", leaf.IPAddresses)
		}
		if len(st.VerifiedChains) == 0 || !st.VerifiedChains[0][len(st.VerifiedChains[0])-1].Equal(c.Certificate()) {
			t.Error("verified chain does not end at the CA")
		}
		conn.Close()
	}
	// A client that does not trust the CA must refuse the forged leaf.
	_, err = tls.Dial("tcp", addr, &tls.Config{ServerName: "api.openai.com", RootCAs: x509.NewCertPool()})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("untrusting client: got %v, want UnknownAuthorityError", err)
	}
}

func BenchmarkLeafCached(b *testing.B) {
	c, err := Create(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	c.Leaf("api.openai.com")
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Leaf("api.openai.com"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeafForge(b *testing.B) {
	c, err := Create(b.TempDir(), Options{CacheSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	hosts := []string{"a.test", "b.test"}
	i := 0
	for b.Loop() {
		i++
		if _, err := c.Leaf(hosts[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}
