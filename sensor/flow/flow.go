// Package flow owns the capture-neutral model of a connection: who opened it,
// where it goes, and the ordered plaintext chunks seen in each direction.
//
// Every capture source (replay, the capture proxy, the extension socket, eBPF)
// produces exactly this model; the decoders above never know which source fed
// them.
package flow

import (
	"context"
	"net/netip"
	"time"
)

// Transport is the transport a flow's bytes travelled on.
type Transport uint8

const (
	// TCP is a byte stream per direction (HTTP/1.1, HTTP/2, WebSocket).
	TCP Transport = iota
	// QUIC carries many streams; every chunk names its stream id (HTTP/3).
	QUIC
)

func (t Transport) String() string {
	if t == QUIC {
		return "quic"
	}
	return "tcp"
}

// Direction says which peer wrote a chunk.
type Direction uint8

const (
	// ClientToServer is data the client wrote (requests).
	ClientToServer Direction = iota
	// ServerToClient is data the server wrote (responses).
	ServerToClient
)

func (d Direction) String() string {
	if d == ServerToClient {
		return "server->client"
	}
	return "client->server"
}

// Process is what is known about the process that owns the client side of a
// flow. Zero values mean unknown.
type Process struct {
	PID         int
	PPID        int
	UID         int // -1 when unknown
	Exe         string
	Name        string
	Cmdline     []string
	BundleID    string
	ContainerID string
	Cgroup      string
}

// CaptureMethod names how a source saw the plaintext; the values are the
// OISP `source.capture_method` enum.
type CaptureMethod string

// Capture methods used by this sensor's sources.
const (
	CaptureEBPFUprobe       CaptureMethod = "ebpf_uprobe"
	CaptureEBPFTracepoint   CaptureMethod = "ebpf_tracepoint"
	CaptureMITMProxy        CaptureMethod = "mitm_proxy"
	CaptureNetworkExtension CaptureMethod = "network_extension"
	CaptureTLSBoundary      CaptureMethod = "tls_boundary"
	CaptureOther            CaptureMethod = "other"
)

// Info describes a flow. It is fixed when the flow opens, except that SNI and
// ALPN may be learned later by some sources (set them before the first chunk).
type Info struct {
	ID        string // unique within one sensor run
	Transport Transport
	Process   Process
	Local     netip.AddrPort // zero when unknown
	Remote    netip.AddrPort // zero when unknown
	// RemoteHost is the host name the client asked for (CONNECT target,
	// extension remote host) when known; SNI wins when both are set.
	RemoteHost string
	RemotePort uint16
	SNI        string
	ALPN       string // "h2", "http/1.1", "h3" or "" when unknown
	// TLS reports whether the plaintext was recovered from TLS (https) or
	// the connection was plain text (http).
	TLS     bool
	Method  CaptureMethod
	Started time.Time
}

// Host returns the best host name known for the server side.
func (i *Info) Host() string {
	if i.SNI != "" {
		return i.SNI
	}
	if i.RemoteHost != "" {
		return i.RemoteHost
	}
	if i.Remote.IsValid() {
		return i.Remote.Addr().String()
	}
	return ""
}

// Chunk is a piece of plaintext in one direction of a flow. Data is owned by
// the receiver once delivered: sources must not reuse the slice.
type Chunk struct {
	Dir  Direction
	Data []byte
	At   time.Time
	// StreamID is the QUIC stream id for Transport QUIC (client-initiated
	// bidirectional streams carry requests; unidirectional ones carry
	// control and QPACK encoder/decoder streams). Unused for TCP.
	StreamID int64
	// Fin marks the end of this direction (of this QUIC stream for QUIC).
	Fin bool
	// Gap, when non-zero, says this many bytes were lost before Data in this
	// direction (ring-buffer drop, queue overflow). Decoders resynchronise or
	// mark what follows partial.
	Gap int64
}

// CloseInfo is what a source reports when a flow ends.
type CloseInfo struct {
	At     time.Time
	Reason string // "eof", "reset", "timeout", "source_closed", …
	// Dropped counts bytes the source lost for this flow (already signalled
	// as Gaps where the position was known).
	Dropped int64
}

// Handler receives flows from a source. Calls for one flow are serialised by
// the source; different flows may be delivered concurrently.
type Handler interface {
	Open(info *Info)
	Data(flowID string, c Chunk)
	Close(flowID string, ci CloseInfo)
}

// Source is a capture source: replay, proxy, extension socket, eBPF. Run
// delivers flows to h until ctx is cancelled or the source is exhausted.
type Source interface {
	Run(ctx context.Context, h Handler) error
}
