// Package golden owns the reviewed, machine-independent form of event
// streams used in fixtures' expected.jsonl: volatile values (event ids,
// sensor request ids, the host) are replaced by stable placeholders so that
// a golden file diffs cleanly and links between events stay checkable.
package golden

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Canonical rewrites events (as decoded JSON objects) in place:
//   - event_id becomes "ev-N" (N from 1 in stream order) and every
//     related_events reference follows it;
//   - data.request_id "req_…" becomes "req-N" in order of first use;
//   - host is removed (machine-dependent);
//   - source.collector_version is removed (changes every release).
func Canonical(events []map[string]any) {
	ids := map[string]string{}
	reqs := map[string]string{}
	for i, ev := range events {
		if id, ok := ev["event_id"].(string); ok {
			n := "ev-" + strconv.Itoa(i+1)
			ids[id] = n
			ev["event_id"] = n
		}
		delete(ev, "host")
		if src, ok := ev["source"].(map[string]any); ok {
			delete(src, "collector_version")
		}
		if d, ok := ev["data"].(map[string]any); ok {
			if r, ok := d["request_id"].(string); ok {
				if _, seen := reqs[r]; !seen {
					reqs[r] = "req-" + strconv.Itoa(len(reqs)+1)
				}
				d["request_id"] = reqs[r]
			}
		}
	}
	for _, ev := range events {
		rel, ok := ev["related_events"].([]any)
		if !ok {
			continue
		}
		for _, r := range rel {
			if m, ok := r.(map[string]any); ok {
				if id, ok := m["event_id"].(string); ok {
					if n, ok := ids[id]; ok {
						m["event_id"] = n
					} else {
						m["event_id"] = "ev-outside"
					}
				}
			}
		}
	}
}

// ReadJSONL decodes a JSONL stream into objects. Numbers stay json.Number
// so that re-encoding is exact.
func ReadJSONL(r io.Reader) ([]map[string]any, error) {
	var out []map[string]any
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return out, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("line %d: %w", line+1, err)
	}
	return out, nil
}

// WriteJSONL encodes events one per line with sorted keys (encoding/json
// sorts map keys), so golden files are stable.
func WriteJSONL(w io.Writer, events []map[string]any) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, ev := range events {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// FromEvents converts typed values (anything JSON-encodable) into objects.
func FromEvents[T any](events []T) ([]map[string]any, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, ev := range events {
		if err := enc.Encode(ev); err != nil {
			return nil, err
		}
	}
	return ReadJSONL(&buf)
}
