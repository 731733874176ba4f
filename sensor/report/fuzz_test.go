package report

import (
	"bufio"
	"errors"
	"os"
	"testing"
)

// FuzzAdd feeds one line to a report that has seen a request (so a
// response can pair with it): Add must never panic, must say a line is bad
// only with a *LineError, and the result must stay consistent. The seeds
// are every fixture event; they run in every go test.
func FuzzAdd(f *testing.F) {
	for _, name := range fixtureFiles(f) {
		file, err := os.Open(name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			f.Add(append([]byte(nil), sc.Bytes()...))
		}
		file.Close()
	}
	f.Add([]byte(`{"oisp_version":"0.1","event_id":"x","event_type":"ai.response","ts":"2026-01-02T10:00:00Z","data":{"usage":{"prompt_tokens":-5,"total_cost_usd":-1},"latency_ms":-3}}`))
	f.Add([]byte(`{"oisp_version":"0.1","event_id":"x","event_type":"ai.response","ts":"2026-01-02T10:00:00Z","data":null}`))
	// answers the request, stamped before it
	f.Add([]byte(`{"oisp_version":"0.1","event_id":"x","event_type":"ai.response","ts":"2020-01-02T10:00:00Z","data":{"conversation_id":"c"},"related_events":[{"event_id":"ev-1","relationship":"parent"}]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rep := New(Options{MaxGroups: 3, MaxPending: 2, MaxConversations: 1})
		req := `{"oisp_version":"0.1","event_id":"ev-1","event_type":"ai.request","ts":"2025-01-01T00:00:00Z","data":{"model":{"id":"m"},"conversation_id":"conv_1"}}`
		if err := rep.Add([]byte(req)); err != nil {
			t.Fatal(err)
		}
		err := rep.Add(line)
		var le *LineError
		if err != nil && !errors.As(err, &le) {
			t.Fatalf("Add returned %T %v", err, err)
		}
		res := rep.Result()
		if res.Lines != res.Events+res.BadLines+res.Filtered {
			t.Fatalf("lines %d ≠ events %d + bad %d + filtered %d", res.Lines, res.Events, res.BadLines, res.Filtered)
		}
		if (err != nil) != (res.BadLines == 1) {
			t.Fatalf("Add said %v, bad lines %d", err, res.BadLines)
		}
		tot := &res.Total
		if tot.Priced+tot.Unpriced != tot.Calls || tot.Calls < 1 || tot.Errors > tot.Calls || tot.Streamed > tot.Calls {
			t.Fatalf("inconsistent total %+v", tot)
		}
		var calls int64
		for _, g := range res.Models {
			calls += g.Calls
		}
		if calls != tot.Calls {
			t.Fatalf("models sum %d calls, total %d", calls, tot.Calls)
		}
		calls = res.CallsWithoutConversation
		for _, c := range res.Conversations {
			calls += c.Calls
			if c.Priced+c.Unpriced != c.Calls || c.Last.Before(c.First) || c.Models == nil {
				t.Fatalf("inconsistent conversation %+v", c)
			}
		}
		if calls != tot.Calls {
			t.Fatalf("conversations hold %d calls with %d in none, total %d", calls, res.CallsWithoutConversation, tot.Calls)
		}
		// Result leaves the report usable.
		rep.Add(line)
		rep.Result()
	})
}
