package socket

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Server defaults.
const (
	DefaultMaxFrame      = 1 << 20
	DefaultCreditWindow  = 4 << 20
	DefaultLegacyMaxLine = 16 << 20
	// LegacyPath is where the upstream macOS extension connects.
	LegacyPath = "/tmp/oisp.sock"

	maxFlowsPerConn   = 1 << 16
	maxStreamsPerFlow = 1 << 12
	writeTimeout      = 5 * time.Second
	// shutdownDrain is how long a stopping server keeps reading what a
	// client sent before it saw GOODBYE shutting_down.
	shutdownDrain = time.Second
)

// ServerConfig configures a Server.
type ServerConfig struct {
	Path string
	// AllowedUIDs are the peer uids accepted; nil means root and the uid
	// running the sensor.
	AllowedUIDs []int
	// MaxFrame is the largest frame accepted after HELLO (default 1 MiB).
	MaxFrame uint32
	// CreditWindow is the DATA credit each client starts with and that is
	// replenished as the handler consumes data (default 4 MiB).
	CreditWindow uint32
	// LegacyMaxLine bounds one legacy NDJSON line (default 16 MiB).
	LegacyMaxLine int
	Name          string // announced in HELLO
	Stats         stats.Recorder
	Logger        *slog.Logger
}

// Server is the sensor end of the extension socket: a flow.Source fed by
// every connected capture client.
type Server struct {
	cfg     ServerConfig
	ln      *net.UnixListener
	file    os.FileInfo // the socket file we created, to recognise it at Close
	log     *slog.Logger
	st      stats.Recorder
	connSeq atomic.Uint64

	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex
	conns  map[*serverConn]struct{}
	closed bool
}

// Listen creates the socket file (owner-only, replacing a stale socket) and
// returns a server ready to Run.
func Listen(cfg ServerConfig) (*Server, error) {
	if cfg.Path == "" {
		return nil, errors.New("extension socket: no path")
	}
	if cfg.AllowedUIDs == nil {
		cfg.AllowedUIDs = []int{0}
		if uid := os.Getuid(); uid != 0 {
			cfg.AllowedUIDs = append(cfg.AllowedUIDs, uid)
		}
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxFrame < MinMaxFrame || cfg.MaxFrame > MaxMaxFrame {
		return nil, fmt.Errorf("extension socket: MaxFrame %d outside %d…%d", cfg.MaxFrame, MinMaxFrame, MaxMaxFrame)
	}
	if cfg.CreditWindow == 0 {
		cfg.CreditWindow = DefaultCreditWindow
	}
	if cfg.LegacyMaxLine <= 0 {
		cfg.LegacyMaxLine = DefaultLegacyMaxLine
	}
	if cfg.Name == "" {
		cfg.Name = "oisp-sensor"
	}
	if cfg.Stats == nil {
		cfg.Stats = stats.Discard{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := listenPrivate(cfg.Path)
	if err != nil {
		return nil, err
	}
	file, err := os.Lstat(cfg.Path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("extension socket: %w", err)
	}
	return &Server{cfg: cfg, ln: ln, file: file, log: cfg.Logger.With("component", "extension-socket"), st: cfg.Stats,
		conns: map[*serverConn]struct{}{}}, nil
}

// listenPrivate binds a Unix socket that is never reachable with looser
// permissions than 0600: it is bound inside a fresh 0700 directory,
// chmodded, then renamed into place.
func listenPrivate(path string) (*net.UnixListener, error) {
	if err := removeStale(path); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(path), ".oisp-sock-")
	if err != nil {
		return nil, fmt.Errorf("extension socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("extension socket: binding %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("extension socket: restricting %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("extension socket: placing %s: %w", path, err)
	}
	return ln, nil
}

// removeStale deletes a socket file nobody listens on. It refuses to touch
// anything that is not a socket, or a socket another server answers on.
func removeStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("extension socket: %w", err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("extension socket: %s exists and is not a socket; not removing it", path)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("extension socket: another sensor is listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("extension socket: removing stale %s: %w", path, err)
	}
	return nil
}

// Path is the socket file path.
func (s *Server) Path() string { return s.cfg.Path }

// Close stops accepting, closes every connection and removes the socket
// file. Run calls it when its context ends.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	err := s.ln.Close()
	// Only remove the file if it is still ours (a new server may own it).
	if st, e := os.Lstat(s.cfg.Path); e == nil && os.SameFile(st, s.file) {
		os.Remove(s.cfg.Path)
	}
	for _, c := range conns {
		c.shutdown()
	}
	return err
}

// Run accepts connections and delivers their flows to h until ctx ends.
func (s *Server) Run(ctx context.Context, h flow.Handler) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := s.ln.AcceptUnix()
		if err != nil {
			s.Close()
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("extension socket: accept: %w", err)
		}
		c := &serverConn{srv: s, nc: nc, h: h, id: s.connSeq.Add(1)}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

type streamKey struct {
	dir    uint8
	stream uint64
}

type streamState struct {
	next uint64
	fin  bool
}

type serverFlow struct {
	id        string
	transport flow.Transport
	streams   map[streamKey]*streamState
	gaps      uint64
}

type serverConn struct {
	srv *Server
	nc  *net.UnixConn
	h   flow.Handler
	id  uint64
	log *slog.Logger

	wmu     sync.Mutex
	flows   map[uint64]*serverFlow
	credit  int64 // DATA credit the client still has
	pending int64 // bytes consumed since the last CREDIT
	peer    PeerCred
	stopped atomic.Bool
}

// shutdown tells the client the sensor is stopping and bounds serve: frames
// the client sent before it read GOODBYE (already in the socket buffer, or
// on their way) are still read until the client closes or shutdownDrain
// passes, so a flow handed over just before the stop is not lost.
func (c *serverConn) shutdown() {
	c.stopped.Store(true)
	c.writeFrame(&Goodbye{Code: CodeShuttingDown, Message: "sensor is stopping"})
	c.nc.SetReadDeadline(time.Now().Add(shutdownDrain))
}

func (c *serverConn) writeFrame(f Frame) error {
	b, err := AppendFrame(nil, f)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.nc.Write(b)
	return err
}

func (c *serverConn) serve() {
	defer c.nc.Close()
	c.log = c.srv.log.With("conn", c.id)
	cred, err := PeerCredentials(c.nc)
	if err == nil {
		err = CheckPeer(cred, c.srv.cfg.AllowedUIDs)
	}
	if err != nil {
		c.srv.st.Count("socket.peer_rejected", 1)
		c.log.Warn("extension socket: refusing peer", "err", err)
		c.writeFrame(&Goodbye{Code: CodeNotAuthorized, Message: "not authorized"})
		return
	}
	c.peer = cred
	c.log = c.log.With("peer_pid", cred.PID, "peer_uid", cred.UID)
	c.srv.st.Count("socket.connections", 1)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	first, err := br.Peek(1)
	if err != nil {
		return
	}
	switch first[0] {
	case '{':
		c.log.Info("extension socket: legacy NDJSON client connected")
		c.srv.st.Count("socket.legacy_connections", 1)
		newLegacyConn(c, br).serve()
	case 0x00:
		err := c.serveBinary(br)
		c.closeAllFlows()
		var pe *ProtocolError
		switch {
		case errors.As(err, &pe):
			c.srv.st.Count("socket.protocol_error", 1)
			c.log.Warn("extension socket: closing connection on protocol error", "code", pe.Code.String(), "reason", pe.Reason)
			c.writeFrame(&Goodbye{Code: pe.Code, Message: pe.Reason})
		case c.stopped.Load() && errors.Is(err, os.ErrDeadlineExceeded):
			// The client kept sending past the drain: what it sent after
			// that is not read.
			c.srv.st.Count("socket.cut_at_shutdown", 1)
			c.log.Warn("extension socket: client still sending when the sensor stopped; the rest of its data is lost",
				"drain", shutdownDrain)
		case err == nil, errors.Is(err, io.EOF), c.stopped.Load():
			c.log.Debug("extension socket: client disconnected")
		default:
			c.srv.st.Count("socket.connection_error", 1)
			c.log.Warn("extension socket: connection failed", "err", err)
		}
	default:
		c.srv.st.Count("socket.protocol_error", 1)
		c.log.Warn("extension socket: unknown protocol, closing", "first_byte", fmt.Sprintf("0x%02x", first[0]))
	}
}

func (c *serverConn) closeAllFlows() {
	for wid, f := range c.flows {
		c.h.Close(f.id, flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
		delete(c.flows, wid)
	}
}

func nsTime(ns uint64) time.Time {
	if ns == 0 || ns > 1<<62 {
		return time.Now()
	}
	return time.Unix(0, int64(ns))
}

func (c *serverConn) serveBinary(br *bufio.Reader) error {
	fr := NewFrameReader(br)
	f, err := fr.Next()
	if err != nil {
		return err
	}
	hello, ok := f.(*Hello)
	if !ok {
		return protoErr(CodeProtocolError, "first frame is %s, want HELLO", f.Type())
	}
	version := min(hello.Version, Version)
	c.log = c.log.With("peer", hello.Name)
	if err := c.writeFrame(&Hello{Version: version, MaxFrame: c.srv.cfg.MaxFrame,
		Credit: c.srv.cfg.CreditWindow, Name: c.srv.cfg.Name}); err != nil {
		return err
	}
	fr.Max = c.srv.cfg.MaxFrame
	c.credit = int64(c.srv.cfg.CreditWindow)
	c.flows = map[uint64]*serverFlow{}
	c.log.Info("extension socket: client connected", "version", version)
	for {
		f, err := fr.Next()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *FlowOpen:
			err = c.flowOpen(f)
		case *Data:
			err = c.data(f)
		case *FlowClose:
			err = c.flowClose(f)
		case *System:
			err = c.system(f)
		case *Goodbye:
			if f.Code != CodeNormal {
				c.log.Warn("extension socket: client said goodbye", "code", f.Code.String(), "message", f.Message)
			}
			return nil
		case *Unknown:
			c.srv.st.Count("socket.extension_frames_skipped", 1)
		default:
			err = protoErr(CodeProtocolError, "%s is not a client frame", f.Type())
		}
		if err != nil {
			return err
		}
	}
}

func (c *serverConn) flowOpen(o *FlowOpen) error {
	if _, dup := c.flows[o.FlowID]; dup {
		return protoErr(CodeProtocolError, "FLOW_OPEN: flow %d is already open", o.FlowID)
	}
	if len(c.flows) >= maxFlowsPerConn {
		return protoErr(CodeProtocolError, "FLOW_OPEN: more than %d open flows", maxFlowsPerConn)
	}
	info := &flow.Info{
		ID:         fmt.Sprintf("sock%d.%d", c.id, o.FlowID),
		Transport:  flow.Transport(o.Transport),
		Local:      o.Local,
		Remote:     o.Remote,
		RemoteHost: o.RemoteHost,
		RemotePort: o.RemotePort,
		SNI:        o.SNI,
		ALPN:       o.ALPN,
		TLS:        o.Flags&FlagTLS != 0,
		Method:     flow.CaptureMethod(o.CaptureMethod),
		Started:    nsTime(o.Started),
		Process: flow.Process{
			PID:      int(o.PID),
			PPID:     int(o.PPID),
			UID:      -1,
			Exe:      o.ProcessPath,
			Name:     o.ProcessName,
			BundleID: o.BundleID,
		},
	}
	if o.UID != UnknownUID {
		info.Process.UID = int(o.UID)
	}
	if info.Method == "" {
		info.Method = flow.CaptureNetworkExtension
	}
	if info.RemotePort == 0 && o.Remote.IsValid() {
		info.RemotePort = o.Remote.Port()
	}
	if info.Process.Name == "" && info.Process.Exe != "" {
		info.Process.Name = filepath.Base(info.Process.Exe)
	}
	c.flows[o.FlowID] = &serverFlow{id: info.ID, transport: info.Transport, streams: map[streamKey]*streamState{}}
	c.srv.st.Count("socket.flows", 1)
	c.h.Open(info)
	return nil
}

func (c *serverConn) data(d *Data) error {
	f := c.flows[d.FlowID]
	if f == nil {
		return protoErr(CodeProtocolError, "DATA: unknown flow %d", d.FlowID)
	}
	if f.transport == flow.TCP && d.StreamID != 0 {
		return protoErr(CodeProtocolError, "DATA: stream id %d on TCP flow %d", d.StreamID, d.FlowID)
	}
	n := int64(len(d.Payload))
	if n > c.credit {
		return protoErr(CodeCreditExceeded, "DATA: %d payload bytes with %d credit left", n, c.credit)
	}
	key := streamKey{d.Dir, d.StreamID}
	s := f.streams[key]
	if s == nil {
		if len(f.streams) >= maxStreamsPerFlow {
			return protoErr(CodeProtocolError, "DATA: more than %d streams in flow %d", maxStreamsPerFlow, d.FlowID)
		}
		s = &streamState{}
		f.streams[key] = s
	}
	if s.fin {
		return protoErr(CodeProtocolError, "DATA: flow %d dir %d stream %d continues after FIN", d.FlowID, d.Dir, d.StreamID)
	}
	if d.Seq < s.next {
		return protoErr(CodeProtocolError, "DATA: flow %d seq %d goes back before %d", d.FlowID, d.Seq, s.next)
	}
	if d.Seq > ^uint64(0)-uint64(n) {
		return protoErr(CodeProtocolError, "DATA: flow %d seq %d overflows", d.FlowID, d.Seq)
	}
	gap := d.Seq - s.next
	if gap > 0 {
		c.srv.st.Count("socket.gap_bytes", int64(gap))
		f.gaps += gap
	}
	s.next = d.Seq + uint64(n)
	s.fin = d.Flags&FlagFin != 0
	c.credit -= n
	c.srv.st.Count("socket.data_bytes", n)
	c.h.Data(f.id, flow.Chunk{
		Dir:      flow.Direction(d.Dir),
		Data:     d.Payload,
		At:       nsTime(d.At),
		StreamID: int64(d.StreamID),
		Fin:      s.fin,
		Gap:      int64(min(gap, 1<<62)),
	})
	// The handler has returned: these bytes are consumed. Return credit in
	// batches so CREDIT frames stay rare.
	c.pending += n
	if c.pending >= int64(c.srv.cfg.CreditWindow)/4 {
		grant := c.pending
		c.pending = 0
		c.credit += grant
		return c.writeFrame(&Credit{Grant: uint32(grant)})
	}
	return nil
}

func (c *serverConn) flowClose(x *FlowClose) error {
	f := c.flows[x.FlowID]
	if f == nil {
		return protoErr(CodeProtocolError, "FLOW_CLOSE: unknown flow %d", x.FlowID)
	}
	delete(c.flows, x.FlowID)
	dropped := x.DroppedC2S + x.DroppedS2C
	if dropped > 0 {
		c.srv.st.Count("socket.client_dropped_bytes", int64(min(dropped, 1<<62)))
	}
	var seen [2]uint64
	for k, s := range f.streams {
		seen[k.dir] += s.next
	}
	if seen[0] > x.BytesC2S || seen[1] > x.BytesS2C {
		c.srv.st.Count("socket.byte_count_mismatch", 1)
		c.log.Debug("extension socket: FLOW_CLOSE byte counts below what was received",
			"flow", f.id, "received_c2s", seen[0], "bytes_c2s", x.BytesC2S, "received_s2c", seen[1], "bytes_s2c", x.BytesS2C)
	}
	c.h.Close(f.id, flow.CloseInfo{At: nsTime(x.At), Reason: ReasonName(x.Reason), Dropped: int64(min(dropped, 1<<62))})
	return nil
}

// systemJSON is the SYSTEM frame payload (PROTOCOL.md §3.5).
type systemJSON struct {
	Kind         string   `json:"kind"`
	PID          int      `json:"pid"`
	PPID         int      `json:"ppid"`
	UID          *int     `json:"uid"`
	Exe          string   `json:"exe"`
	Name         string   `json:"name"`
	BundleID     string   `json:"bundle_id"`
	Args         []string `json:"args"`
	Cwd          string   `json:"cwd"`
	ExitCode     int      `json:"exit_code"`
	Signal       int      `json:"signal"`
	RuntimeNS    int64    `json:"runtime_ns"`
	ChildPID     int      `json:"child_pid"`
	Remote       string   `json:"remote"`
	Protocol     string   `json:"protocol"`
	Success      bool     `json:"success"`
	Error        string   `json:"error"`
	LatencyNS    int64    `json:"latency_ns"`
	Path         string   `json:"path"`
	Flags        []string `json:"flags"`
	BytesWritten int64    `json:"bytes_written"`
	Created      bool     `json:"created"`
	Truncated    bool     `json:"truncated"`
}

var systemKinds = map[string]flow.SystemKind{
	string(flow.SysExec): flow.SysExec, string(flow.SysExit): flow.SysExit, string(flow.SysFork): flow.SysFork,
	string(flow.SysConnect): flow.SysConnect, string(flow.SysFileOpen): flow.SysFileOpen,
	string(flow.SysFileWrite): flow.SysFileWrite,
}

func (c *serverConn) system(s *System) error {
	var j systemJSON
	if err := json.Unmarshal(s.JSON, &j); err != nil {
		return protoErr(CodeProtocolError, "SYSTEM: invalid JSON: %v", err)
	}
	kind, ok := systemKinds[j.Kind]
	if !ok {
		c.srv.st.Count("socket.system_unknown_kind", 1)
		return nil
	}
	sh, ok := c.h.(flow.SystemHandler)
	if !ok {
		c.srv.st.Count("socket.system_unhandled", 1)
		return nil
	}
	ev, err := systemEvent(kind, nsTime(s.At), &j, flow.CaptureNetworkExtension)
	if err != nil {
		return protoErr(CodeProtocolError, "SYSTEM: %v", err)
	}
	sh.System(ev)
	return nil
}

func systemEvent(kind flow.SystemKind, at time.Time, j *systemJSON, method flow.CaptureMethod) (flow.SystemEvent, error) {
	ev := flow.SystemEvent{
		Kind: kind, At: at, Method: method,
		Process: flow.Process{PID: j.PID, PPID: j.PPID, UID: -1, Exe: j.Exe, Name: j.Name, BundleID: j.BundleID},
		Exe:     j.Exe, Args: j.Args, Cwd: j.Cwd,
		ExitCode: j.ExitCode, Signal: j.Signal, Runtime: time.Duration(j.RuntimeNS),
		ChildPID: j.ChildPID,
		Protocol: j.Protocol, Success: j.Success, Error: j.Error, Latency: time.Duration(j.LatencyNS),
		Path: j.Path, Flags: j.Flags, BytesWritten: j.BytesWritten, Created: j.Created, Truncated: j.Truncated,
	}
	if j.UID != nil {
		ev.Process.UID = *j.UID
	}
	if ev.Process.Name == "" && j.Exe != "" {
		ev.Process.Name = filepath.Base(j.Exe)
	}
	if j.Remote != "" {
		ap, err := netip.ParseAddrPort(j.Remote)
		if err != nil {
			return ev, fmt.Errorf("remote %q: %w", j.Remote, err)
		}
		ev.Remote = ap
	}
	return ev, nil
}
