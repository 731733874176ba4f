package conformance

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/cassette"
)

var writeMatrix = flag.Bool("matrix", false, "after the run, write the capture-path × fixture pass counts and the coverage table into ../CONFORMANCE.md")

const conformanceDoc = "../CONFORMANCE.md"

// outcomes collects per-(path, fixture) results for -matrix. Test-only
// state: TestFixtures fills it, TestMain reads it after every test ran.
type outcomes struct {
	mu      sync.Mutex
	passed  map[string]int
	failed  map[string]int
	skipped map[string]string
	order   []string
}

var runOutcomes = &outcomes{passed: map[string]int{}, failed: map[string]int{}, skipped: map[string]string{}}

func (o *outcomes) note(path string) {
	for _, p := range o.order {
		if p == path {
			return
		}
	}
	o.order = append(o.order, path)
}

func (o *outcomes) record(path string, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.note(path)
	if ok {
		o.passed[path]++
	} else {
		o.failed[path]++
	}
}

func (o *outcomes) skip(path, why string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.note(path)
	o.skipped[path] = why
}

func TestMain(m *testing.M) {
	code := m.Run()
	if *writeMatrix {
		if err := writeConformance(); err != nil {
			fmt.Fprintln(os.Stderr, "write CONFORMANCE.md:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func writeConformance() error {
	fixtures, err := Fixtures(fixturesRoot)
	if err != nil {
		return err
	}
	matrix := matrixTable(len(fixtures))
	coverage, err := coverageTable(fixtures)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(conformanceDoc)
	if err != nil {
		return err
	}
	doc, err = replaceSection(doc, "matrix", matrix)
	if err != nil {
		return err
	}
	doc, err = replaceSection(doc, "coverage", coverage)
	if err != nil {
		return err
	}
	return os.WriteFile(conformanceDoc, doc, 0o644)
}

func replaceSection(doc []byte, name, body string) ([]byte, error) {
	begin := []byte("<!-- BEGIN GENERATED " + name + " -->\n")
	end := []byte("<!-- END GENERATED " + name + " -->")
	i := bytes.Index(doc, begin)
	j := bytes.Index(doc, end)
	if i < 0 || j < i {
		return nil, fmt.Errorf("markers for %q not found", name)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.WriteString(body)
	out.Write(doc[j:])
	return out.Bytes(), nil
}

func matrixTable(nFixtures int) string {
	o := runOutcomes
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "| capture path | fixtures passed | failed | note |\n|---|---|---|---|\n")
	for _, p := range o.order {
		note := o.skipped[p]
		if note != "" {
			fmt.Fprintf(&b, "| `%s` | – | – | skipped: %s |\n", p, note)
			continue
		}
		ran := o.passed[p] + o.failed[p]
		if ran < nFixtures {
			note = fmt.Sprintf("applies to %d of %d fixtures", ran, nFixtures)
		}
		fmt.Fprintf(&b, "| `%s` | %d | %d | %s |\n", p, o.passed[p], o.failed[p], note)
	}
	return b.String()
}

type providerCoverage struct {
	fixtures, exchanges        int
	apis                       map[string]bool
	stream, tools, loops, errs int
	encodings                  map[string]bool
}

// coverageTable summarises, per provider folder, what the fixtures cover:
// the API families decoded, streaming, tool calls, agent loops (several
// requests with tool results), errors and body encodings.
func coverageTable(fixtures []Fixture) (string, error) {
	cov := map[string]*providerCoverage{}
	var provs []string
	for _, fx := range fixtures {
		c := cov[fx.Provider]
		if c == nil {
			c = &providerCoverage{apis: map[string]bool{}, encodings: map[string]bool{}}
			cov[fx.Provider] = c
			provs = append(provs, fx.Provider)
		}
		c.fixtures++
		evs, err := ReadExpected(fx)
		if err != nil {
			return "", fmt.Errorf("%s: %w", fx.ID(), err)
		}
		var sawStream, sawTools, sawErr bool
		results := 0
		for _, ev := range evs {
			d, _ := ev["data"].(map[string]any)
			switch ev["event_type"] {
			case "ai.request":
				c.exchanges++
				if e, ok := d["endpoint"].(string); ok {
					c.apis[e] = true
				}
				if s, ok := d["streaming"].(bool); ok && s {
					sawStream = true
				}
			case "ai.response", "ai.embedding":
				if s, ok := d["success"].(bool); ok && !s {
					sawErr = true
				}
			case "agent.tool_call":
				sawTools = true
			case "agent.tool_result":
				results++
			}
		}
		if sawStream {
			c.stream++
		}
		if sawTools {
			c.tools++
		}
		if results > 0 && sawTools {
			c.loops++
		}
		if sawErr {
			c.errs++
		}
		rec, err := cassette.ReadFile(fx.Cassette())
		if err != nil {
			return "", fmt.Errorf("%s: %w", fx.ID(), err)
		}
		for _, in := range rec.Interactions {
			ct := strings.ToLower(in.Response.Header.Get("Content-Type"))
			switch {
			case strings.Contains(ct, "event-stream"):
				c.encodings["SSE"] = true
			case strings.Contains(ct, "ndjson"):
				c.encodings["NDJSON"] = true
			case strings.Contains(ct, "eventstream"):
				c.encodings["eventstream"] = true
			case strings.Contains(ct, "json") && strings.HasPrefix(strings.TrimSpace(string(in.Response.Body)), "[") && strings.Contains(in.Request.URL, "stream"):
				c.encodings["JSON array"] = true
			}
			if ce := in.Response.Header.Get("Content-Encoding"); ce != "" {
				c.encodings[ce] = true
			}
		}
	}
	sort.Strings(provs)
	var b strings.Builder
	b.WriteString("| provider | fixtures | AI exchanges | API families | streaming | tool calls | agent loops | errors | body encodings |\n|---|---|---|---|---|---|---|---|---|\n")
	total, totalEx := 0, 0
	for _, p := range provs {
		c := cov[p]
		total += c.fixtures
		totalEx += c.exchanges
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d | %d | %d | %d | %s |\n", p, c.fixtures, c.exchanges,
			keys(c.apis), c.stream, c.tools, c.loops, c.errs, keys(c.encodings))
	}
	fmt.Fprintf(&b, "| **total** (%d providers) | %d | %d | | | | | | |\n", len(provs), total, totalEx)
	return b.String(), nil
}

func keys(m map[string]bool) string {
	if len(m) == 0 {
		return "–"
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, "`"+k+"`")
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
