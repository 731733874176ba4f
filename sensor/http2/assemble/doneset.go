package assemble

// DoneSet remembers recently finished stream ids in a fixed-size ring, so a
// late frame for a finished stream is recognised without unbounded memory.
// HTTP/2 uses uint32 ids, HTTP/3 int64.
type DoneSet[ID comparable] struct {
	ids   map[ID]struct{}
	ring  []ID
	next  int
	limit int
}

// NewDoneSet returns a set remembering the last n ids.
func NewDoneSet[ID comparable](n int) DoneSet[ID] {
	return DoneSet[ID]{ids: make(map[ID]struct{}), limit: n}
}

// Has reports whether id finished recently.
func (s *DoneSet[ID]) Has(id ID) bool { _, ok := s.ids[id]; return ok }

// Add records id, forgetting the oldest when the ring is full.
func (s *DoneSet[ID]) Add(id ID) {
	if s.Has(id) {
		return
	}
	if len(s.ring) < s.limit {
		s.ring = append(s.ring, id)
	} else {
		delete(s.ids, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % len(s.ring)
	}
	s.ids[id] = struct{}{}
}
