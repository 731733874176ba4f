package session

import (
	"os"
	"runtime/debug"
)

// The garbage collector settings the sensor binary runs with. The sensor's
// live heap is small and bounded (the provider registry, the schema, flow
// state: a few MB), so at Go's default GOGC of 100 it collects after every
// few MB of allocation — every few hundred exchanges — and a good part of
// its CPU goes to marking the same long-lived data again and again. At 400
// the heap may grow to five times the live data between collections, still
// some tens of MB; the soft limit keeps a sensor with unusually much live
// state from growing past it (the collector then runs more often instead).
const (
	GCPercent   = 400
	MemoryLimit = 256 << 20
)

// TuneRuntime applies GCPercent and MemoryLimit, each unless the GOGC or
// GOMEMLIMIT environment variable chooses otherwise, and returns a function
// that restores the previous settings. The sensor binary calls it at start;
// a program embedding the pipeline decides for itself.
func TuneRuntime() (restore func()) {
	prevGC, prevLimit := -2, int64(-1)
	if _, set := os.LookupEnv("GOGC"); !set {
		prevGC = debug.SetGCPercent(GCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		prevLimit = debug.SetMemoryLimit(MemoryLimit)
	}
	return func() {
		if prevGC != -2 {
			debug.SetGCPercent(prevGC)
		}
		if prevLimit >= 0 {
			debug.SetMemoryLimit(prevLimit)
		}
	}
}
