package ca

import (
	"container/list"
	"crypto/tls"
)

// lru is a fixed-size least-recently-used cache of leaves. It is not safe
// for concurrent use; CA guards it with its mutex.
type lru struct {
	max   int
	order *list.List // front = most recently used
	items map[string]*list.Element
}

type lruEntry struct {
	host string
	cert *tls.Certificate
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: map[string]*list.Element{}}
}

func (l *lru) get(host string) (*tls.Certificate, bool) {
	e, ok := l.items[host]
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*lruEntry).cert, true
}

func (l *lru) put(host string, cert *tls.Certificate) {
	if e, ok := l.items[host]; ok {
		e.Value.(*lruEntry).cert = cert
		l.order.MoveToFront(e)
		return
	}
	l.items[host] = l.order.PushFront(&lruEntry{host: host, cert: cert})
	for l.order.Len() > l.max {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.items, last.Value.(*lruEntry).host)
	}
}

func (l *lru) len() int { return l.order.Len() }
