package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/cassette"
)

// NodeSDK drives a recording through the official Node.js SDK (openai or
// @anthropic-ai/sdk from the repository's package-lock.json) in a node
// process that reaches the provider through the capture proxy with only
// HTTPS_PROXY and NODE_EXTRA_CA_CERTS, as a Node application would
// (conformance/node/replay.mjs).
type NodeSDK struct {
	Anthropic bool
}

// repoRoot is the module root (where package.json and node_modules are).
func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ".."
	}
	return filepath.Dir(filepath.Dir(file))
}

// NodeMissing returns why the Node.js SDK paths cannot run, or "".
func NodeMissing() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	root := repoRoot()
	for _, pkg := range []string{"openai", "@anthropic-ai/sdk", "undici"} {
		if _, err := os.Stat(filepath.Join(root, "node_modules", pkg, "package.json")); err != nil {
			return "node_modules lacks " + pkg + ": run `npm ci` at the repository root (package-lock.json pins the SDKs)"
		}
	}
	return ""
}

// Applies reports whether the SDK can re-issue every request of rec.
func (n NodeSDK) Applies(rec *cassette.Recording) bool {
	eps := openAIEndpoints
	applies := OpenAISDK{}.Applies(rec)
	if n.Anthropic {
		eps, applies = anthropicEndpoints, AnthropicSDK{}.Applies(rec)
	}
	if !applies {
		return false
	}
	// The Go SDKs reach a few legacy operations the npm SDKs no longer
	// have (@anthropic-ai/sdk dropped /v1/complete).
	for _, in := range rec.Interactions {
		if ep, _, ok := endpointFor(eps, in); !ok || nodeOps[ep.suffix] == "" {
			return false
		}
	}
	return true
}

// nodeJob is the file replay.mjs reads.
type nodeJob struct {
	SDK   string     `json:"sdk"`
	Calls []nodeCall `json:"calls"`
}

type nodeCall struct {
	Op          string              `json:"op"`
	Base        string              `json:"base"`
	Body        string              `json:"body"`
	Query       map[string]string   `json:"query,omitempty"`
	Headers     map[string]string   `json:"headers,omitempty"`
	Credentials map[string][]string `json:"credentials,omitempty"`
	Status      int                 `json:"status"`
	Response    string              `json:"response"`
}

// nodeOps names the replay.mjs operation for each endpoint the npm SDKs
// re-issue.
var nodeOps = map[string]string{"chat/completions": "chat", "completions": "completions", "responses": "responses", "embeddings": "embeddings", "v1/messages": "messages"}

func (n NodeSDK) job(rec *cassette.Recording) (*nodeJob, error) {
	eps, sdk := openAIEndpoints, "openai"
	if n.Anthropic {
		eps, sdk = anthropicEndpoints, "anthropic"
	}
	job := &nodeJob{SDK: sdk}
	for i, in := range rec.Interactions {
		ep, basePath, ok := endpointFor(eps, in)
		if !ok {
			return nil, fmt.Errorf("interaction %d (%s %s): not an operation the %s SDK re-issues", i+1, in.Request.Method, in.Request.URL, sdk)
		}
		u, err := url.Parse(httpsURL(in.Request.URL))
		if err != nil {
			return nil, err
		}
		resp, err := decodedResponseBody(in.Response)
		if err != nil {
			return nil, fmt.Errorf("interaction %d: recorded response: %w", i+1, err)
		}
		call := nodeCall{
			Op:       nodeOps[ep.suffix],
			Base:     u.Scheme + "://" + u.Host + basePath,
			Body:     string(in.Request.Body),
			Status:   in.Response.Status,
			Response: string(resp),
		}
		if call.Status == 0 {
			call.Status = 200
		}
		for k, vs := range u.Query() {
			if call.Query == nil {
				call.Query = map[string]string{}
			}
			call.Query[k] = vs[0]
		}
		h := recordedHeaders(in.Request.Header)
		for _, k := range credentialHeaders {
			if vs, ok := h[k]; ok {
				if call.Credentials == nil {
					call.Credentials = map[string][]string{}
				}
				call.Credentials[k] = vs
			}
			h.Del(k)
		}
		h.Del("Content-Type")
		h.Del("Accept-Encoding")
		for k, vs := range h {
			if call.Headers == nil {
				call.Headers = map[string]string{}
			}
			call.Headers[k] = strings.Join(vs, ", ")
		}
		job.Calls = append(job.Calls, call)
	}
	return job, nil
}

// DriveProxy runs node with the recording's calls through the rig's proxy.
func (n NodeSDK) DriveProxy(ctx context.Context, rig *ProxyRig, rec *cassette.Recording) error {
	if why := NodeMissing(); why != "" {
		return fmt.Errorf("node SDK driver: %s", why)
	}
	job, err := n.job(rec)
	if err != nil {
		return err
	}
	b, err := json.Marshal(job)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "oisp-node-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	jobFile := filepath.Join(dir, "job.json")
	if err := os.WriteFile(jobFile, b, 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	root := repoRoot()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(root, "conformance", "node", "replay.mjs"), jobFile)
	cmd.Dir = root
	// Only the standard settings a user would give a Node program: the
	// proxy and the extra CA. Nothing else from the test's environment
	// (a developer's own proxy variables) leaks in.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"HTTPS_PROXY=" + rig.URL,
		"HTTP_PROXY=" + rig.URL,
		"NODE_EXTRA_CA_CERTS=" + rig.CAFile,
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("node %s SDK: %w: %s", job.SDK, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
