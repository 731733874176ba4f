// Package memo owns the small memo of recent strings that stream readers
// keep for the few names a stream repeats in every event (SSE event names,
// event-stream header names), so that each becomes a string once per stream
// instead of once per event.
package memo

// Strings holds the last eight distinct strings made. Eight covers the
// names of the streams seen (Anthropic has seven event names); a stream with
// more only costs more allocations. The zero value is ready to use.
type Strings struct {
	held [8]string
	next int
}

// Get returns b as a string: a held one when equal, else a new one, which
// is then held in place of the oldest.
func (m *Strings) Get(b []byte) string {
	for _, s := range m.held {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	m.held[m.next] = s
	m.next = (m.next + 1) % len(m.held)
	return s
}
