package flow

import (
	"net/netip"
	"time"
)

// SystemKind names a host activity reported next to flows by sources that
// see the operating system (eBPF, the macOS extension).
type SystemKind string

// System activity kinds. They map one to one onto OISP event types.
const (
	SysExec      SystemKind = "process.exec"
	SysExit      SystemKind = "process.exit"
	SysFork      SystemKind = "process.fork"
	SysConnect   SystemKind = "network.connect"
	SysFileOpen  SystemKind = "file.open"
	SysFileWrite SystemKind = "file.write"
)

// SystemEvent is one host activity. Only the fields relevant to Kind are set.
type SystemEvent struct {
	Kind    SystemKind
	At      time.Time
	Process Process
	Method  CaptureMethod

	// process.exec
	Exe  string
	Args []string
	Cwd  string
	// process.exit
	ExitCode int
	Signal   int
	Runtime  time.Duration
	// process.fork
	ChildPID int
	// network.connect
	Remote   netip.AddrPort
	Protocol string // "tcp", "udp"
	Success  bool
	Error    string
	Latency  time.Duration
	// file.open, file.write
	Path         string
	Flags        []string // file.open: read, write, append, create, truncate, exclusive
	BytesWritten int64
	Created      bool
	Truncated    bool
}

// SystemHandler is implemented by handlers that also accept host activity.
// Sources check for it with a type assertion.
type SystemHandler interface {
	System(ev SystemEvent)
}
