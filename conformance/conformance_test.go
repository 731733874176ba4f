package conformance

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/golden"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/spec"
)

var update = flag.Bool("update", false, "rewrite fixtures' expected.jsonl from the synthesized HTTP/1.1 path (review the diff!)")

const fixturesRoot = "../fixtures"

// capturePath is one way of getting a recording's traffic into the sensor.
type capturePath struct {
	name string
	// skip returns a reason when the path cannot run on this machine.
	skip func() string
	// applies, when set, limits the path to the recordings it can replay
	// (an SDK client only makes its own API's requests).
	applies func(rec *cassette.Recording) bool
	run     func(ctx context.Context, t *testing.T, rec *cassette.Recording) ([]*oisp.Event, error)
	// exact compares every field with the golden; otherwise fields that
	// depend on the transport (timing, capture method, process) are
	// ignored.
	exact bool
}

func synthesized(seed int64) func(context.Context, *testing.T, *cassette.Recording) ([]*oisp.Event, error) {
	return func(ctx context.Context, t *testing.T, rec *cassette.Recording) ([]*oisp.Event, error) {
		evs, _, err := session.Replay(ctx, rec, replay.Options{Seed: seed})
		return evs, err
	}
}

// capturePaths is the suite's table of capture paths. Adding a fixture adds
// it to every path.
func capturePaths() []capturePath {
	paths := []capturePath{
		{name: "h1-synthesized", run: synthesized(0), exact: true},
		{name: "h1-split-1", run: synthesized(1)},
		{name: "h1-split-2", run: synthesized(2)},
	}
	return append(append(append(paths, wirePaths()...), proxyPaths()...), ebpfPaths()...)
}

func TestFixtures(t *testing.T) {
	fixtures, err := Fixtures(fixturesRoot)
	if err != nil {
		t.Fatalf("list fixtures: %v", err)
	}
	if len(fixtures) == 0 {
		t.Fatal("no fixtures found under " + fixturesRoot)
	}
	v, err := spec.NewValidator()
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	for _, cp := range capturePaths() {
		t.Run(cp.name, func(t *testing.T) {
			if cp.skip != nil {
				if why := cp.skip(); why != "" {
					runOutcomes.skip(cp.name, why)
					t.Skip(why)
				}
			}
			for _, fx := range fixtures {
				t.Run(fx.ID(), func(t *testing.T) {
					t.Cleanup(func() {
						if !t.Skipped() {
							runOutcomes.record(cp.name, !t.Failed())
						}
					})
					checkFixture(t, v, cp, fx)
				})
			}
		})
	}
}

func checkFixture(t *testing.T, v *spec.Validator, cp capturePath, fx Fixture) {
	rec, err := cassette.ReadFile(fx.Cassette())
	if err != nil {
		t.Fatalf("read cassette: %v", err)
	}
	if cp.applies != nil && !cp.applies(rec) {
		t.Skipf("%s does not apply to this recording", cp.name)
	}
	// Real connections are real: a client may cancel a stream it has read
	// to the end before the server's END_STREAM is captured, and a loaded
	// machine reorders deliveries. A path over real connections gets a
	// second attempt; a decoder bug fails both.
	attempts := 1
	if !cp.exact && cp.name != "h1-split-1" && cp.name != "h1-split-2" {
		attempts = 2
	}
	var problems []string
	for n := 1; n <= attempts; n++ {
		problems = attemptFixture(t, v, cp, fx, rec)
		if len(problems) == 0 {
			if n > 1 {
				t.Logf("passed on attempt %d", n)
			}
			return
		}
		if n < attempts {
			t.Logf("attempt %d failed (retrying once):\n%s", n, strings.Join(problems, "\n"))
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// attemptFixture runs the fixture over the path once and returns what is
// wrong with the events (nil when they are valid and match the golden).
func attemptFixture(t *testing.T, v *spec.Validator, cp capturePath, fx Fixture, rec *cassette.Recording) []string {
	evs, err := runBounded(t, cp, rec)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", cp.name, err)}
	}
	var problems []string
	for i, ev := range evs {
		b, err := jsonOf(ev)
		if err != nil {
			t.Fatalf("event %d: encode: %v", i+1, err)
		}
		if err := v.Validate(b); err != nil {
			problems = append(problems, fmt.Sprintf("event %d (%s) is not valid OISP v0.1: %v", i+1, ev.EventType, err))
		}
	}
	got, err := golden.FromEvents(evs)
	if err != nil {
		t.Fatal(err)
	}
	golden.Canonical(got)
	if *update && cp.exact {
		var buf bytes.Buffer
		if err := golden.WriteJSONL(&buf, got); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fx.Expected(), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return nil
	}
	want, err := ReadExpected(fx)
	if err != nil {
		t.Fatalf("read golden (create it with -update): %v", err)
	}
	if !cp.exact {
		got, want = WithoutTransportFields(got), WithoutTransportFields(want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		problems = append(problems, fmt.Sprintf("events differ from %s (-want +got):\n%s\nwant:\n%sgot:\n%s",
			filepath.Base(fx.Expected()), diff, Summary(want), Summary(got)))
	}
	return problems
}

// attemptTimeout bounds one run of a fixture over a capture path; a run
// takes about a second.
const attemptTimeout = 4 * time.Minute

// runBounded runs the fixture over the path with a deadline. A run that
// ignores its context past the deadline is reported with every goroutine's
// stack and abandoned, so a hang fails one fixture with the evidence
// instead of timing out the whole suite without it.
func runBounded(t *testing.T, cp capturePath, rec *cassette.Recording) ([]*oisp.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	type result struct {
		evs []*oisp.Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		evs, err := cp.run(ctx, t, rec)
		done <- result{evs, err}
	}()
	grace := time.NewTimer(attemptTimeout + time.Minute)
	defer grace.Stop()
	select {
	case r := <-done:
		return r.evs, r.err
	case <-grace.C:
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Logf("goroutines of the hung run:\n%s", buf)
		return nil, fmt.Errorf("%s: run still going %v after its deadline (goroutines logged above)", cp.name, time.Minute)
	}
}
