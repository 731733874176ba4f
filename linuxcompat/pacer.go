package linuxcompat

import "time"

// readPacer decides how long the ring buffer reader sleeps between drains:
// the configured interval while records arrive, backing off by doubling up
// to the idle interval once the ring has stayed empty for quietFor.
type readPacer struct {
	base, idle time.Duration
	quiet      time.Duration // time slept on an empty ring since the last record
	next       time.Duration
}

// quietFor is how long the ring must stay empty before the reader backs off.
const quietFor = time.Second

func newReadPacer(base, idle time.Duration) *readPacer {
	return &readPacer{base: base, idle: max(idle, base), next: base}
}

// empty returns how long to sleep after finding the ring empty.
func (p *readPacer) empty() time.Duration {
	d := p.next
	p.quiet += d
	if p.quiet >= quietFor {
		p.next = min(2*p.next, p.idle)
	}
	return d
}

// busy is called when the ring held records: back to the base interval.
func (p *readPacer) busy() {
	p.quiet = 0
	p.next = p.base
}
