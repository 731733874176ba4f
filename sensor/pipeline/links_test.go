package pipeline

import "testing"

func TestLinkerScopesCallIDsToProcesses(t *testing.T) {
	a, b, unknown := caller{pid: 10, exe: "/bin/a"}, caller{pid: 11, exe: "/bin/b"}, caller{}
	cases := []struct {
		name  string
		steps func(l *linker) []bool // each answer's first flag
		want  []bool
	}{
		{"a loop's resent result is a repeat", func(l *linker) []bool {
			l.put(a, "c1", link{eventID: "e1"})
			_, f1 := l.answer(a, "c1")
			_, f2 := l.answer(a, "c1")
			return []bool{f1, f2}
		}, []bool{true, false}},
		{"another process reusing the id answers its own call", func(l *linker) []bool {
			l.put(a, "c1", link{eventID: "e1"})
			_, f1 := l.answer(a, "c1")
			_, f2 := l.answer(b, "c1")
			return []bool{f1, f2}
		}, []bool{true, true}},
		{"an unattributed flow's resend after an attributed one is a repeat", func(l *linker) []bool {
			_, f1 := l.answer(a, "c1")
			_, f2 := l.answer(unknown, "c1")
			return []bool{f1, f2}
		}, []bool{true, false}},
		{"an attributed flow's resend after an unattributed one is a repeat", func(l *linker) []bool {
			l.put(a, "c1", link{eventID: "e1"})
			_, f1 := l.answer(unknown, "c1")
			_, f2 := l.answer(a, "c1")
			return []bool{f1, f2}
		}, []bool{true, false}},
		{"an unattributed result takes its owner from the next attributed one", func(l *linker) []bool {
			_, f1 := l.answer(unknown, "c1")
			_, f2 := l.answer(a, "c1")
			_, f3 := l.answer(b, "c1")
			return []bool{f1, f2, f3}
		}, []bool{true, false, true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.steps(newLinker(16))
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("answer %d: first=%v, want %v (all: %v)", i+1, got[i], c.want[i], got)
				}
			}
		})
	}
}

func TestLinkerReturnsTheCallOfTheAnsweringProcess(t *testing.T) {
	l := newLinker(16)
	l.put(caller{pid: 1, exe: "x"}, "c", link{eventID: "from-1", name: "f"})
	l.put(caller{pid: 2, exe: "y"}, "c", link{eventID: "from-2", name: "g"})
	if call, _ := l.answer(caller{pid: 2, exe: "y"}, "c"); call.eventID != "from-2" {
		t.Fatalf("pid 2's result linked to %q", call.eventID)
	}
	if call, _ := l.answer(caller{}, "c"); call.eventID != "from-1" {
		t.Fatalf("unattributed result linked to %q, want the unanswered call from-1", call.eventID)
	}
}

func TestLinkerUnattributedResultPrefersAnUnansweredCall(t *testing.T) {
	l := newLinker(16)
	l.put(caller{pid: 1, exe: "x"}, "c", link{eventID: "from-1"})
	l.put(caller{pid: 2, exe: "y"}, "c", link{eventID: "from-2"})
	l.answer(caller{pid: 1, exe: "x"}, "c")
	if call, first := l.answer(caller{}, "c"); call.eventID != "from-2" || !first {
		t.Fatalf("unattributed result linked to %q (first=%v), want the unanswered from-2", call.eventID, first)
	}
}
