package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/internal/testutil"
	"github.com/oisp/oisp-sensor/spec"
)

// waitFor polls buf for re and returns the first submatch.
func waitFor(t *testing.T, buf *testutil.SyncBuffer, re *regexp.Regexp, done <-chan int) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m[len(m)-1]
		}
		select {
		case code := <-done:
			t.Fatalf("command exited (%d) before printing %s:\n%s", code, re, buf.String())
		case <-deadline:
			t.Fatalf("timed out waiting for %s in:\n%s", re, buf.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// command is one in-process run of the CLI.
type command struct {
	cancel context.CancelFunc
	done   chan int
	stdout *testutil.SyncBuffer
	stderr *testutil.SyncBuffer
}

func start(t *testing.T, args ...string) *command {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &command{cancel: cancel, done: make(chan int, 1), stdout: &testutil.SyncBuffer{}, stderr: &testutil.SyncBuffer{}}
	go func() { c.done <- run(ctx, args, strings.NewReader(""), c.stdout, c.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop", args[0])
		}
	})
	return c
}

// stop cancels the command (as SIGINT does) and returns its exit status.
func (c *command) stop(t *testing.T) int {
	t.Helper()
	c.cancel()
	select {
	case code := <-c.done:
		c.done <- code
		return code
	case <-time.After(20 * time.Second):
		t.Fatalf("command did not stop; stderr:\n%s", c.stderr.String())
	}
	return -1
}

var proxyLine = regexp.MustCompile(`capture proxy listening on (\S+)`)

// upstream serves a fixture's recorded responses over real TLS, as the
// provider would.
func upstream(t *testing.T, fixture string, tr loopback.Transport) (*loopback.Server, *cassette.Recording) {
	t.Helper()
	rec, err := cassette.ReadFile(filepath.Join("..", "..", "..", "fixtures", fixture, "cassette.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := loopback.Start(rec, tr, discard{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, rec
}

// upstreamRepeated is upstream serving the fixture's exchanges n times
// over (each recorded response is served once), so a client can replay the
// returned recording n times.
func upstreamRepeated(t *testing.T, fixture string, tr loopback.Transport, n int) (*loopback.Server, *cassette.Recording) {
	t.Helper()
	rec, err := cassette.ReadFile(filepath.Join("..", "..", "..", "fixtures", fixture, "cassette.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	served := *rec
	served.Interactions = nil
	for range n {
		served.Interactions = append(served.Interactions, rec.Interactions...)
	}
	srv, err := loopback.Start(&served, tr, discard{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, rec
}

type discard struct{}

func (discard) Open(*flow.Info)              {}
func (discard) Data(string, flow.Chunk)      {}
func (discard) Close(string, flow.CloseInfo) {}

// proxiedClient is a client configured the way the status output tells a
// person to: HTTPS_PROXY and the sensor CA.
func proxiedClient(t *testing.T, proxyAddr, caDir string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(caDir, "oisp-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	pu, _ := url.Parse("http://" + proxyAddr)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy:             http.ProxyURL(pu),
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}}
}

// replayThrough sends every recorded request through client and reads the
// responses to the end.
func replayThrough(t *testing.T, client *http.Client, rec *cassette.Recording, secret string) {
	t.Helper()
	for _, in := range rec.Interactions {
		req, err := http.NewRequest(in.Request.Method, in.Request.URL, bytes.NewReader(in.Request.Body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request through the proxy: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != in.Response.Status {
			t.Fatalf("response through the proxy: %d %v", resp.StatusCode, err)
		}
		if !bytes.Equal(body, in.Response.Body) {
			t.Fatalf("the proxy changed the response body (%d bytes, recorded %d)", len(body), len(in.Response.Body))
		}
	}
	client.CloseIdleConnections()
}

// readEvents validates every line of a JSONL file and returns the events.
func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	v, err := spec.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if err := v.Validate(sc.Bytes()); err != nil {
			t.Errorf("invalid event: %v\n%s", err, sc.Text())
		}
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func eventTypes(evs []map[string]any) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev["event_type"].(string))
	}
	return out
}

const secret = "sk-test-record-secret-0123456789abcdef"

// TestRecordProxy runs `record --proxy` as a user would: a real HTTPS
// client with HTTPS_PROXY-style settings and the sensor CA sends a recorded
// OpenAI streaming request through it to a TLS upstream; on cancel (what
// SIGINT does) the events are in the output file and a summary is printed.
func TestRecordProxy(t *testing.T) {
	srv, rec := upstream(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H2)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out := filepath.Join(dir, "events.jsonl")
	cmd := start(t, "record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off",
		"--ca-dir", caDir, "--upstream-ca", srv.CAFile, "--resolve", "api.openai.com:443:"+srv.Addr,
		"--output", out, "--summary-every", "50ms")
	addr := waitFor(t, cmd.stderr, proxyLine, cmd.done)
	replayThrough(t, proxiedClient(t, addr, caDir), rec, secret)
	// The periodic summary notices the flow.
	waitFor(t, cmd.stderr, regexp.MustCompile(`summary: 1 flow \(\d open\), (2 events)`), cmd.done)
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, cmd.stderr.String())
	}
	status := cmd.stderr.String()
	for _, want := range []string{
		"events go to " + out,
		"export HTTPS_PROXY=http://" + addr,
		"NODE_EXTRA_CA_CERTS=" + filepath.Join(caDir, "oisp-ca.pem"),
		"SSL_CERT_FILE=" + filepath.Join(caDir, BundleFile),
		"REQUESTS_CA_BUNDLE=" + filepath.Join(caDir, BundleFile),
		"final summary: 1 flow (0 open), 2 events (1 ai.request, 1 ai.response)",
		"0 B dropped, 0 partial",
		"2 events written to " + out,
	} {
		if !strings.Contains(status, want) {
			t.Errorf("status output lacks %q:\n%s", want, status)
		}
	}
	evs := readEvents(t, out)
	if got := strings.Join(eventTypes(evs), ","); got != "ai.request,ai.response" {
		t.Fatalf("events %s", got)
	}
	resp := evs[1]["data"].(map[string]any)
	if c := resp["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"]; c != "1, 2, 3, 4, 5" {
		t.Errorf("streamed reply %q", c)
	}
	if src := evs[0]["source"].(map[string]any); src["capture_method"] != "mitm_proxy" || src["capture_point"] != "proxy" {
		t.Errorf("source %v", src)
	}
	raw, _ := os.ReadFile(out)
	if bytes.Contains(raw, []byte(secret)) || strings.Contains(status, secret) {
		t.Error("the API key reached the output")
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("output file mode %v %v, want 0600", st.Mode(), err)
	}
	bundle, _ := os.ReadFile(filepath.Join(caDir, BundleFile))
	ca, _ := os.ReadFile(filepath.Join(caDir, "oisp-ca.pem"))
	if !bytes.HasSuffix(bundle, ca) {
		t.Error("the combined bundle does not end with the sensor CA")
	}
}

// TestRecordInterceptHost decrypts a host the registry does not know when
// --intercept-host names it (with its provider), and tunnels the rest
// untouched.
func TestRecordInterceptHost(t *testing.T) {
	srv, rec := upstream(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H1)
	for i := range rec.Interactions {
		rec.Interactions[i].Request.URL = strings.Replace(rec.Interactions[i].Request.URL, "api.openai.com", "llm.internal", 1)
	}
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out := filepath.Join(dir, "events.jsonl")
	cmd := start(t, "record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off", "--ca-dir", caDir,
		"--upstream-ca", srv.CAFile, "--intercept-host", "llm.internal=openai",
		"--resolve", "llm.internal:443:"+srv.Addr, "--resolve", "tunnelled.example:443:"+srv.Addr,
		"--output", out, "--summary-every", "0")
	addr := waitFor(t, cmd.stderr, proxyLine, cmd.done)
	client := proxiedClient(t, addr, caDir)
	replayThrough(t, client, rec, secret)

	// A host nobody asked to intercept is tunnelled: the client sees the
	// upstream's own certificate (which it does not trust here).
	_, err := client.Get("https://tunnelled.example/v1/models")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("tunnelled host: %v, want the upstream's untrusted certificate", err)
	}
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, cmd.stderr.String())
	}
	if !strings.Contains(cmd.stderr.String(), "+ llm.internal;") {
		t.Errorf("status does not name the extra host:\n%s", cmd.stderr.String())
	}
	evs := readEvents(t, out)
	if got := strings.Join(eventTypes(evs), ","); got != "ai.request,ai.response" {
		t.Fatalf("events %s", got)
	}
	if p := evs[0]["data"].(map[string]any)["provider"].(map[string]any); p["name"] != "openai" || p["host"] != "llm.internal" {
		t.Errorf("provider %v", p)
	}
}

// TestProxyEmitToRecord is extension mode end to end: `proxy --emit`
// sends its flows over a real Unix socket to a running `record --socket`,
// which writes the events.
func TestProxyEmitToRecord(t *testing.T) {
	srv, rec := upstream(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H2)
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "s.sock")
	caDir := filepath.Join(dir, "ca")
	out := filepath.Join(dir, "events.jsonl")
	sensor := start(t, "record", "--socket", sock, "--ebpf", "off", "--output", out, "--summary-every", "0")
	waitFor(t, sensor.stderr, regexp.MustCompile(`extension socket listening on (\S+)`), sensor.done)
	px := start(t, "proxy", "--listen", "127.0.0.1:0", "--emit", "unix:"+sock, "--ca-dir", caDir,
		"--upstream-ca", srv.CAFile, "--resolve", "api.openai.com:443:"+srv.Addr, "--summary-every", "0")
	addr := waitFor(t, px.stderr, proxyLine, px.done)
	replayThrough(t, proxiedClient(t, addr, caDir), rec, secret)
	if code := px.stop(t); code != 0 {
		t.Fatalf("proxy exit %d; stderr:\n%s", code, px.stderr.String())
	}
	if !regexp.MustCompile(`final summary: 1 flow intercepted, 0 tunnelled, [0-9.]+ KiB sent to the sensor, 0 B lost`).MatchString(px.stderr.String()) {
		t.Errorf("proxy summary:\n%s", px.stderr.String())
	}
	if code := sensor.stop(t); code != 0 {
		t.Fatalf("record exit %d; stderr:\n%s", code, sensor.stderr.String())
	}
	evs := readEvents(t, out)
	if got := strings.Join(eventTypes(evs), ","); got != "ai.request,ai.response" {
		t.Fatalf("events %s\nrecord:\n%s\nproxy:\n%s", got, sensor.stderr.String(), px.stderr.String())
	}
	if src := evs[0]["source"].(map[string]any); src["capture_method"] != "mitm_proxy" {
		t.Errorf("source after the socket %v", src)
	}
	if !strings.Contains(sensor.stderr.String(), "final summary: 1 flow (0 open), 2 events") {
		t.Errorf("record summary:\n%s", sensor.stderr.String())
	}
}

// shortTempDir is a temporary directory with a path short enough for a
// Unix socket (t.TempDir can exceed the 104-byte limit on macOS).
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "oisp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestRecordRefusesBadSetups(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"record", "--no-socket", "--ebpf", "off", "-o", filepath.Join(dir, "x")}, "nothing to capture from: start the capture proxy with --proxy"},
		{[]string{"record", "--content", "everything"}, "want full or metadata"},
		{[]string{"record", "--ebpf", "maybe"}, "want auto, on or off"},
		{[]string{"record", "--proxy", "127.0.0.1:0", "--intercept-host", "a/b", "--no-socket"}, "--intercept-host"},
		{[]string{"record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off", "--ca-dir", dir, "-o", filepath.Join(dir, "y"),
			"--upstream-ca", filepath.Join(dir, "missing.pem")}, "--upstream-ca"},
		{[]string{"record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off", "--ca-dir", dir, "-o", filepath.Join(dir, "z"),
			"--resolve", "nonsense"}, "want HOST:PORT:ADDR"},
		{[]string{"proxy", "--emit", "tcp:127.0.0.1:9"}, "want unix:PATH"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), c.args, strings.NewReader(""), &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want failure mentioning %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// startRecordProxy starts record with its capture proxy in front of
// srv, writing events to out (extra flags after), and returns it with a
// client set up as the status output says.
func startRecordProxy(t *testing.T, srv *loopback.Server, caDir, out string, extra ...string) (*command, *http.Client) {
	t.Helper()
	cmd := start(t, append([]string{"record", "--proxy", "127.0.0.1:0", "--no-socket", "--ebpf", "off",
		"--ca-dir", caDir, "--upstream-ca", srv.CAFile, "--resolve", "api.openai.com:443:" + srv.Addr,
		"--output", out, "--summary-every", "0"}, extra...)...)
	addr := waitFor(t, cmd.stderr, proxyLine, cmd.done)
	return cmd, proxiedClient(t, addr, caDir)
}

// eventFiles returns the event files in dir: the rotated ones (oldest
// first) and then the current one.
func eventFiles(t *testing.T, dir string) []string {
	t.Helper()
	rotated, err := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(rotated)
	return append(rotated, filepath.Join(dir, "events.jsonl"))
}

// checkEventsOnce validates every file's events and checks that together
// they are want events, each once.
func checkEventsOnce(t *testing.T, files []string, want int) {
	t.Helper()
	seen := map[string]int{}
	total := 0
	for _, p := range files {
		for _, ev := range readEvents(t, p) {
			seen[ev["event_id"].(string)]++
			total++
		}
	}
	if total != want || len(seen) != want {
		t.Errorf("%d events (%d distinct) in %d files, want %d", total, len(seen), len(files), want)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s written %d times", id, n)
		}
	}
}

// TestRecordRotates: with --rotate-size the events of a real client's
// requests through the capture proxy are spread over several files, none
// past the size, each event whole and in exactly one of them.
func TestRecordRotates(t *testing.T) {
	const calls = 10
	srv, rec := upstreamRepeated(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H2, calls)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out := filepath.Join(dir, "events.jsonl")
	const size = 3000 // two of the fixture's events (972 and 1334 bytes) fit
	cmd, client := startRecordProxy(t, srv, caDir, out, "--rotate-size", "3KB", "--rotate-keep", "0")
	for range calls {
		replayThrough(t, client, rec, secret)
	}
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, cmd.stderr.String())
	}
	if !strings.Contains(cmd.stderr.String(), "a new file is started at 3KB; all rotated files are kept") {
		t.Errorf("status does not say how the file rotates:\n%s", cmd.stderr.String())
	}
	files := eventFiles(t, dir)
	if len(files) < calls/2 {
		t.Fatalf("%d files for %d events of about 1.2 KB at 3KB each: %v", len(files), 2*calls, files)
	}
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > size || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %d bytes, mode %v; want at most %d, 0600", filepath.Base(p), fi.Size(), fi.Mode(), size)
		}
	}
	checkEventsOnce(t, files, 2*calls)
}

// TestRecordRotateKeep: --rotate-keep removes the oldest rotated files and
// --rotate-compress gzips the rest; what is left is the newest events.
func TestRecordRotateKeep(t *testing.T) {
	srv, rec := upstreamRepeated(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H1, 5)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out := filepath.Join(dir, "events.jsonl")
	cmd, client := startRecordProxy(t, srv, caDir, out, "--rotate-size", "1500", "--rotate-keep", "2", "--rotate-compress")
	for range 5 {
		replayThrough(t, client, rec, secret)
	}
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, cmd.stderr.String())
	}
	// One event per file: 10 events, the current file and 2 rotated ones.
	gz, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl.gz"))
	plain, _ := filepath.Glob(filepath.Join(dir, "events-*.jsonl"))
	if len(gz) != 2 || len(plain) != 0 {
		t.Fatalf("rotated files: gzipped %v, plain %v; want 2 gzipped", gz, plain)
	}
	sort.Strings(gz)
	var types []string
	for _, p := range gz {
		zf, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(zf)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		zf.Close()
		if err != nil {
			t.Fatal(err)
		}
		plainPath := filepath.Join(t.TempDir(), "unzipped.jsonl")
		if err := os.WriteFile(plainPath, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		types = append(types, eventTypes(readEvents(t, plainPath))...)
	}
	types = append(types, eventTypes(readEvents(t, out))...)
	if got := strings.Join(types, ","); got != "ai.response,ai.request,ai.response" {
		t.Errorf("kept events %s, want the last three", got)
	}
}

// TestRecordRotateFailureKeepsCapturing: when the file cannot be rotated
// (here its directory is replaced by a file; tests run as root, which
// permissions do not stop) the events keep going to the open file, the
// failure is logged with what to do and shown in the summary, and the run
// succeeds.
func TestRecordRotateFailureKeepsCapturing(t *testing.T) {
	srv, rec := upstreamRepeated(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H2, 2)
	root := t.TempDir()
	caDir := filepath.Join(root, "ca")
	dir := filepath.Join(root, "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd, client := startRecordProxy(t, srv, caDir, filepath.Join(dir, "events.jsonl"), "--rotate-size", "1500")
	replayThrough(t, client, rec, secret) // two events, one rotation
	for deadline := time.Now().Add(30 * time.Second); len(eventFiles(t, dir)) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no rotation after two events; stderr:\n%s", cmd.stderr.String())
		}
	}
	waitForLines(t, filepath.Join(dir, "events.jsonl"), 1)
	if err := os.Rename(dir, dir+".aside"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	replayThrough(t, client, rec, secret) // the first of these cannot rotate
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, cmd.stderr.String())
	}
	status := cmd.stderr.String()
	for _, want := range []string{"event output: cannot rotate", "check that its directory is writable",
		"; output: 1 rotation or reopen errors (see the log)", "4 events written to"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".aside", dir); err != nil {
		t.Fatal(err)
	}
	files := eventFiles(t, dir)
	if len(files) != 2 {
		t.Errorf("files %v, want one rotated and the current one", files)
	}
	checkEventsOnce(t, files, 4)
}

// waitForLines polls until path has n lines.
func waitForLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines := 0
		for _, c := range b {
			if c == '\n' {
				lines++
			}
		}
		if lines >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines, want %d", path, lines, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
