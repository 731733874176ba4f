package rotate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// rotatedFile is one rotated file on disk, in any of its forms.
type rotatedFile struct {
	plain string // NAME-STAMP.EXT
	stamp string
	// hasPlain, hasGz and hasTmp say which of plain, plain.gz and
	// plain.gz.tmp (a compression in progress or cut short) exist.
	hasPlain, hasGz, hasTmp bool
}

// tidySoon wakes the background tidying without waiting for it.
func (w *Writer) tidySoon() {
	if w.kick == nil {
		return
	}
	select {
	case w.kick <- struct{}{}:
	default: // a tidy is already due; it will see this file too
	}
}

// tidyLoop compresses and removes rotated files, off the write path.
func (w *Writer) tidyLoop() {
	defer close(w.done)
	for range w.kick {
		w.tidy()
	}
}

// tidy removes rotated files beyond Keep (oldest first) and compresses the
// rest when Compress is set.
func (w *Writer) tidy() {
	files, err := w.rotatedFiles()
	if err != nil {
		w.failed("list rotated files", err, "old rotated files are not removed or compressed; check that the directory is readable")
		return
	}
	if k := w.cfg.Keep; k > 0 && len(files) > k {
		for _, rf := range files[:len(files)-k] {
			if w.remove(rf) {
				w.stats.Count(TokenPruned, 1)
			}
		}
		files = files[len(files)-k:]
	}
	if !w.cfg.Compress {
		return
	}
	for _, rf := range files {
		switch {
		case rf.hasPlain && rf.hasGz:
			// A compression finished but the original was not removed
			// yet: the .gz is complete (it is renamed into place only
			// once synced).
			w.removeIfIdle(rf.plain)
		case rf.hasPlain:
			w.compress(rf.plain)
		case rf.hasTmp:
			// The original is gone and the .gz is there or not:
			// nothing to finish.
			w.removeIfIdle(rf.plain + ".gz.tmp")
		}
	}
}

// rotatedFiles lists this Path's rotated files, oldest first. Only names
// that parse as NAME-STAMP.EXT[.gz[.tmp]] are considered: other files in
// the directory are never touched.
func (w *Writer) rotatedFiles() ([]rotatedFile, error) {
	dir := filepath.Dir(w.cfg.Path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	base, ext := w.split()
	byStamp := map[string]*rotatedFile{}
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, base+"-")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		form := 0
		switch {
		case strings.HasSuffix(rest, ext+".gz.tmp"):
			rest, form = strings.TrimSuffix(rest, ext+".gz.tmp"), 2
		case strings.HasSuffix(rest, ext+".gz"):
			rest, form = strings.TrimSuffix(rest, ext+".gz"), 1
		case strings.HasSuffix(rest, ext):
			rest = strings.TrimSuffix(rest, ext)
		default:
			continue
		}
		if _, err := time.Parse(stampLayout, rest); err != nil || len(rest) != len(stampLayout) {
			continue
		}
		rf := byStamp[rest]
		if rf == nil {
			rf = &rotatedFile{plain: filepath.Join(dir, base+"-"+rest+ext), stamp: rest}
			byStamp[rest] = rf
		}
		switch form {
		case 0:
			rf.hasPlain = true
		case 1:
			rf.hasGz = true
		case 2:
			rf.hasTmp = true
		}
	}
	files := make([]rotatedFile, 0, len(byStamp))
	for _, rf := range byStamp {
		files = append(files, *rf)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].stamp < files[j].stamp })
	return files, nil
}

// remove deletes every form of rf, unless it is the file being written.
func (w *Writer) remove(rf rotatedFile) bool {
	ok := true
	for _, p := range []string{rf.plain, rf.plain + ".gz", rf.plain + ".gz.tmp"} {
		if !w.removeIfIdle(p) {
			ok = false
		}
	}
	return ok
}

// removeIfIdle removes path unless the writer is appending to it (a
// rotation that could not put its file back). It reports success; a file
// already gone is one.
func (w *Writer) removeIfIdle(path string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if path == w.detachedAs {
		return false
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.failed("remove a rotated file", err, "remove "+path+" by hand if the disk is filling; check the directory's permissions")
		return false
	}
	return true
}

// compress writes plain.gz beside plain and then removes plain. The
// output is written as plain.gz.tmp, synced, and renamed into place, so a
// crash at any point leaves plain whole (and at worst a .tmp that the next
// tidy removes or rewrites).
func (w *Writer) compress(plain string) {
	w.mu.Lock()
	busy := plain == w.detachedAs
	w.mu.Unlock()
	if busy {
		return
	}
	if err := gzipFile(plain, plain+".gz.tmp", w.cfg.Perm); err != nil {
		os.Remove(plain + ".gz.tmp")
		w.failed("compress a rotated file", err, plain+" stays uncompressed; check the disk has space")
		return
	}
	if err := os.Rename(plain+".gz.tmp", plain+".gz"); err != nil {
		os.Remove(plain + ".gz.tmp")
		w.failed("compress a rotated file", err, plain+" stays uncompressed; check the directory's permissions")
		return
	}
	if w.removeIfIdle(plain) {
		w.stats.Count(TokenCompressed, 1)
	}
}

// gzipFile compresses src into dst (created or truncated) and syncs dst.
func gzipFile(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	zw := gzip.NewWriter(out)
	zw.Name = filepath.Base(src)
	if _, err := io.Copy(zw, in); err != nil {
		return fmt.Errorf("compressing %s: %w", src, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing %s: %w", src, err)
	}
	return out.Sync()
}
