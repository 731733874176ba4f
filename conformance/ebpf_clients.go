package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/content"
)

// This file holds the client programs the eBPF capture path runs as child
// processes: curl, Python's urllib, Node.js (undici fetch, node:http2, the
// openai npm SDK) and a Go program (net/http, openai-go). Unlike the
// in-process drivers of clients.go, each runs in a process of its own, so
// a capture that observes processes (eBPF uprobes on their TLS libraries)
// can see it. A child is held before it runs the client program until the
// Started hook has seen its pid: the capture then knows the process before
// it makes its first TLS call.

// StartedFunc is told the pid of a client process before the client
// program runs in it.
type StartedFunc func(pid int) error

// runHeld runs argv as a child process with stdin, returning its stdout.
// When started is set, the child is a shell that waits on a pipe, then
// execs argv in the same process; started gets its pid in between.
func runHeld(ctx context.Context, argv, env []string, dir string, stdin []byte, started StartedFunc) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	var cmd *exec.Cmd
	var gate *os.File
	if started == nil {
		cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	} else {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer r.Close()
		gate = w
		defer gate.Close()
		script := `read -r _ <&3; exec 3<&-; exec "$@"`
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script, "oisp-held-client"}, argv...)...)
		cmd.ExtraFiles = []*os.File{r}
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(argv[0]), err)
	}
	if started != nil {
		if err := started(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, err
		}
		if _, err := gate.Write([]byte("go\n")); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("release %s: %w", filepath.Base(argv[0]), err)
		}
		gate.Close()
	}
	if err := cmd.Wait(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, strings.TrimSpace(lastLines(stderr.String(), 8)))
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CurlProcess drives the recording with curl like Curl, as a held child
// process.
type CurlProcess struct {
	HTTP2   bool
	Started StartedFunc
}

// Drive runs curl and checks each transfer against the recording.
func (c CurlProcess) Drive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording) error {
	return Curl{HTTP2: c.HTTP2}.drive(ctx, srv, rec, func(ctx context.Context, argv []string, dir string) ([]byte, error) {
		return runHeld(ctx, argv, nil, dir, nil, c.Started)
	})
}

// ProgramClient drives the recording with a client program that reads the
// interactions as JSON on stdin (testdata/ebpf: urllib_client.py,
// node/client.js, goclient) and prints one JSON reply per interaction.
type ProgramClient struct {
	// Argv is the program and its arguments.
	Argv []string
	Env  []string
	Dir  string
	// HTTP2 tells the program to speak h2 (Go) and is the protocol
	// version every reply must report.
	HTTP2 bool
	// Decodes says the client removes content codings it knows (fetch):
	// a reply body may then be the decoded recorded body.
	Decodes bool
	// Via names the SDK that re-issues an interaction ("" for a plain
	// request); the program must know the name.
	Via     func(in cassette.Interaction) string
	Started StartedFunc
}

// programSpec is what a client program reads on stdin.
type programSpec struct {
	Addr         string               `json:"addr"`
	CA           string               `json:"ca"`
	H2           bool                 `json:"h2"`
	Interactions []programInteraction `json:"interactions"`
}

type programInteraction struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Headers [][2]string `json:"headers"`
	Body    []byte      `json:"body"`
	Via     string      `json:"via,omitempty"`
}

// programReply is one line a client program prints.
type programReply struct {
	Status    int    `json:"status"`
	Version   string `json:"version"`
	Body      []byte `json:"body"`
	SDKEvents int    `json:"sdk_events"`
	SDKError  string `json:"sdk_error"`
}

// Drive runs the program and checks its replies against the recording.
func (p ProgramClient) Drive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording) error {
	if len(rec.Interactions) == 0 {
		return nil
	}
	sp := programSpec{Addr: srv.Addr, CA: srv.CAFile, H2: p.HTTP2}
	vias := make([]string, len(rec.Interactions))
	for i, in := range rec.Interactions {
		if p.Via != nil {
			vias[i] = p.Via(in)
		}
		sp.Interactions = append(sp.Interactions, programInteraction{
			Method:  in.Request.Method,
			URL:     httpsURL(in.Request.URL),
			Headers: headerPairs(recordedHeaders(in.Request.Header)),
			Body:    in.Request.Body,
			Via:     vias[i],
		})
	}
	stdin, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	out, runErr := runHeld(ctx, p.Argv, p.Env, p.Dir, stdin, p.Started)
	replies, perr := parseReplies(out)
	if runErr != nil {
		return fmt.Errorf("after %d of %d interactions: %w", len(replies), len(rec.Interactions), runErr)
	}
	if perr != nil {
		return perr
	}
	if len(replies) != len(rec.Interactions) {
		return fmt.Errorf("%s replied to %d interactions, want %d", filepath.Base(p.Argv[0]), len(replies), len(rec.Interactions))
	}
	wantVersion := "1.1"
	if p.HTTP2 {
		wantVersion = "2"
	}
	var errs []error
	for i, in := range rec.Interactions {
		var err error
		if vias[i] != "" {
			err = checkSDKReply(in, replies[i])
		} else {
			err = checkReply(in, replies[i], wantVersion, p.Decodes)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("interaction %d (%s %s): %w", i+1, in.Request.Method, in.Request.URL, err))
		}
	}
	return errors.Join(errs...)
}

// headerPairs flattens headers in a stable order.
func headerPairs(h http.Header) [][2]string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out [][2]string
	for _, k := range keys {
		for _, v := range h[k] {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

func parseReplies(out []byte) ([]programReply, error) {
	var replies []programReply
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r programReply
		if err := json.Unmarshal(line, &r); err != nil {
			return replies, fmt.Errorf("client printed a line that is not a reply: %q: %w", head(line), err)
		}
		replies = append(replies, r)
	}
	return replies, sc.Err()
}

func head(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

func recordedStatus(r cassette.Response) int {
	if r.Status == 0 {
		return http.StatusOK
	}
	return r.Status
}

// checkReply checks a plain reply: status, protocol version and body bytes
// (or, for a client that decodes content codings, the decoded body).
func checkReply(in cassette.Interaction, r programReply, wantVersion string, decodes bool) error {
	if want := recordedStatus(in.Response); r.Status != want {
		return fmt.Errorf("client got status %d, recorded %d", r.Status, want)
	}
	if r.Version != wantVersion {
		return fmt.Errorf("client spoke HTTP/%s, want HTTP/%s", r.Version, wantVersion)
	}
	if in.Request.Method == http.MethodHead || bytes.Equal(r.Body, in.Response.Body) {
		return nil
	}
	if enc := in.Response.Header.Get("Content-Encoding"); decodes && enc != "" {
		dec, _, err := content.Decode(enc, in.Response.Body, 256<<20, nil)
		if err == nil && bytes.Equal(r.Body, dec) {
			return nil
		}
	}
	return fmt.Errorf("client received %d body bytes that differ from the recorded %d (first difference at %d)",
		len(r.Body), len(in.Response.Body), firstDifference(r.Body, in.Response.Body))
}

// checkSDKReply checks what an SDK made of the reply: the recorded status
// as its API error for a failure, the recorded JSON for a plain response,
// events to the end of a stream.
func checkSDKReply(in cassette.Interaction, r programReply) error {
	want := recordedStatus(in.Response)
	if want >= 300 {
		if r.SDKError == "" {
			return fmt.Errorf("SDK call succeeded, recorded status %d", want)
		}
		if r.Status != want {
			return fmt.Errorf("SDK error has status %d, recorded %d (%s)", r.Status, want, r.SDKError)
		}
		return nil
	}
	var probe struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(in.Request.Body, &probe)
	recorded, err := decodedResponseBody(in.Response)
	if err != nil {
		return fmt.Errorf("recorded response: %w", err)
	}
	if probe.Stream {
		inBandError := bytes.Contains(recorded, []byte(`"error"`))
		switch {
		case r.SDKError != "" && !inBandError:
			return fmt.Errorf("SDK stream failed after %d events: %s", r.SDKEvents, r.SDKError)
		case r.SDKError == "" && r.SDKEvents == 0:
			return errors.New("SDK stream yielded no events")
		}
		return nil
	}
	if r.SDKError != "" {
		return fmt.Errorf("SDK call failed: %s", r.SDKError)
	}
	var got, wantJSON any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		return fmt.Errorf("SDK kept no JSON response: %w", err)
	}
	if err := json.Unmarshal(recorded, &wantJSON); err != nil {
		return fmt.Errorf("recorded response is not JSON: %w", err)
	}
	if !reflect.DeepEqual(got, wantJSON) {
		return errors.New("the response the SDK parsed differs from the recorded one")
	}
	return nil
}

// sdkInteractionApplies reports whether one interaction is an operation of
// eps an SDK can re-issue (see sdkApplies).
func sdkInteractionApplies(eps []sdkEndpoint, in cassette.Interaction) bool {
	return sdkApplies(eps, &cassette.Recording{Interactions: []cassette.Interaction{in}})
}

// openAIChatOnly and openAINodeOps are the operations the Go program's
// openai-go mode and the Node openai mode re-issue.
var (
	openAIChatOnly = []sdkEndpoint{{suffix: "chat/completions"}}
	openAINodeOps  = []sdkEndpoint{{suffix: "chat/completions"}, {suffix: "responses"}}
)

// GoProgramVia sends chat completions through openai-go and everything
// else through net/http.
func GoProgramVia(in cassette.Interaction) string {
	if sdkInteractionApplies(openAIChatOnly, in) {
		return "openai-go"
	}
	return ""
}

// NodeOpenAIApplies reports whether the Node openai mode can re-issue
// every interaction of rec.
func NodeOpenAIApplies(rec *cassette.Recording) bool { return sdkApplies(openAINodeOps, rec) }

// nodeOpenAIVia marks every interaction for the Node openai mode.
func nodeOpenAIVia(cassette.Interaction) string { return "openai-node" }

// ldSSL returns the libssl a dynamically linked file loads, from ldd. (ldd
// maps the file in a short-lived process under the capture; the capture
// attaches to a file first seen that way, and retries a failed attach on
// the file's next exec.)
func ldSSL(file string) (string, error) {
	out, err := exec.Command("ldd", file).Output()
	if err != nil {
		return "", fmt.Errorf("ldd %s: %w", file, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), " => ")
		if !ok || !strings.HasPrefix(name, "libssl.so") {
			continue
		}
		path, _, _ := strings.Cut(rest, " (")
		return filepath.EvalSymlinks(path)
	}
	return "", fmt.Errorf("%s does not load libssl", file)
}
