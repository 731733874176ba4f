//go:build linux

package main

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/linuxcompat"
	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
)

// needEBPF skips a test when eBPF capture cannot run here, or fails it
// when OISP_REQUIRE_EBPF=1 (CI, as root) says it must.
func needEBPF(t *testing.T) {
	t.Helper()
	if linuxcompat.Available() {
		return
	}
	if os.Getenv("OISP_REQUIRE_EBPF") == "1" {
		t.Fatal("eBPF capture is not available here, and OISP_REQUIRE_EBPF=1 requires it")
	}
	t.Skip("eBPF capture is not available (needs root on Linux >= 5.17 with BTF)")
}

var ebpfAttachedLine = regexp.MustCompile(`eBPF capture attached to (\d+) TLS libraries`)

// TestRecordEBPFFilteredByExecutable runs the main job as a Linux user
// would (`sudo oisp-sensor record`), limited with --exe to one client:
// curl from a copy of its binary makes a recorded chat request to a local
// TLS server and record writes its ai.request and ai.response, attributed
// to that process, next to its process.exec; the same request from the
// system curl leaves nothing.
func TestRecordEBPFFilteredByExecutable(t *testing.T) {
	needEBPF(t)
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	rec, err := cassette.ReadFile(filepath.Join("..", "..", "..", "fixtures", "openai", "lcg-testllmchain", "cassette.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in := rec.Interactions[0]
	rec.Interactions = append(rec.Interactions, in) // one for each curl
	srv, err := loopback.Start(rec, loopback.H1, discard{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	raw, err := os.ReadFile(curl)
	if err != nil {
		t.Fatal(err)
	}
	agent := filepath.Join(dir, "agent-curl")
	if err := os.WriteFile(agent, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	body := filepath.Join(dir, "body.json")
	if err := os.WriteFile(body, in.Request.Body, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "events.jsonl")
	cmd := start(t, "record", "--ebpf", "on", "--no-socket", "--exe", agent, "--no-file-events",
		"--output", out, "--summary-every", "0")
	waitFor(t, cmd.stderr, ebpfAttachedLine, cmd.done)

	const cmdSecret = "sk-proj-recordebpf0123456789abcdef"
	chat := func(bin string) int {
		t.Helper()
		c := exec.Command(bin, "-sS", "--fail", "--http1.1", "--cacert", srv.CAFile,
			"--connect-to", "api.openai.com:443:"+srv.Addr, "-H", "Content-Type: application/json",
			"-H", "Authorization: Bearer "+cmdSecret, "--data-binary", "@"+body, "https://api.openai.com/v1/chat/completions")
		got, err := c.Output()
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(bin), err)
		}
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(in.Response.Body)) {
			t.Fatalf("%s got %q", filepath.Base(bin), got)
		}
		return c.Process.Pid
	}
	other := chat(curl)
	mine := chat(agent)

	// Events are written as flows close; give the reader a moment, then
	// stop record the way a user does, which flushes what is in flight.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(out); bytes.Contains(b, []byte(`"ai.response"`)) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("record exited %d:\n%s", code, cmd.stderr.String())
	}

	raw, err = os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(cmdSecret)) {
		t.Errorf("the output carries the credential given on curl's command line")
	}
	seen := map[string]int{}
	for _, ev := range readEvents(t, out) {
		proc, _ := ev["process"].(map[string]any)
		pid, _ := proc["pid"].(float64)
		typ := ev["event_type"].(string)
		switch int(pid) {
		case other:
			t.Errorf("the unfiltered curl (pid %d) produced %s", other, typ)
		case mine:
			if proc["exe"] != agent {
				t.Errorf("%s from pid %d names exe %v, want %q", typ, mine, proc["exe"], agent)
			}
			if strings.HasPrefix(typ, "ai.") {
				data, _ := ev["data"].(map[string]any)
				if model, _ := data["model"].(map[string]any); model["id"] == nil {
					t.Errorf("%s names no model", typ)
				}
			}
			seen[typ]++
		}
	}
	for _, want := range []string{"ai.request", "ai.response", "process.exec"} {
		if seen[want] != 1 {
			t.Errorf("%d %s events from the filtered curl (pid %d), want 1; all: %v\nstderr:\n%s", seen[want], want, mine, seen, cmd.stderr.String())
		}
	}
}
