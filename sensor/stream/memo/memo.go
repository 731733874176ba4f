// Package memo owns the small memo of recent strings that decoders keep for
// the few strings a stream repeats in every event (SSE event names,
// event-stream header names, the id and model of a provider's stream
// events), so that each becomes a string once per stream instead of once
// per event.
package memo

// Strings holds the last eight distinct strings made. Eight covers the
// names of the streams seen (Anthropic has seven event names); a stream with
// more only costs more allocations. The zero value is ready to use.
//
// Get makes a missing string with string(b); a caller that makes its
// strings otherwise (sharing constants for common words, say) uses Lookup
// and Hold.
type Strings struct {
	held [8]string
	next int
}

// Get returns b as a string: a held one when equal, else a new one, which
// is then held in place of the oldest.
func (m *Strings) Get(b []byte) string {
	if s, ok := m.Lookup(b); ok {
		return s
	}
	s := string(b)
	m.Hold(s)
	return s
}

// Lookup returns the held string equal to b, if there is one.
func (m *Strings) Lookup(b []byte) (string, bool) {
	for _, s := range m.held {
		if s == string(b) {
			return s, true
		}
	}
	return "", false
}

// Hold holds s in place of the oldest string held.
func (m *Strings) Hold(s string) {
	m.held[m.next] = s
	m.next = (m.next + 1) % len(m.held)
}
