//go:build unix

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
)

// TestRecordReopensOnSIGHUP is logrotate's create mode: the event file is
// renamed away and record gets a real SIGHUP; the events before it are in
// the renamed file, those after in a new file at the --output path.
func TestRecordReopensOnSIGHUP(t *testing.T) {
	srv, rec := upstreamRepeated(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H2, 2)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out := filepath.Join(dir, "events.jsonl")
	cmd, client := startRecordProxy(t, srv, caDir, out)
	// The line is printed once record handles SIGHUP: before it the
	// signal would end the test binary.
	waitFor(t, cmd.stderr, regexp.MustCompile(`(SIGHUP reopens the file)`), cmd.done)
	replayThrough(t, client, rec, secret)
	waitForLines(t, out, 2) // within sink.TailLatency
	if err := os.Rename(out, out+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(out); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new %s after SIGHUP; stderr:\n%s", out, cmd.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	replayThrough(t, client, rec, secret)
	stopAndCheckReopened(t, cmd, out)
}

// TestRecordUnderLogrotate: the real logrotate, in its default create
// mode, renames the event file, creates a new one and sends record SIGHUP
// from its postrotate script; the events before are in events.jsonl.1, those
// after in the new events.jsonl, none lost or split.
func TestRecordUnderLogrotate(t *testing.T) {
	logrotate, err := exec.LookPath("logrotate")
	if err != nil {
		t.Skipf("logrotate is not installed (apt-get install logrotate; .ci/run installs it): %v", err)
	}
	srv, rec := upstreamRepeated(t, "openai/lcg-testclient-createchatcompletionstream", loopback.H2, 2)
	dir := t.TempDir()
	out := filepath.Join(dir, "events.jsonl")
	cmd, client := startRecordProxy(t, srv, filepath.Join(dir, "ca"), out, "-v")
	waitFor(t, cmd.stderr, regexp.MustCompile(`(SIGHUP reopens the file)`), cmd.done)
	replayThrough(t, client, rec, secret)
	waitForLines(t, out, 2)

	conf := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `%s {
    create 0600
    rotate 3
    postrotate
        kill -HUP %d
    endscript
}
`, out, os.Getpid()), 0o644); err != nil {
		t.Fatal(err)
	}
	lr := exec.Command(logrotate, "--force", "--state", filepath.Join(dir, "logrotate.state"), conf)
	if b, err := lr.CombinedOutput(); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, b)
	}
	// logrotate has created the new file already: record's log says when
	// it has it open.
	waitFor(t, cmd.stderr, regexp.MustCompile(`(event output reopened)`), cmd.done)
	replayThrough(t, client, rec, secret)
	stopAndCheckReopened(t, cmd, out)
}

// stopAndCheckReopened stops record and checks that the first call's two
// events are in out.1 (the file renamed away) and the second call's in the
// reopened out, each once.
func stopAndCheckReopened(t *testing.T, cmd *command, out string) {
	t.Helper()
	if code := cmd.stop(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, cmd.stderr.String())
	}
	if n := len(readEvents(t, out+".1")); n != 2 {
		t.Errorf("renamed file has %d events, want the first call's 2", n)
	}
	if n := len(readEvents(t, out)); n != 2 {
		t.Errorf("new file has %d events, want the second call's 2", n)
	}
	checkEventsOnce(t, []string{out + ".1", out}, 4)
}
