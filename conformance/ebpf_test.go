package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
)

// The eBPF capture paths: real client processes started by the suite talk
// to the loopback replay server over TLS while the shared linuxcompat
// Source (ebpf_hub_test.go) captures them at their TLS library, by pid.
// The replay server's own taps are discarded: eBPF is the only source of
// the session's flows. Every event must come from the client's process.
//
// CI time: curl over HTTP/1.1 replays every fixture; the other clients each
// replay a subset of ebpfSubset fixtures picked round-robin across
// providers (rotated per client, so together they cover more), which the
// path names say ("-sub30").

// ebpfSubset is how many fixtures a subset path replays.
const ebpfSubset = 30

// ebpfClient is one client program for the eBPF paths.
type ebpfClient struct {
	name      string
	transport loopback.Transport
	// need returns why the client cannot run here, "" when it can.
	need func() string
	// prepare finds, builds or installs the client (once per run).
	prepare func() (ebpfPrepared, error)
	// applies limits the client to recordings it can re-issue (SDKs).
	applies func(rec *cassette.Recording) bool
	// subset > 0 replays that many fixtures; rotation picks which.
	subset, rotation int

	prepOnce sync.Once
	prep     ebpfPrepared
	prepErr  error
	subOnce  sync.Once
	chosen   map[[32]byte]bool
	subErr   error
}

// ebpfPrepared is a client ready to run.
type ebpfPrepared struct {
	driver func(started StartedFunc) loopback.Driver
	// attach are the files (TLS library or binary) that must carry probes
	// before the client runs; warmup loads them when they are new.
	attach []string
	warmup []string
}

func (c *ebpfClient) prepared() (ebpfPrepared, error) {
	c.prepOnce.Do(func() { c.prep, c.prepErr = c.prepare() })
	return c.prep, c.prepErr
}

// ebpfPaths are the eBPF capture paths of the suite.
func ebpfPaths() []capturePath {
	clients := []*ebpfClient{
		{name: "ebpf-h1-curl", transport: loopback.H1, need: CurlMissing, prepare: prepareCurl(false)},
		{name: "ebpf-h2-curl-sub30", transport: loopback.H2, need: CurlMissing, prepare: prepareCurl(true), subset: ebpfSubset, rotation: 1},
		{name: "ebpf-h1-python-urllib-sub30", transport: loopback.H1, need: pythonMissing, prepare: preparePython, subset: ebpfSubset, rotation: 2},
		{name: "ebpf-h1-node-fetch-sub30", transport: loopback.H1, need: nodeMissing, prepare: prepareNode("fetch", true), subset: ebpfSubset, rotation: 3},
		{name: "ebpf-h2-node-http2-sub30", transport: loopback.H2, need: nodeMissing, prepare: prepareNode("http2", false), subset: ebpfSubset, rotation: 4},
		{name: "ebpf-h1-node-openai-sdk-sub30", transport: loopback.H1, need: nodeMissing, prepare: prepareNode("openai", true), applies: NodeOpenAIApplies, subset: ebpfSubset, rotation: 5},
		{name: "ebpf-h1-go-sub30", transport: loopback.H1, need: goMissing, prepare: prepareGo(false, false), subset: ebpfSubset, rotation: 6},
		{name: "ebpf-h2-go-stripped-sub30", transport: loopback.H2, need: goMissing, prepare: prepareGo(true, true), subset: ebpfSubset, rotation: 7},
	}
	var paths []capturePath
	for _, c := range clients {
		paths = append(paths, capturePath{
			name:    c.name,
			skip:    c.skipReason,
			applies: c.appliesTo,
			run:     c.run,
		})
	}
	return paths
}

// skipReason is why the path skips: eBPF cannot load here, or the client
// is missing. With OISP_REQUIRE_EBPF=1 it never skips; the fixtures fail
// with the reason instead.
func (c *ebpfClient) skipReason() string {
	if ebpfRequired() {
		return ""
	}
	if why := ebpf.unavailable(); why != "" {
		return why
	}
	if why := c.need(); why != "" {
		return why + requireNote()
	}
	return ""
}

func (c *ebpfClient) appliesTo(rec *cassette.Recording) bool {
	if c.applies != nil && !c.applies(rec) {
		return false
	}
	if c.subset == 0 {
		return true
	}
	c.subOnce.Do(func() { c.chosen, c.subErr = chooseSubset(c.subset, c.rotation, c.applies) })
	if c.subErr != nil {
		return true // the run reports the error
	}
	return c.chosen[recordingKey(rec)]
}

// run replays rec with the client under eBPF capture into a session.
func (c *ebpfClient) run(ctx context.Context, t *testing.T, rec *cassette.Recording) ([]*oisp.Event, error) {
	if c.subErr != nil {
		return nil, fmt.Errorf("choose the fixture subset: %w", c.subErr)
	}
	if why := c.need(); why != "" {
		return nil, errors.New(why)
	}
	prep, err := c.prepared()
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", c.name, err)
	}
	if err := ebpf.acquire(); err != nil {
		return nil, err
	}
	defer ebpf.release()
	if err := ebpf.ensureAttached(prep.attach, prep.warmup); err != nil {
		return nil, err
	}
	mem := &sink.Memory{}
	s, err := session.New(session.Options{Out: mem})
	if err != nil {
		return nil, err
	}
	own := ebpf.ownFlows.Load()
	src := &ebpfReplay{rec: rec, transport: c.transport, driver: prep.driver}
	if err := s.Run(ctx, src); err != nil {
		return nil, err
	}
	if n := ebpf.ownFlows.Load() - own; n > 0 {
		return nil, fmt.Errorf("eBPF capture reported %d flows of the test process itself", n)
	}
	evs := mem.Events()
	for _, ev := range evs {
		if ev.Process == nil || !src.pids[ev.Process.PID] {
			return nil, fmt.Errorf("%s event from process %+v, not from the client (pids %v)", ev.EventType, ev.Process, src.pids)
		}
	}
	if summ := s.Summary(); summ.Dropped > 0 {
		t.Logf("eBPF capture lost %d bytes", summ.Dropped)
	}
	return evs, nil
}

// ebpfReplay is the flow.Source of one eBPF path run: it serves rec on a
// loopback server whose taps are discarded, runs the client process, and
// delivers what the shared eBPF capture saw of that process (and its
// children) until all of them exited and their flows closed.
type ebpfReplay struct {
	rec       *cassette.Recording
	transport loopback.Transport
	driver    func(StartedFunc) loopback.Driver
	pids      map[int]bool
}

func (r *ebpfReplay) Run(ctx context.Context, h flow.Handler) error {
	srv, err := loopback.Start(r.rec, r.transport, discardTaps{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	claim := ebpf.claim(h, nil)
	defer claim.release()
	derr := r.driver(claim.add).Drive(ctx, srv, r.rec)
	cerr := srv.Close()
	var werr error
	if len(claim.PIDs()) > 0 {
		werr = claim.wait(30 * time.Second)
	}
	r.pids = claim.PIDs()
	if derr == nil && cerr == nil && srv.Unserved() > 0 {
		derr = fmt.Errorf("the client left %d recorded interactions unrequested", srv.Unserved())
	}
	claim.mu.Lock()
	if n := claim.unaddressed; n > 0 && werr == nil {
		werr = fmt.Errorf("eBPF capture: %d of %d flows opened without a remote address (not tied to their socket)", n, claim.flows)
	}
	claim.mu.Unlock()
	return errors.Join(derr, cerr, werr)
}

// discardTaps drops the replay server's own plaintext taps.
type discardTaps struct{}

func (discardTaps) Open(*flow.Info)              {}
func (discardTaps) Data(string, flow.Chunk)      {}
func (discardTaps) Close(string, flow.CloseInfo) {}

// recordingKey identifies a recording by its content, since a capture path
// sees recordings, not fixture names.
func recordingKey(rec *cassette.Recording) [32]byte {
	h := sha256.New()
	for _, in := range rec.Interactions {
		fmt.Fprintf(h, "%s %s %d %d\n", in.Request.Method, in.Request.URL, len(in.Request.Body), in.Response.Status)
		h.Write(in.Request.Body)
		h.Write(in.Response.Body)
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// chooseSubset picks n fixtures (those applies accepts) round-robin over
// the providers, starting each provider's list at an offset that depends
// on rotation.
func chooseSubset(n, rotation int, applies func(*cassette.Recording) bool) (map[[32]byte]bool, error) {
	fixtures, err := Fixtures(fixturesRoot)
	if err != nil {
		return nil, err
	}
	byProvider := map[string][][32]byte{}
	var providers []string
	for _, fx := range fixtures {
		rec, err := cassette.ReadFile(fx.Cassette())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fx.ID(), err)
		}
		if applies != nil && !applies(rec) {
			continue
		}
		if _, ok := byProvider[fx.Provider]; !ok {
			providers = append(providers, fx.Provider)
		}
		byProvider[fx.Provider] = append(byProvider[fx.Provider], recordingKey(rec))
	}
	sort.Strings(providers)
	chosen := map[[32]byte]bool{}
	for round := 0; len(chosen) < n; round++ {
		added := false
		for _, p := range providers {
			list := byProvider[p]
			if round >= len(list) || len(chosen) >= n {
				continue
			}
			chosen[list[(round+rotation*7)%len(list)]] = true
			added = true
		}
		if !added {
			break
		}
	}
	return chosen, nil
}

// The clients.

func pythonMissing() string {
	if _, err := exec.LookPath("python3"); err != nil {
		return "python3 is not installed"
	}
	return ""
}

func nodeMissing() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	return ""
}

func goMissing() string {
	if _, err := goTool(); err != nil {
		return "the go command is not available to build the Go client"
	}
	return ""
}

func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// ebpfCacheDir keeps what the clients need between runs (the built Go
// client, node_modules), like the Go build cache.
func ebpfCacheDir(name string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "oisp-sensor", "conformance-ebpf", name)
	return dir, os.MkdirAll(dir, 0o755)
}

func prepareCurl(http2 bool) func() (ebpfPrepared, error) {
	return func() (ebpfPrepared, error) {
		bin, err := exec.LookPath("curl")
		if err != nil {
			return ebpfPrepared{}, err
		}
		bin, _ = filepath.EvalSymlinks(bin)
		ssl, err := ldSSL(bin)
		if err != nil {
			return ebpfPrepared{}, err
		}
		return ebpfPrepared{
			driver: func(started StartedFunc) loopback.Driver { return CurlProcess{HTTP2: http2, Started: started} },
			attach: []string{ssl},
		}, nil
	}
}

func preparePython() (ebpfPrepared, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return ebpfPrepared{}, err
	}
	// Resolve shims (pyenv) to the interpreter and find its _ssl module.
	out, err := exec.Command(py, "-c", "import sys, _ssl; print(sys.executable); print(_ssl.__file__)").Output()
	if err != nil {
		return ebpfPrepared{}, fmt.Errorf("python3 has no ssl module: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		return ebpfPrepared{}, fmt.Errorf("python3 printed %q", out)
	}
	exe, _ := filepath.EvalSymlinks(lines[0])
	ssl, err := ldSSL(lines[1])
	if err != nil {
		return ebpfPrepared{}, err
	}
	script, err := filepath.Abs("testdata/ebpf/urllib_client.py")
	if err != nil {
		return ebpfPrepared{}, err
	}
	return ebpfPrepared{
		driver: func(started StartedFunc) loopback.Driver {
			return ProgramClient{Argv: []string{exe, script}, Started: started}
		},
		attach: []string{ssl},
	}, nil
}

// prepareNode installs the npm packages the Node client needs (undici,
// openai; pinned by package-lock.json) into the cache directory next to a
// copy of client.js.
func prepareNode(mode string, needModules bool) func() (ebpfPrepared, error) {
	return func() (ebpfPrepared, error) {
		node, err := exec.LookPath("node")
		if err != nil {
			return ebpfPrepared{}, err
		}
		node, _ = filepath.EvalSymlinks(node)
		dir, err := ebpfCacheDir("node")
		if err != nil {
			return ebpfPrepared{}, err
		}
		for _, f := range []string{"client.js", "package.json", "package-lock.json"} {
			b, err := os.ReadFile(filepath.Join("testdata/ebpf/node", f))
			if err != nil {
				return ebpfPrepared{}, err
			}
			if old, _ := os.ReadFile(filepath.Join(dir, f)); bytes.Equal(old, b) {
				continue
			}
			if f == "package-lock.json" {
				os.RemoveAll(filepath.Join(dir, "node_modules"))
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				return ebpfPrepared{}, err
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "node_modules")); needModules && err != nil {
			npm, err := exec.LookPath("npm")
			if err != nil {
				return ebpfPrepared{}, errors.New("npm is not installed (needed for undici and openai)")
			}
			cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefer-offline")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				return ebpfPrepared{}, fmt.Errorf("npm ci: %w: %s", err, lastLines(string(out), 5))
			}
		}
		// The TLS library to wait for: node's own OpenSSL, or the libssl
		// it loads.
		target := node
		if ssl, err := ldSSL(node); err == nil {
			target = ssl
		}
		script := filepath.Join(dir, "client.js")
		var via func(cassette.Interaction) string
		if mode == "openai" {
			via = nodeOpenAIVia
		}
		return ebpfPrepared{
			driver: func(started StartedFunc) loopback.Driver {
				return ProgramClient{Argv: []string{node, script, mode}, Dir: dir, HTTP2: mode == "http2", Decodes: mode != "http2", Via: via, Started: started}
			},
			attach: []string{target},
			warmup: []string{node, script, "warmup"},
		}, nil
	}
}

// prepareGo builds testdata/ebpf/goclient (stripped: -ldflags=-s -w).
func prepareGo(http2, stripped bool) func() (ebpfPrepared, error) {
	return func() (ebpfPrepared, error) {
		gobin, err := goTool()
		if err != nil {
			return ebpfPrepared{}, err
		}
		dir, err := ebpfCacheDir("go")
		if err != nil {
			return ebpfPrepared{}, err
		}
		name := "goclient"
		args := []string{"build", "-o"}
		if stripped {
			name += "-stripped"
		}
		bin := filepath.Join(dir, name)
		args = append(args, bin)
		if stripped {
			args = append(args, "-ldflags=-s -w")
		}
		args = append(args, "./testdata/ebpf/goclient")
		cmd := exec.Command(gobin, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return ebpfPrepared{}, fmt.Errorf("go build: %w: %s", err, lastLines(string(out), 10))
		}
		return ebpfPrepared{
			driver: func(started StartedFunc) loopback.Driver {
				return ProgramClient{Argv: []string{bin}, HTTP2: http2, Via: GoProgramVia, Started: started}
			},
			attach: []string{bin},
			warmup: []string{bin, "-warmup"},
		}, nil
	}
}
