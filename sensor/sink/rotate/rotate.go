// Package rotate owns the file that record appends events to: a Writer
// that starts a new file when the current one would grow past a size,
// keeps the newest rotated files (optionally gzipped in the background),
// and reopens its path on request, as logrotate expects after renaming the
// file away (SIGHUP). It switches files only between lines, so a JSON-lines
// event is never split across two files, and a failure to switch (disk
// full, permissions) is logged and counted but never stops the writing:
// the events keep going to the file it has.
package rotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Counter tokens, counted through Config.Stats.
const (
	// TokenRotations counts files rotated away for their size.
	TokenRotations = "output.rotations"
	// TokenReopens counts reopens of the path (Reopen, and the retry
	// after a failed one).
	TokenReopens = "output.reopens"
	// TokenErrors counts failed rotations, reopens, removals and
	// compressions; each is also logged with what to do.
	TokenErrors = "output.rotate_errors"
	// TokenPruned counts rotated files removed beyond Config.Keep.
	TokenPruned = "output.pruned"
	// TokenCompressed counts rotated files gzipped.
	TokenCompressed = "output.compressed"
)

// Config says what a Writer writes and how it rotates.
type Config struct {
	// Path is the file written, in append mode; rotated files go beside
	// it as NAME-2026-11-30T14-05-00.000Z.EXT (the UTC time of rotation).
	Path string
	// MaxSize starts a new file when the next line would take the current
	// one past it; 0 never rotates by size. A line longer than MaxSize
	// goes whole into a file of its own.
	MaxSize int64
	// Keep is how many rotated files are kept: older ones are removed
	// after each rotation and at New. 0 keeps all.
	Keep int
	// Compress gzips rotated files in the background (NAME-STAMP.EXT.gz).
	// The uncompressed file is removed only once its .gz is complete on
	// disk, so a crash never loses it.
	Compress bool
	// Perm is the mode of new files; 0 means 0600, since events hold
	// prompts and responses.
	Perm fs.FileMode
	// RetryEvery is how long after a failed rotation or reopen the Writer
	// tries again; meanwhile it keeps appending to the file it has.
	// 0 means a minute.
	RetryEvery time.Duration
	// Stats counts rotations and failures (the Token constants); nil
	// discards.
	Stats stats.Recorder
	// Logger reports failures; nil discards.
	Logger *slog.Logger
}

// Writer appends to Config.Path and rotates it. It is safe for concurrent
// use; each Write is written whole before another starts, and the file is
// switched only after a newline, so writers that write whole lines (as
// sink.JSONL's buffer flushes do, in order) never see a line split.
type Writer struct {
	cfg   Config
	stats stats.Recorder
	log   *slog.Logger

	mu   sync.Mutex
	f    *os.File
	size int64
	// partial is the start of a line whose end has not been written yet:
	// it is held back so that the file always ends with a whole line, and
	// the decision to switch files knows the line's length.
	partial []byte
	// stale says f is no longer the file at Path (a reopen failed):
	// it is retried after nextTry.
	stale bool
	// detachedAs is the rotated name f has when a rotation could not open
	// the new file nor put the old one back: tidy must not touch it.
	detachedAs string
	// nextTry holds back size rotation and stale reopens after a failure.
	nextTry   time.Time
	lastStamp time.Time
	closed    bool

	kick chan struct{}
	done chan struct{}
}

// stampLayout names rotated files: fixed width, so that names sort in
// time order, and no colons, which some file systems refuse.
const stampLayout = "2006-01-02T15-04-05.000Z"

// New opens cfg.Path for appending, creating it (not its directory) if
// needed. With Keep or Compress set it starts the background tidying and
// applies it once to what an earlier run left.
func New(cfg Config) (*Writer, error) {
	if cfg.Path == "" {
		return nil, errors.New("rotate: no path")
	}
	if cfg.MaxSize < 0 || cfg.Keep < 0 {
		return nil, fmt.Errorf("rotate: negative size %d or keep %d", cfg.MaxSize, cfg.Keep)
	}
	if cfg.Perm == 0 {
		cfg.Perm = 0o600
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = time.Minute
	}
	w := &Writer{cfg: cfg, stats: cfg.Stats, log: cfg.Logger}
	if w.stats == nil {
		w.stats = stats.Discard{}
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	f, size, err := w.open()
	if err != nil {
		return nil, err
	}
	w.f, w.size = f, size
	if !endsWithNewline(f, size) {
		// An earlier run died mid-line: end the fragment, so that the
		// first event is a line of its own.
		if _, err := f.Write([]byte{'\n'}); err != nil {
			f.Close()
			return nil, fmt.Errorf("writing %s: %w", cfg.Path, err)
		}
		w.size++
	}
	if cfg.Keep > 0 || cfg.Compress {
		w.kick = make(chan struct{}, 1)
		w.done = make(chan struct{})
		w.kick <- struct{}{}
		go w.tidyLoop()
	}
	return w, nil
}

// open opens Path for appending and returns its current size.
func (w *Writer) open() (*os.File, int64, error) {
	f, err := os.OpenFile(w.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, w.cfg.Perm)
	if err != nil {
		return nil, 0, fmt.Errorf("opening %s: %w", w.cfg.Path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("opening %s: %w", w.cfg.Path, err)
	}
	return f, st.Size(), nil
}

// endsWithNewline reports whether a file of size bytes is empty or ends
// with a newline (an earlier run that died mid-line did not): appending
// after a partial line would glue the next event onto it.
func endsWithNewline(f *os.File, size int64) bool {
	if size == 0 {
		return true
	}
	var b [1]byte
	r, err := os.Open(f.Name())
	if err != nil {
		return true
	}
	defer r.Close()
	if _, err := r.ReadAt(b[:], size-1); err != nil {
		return true
	}
	return b[0] == '\n'
}

// Name returns the path written.
func (w *Writer) Name() string { return w.cfg.Path }

// Write appends p. Only whole lines reach the file: the end of p after its
// last newline is held until the newline comes (or Close). The file is
// switched only between lines: before a line that would take it past
// MaxSize, and at once on Reopen. Errors from switching are counted and
// logged, never returned; an error writing the file is.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	n := len(p)
	if len(w.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			return n, nil
		}
		w.partial = append(w.partial, p[:i+1]...)
		err := w.writeLines(w.partial)
		w.partial = w.partial[:0]
		if cap(w.partial) > 1<<20 { // do not keep a huge line's memory
			w.partial = nil
		}
		if err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	whole := p[:bytes.LastIndexByte(p, '\n')+1]
	if err := w.writeLines(whole); err != nil {
		return 0, err
	}
	w.partial = append(w.partial, p[len(whole):]...)
	return n, nil
}

// writeLines writes b, whole lines, switching files between them as due.
// w.mu is held.
func (w *Writer) writeLines(b []byte) error {
	for len(b) > 0 {
		w.maybeSwitch(b)
		chunk := b
		if limit := w.cfg.MaxSize; limit > 0 && w.size+int64(len(b)) > limit {
			// The whole lines that still fit, else the first line alone
			// (longer than the room left, or than MaxSize).
			room := min(max(limit-w.size, 0), int64(len(b)))
			if i := bytes.LastIndexByte(b[:room], '\n'); i >= 0 {
				chunk = b[:i+1]
			} else {
				chunk = b[:bytes.IndexByte(b, '\n')+1]
			}
		}
		n, err := w.f.Write(chunk)
		w.size += int64(n)
		if err != nil {
			return fmt.Errorf("writing %s: %w", w.f.Name(), err)
		}
		b = b[n:]
	}
	return nil
}

// maybeSwitch opens a new file when one is due before the next line of
// p: a retried reopen, or a rotation when the line would not fit. w.mu is
// held.
func (w *Writer) maybeSwitch(p []byte) {
	if w.cfg.MaxSize == 0 && !w.stale {
		return
	}
	if time.Now().Before(w.nextTry) {
		return
	}
	if w.stale {
		// The reopened file may itself be full (logrotate's copy, an
		// earlier run's): it is checked like any other.
		if w.reopenPath(); w.stale {
			return
		}
	}
	line := len(p)
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		line = i + 1
	}
	if w.cfg.MaxSize > 0 && w.size > 0 && w.size+int64(line) > w.cfg.MaxSize {
		w.rotate()
	}
}

// Reopen opens Path anew (after logrotate or a person renamed or removed
// it). The file holds only whole lines, so nothing is split; a line whose
// end has not come yet goes whole to the new file. If Path cannot be
// opened the events keep going to the old file; the failure is counted,
// logged, and retried every RetryEvery.
func (w *Writer) Reopen() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.reopenPath()
}

// reopenPath replaces f with a fresh open of Path. w.mu is held.
func (w *Writer) reopenPath() {
	f, size, err := w.open()
	if err != nil {
		w.stale = true
		w.nextTry = time.Now().Add(w.cfg.RetryEvery)
		w.failed("reopen", err, fmt.Sprintf("events keep going to the file already open; check that the directory of %s exists and is writable and has space (retrying every %s)",
			w.cfg.Path, w.cfg.RetryEvery))
		return
	}
	w.stats.Count(TokenReopens, 1)
	w.replace(f, size)
	w.stale = false
	w.log.Info("event output reopened", "path", w.cfg.Path, "size", size)
}

// replace makes f the file written, closing the old one. w.mu is held.
func (w *Writer) replace(f *os.File, size int64) {
	old := w.f
	w.f, w.size = f, size
	if err := old.Close(); err != nil {
		w.failed("close the previous file", err, "events written to it just before may be incomplete on disk; check the disk")
	}
	if w.detachedAs != "" {
		w.detachedAs = ""
		w.tidySoon()
	}
}

// rotate renames Path to a timestamped name and opens a new Path. A failure
// at any step leaves events going to the file already open. w.mu is held.
func (w *Writer) rotate() {
	name := w.rotatedName()
	if err := os.Rename(w.cfg.Path, name); err != nil {
		w.nextTry = time.Now().Add(w.cfg.RetryEvery)
		w.failed("rotate", err, fmt.Sprintf("events keep going to %s past --rotate-size; check that its directory is writable (retrying every %s)", w.cfg.Path, w.cfg.RetryEvery))
		return
	}
	f, size, err := w.open()
	if err != nil {
		w.nextTry = time.Now().Add(w.cfg.RetryEvery)
		hint := fmt.Sprintf("events keep going to %s past --rotate-size; check that the disk has space and the directory is writable (retrying every %s)", w.cfg.Path, w.cfg.RetryEvery)
		// Put the file back where readers (and the next try) expect it.
		if uerr := os.Rename(name, w.cfg.Path); uerr != nil {
			w.detachedAs = name
			w.stale = true
			hint = fmt.Sprintf("events keep going to %s, which could not be renamed back to %s (%v); check that the disk has space and the directory is writable (retrying every %s)",
				name, w.cfg.Path, uerr, w.cfg.RetryEvery)
		}
		w.failed("rotate", err, hint)
		return
	}
	w.stats.Count(TokenRotations, 1)
	w.replace(f, size)
	w.tidySoon()
}

// rotatedName returns an unused name for the file being rotated: the time
// of rotation, at least a millisecond after the previous one so that names
// from a fast run never collide.
func (w *Writer) rotatedName() string {
	t := time.Now().UTC().Truncate(time.Millisecond)
	if !t.After(w.lastStamp) {
		t = w.lastStamp.Add(time.Millisecond)
	}
	for {
		name := w.nameAt(t)
		if !exists(name) && !exists(name+".gz") && !exists(name+".gz.tmp") {
			w.lastStamp = t
			return name
		}
		t = t.Add(time.Millisecond)
	}
}

// exists reports whether name is there. Any error (the directory is gone)
// says no: the rename that follows then fails and reports it.
func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// nameAt is the rotated name for time t: the stamp goes before the
// extension so that tools that look for *.jsonl find rotated files too.
func (w *Writer) nameAt(t time.Time) string {
	base, ext := w.split()
	return filepath.Join(filepath.Dir(w.cfg.Path), base+"-"+t.Format(stampLayout)+ext)
}

// split returns Path's base name without its extension, and the extension.
func (w *Writer) split() (base, ext string) {
	b := filepath.Base(w.cfg.Path)
	ext = filepath.Ext(b)
	if ext == b { // ".jsonl" alone
		ext = ""
	}
	return b[:len(b)-len(ext)], ext
}

// failed logs and counts a failure to rotate, reopen or tidy.
func (w *Writer) failed(what string, err error, todo string) {
	w.stats.Count(TokenErrors, 1)
	w.log.Warn("event output: cannot "+what, "path", w.cfg.Path, "err", err, "todo", todo)
}

// Close writes a line left unended, closes the file and waits, until ctx
// ends, for the background compression and removal to finish (what is
// left then is finished by the next New on the same path). It returns the
// error of writing and closing the file. Writes after Close fail.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	var err error
	if len(w.partial) > 0 {
		// The caller never ended its last line: keep what it wrote.
		if _, werr := w.f.Write(w.partial); werr != nil {
			err = fmt.Errorf("writing %s: %w", w.cfg.Path, werr)
		}
		w.partial = nil
	}
	err = errors.Join(err, w.f.Close())
	if w.kick != nil {
		close(w.kick)
	}
	w.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("closing %s: %w", w.cfg.Path, err)
	}
	if w.done != nil {
		select {
		case <-w.done:
		case <-ctx.Done():
			// Not an error: a compression cut short (by the process
			// exiting) leaves the uncompressed file, and the next run
			// finishes the work.
			w.log.Info("event output: rotated files not all compressed or removed yet; the next run finishes them", "path", w.cfg.Path)
		}
	}
	return err
}
