package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Upstream handshakes are on the critical path of every new intercepted
// connection (ALPN mirroring needs the server's choice before the client
// can be answered), so the proxy makes repeat handshakes cheap in two
// ways: it keeps the servers' session tickets, so a repeat handshake
// resumes (no certificate sent, signed or checked), and it remembers the
// certificate chains it has verified, so the same chain presented again
// is not verified again until it nears expiry.

const (
	upstreamSessionCacheSize = 1024
	verifiedChainCacheSize   = 1024
	// verifiedChainTTL bounds how long a verification result is reused
	// even when the chain is valid for longer.
	verifiedChainTTL = time.Hour
)

// scopedSessionCache files the sessions crypto/tls stores under its own
// key (the server name) in a cache shared by all connections, prefixed
// with the scope of the connection (transport and dialled address), so a
// ticket is only ever offered to the server name and address it came
// from.
type scopedSessionCache struct {
	shared tls.ClientSessionCache
	scope  string
}

func (s scopedSessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	return s.shared.Get(s.scope + "|" + key)
}

func (s scopedSessionCache) Put(key string, cs *tls.ClientSessionState) {
	s.shared.Put(s.scope+"|"+key, cs)
}

// verifiedChains remembers which (server name, presented chain) pairs
// verified, and until when the result may be reused: the earliest
// NotAfter in the verified chain, at most verifiedChainTTL after the
// verification. It is bounded, least recently used first out.
type verifiedChains struct {
	cache *lru.Cache[[sha256.Size]byte, verifiedChain]
}

type verifiedChain struct {
	notBefore time.Time
	until     time.Time
}

func newVerifiedChains(max int) *verifiedChains {
	c, err := lru.New[[sha256.Size]byte, verifiedChain](max)
	if err != nil {
		panic(err) // only for a size below 1, which callers never pass
	}
	return &verifiedChains{cache: c}
}

func chainKey(serverName string, certs []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	put := func(b []byte) {
		n[0], n[1], n[2], n[3] = byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte(serverName))
	for _, c := range certs {
		put(c.Raw)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// ok reports whether this chain was verified for serverName and the
// result still holds at now.
func (v *verifiedChains) ok(key [sha256.Size]byte, now time.Time) bool {
	e, found := v.cache.Get(key)
	if !found {
		return false
	}
	if now.Before(e.notBefore) || !now.Before(e.until) {
		v.cache.Remove(key)
		return false
	}
	return true
}

// add records a successful verification made at now that produced chain.
func (v *verifiedChains) add(key [sha256.Size]byte, chain []*x509.Certificate, now time.Time) {
	e := verifiedChain{until: now.Add(verifiedChainTTL)}
	for _, c := range chain {
		if c.NotAfter.Before(e.until) {
			e.until = c.NotAfter
		}
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
	}
	v.cache.Add(key, e)
}

func (v *verifiedChains) len() int { return v.cache.Len() }
