//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// runShortLived runs the Go test client without arguments: it panics and
// exits within milliseconds, long before a 2 MB binary is inspected.
func runShortLived(t *testing.T, bin string) {
	t.Helper()
	if err := exec.Command(bin).Run(); err == nil {
		t.Fatalf("%s without arguments exited 0, want a crash", bin)
	}
}

func attachmentOf(src *Source, ino uint64) (Attachment, bool) {
	for _, a := range src.Attachments() {
		if a.Inode == ino {
			return a, true
		}
	}
	return Attachment{}, false
}

func mustInode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return inodeOf(fi)
}

// TestAttachBinaryFirstSeenInShortLivedProcess: a new Go binary whose first
// process is gone before the attacher gets to it is still attached (the
// file is held open while it is inspected and probed), and its next
// process is captured.
func TestAttachBinaryFirstSeenInShortLivedProcess(t *testing.T) {
	bin := buildGoClient(t, false)
	srv := newTLSServer(t, false)
	src, rec := startSource(t, Config{})
	runShortLived(t, bin)
	a := waitAttached(t, src, bin)
	if a.Attempts != 1 {
		t.Errorf("attached after %d attempts, want 1", a.Attempts)
	}
	body := []byte(`{"model":"retry-model","input":"after a short-lived first run"}`)
	cmd, release := runGoClient(t, bin, srv.URL+"/after", srv.caFile, body)
	if out := release(); !bytes.Equal(out, responseFor("POST", "/after", body)) {
		t.Fatalf("client got %q", out)
	}
	checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/after", body)
}

// faultyAttach fails the attach of one inode the first failures times.
type faultyAttach struct {
	ino      uint64
	failures int

	mu    sync.Mutex
	calls int
}

func (f *faultyAttach) fault(r attachReq) error {
	if r.ino != f.ino {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failures {
		return errors.New("injected attach failure")
	}
	return nil
}

func (f *faultyAttach) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestAttachRetriedOnNextExec: an attach that fails (as the kernel may
// refuse one) is tried again when the binary next executes, and that
// process is captured.
func TestAttachRetriedOnNextExec(t *testing.T) {
	bin := buildGoClient(t, false)
	srv := newTLSServer(t, false)
	ino := mustInode(t, bin)
	fa := &faultyAttach{ino: ino, failures: 1}
	src, rec := startSourceWith(t, Config{}, func(s *Source) { s.attachFault = fa.fault })

	runShortLived(t, bin)
	waitFor(t, "the failed attach", 30e9, func() bool {
		a, ok := attachmentOf(src, ino)
		return ok && a.Status == Failed
	})
	if a, _ := attachmentOf(src, ino); a.Attempts != 1 || a.Reason != "injected attach failure" {
		t.Errorf("after the first exec: %+v", a)
	}

	body := []byte(`{"model":"retry-model","input":"second exec"}`)
	cmd, release := runGoClient(t, bin, srv.URL+"/retry", srv.caFile, body)
	waitFor(t, "the retried attach", 30e9, func() bool {
		a, _ := attachmentOf(src, ino)
		return a.Status == Attached
	})
	a, _ := attachmentOf(src, ino)
	if a.Attempts != 2 {
		t.Errorf("attached after %d attempts, want 2", a.Attempts)
	}
	if n := len(src.Attachments()); n != len(dedupeAttachments(src.Attachments())) {
		t.Errorf("the attach report lists a file twice (%d records)", n)
	}
	if out := release(); !bytes.Equal(out, responseFor("POST", "/retry", body)) {
		t.Fatalf("client got %q", out)
	}
	checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/retry", body)
}

func dedupeAttachments(as []Attachment) map[fileID]bool {
	out := map[fileID]bool{}
	for _, a := range as {
		out[fileID{a.Dev, a.Inode}] = true
	}
	return out
}

// TestAttachRetriesBounded: a file whose attach always fails is tried
// maxAttachTries times, then left alone however often it runs.
func TestAttachRetriesBounded(t *testing.T) {
	bin := buildGoClient(t, false)
	marker := buildGoClient(t, true) // a second binary, to sequence the attacher
	ino := mustInode(t, bin)
	fa := &faultyAttach{ino: ino, failures: 1 << 30}
	src, _ := startSourceWith(t, Config{}, func(s *Source) { s.attachFault = fa.fault })

	for i := 1; i <= maxAttachTries; i++ {
		runShortLived(t, bin)
		waitFor(t, "attach attempt", 30e9, func() bool { return fa.attempts() >= i })
	}
	for range 2 {
		runShortLived(t, bin)
	}
	// The attacher handles requests in order: once the marker binary,
	// executed after them, is attached, the extra executions were seen.
	runShortLived(t, marker)
	waitAttached(t, src, marker)
	if got := fa.attempts(); got != maxAttachTries {
		t.Errorf("%d attach attempts, want %d", got, maxAttachTries)
	}
	a, _ := attachmentOf(src, ino)
	if a.Status != Failed || a.Attempts != maxAttachTries {
		t.Errorf("attachment = %+v, want failed after %d attempts", a, maxAttachTries)
	}
	if got := src.Stats().AttachFailures; got != int64(maxAttachTries) {
		t.Errorf("AttachFailures = %d, want %d", got, maxAttachTries)
	}
}
