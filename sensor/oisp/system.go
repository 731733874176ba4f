package oisp

// ProcessExec is the data of process.exec.
type ProcessExec struct {
	Exe  string   `json:"exe"`
	Args []string `json:"args,omitempty"`
	Cwd  string   `json:"cwd,omitempty"`
}

// ProcessExit is the data of process.exit.
type ProcessExit struct {
	ExitCode        int    `json:"exit_code"`
	Signal          int    `json:"signal,omitempty"`
	RuntimeMS       *int64 `json:"runtime_ms,omitempty"`
	TerminationType string `json:"termination_type,omitempty"` // normal, signaled, coredump, unknown
}

// ProcessFork is the data of process.fork.
type ProcessFork struct {
	ChildPID int `json:"child_pid"`
}

// Endpoint is the network `endpoint` object.
type Endpoint struct {
	IP        string `json:"ip,omitempty"`
	Domain    string `json:"domain,omitempty"`
	Port      *int   `json:"port,omitempty"`
	IsPrivate *bool  `json:"is_private,omitempty"`
}

// NetworkConnect is the data of network.connect.
type NetworkConnect struct {
	Dest      Endpoint  `json:"dest"`
	Src       *Endpoint `json:"src,omitempty"`
	Protocol  string    `json:"protocol,omitempty"` // tcp, udp, unix, other
	Success   *bool     `json:"success,omitempty"`
	Error     string    `json:"error,omitempty"`
	LatencyMS *float64  `json:"latency_ms,omitempty"`
}

// FileOpen is the data of file.open.
type FileOpen struct {
	Path  string   `json:"path"`
	Flags []string `json:"flags"`
}

// FileWrite is the data of file.write.
type FileWrite struct {
	Path         string `json:"path"`
	BytesWritten *int64 `json:"bytes_written,omitempty"`
	Truncated    *bool  `json:"truncated,omitempty"`
	Created      *bool  `json:"created,omitempty"`
}
