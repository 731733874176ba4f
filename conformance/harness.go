package conformance

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/golden"
)

// Fixture is one recorded case: fixtures/<provider>/<name>/.
type Fixture struct {
	Provider string
	Name     string
	Dir      string
}

// ID is "<provider>/<name>".
func (f Fixture) ID() string { return f.Provider + "/" + f.Name }

// Cassette is the path of the fixture's recording.
func (f Fixture) Cassette() string { return filepath.Join(f.Dir, "cassette.yaml") }

// Expected is the path of the fixture's golden events.
func (f Fixture) Expected() string { return filepath.Join(f.Dir, "expected.jsonl") }

// Fixtures lists every fixture under root, sorted.
func Fixtures(root string) ([]Fixture, error) {
	var out []Fixture
	provs, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for _, p := range provs {
		if !p.IsDir() {
			continue
		}
		cases, err := os.ReadDir(filepath.Join(root, p.Name()))
		if err != nil {
			return nil, err
		}
		for _, c := range cases {
			dir := filepath.Join(root, p.Name(), c.Name())
			if _, err := os.Stat(filepath.Join(dir, "cassette.yaml")); err != nil {
				continue
			}
			out = append(out, Fixture{Provider: p.Name(), Name: c.Name(), Dir: dir})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out, nil
}

// ReadExpected loads a fixture's golden events.
func ReadExpected(f Fixture) ([]map[string]any, error) {
	b, err := os.ReadFile(f.Expected())
	if err != nil {
		return nil, err
	}
	return golden.ReadJSONL(bytes.NewReader(b))
}

// transportFields are the values that legitimately differ between capture
// paths and transports for the same recorded traffic: timing, capture
// method and point, the flow id, process attribution, and the content
// source the capture implies.
var transportFields = [][]string{
	{"ts"},
	{"ts_mono"},
	{"process"},
	{"actor"},
	{"attrs"},
	{"source", "capture_method"},
	{"source", "capture_point"},
	{"confidence", "content_source"},
	{"confidence", "process_attribution"},
	{"data", "latency_ms"},
	{"data", "time_to_first_token_ms"},
	{"data", "conversation_id"},
	// A recorded plain-http URL (a local Ollama) is served over TLS on the
	// real-wire paths.
	{"data", "provider", "endpoint"},
	// Exchanges on different connections complete in an order the wire
	// decides, so ids numbered in emission order are not comparable;
	// links are checked exactly on the synthesized path.
	{"event_id"},
	{"related_events"},
	{"data", "request_id"},
}

// WithoutTransportFields returns deep copies of events without the fields
// that depend on the transport or capture path, in a canonical order (the
// order of their JSON encodings): concurrent connections may complete their
// exchanges in any order.
func WithoutTransportFields(events []map[string]any) []map[string]any {
	out := make([]map[string]any, len(events))
	keys := make([]string, len(events))
	for i, ev := range events {
		c := deepCopy(ev).(map[string]any)
		for _, path := range transportFields {
			deletePath(c, path)
		}
		out[i] = c
		b, _ := jsonOf(c)
		keys[i] = string(b)
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	sorted := make([]map[string]any, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

func deletePath(m map[string]any, path []string) {
	for len(path) > 1 {
		next, ok := m[path[0]].(map[string]any)
		if !ok {
			return
		}
		m, path = next, path[1:]
	}
	delete(m, path[0])
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = deepCopy(x)
		}
		return s
	}
	return v
}

// Summary renders events as one short line each (type, model, tokens), for
// failure messages.
func Summary(events []map[string]any) string {
	var b strings.Builder
	for i, ev := range events {
		fmt.Fprintf(&b, "  %d %v", i+1, ev["event_type"])
		if d, ok := ev["data"].(map[string]any); ok {
			if m, ok := d["model"].(map[string]any); ok {
				fmt.Fprintf(&b, " model=%v", m["id"])
			}
			if t, ok := d["tool"].(map[string]any); ok {
				fmt.Fprintf(&b, " tool=%v", t["name"])
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
