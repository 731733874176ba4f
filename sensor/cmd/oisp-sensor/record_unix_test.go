//go:build unix

package main

import (
	"os"
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
