package rotate_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/sink/rotate"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// rotatedName matches the names the writer gives rotated files of
// events.jsonl.
var rotatedName = regexp.MustCompile(`^events-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.jsonl(\.gz)?$`)

// rotated returns the rotated files of dir/events.jsonl, oldest first.
func rotated(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if rotatedName.MatchString(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// readFile returns a file's content, gunzipped if it is a .gz.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return b
}

// allLines returns the lines of the rotated files (oldest first) and then
// of the current file, failing if any file does not end with a newline
// (a line split across files) or exceeds limit (0: no limit).
func allLines(t *testing.T, dir string, limit int) []string {
	t.Helper()
	var lines []string
	for _, p := range append(rotated(t, dir), filepath.Join(dir, "events.jsonl")) {
		b := readFile(t, p)
		if len(b) == 0 {
			continue
		}
		if b[len(b)-1] != '\n' {
			t.Errorf("%s ends mid-line: %q", filepath.Base(p), tail(b))
		}
		if limit > 0 && len(b) > limit && bytes.Count(b, []byte("\n")) > 1 {
			t.Errorf("%s has %d bytes in %d lines, over the limit %d", filepath.Base(p), len(b), bytes.Count(b, []byte("\n")), limit)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	return lines
}

func tail(b []byte) []byte {
	if len(b) > 40 {
		return b[len(b)-40:]
	}
	return b
}

func newWriter(t *testing.T, cfg rotate.Config) *rotate.Writer {
	t.Helper()
	w, err := rotate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if n, err := io.WriteString(w, s); err != nil || n != len(s) {
		t.Fatalf("write %q: %d, %v", s, n, err)
	}
}

// line returns the i-th 10-byte test line.
func line(i int) string { return fmt.Sprintf("line-%04d\n", i) }

// TestRotatesAtTheBoundary: a file may reach MaxSize exactly; the line that
// would take it past goes to a new file, and the full one keeps its name
// with the time of rotation.
func TestRotatesAtTheBoundary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	st := &stats.Counters{}
	w := newWriter(t, rotate.Config{Path: path, MaxSize: 100, Stats: st})
	for i := range 10 {
		write(t, w, line(i))
	}
	if got := rotated(t, dir); len(got) != 0 {
		t.Fatalf("rotated at exactly MaxSize: %v", got)
	}
	write(t, w, line(10))
	got := rotated(t, dir)
	if len(got) != 1 {
		t.Fatalf("rotated files %v, want 1", got)
	}
	if b := readFile(t, got[0]); len(b) != 100 || !strings.HasPrefix(string(b), line(0)) {
		t.Errorf("rotated file has %d bytes: %q", len(b), b)
	}
	if b := readFile(t, path); string(b) != line(10) {
		t.Errorf("new file %q", b)
	}
	if n := st.Snapshot()[rotate.TokenRotations]; n != 1 {
		t.Errorf("%s = %d", rotate.TokenRotations, n)
	}
	// One Write holding several lines is split between the files at the
	// last line that fits.
	write(t, w, strings.Repeat("x", 85)+"\n"+"yy\n"+"zz\n")
	if b := readFile(t, path); string(b) != "zz\n" {
		t.Errorf("after a multi-line write the new file holds %q", b)
	}
	if n := len(rotated(t, dir)); n != 2 {
		t.Errorf("%d rotated files, want 2", n)
	}
	// A line longer than MaxSize is written whole, alone.
	write(t, w, strings.Repeat("L", 250)+"\n")
	write(t, w, "after\n")
	if b := readFile(t, path); string(b) != "after\n" {
		t.Errorf("after a long line the new file holds %q", b)
	}
	lines := allLines(t, dir, 100)
	if len(lines) != 16 || lines[15] != "after" || len(lines[14]) != 250 {
		t.Errorf("lines %q", lines)
	}
}

// TestKeepsExactlyN: after many rotations exactly Keep rotated files
// remain, the newest, and with the current file they hold the last lines
// written without a gap.
func TestKeepsExactlyN(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	// Files that only look alike are never removed.
	for _, name := range []string{"events-old.jsonl", "events-2026-11-30T14-05-00.000Z.json", "other-2026-11-30T14-05-00.000Z.jsonl"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("keep me\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st := &stats.Counters{}
	w, err := rotate.New(rotate.Config{Path: path, MaxSize: 50, Keep: 3, Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		write(t, w, line(i))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Close waited for the removal of the older files.
	got := rotated(t, dir)
	if len(got) != 3 {
		t.Fatalf("%d rotated files kept, want 3: %v", len(got), got)
	}
	lines := allLines(t, dir, 50)
	for i, l := range lines {
		if want := strings.TrimSuffix(line(n-len(lines)+i), "\n"); l != want {
			t.Fatalf("line %d is %q, want %q (kept: %q)", i, l, want, lines)
		}
	}
	if len(lines) != 20 { // 3 full files of 5 lines, and the current one
		t.Errorf("%d lines kept: %q", len(lines), lines)
	}
	snap := st.Snapshot()
	if snap[rotate.TokenRotations] != n/5-1 || snap[rotate.TokenPruned] != n/5-1-3 || snap[rotate.TokenErrors] != 0 {
		t.Errorf("counters %v", snap)
	}
	for _, name := range []string{"events-old.jsonl", "events-2026-11-30T14-05-00.000Z.json", "other-2026-11-30T14-05-00.000Z.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("a file that is not a rotated one was touched: %v", err)
		}
	}
}

// TestConcurrentWritersNeverSplitOrLose: goroutines write whole lines of
// varying length, some several at once, through many rotations; every line
// is in exactly one file, whole, and no file passes the limit.
func TestConcurrentWritersNeverSplitOrLose(t *testing.T) {
	dir := t.TempDir()
	const limit = 1000
	w := newWriter(t, rotate.Config{Path: filepath.Join(dir, "events.jsonl"), MaxSize: limit})
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := 0; i < each; {
				var b strings.Builder
				// 1 to 3 lines per write, 12 to 170 bytes each.
				for k := 0; k <= i%3 && i < each; k++ {
					fmt.Fprintf(&b, "g%d-i%d-%s\n", g, i, strings.Repeat("p", (i*37+g)%160))
					i++
				}
				if _, err := io.WriteString(w, b.String()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkEveryLineOnce(t, allLines(t, dir, limit), writers, each)
	if n := len(rotated(t, dir)); n < 100 {
		t.Errorf("only %d rotations", n)
	}
}

func checkEveryLineOnce(t *testing.T, lines []string, writers, each int) {
	t.Helper()
	seen := map[string]int{}
	for _, l := range lines {
		id, _, _ := strings.Cut(l, "-p")
		id = strings.TrimRight(id, "p-")
		seen[id]++
	}
	for g := range writers {
		for i := range each {
			if id := fmt.Sprintf("g%d-i%d", g, i); seen[id] != 1 {
				t.Errorf("line %s written %d times", id, seen[id])
			}
		}
	}
	if len(lines) != writers*each {
		t.Errorf("%d lines, want %d", len(lines), writers*each)
	}
}

// TestBufferedChunksSplitLines: a buffered writer (as sink.JSONL uses)
// flushes chunks that end mid-line; the file is still switched only
// between lines.
func TestBufferedChunksSplitLines(t *testing.T) {
	dir := t.TempDir()
	const limit = 300
	w := newWriter(t, rotate.Config{Path: filepath.Join(dir, "events.jsonl"), MaxSize: limit})
	bw := bufio.NewWriterSize(w, 37) // a size no line length divides
	for i := range 400 {
		fmt.Fprintf(bw, "g0-i%d-%s\n", i, strings.Repeat("p", i%90))
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	checkEveryLineOnce(t, allLines(t, dir, limit), 1, 400)
}

// TestReopenAfterRename is logrotate's create mode: the file is renamed
// away, Reopen (SIGHUP) starts a new one at the path, and a line in
// progress goes whole to the new file.
func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	st := &stats.Counters{}
	w := newWriter(t, rotate.Config{Path: path, Stats: st})
	write(t, w, "one\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, w, "two\nthr")
	w.Reopen()
	write(t, w, "ee\nfour\n")
	if b := readFile(t, path+".1"); string(b) != "one\ntwo\n" {
		t.Errorf("renamed file %q", b)
	}
	if b := readFile(t, path); string(b) != "three\nfour\n" {
		t.Errorf("reopened file %q", b)
	}
	// Reopen with nothing renamed appends to the same file.
	w.Reopen()
	write(t, w, "five\n")
	if b := readFile(t, path); string(b) != "three\nfour\nfive\n" {
		t.Errorf("file after a second reopen %q", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v, want 0600", fi.Mode(), err)
	}
	if n := st.Snapshot()[rotate.TokenReopens]; n != 2 {
		t.Errorf("%s = %d", rotate.TokenReopens, n)
	}
}

// breakDir replaces dir by a file (root ignores permissions, so this is
// the failure tests can cause), keeping its content aside; the returned
// func puts it back.
func breakDir(t *testing.T, dir string) (restore func()) {
	t.Helper()
	if err := os.Rename(dir, dir+".aside"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dir+".aside", dir); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRotateFailureKeepsWriting: when the file cannot be rotated the
// events keep going to it, the failure is counted, and rotation resumes
// once the directory is back.
func TestRotateFailureKeepsWriting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := &stats.Counters{}
	w := newWriter(t, rotate.Config{Path: filepath.Join(dir, "events.jsonl"), MaxSize: 50, RetryEvery: time.Nanosecond, Stats: st})
	i := 0
	for ; i < 12; i++ {
		write(t, w, line(i))
	}
	restore := breakDir(t, dir)
	for ; i < 40; i++ {
		write(t, w, line(i))
	}
	if n := st.Snapshot()[rotate.TokenErrors]; n == 0 {
		t.Error("failed rotations not counted")
	}
	restore()
	for ; i < 60; i++ {
		write(t, w, line(i))
	}
	lines := allLines(t, dir, 0)
	if len(lines) != 60 {
		t.Fatalf("%d lines, want 60: %q", len(lines), lines)
	}
	for k, l := range lines {
		if l != strings.TrimSuffix(line(k), "\n") {
			t.Fatalf("line %d is %q", k, l)
		}
	}
	if b := readFile(t, filepath.Join(dir, "events.jsonl")); len(b) > 50 {
		t.Errorf("rotation did not resume: the current file has %d bytes", len(b))
	}
}

// TestReopenFailureKeepsWriting: a reopen that cannot create the file
// leaves the events going to the old one, and is retried.
func TestReopenFailureKeepsWriting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.jsonl")
	st := &stats.Counters{}
	w := newWriter(t, rotate.Config{Path: path, RetryEvery: time.Nanosecond, Stats: st})
	write(t, w, "one\n")
	restore := breakDir(t, dir)
	w.Reopen()
	write(t, w, "two\n")
	if n := st.Snapshot()[rotate.TokenErrors]; n < 2 {
		t.Errorf("%s = %d, want the reopen and its retry", rotate.TokenErrors, n)
	}
	restore()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(t, w, "three\n")
	if b := readFile(t, path+".1"); string(b) != "one\ntwo\n" {
		t.Errorf("old file %q", b)
	}
	if b := readFile(t, path); string(b) != "three\n" {
		t.Errorf("retried reopen: file %q", b)
	}
}

// TestCompress: rotated files are gzipped in the background, the originals
// removed, and Keep counts the compressed ones.
func TestCompress(t *testing.T) {
	dir := t.TempDir()
	st := &stats.Counters{}
	w, err := rotate.New(rotate.Config{Path: filepath.Join(dir, "events.jsonl"), MaxSize: 100, Keep: 4, Compress: true, Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		write(t, w, line(i))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rotated(t, dir)
	if len(got) != 4 {
		t.Fatalf("rotated files %v, want 4", got)
	}
	for _, p := range got {
		if !strings.HasSuffix(p, ".gz") {
			t.Errorf("%s not compressed", p)
		}
	}
	lines := allLines(t, dir, 100)
	for i, l := range lines {
		if want := strings.TrimSuffix(line(n-len(lines)+i), "\n"); l != want {
			t.Fatalf("line %d is %q, want %q", i, l, want)
		}
	}
	if len(lines) != 50 { // 4 files of 10 lines, and the current one
		t.Errorf("%d lines kept", len(lines))
	}
	if snap := st.Snapshot(); snap[rotate.TokenCompressed] == 0 || snap[rotate.TokenErrors] != 0 {
		t.Errorf("counters %v", snap)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestCompressAfterACrash: what a crash in the middle of a compression
// leaves (the original and a partial .gz.tmp) is finished by the next run;
// the original is never lost.
func TestCompressAfterACrash(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "events-2026-11-30T14-05-00.000Z.jsonl")
	content := strings.Repeat("an event line\n", 100)
	if err := os.WriteFile(orig, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orig+".gz.tmp", []byte("\x1f\x8b partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	// And one whose .gz was complete when the crash came before the
	// original was removed.
	done := filepath.Join(dir, "events-2026-11-30T14-06-00.000Z.jsonl")
	if err := os.WriteFile(done, []byte("done\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("done\n"))
	zw.Close()
	if err := os.WriteFile(done+".gz", gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := rotate.New(rotate.Config{Path: filepath.Join(dir, "events.jsonl"), Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rotated(t, dir)
	if len(got) != 2 || got[0] != orig+".gz" || got[1] != done+".gz" {
		t.Fatalf("rotated files %v", got)
	}
	if b := readFile(t, orig+".gz"); string(b) != content {
		t.Errorf("recompressed content %d bytes, want %d", len(b), len(content))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestAppendsAfterAPartialLine: a file an earlier run left mid-line gets a
// newline first, so the next event is not glued onto the fragment.
func TestAppendsAfterAPartialLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(path, []byte("whole\n{\"cut"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, rotate.Config{Path: path})
	write(t, w, "{}\n")
	if b := readFile(t, path); string(b) != "whole\n{\"cut\n{}\n" {
		t.Errorf("file %q", b)
	}
}

func TestWriteAfterCloseFails(t *testing.T) {
	w, err := rotate.New(rotate.Config{Path: filepath.Join(t.TempDir(), "events.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x\n")); err == nil {
		t.Error("write after Close succeeded")
	}
	w.Reopen() // does nothing, does not panic
}

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []rotate.Config{
		{},
		{Path: filepath.Join(dir, "e.jsonl"), MaxSize: -1},
		{Path: filepath.Join(dir, "e.jsonl"), Keep: -1},
		{Path: filepath.Join(dir, "missing", "e.jsonl")},
	} {
		if w, err := rotate.New(cfg); err == nil {
			w.Close(context.Background())
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestUnendedLine: the end of a write after its last newline reaches the
// file only with its newline, or at Close.
func TestUnendedLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := rotate.New(rotate.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, "a\nb")
	if b := readFile(t, path); string(b) != "a\n" {
		t.Errorf("file %q before the newline", b)
	}
	write(t, w, "c")
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := readFile(t, path); string(b) != "a\nbc" {
		t.Errorf("file %q after Close", b)
	}
}
