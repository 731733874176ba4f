// Package ca owns the sensor's local certificate authority: an ECDSA P-256
// root created once per machine user, and the leaf certificates forged from
// it on demand for the hosts the capture proxy intercepts.
//
// Only the root is stored on disk (certificate world-readable, key 0600 in a
// 0700 directory). Leaves share one in-memory key, live in a bounded LRU and
// are never written anywhere, so forging a certificate costs one ECDSA
// signature and no key generation.
package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// File names inside the CA directory.
const (
	CertFile = "oisp-ca.pem"
	KeyFile  = "oisp-ca-key.pem"
)

// Defaults for Options.
const (
	DefaultCacheSize    = 1024
	DefaultRootValidity = 10 * 365 * 24 * time.Hour
	// DefaultLeafValidity stays far below the 398/825-day limits Apple and
	// browsers enforce on server certificates.
	DefaultLeafValidity = 30 * 24 * time.Hour
)

// ErrExist is returned by Create when a CA already exists in the directory.
var ErrExist = fs.ErrExist

// Options tune a CA. The zero value uses the defaults.
type Options struct {
	CacheSize    int              // leaves kept in memory (LRU)
	LeafValidity time.Duration    // lifetime of a forged leaf
	Now          func() time.Time // clock, for tests
	CommonName   string           // root subject CN when creating
	RootValidity time.Duration    // lifetime of a created root
}

func (o *Options) defaults() {
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.LeafValidity <= 0 {
		o.LeafValidity = DefaultLeafValidity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RootValidity <= 0 {
		o.RootValidity = DefaultRootValidity
	}
	if o.CommonName == "" {
		o.CommonName = defaultCommonName()
	}
}

// CA is a loaded certificate authority. It is safe for concurrent use.
type CA struct {
	dir      string
	opts     Options
	cert     *x509.Certificate
	certPEM  []byte
	key      *ecdsa.PrivateKey
	leafKey  *ecdsa.PrivateKey
	leafSKID []byte

	mu       sync.Mutex
	cache    *lru.Cache[string, *tls.Certificate]
	inflight map[string]*pendingLeaf
}

type pendingLeaf struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// DefaultDir returns the per-user directory the CA lives in by default:
// os.UserConfigDir()/oisp-sensor.
func DefaultDir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the user config directory for the CA: %w", err)
	}
	return filepath.Join(base, "oisp-sensor"), nil
}

// LoadOrCreate loads the CA in dir, creating it first if the directory holds
// none. Two processes racing to create it end up sharing one CA.
func LoadOrCreate(dir string, opts Options) (*CA, error) {
	c, err := Load(dir, opts)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return c, err
	}
	c, err = Create(dir, opts)
	if !errors.Is(err, fs.ErrExist) {
		return c, err
	}
	// Another process is creating it right now: its key file exists but may
	// still be empty for a moment.
	for range 40 {
		if c, err = Load(dir, opts); err == nil {
			return c, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil, err
}

// Load reads an existing CA from dir. It fails with an error wrapping
// fs.ErrNotExist when there is none, and refuses a key file that group or
// others can read.
func Load(dir string, opts Options) (*CA, error) {
	opts.defaults()
	keyPath := filepath.Join(dir, KeyFile)
	certPath := filepath.Join(dir, CertFile)
	st, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("loading CA key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("CA key %s has mode %04o: it must be readable by its owner only (chmod 600 %s)",
			keyPath, st.Mode().Perm(), keyPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("loading CA key: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("loading CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA certificate %s: %w", certPath, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA key %s: %w", keyPath, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("CA key %s does not match certificate %s", keyPath, certPath)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certificate %s is not a CA certificate", certPath)
	}
	if now := opts.Now(); now.After(cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate %s expired on %s: remove %s to create a new one (and trust it again)",
			certPath, cert.NotAfter.Format(time.DateOnly), dir)
	}
	return newCA(dir, opts, cert, certPEM, key)
}

// Create makes a new CA in dir (created 0700 if missing). It fails with an
// error wrapping fs.ErrExist if a CA key is already there.
func Create(dir string, opts Options) (*CA, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating CA directory: %w", err)
	}
	// MkdirAll leaves an existing directory alone; tighten it if we own it,
	// since it is about to hold a private key.
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("restricting CA directory %s to its owner: %w", dir, err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	now := opts.Now()
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	skid := subjectKeyID(&key.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   opts.CommonName,
			Organization: []string{"oisp-sensor local CA"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(opts.RootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding CA key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})

	// The key is created exclusively: whoever creates it first owns the CA,
	// a concurrent creator gets ErrExist and loads the winner's.
	keyPath := filepath.Join(dir, KeyFile)
	f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating CA key file: %w", err)
	}
	// The cert goes in first under a temporary name so that a reader never
	// sees a key without its certificate for long.
	if err := writeFileAtomic(filepath.Join(dir, CertFile), certPEM, 0o644); err != nil {
		f.Close()
		os.Remove(keyPath)
		return nil, err
	}
	if _, err := f.Write(keyPEM); err != nil {
		f.Close()
		os.Remove(keyPath)
		return nil, fmt.Errorf("writing CA key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(keyPath)
		return nil, fmt.Errorf("writing CA key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(keyPath)
		return nil, fmt.Errorf("writing CA key: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA certificate just created: %w", err)
	}
	return newCA(dir, opts, cert, certPEM, key)
}

func newCA(dir string, opts Options, cert *x509.Certificate, certPEM []byte, key *ecdsa.PrivateKey) (*CA, error) {
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating leaf key: %w", err)
	}
	cache, err := lru.New[string, *tls.Certificate](opts.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("leaf cache: %w", err)
	}
	return &CA{
		dir:      dir,
		opts:     opts,
		cert:     cert,
		certPEM:  certPEM,
		key:      key,
		leafKey:  leafKey,
		leafSKID: subjectKeyID(&leafKey.PublicKey),
		cache:    cache,
		inflight: map[string]*pendingLeaf{},
	}, nil
}

// Dir is the directory the CA was loaded from.
func (c *CA) Dir() string { return c.dir }

// CertPath is the path of the root certificate file, the one users trust.
func (c *CA) CertPath() string { return filepath.Join(c.dir, CertFile) }

// CertPEM returns the root certificate in PEM form.
func (c *CA) CertPEM() []byte { return append([]byte(nil), c.certPEM...) }

// Certificate returns the parsed root certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// CertPool returns a pool holding only the root, for clients in tests.
func (c *CA) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Leaf returns a certificate for host (a DNS name or an IP literal) signed
// by the CA, from the cache when it has one that is not about to expire.
func (c *CA) Leaf(host string) (*tls.Certificate, error) {
	host = normaliseHost(host)
	if host == "" {
		return nil, errors.New("forging leaf certificate: empty host name")
	}
	now := c.opts.Now()
	c.mu.Lock()
	if cert, ok := c.cache.Get(host); ok && now.Add(time.Hour).Before(cert.Leaf.NotAfter) {
		c.mu.Unlock()
		return cert, nil
	}
	if p, ok := c.inflight[host]; ok {
		c.mu.Unlock()
		<-p.done
		return p.cert, p.err
	}
	p := &pendingLeaf{done: make(chan struct{})}
	c.inflight[host] = p
	c.mu.Unlock()

	p.cert, p.err = c.forge(host, now)

	c.mu.Lock()
	delete(c.inflight, host)
	if p.err == nil {
		c.cache.Add(host, p.cert)
	}
	c.mu.Unlock()
	close(p.done)
	return p.cert, p.err
}

// GetCertificate is a tls.Config.GetCertificate callback: it forges a leaf
// for the SNI name, or for the local IP the client dialled when it sent no
// SNI (clients connecting to an IP literal).
func (c *CA) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host := hello.ServerName
	if host == "" && hello.Conn != nil {
		switch a := hello.Conn.LocalAddr().(type) {
		case *net.TCPAddr:
			host = a.IP.String()
		case *net.UDPAddr: // QUIC
			host = a.IP.String()
		}
	}
	return c.Leaf(host)
}

// CachedLeaves reports how many leaves are in the cache.
func (c *CA) CachedLeaves() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cache.Len()
}

func (c *CA) forge(host string, now time.Time) (*tls.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(c.opts.LeafValidity)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          c.leafSKID,
		AuthorityKeyId:        c.cert.SubjectKeyId,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &c.leafKey.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("signing leaf certificate for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing leaf certificate for %s: %w", host, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, c.cert.Raw},
		PrivateKey:  c.leafKey,
		Leaf:        leaf,
	}, nil
}

func normaliseHost(host string) string {
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	host = strings.TrimPrefix(strings.TrimSuffix(host, "]"), "[")
	if ip := net.ParseIP(host); ip != nil {
		return ip.String()
	}
	return host
}

func defaultCommonName() string {
	name := "oisp-sensor local CA"
	host, _ := os.Hostname()
	user := os.Getenv("USER")
	switch {
	case host != "" && user != "":
		name += " (" + user + "@" + host + ")"
	case host != "":
		name += " (" + host + ")"
	}
	return name
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func subjectKeyID(pub *ecdsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return sum[:20]
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func parseKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("CA key is %T, want ECDSA", k)
	}
	return ek, nil
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
