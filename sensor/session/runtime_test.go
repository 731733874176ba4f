package session

import (
	"os"
	"runtime/debug"
	"testing"
)

// gcSettings reads the collector's settings without changing them.
func gcSettings() (percent int, limit int64) {
	percent = debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}

// unsetenv clears an environment variable for the rest of the test.
func unsetenv(t *testing.T, key string) {
	t.Setenv(key, "") // registers the restore
	os.Unsetenv(key)
}

// TestTuneRuntime: the settings apply when the environment leaves them
// open, stay as the environment chose otherwise, and restore undoes them.
func TestTuneRuntime(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		unsetenv(t, "GOGC")
		unsetenv(t, "GOMEMLIMIT")
		percent, limit := gcSettings()
		restore := TuneRuntime()
		if p, l := gcSettings(); p != GCPercent || l != MemoryLimit {
			t.Errorf("settings %d, %d; want %d, %d", p, l, GCPercent, MemoryLimit)
		}
		restore()
		if p, l := gcSettings(); p != percent || l != limit {
			t.Errorf("after restore %d, %d; want %d, %d", p, l, percent, limit)
		}
	})
	t.Run("environment wins", func(t *testing.T) {
		t.Setenv("GOGC", "100")
		t.Setenv("GOMEMLIMIT", "1GiB")
		percent, limit := gcSettings()
		restore := TuneRuntime()
		defer restore()
		if p, l := gcSettings(); p != percent || l != limit {
			t.Errorf("settings %d, %d with GOGC and GOMEMLIMIT set; want them unchanged (%d, %d)", p, l, percent, limit)
		}
	})
}
