package linuxcompat

import (
	"errors"
	"log/slog"
	"time"

	"github.com/oisp/oisp-sensor/sensor/stats"
)

// ErrNotSupported is returned by New where eBPF capture cannot run: another
// operating system or architecture, or a kernel without the needed features.
var ErrNotSupported = errors.New("linux eBPF capture not supported")

// Config selects what a Source captures. The zero value captures every
// process except the sensor itself, with default limits.
type Config struct {
	// PIDs, Executables and Cgroups restrict capture to matching processes
	// and their descendants. They combine with OR; all empty means every
	// process. Executables are paths (matched by inode, so hard links and
	// bind mounts match too); Cgroups are cgroup v2 paths relative to the
	// cgroup2 mount ("system.slice/foo.service") or absolute paths to it.
	PIDs        []int
	Executables []string
	Cgroups     []string

	// MaxCallBytes caps the plaintext copied per TLS call (default 256 KiB,
	// at most 1 MiB). Bytes beyond it are counted and signalled as a gap.
	MaxCallBytes int
	// RingBufferBytes sizes the kernel ring buffer (default 16 MiB; rounded
	// up to a power of two).
	RingBufferBytes int
	// QueueRecords bounds the records waiting between the ring buffer
	// reader and the decoder (default 16384). Overflow is counted and
	// signalled as a gap on the affected flow.
	QueueRecords int
	// ReadInterval bounds how long a record may sit in the ring buffer
	// before the reader takes it (default 25 ms). Records do not wake the
	// reader one by one: it drains the ring on this timer, and is woken
	// early only when an eighth of the ring is unread or a process executes
	// or maps a new file (its probes must be placed quickly). Each tick
	// costs the sensor a timer, a poller wake-up and a scheduler round, so
	// the interval trades event latency for CPU: at 100 AI requests/s,
	// 10 ms cost about 3% of a core in capture alone and 30 ms about 1%.
	ReadInterval time.Duration
	// IdleReadInterval is the longest the reader sleeps once the ring has
	// been empty for a second (default 8×ReadInterval): it backs off
	// step by step from ReadInterval while nothing arrives and returns to
	// ReadInterval at the first record, so an idle sensor costs almost
	// nothing. Only the first record after a quiet spell waits longer.
	IdleReadInterval time.Duration

	// NoIdleDecoding keeps the thread that decodes records (and runs the
	// handler) in the process's normal scheduling class. By default it
	// runs in SCHED_IDLE, on CPU time the observed applications leave
	// unused, and is lifted back whenever it falls behind (see
	// Stats.DecoderLifts); without CAP_SYS_NICE it is never moved.
	NoIdleDecoding bool

	// NoSystemEvents disables exec/exit/connect/file events. Process
	// tracking for flows (exit closes flows, new executables get probes)
	// keeps working.
	NoSystemEvents bool
	// NoFileEvents disables only file.open and file.write.
	NoFileEvents bool

	// Logger receives attach progress and errors (default slog.Default()).
	Logger *slog.Logger
	// Stats receives counters under "ebpf.*" tokens while Run is active
	// (default: counted internally only; see Source.Stats).
	Stats stats.Recorder
}

// AttachStatus says how attaching to one binary or library went.
type AttachStatus string

// Attach outcomes.
const (
	// Attached: probes are in place.
	Attached AttachStatus = "attached"
	// Unsupported: the file looks TLS-related but offers nothing we can
	// probe (a libssl-named file without OpenSSL symbols, a TLS library
	// family we do not handle, a Go binary for another architecture or
	// older than go1.17). Not an error. Files with no TLS at all are not
	// reported.
	Unsupported AttachStatus = "unsupported"
	// Failed: probes should have worked but the kernel or the file refused.
	Failed AttachStatus = "failed"
)

// Attachment is one line of the attach report printed by `oisp-sensor doctor`.
type Attachment struct {
	Path    string // path the file was found under
	Inode   uint64
	Dev     uint64
	Library string // "openssl", "gnutls", "go" or "" when unsupported
	// Symbols lists the functions probed (Go: with the number of RET
	// probes, e.g. "crypto/tls.(*Conn).Read+7ret").
	Symbols []string
	Probes  int
	Status  AttachStatus
	Reason  string // why unsupported or failed
	// FirstPID is the process in which the file was first seen (0 when found
	// by scanning library directories).
	FirstPID int
	At       time.Time
	// Attempts counts the attaches tried so far: a failed one is tried
	// again when the file is next executed or mapped, up to
	// MaxAttachAttempts times.
	Attempts int
}

// MaxAttachAttempts bounds the attaches tried on one file: a Failed
// Attachment with fewer Attempts may still turn Attached.
const MaxAttachAttempts = 3

// Stats are the source's counters: kernel-side (summed over CPUs) and the
// user-space reader/decoder.
type Stats struct {
	TLSCalls            int64 // TLS calls that returned data
	TLSChunks           int64 // ring buffer records with plaintext
	TLSBytes            int64 // plaintext bytes delivered to the ring
	TruncatedCalls      int64 // calls larger than MaxCallBytes
	TruncatedBytes      int64
	RingFullTLSRecords  int64 // bpf_ringbuf_output failures (TLS)
	RingFullTLSBytes    int64
	RingFullSysRecords  int64 // bpf_ringbuf_output failures (system events)
	ReadUserFailures    int64 // bpf_probe_read_user failures (paged-out buffers)
	ReadUserFailedBytes int64
	ReturnsWithoutEntry int64 // uretprobe hits with no matching entry
	SystemRecords       int64
	FileWriteBytes      int64 // bytes written to tracked files
	TrackedFilesFull    int64 // write-mode opens not tracked (map full)
	TLSBinds            int64 // memory-BIO connections bound to their socket by its next write

	RecordsRead       int64 // records taken from the ring by the reader
	QueueDropRecords  int64 // records dropped because the decoder lagged
	QueueDropBytes    int64 // plaintext bytes in those records
	DecodeErrors      int64 // malformed records
	DecoderLifts      int64 // times the idle-class decoder was lifted because it fell behind
	FlowsOpened       int64
	FlowsClosed       int64
	AttachFailures    int64
	AttachedFiles     int64
	UnsupportedFiles  int64
	ProcessesObserved int64
	AttachQueueFull   int64 // files not inspected: too many waiting
	UnboundFlows      int64 // flows with no socket fd that no bind found (no addresses)
}

// tokens maps Stats fields to stats.Recorder tokens.
func (s Stats) tokens() map[string]int64 {
	return map[string]int64{
		"ebpf.tls_calls":              s.TLSCalls,
		"ebpf.tls_chunks":             s.TLSChunks,
		"ebpf.tls_bytes":              s.TLSBytes,
		"ebpf.truncated_calls":        s.TruncatedCalls,
		"ebpf.truncated_bytes":        s.TruncatedBytes,
		"ebpf.ringbuf_full_tls":       s.RingFullTLSRecords,
		"ebpf.ringbuf_full_tls_bytes": s.RingFullTLSBytes,
		"ebpf.ringbuf_full_sys":       s.RingFullSysRecords,
		"ebpf.read_user_failed":       s.ReadUserFailures,
		"ebpf.read_user_failed_bytes": s.ReadUserFailedBytes,
		"ebpf.return_without_entry":   s.ReturnsWithoutEntry,
		"ebpf.queue_drop_records":     s.QueueDropRecords,
		"ebpf.queue_drop_bytes":       s.QueueDropBytes,
		"ebpf.bad_record":             s.DecodeErrors,
		"ebpf.decoder_lifts":          s.DecoderLifts,
		"ebpf.attach_failed":          s.AttachFailures,
		"ebpf.tracked_files_full":     s.TrackedFilesFull,
		"ebpf.tls_binds":              s.TLSBinds,
		"ebpf.attach_queue_full":      s.AttachQueueFull,
		"ebpf.unbound_flows":          s.UnboundFlows,
	}
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.MaxCallBytes <= 0 {
		out.MaxCallBytes = 256 << 10
	}
	if out.MaxCallBytes > 1<<20 {
		out.MaxCallBytes = 1 << 20
	}
	if out.RingBufferBytes <= 0 {
		out.RingBufferBytes = 16 << 20
	}
	size := 4096
	for size < out.RingBufferBytes {
		size <<= 1
	}
	out.RingBufferBytes = size
	if out.QueueRecords <= 0 {
		out.QueueRecords = 16384
	}
	if out.ReadInterval <= 0 {
		out.ReadInterval = 25 * time.Millisecond
	}
	if out.IdleReadInterval <= 0 {
		out.IdleReadInterval = 8 * out.ReadInterval
	}
	out.IdleReadInterval = max(out.IdleReadInterval, out.ReadInterval)
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

// Feature is one kernel capability the eBPF source needs or uses, as
// reported by Features.
type Feature struct {
	Name     string
	Required bool // New fails without it
	OK       bool
	Detail   string
}
