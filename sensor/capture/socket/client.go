package socket

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// Client defaults.
const (
	DefaultClientQueueBytes = 16 << 20
	defaultClientQueueItems = 1 << 16
	defaultMinBackoff       = 50 * time.Millisecond
	defaultMaxBackoff       = 5 * time.Second
	handshakeTimeout        = 5 * time.Second
)

// ClientConfig configures a Client.
type ClientConfig struct {
	Path string
	Name string // announced in HELLO
	// QueueBytes bounds payload bytes waiting to be sent (default 16 MiB);
	// chunks that do not fit are dropped, counted, and reported as gaps.
	QueueBytes int
	MinBackoff time.Duration
	MaxBackoff time.Duration
	Stats      stats.Recorder
	Logger     *slog.Logger
}

// ClientStats is a snapshot of what a Client sent and lost.
type ClientStats struct {
	Connected     bool
	Connects      int64
	SentBytes     int64
	DroppedBytes  int64
	DroppedChunks int64
	DroppedFrames int64 // FLOW_OPEN/FLOW_CLOSE/SYSTEM frames that did not fit the queue
	QueuedBytes   int64
}

// Client sends flows to a sensor's extension socket exactly as a capture
// extension does. It implements flow.Handler and flow.SystemHandler; its
// methods never block on the network: when the sensor is slow, away or
// restarting, bytes are dropped and counted, and the loss reaches the
// sensor as gaps and FLOW_CLOSE drop counts.
type Client struct {
	cfg ClientConfig
	log *slog.Logger
	st  stats.Recorder

	mu         sync.Mutex
	cond       *sync.Cond
	flows      map[string]*clientFlow
	nextWireID uint64
	queue      []*clientItem
	queueHead  int
	queued     int64 // payload bytes in queue
	sending    bool  // the writer holds an item
	dirty      bool  // frames written to the buffer but not yet flushed
	alive      bool  // a connection is up and handshaken
	gen        uint64
	credit     int64
	peerMax    uint32
	stopping   bool
	stats      ClientStats
	lostSince  ClientStats // losses since the last report
}

type clientFlow struct {
	wireID     uint64
	info       *flow.Info
	next       map[streamKey]uint64
	bytes      [2]uint64
	dropped    [2]uint64
	openGen    uint64
	everOpened bool
}

type itemKind uint8

const (
	itemOpen itemKind = iota
	itemData
	itemClose
	itemSystem
)

type clientItem struct {
	kind   itemKind
	f      *clientFlow
	data   Data
	reason uint8
	at     time.Time
	system System
}

// NewClient returns a client; call Run to connect.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Name == "" {
		cfg.Name = "oisp-sensor proxy"
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultClientQueueBytes
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = defaultMaxBackoff
	}
	if cfg.Stats == nil {
		cfg.Stats = stats.Discard{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{cfg: cfg, log: cfg.Logger.With("component", "extension-socket-client", "path", cfg.Path),
		st: cfg.Stats, flows: map[string]*clientFlow{}}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Stats returns counters since the client was created.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Connected = c.alive
	s.QueuedBytes = c.queued
	return s
}

func (c *Client) enqueueLocked(it *clientItem) bool {
	if len(c.queue)-c.queueHead >= defaultClientQueueItems {
		return false
	}
	c.queue = append(c.queue, it)
	c.queued += int64(len(it.data.Payload))
	c.cond.Broadcast()
	return true
}

func (c *Client) dropFrameLocked() {
	c.stats.DroppedFrames++
	c.lostSince.DroppedFrames++
	c.st.Count("socket_client.dropped_frames", 1)
}

// Open implements flow.Handler.
func (c *Client) Open(info *flow.Info) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextWireID++
	f := &clientFlow{wireID: c.nextWireID, info: info, next: map[streamKey]uint64{}}
	c.flows[info.ID] = f
	if !c.enqueueLocked(&clientItem{kind: itemOpen, f: f}) {
		c.dropFrameLocked()
	}
}

// Data implements flow.Handler. It copies nothing: the chunk's bytes are
// owned by the client once delivered, as flow.Chunk documents.
func (c *Client) Data(flowID string, ch flow.Chunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.flows[flowID]
	if f == nil {
		c.st.Count("socket_client.unknown_flow", 1)
		return
	}
	dir := uint8(ch.Dir) & 1
	key := streamKey{dir, uint64(ch.StreamID)}
	if ch.Gap > 0 {
		f.next[key] += uint64(ch.Gap)
		f.bytes[dir] += uint64(ch.Gap)
		f.dropped[dir] += uint64(ch.Gap)
	}
	n := len(ch.Data)
	seq := f.next[key]
	f.next[key] += uint64(n)
	f.bytes[dir] += uint64(n)
	payload := ch.Data
	if n > 0 && c.queued+int64(n) > int64(c.cfg.QueueBytes) {
		c.dropDataLocked(f, dir, n)
		payload = nil
		seq += uint64(n)
	}
	if len(payload) == 0 && !ch.Fin {
		return
	}
	it := &clientItem{kind: itemData, f: f, data: Data{Dir: dir, StreamID: uint64(ch.StreamID), Seq: seq,
		At: unixNano(ch.At), Payload: payload}}
	if ch.Fin {
		it.data.Flags = FlagFin
	}
	if !c.enqueueLocked(it) {
		if len(payload) > 0 {
			c.dropDataLocked(f, dir, len(payload))
		} else {
			c.dropFrameLocked()
		}
	}
}

func (c *Client) dropDataLocked(f *clientFlow, dir uint8, n int) {
	f.dropped[dir] += uint64(n)
	c.stats.DroppedBytes += int64(n)
	c.stats.DroppedChunks++
	c.lostSince.DroppedBytes += int64(n)
	c.lostSince.DroppedChunks++
	c.st.Count("socket_client.dropped_bytes", int64(n))
}

// Close implements flow.Handler.
func (c *Client) Close(flowID string, ci flow.CloseInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.flows[flowID]
	if f == nil {
		c.st.Count("socket_client.unknown_flow", 1)
		return
	}
	delete(c.flows, flowID)
	if !c.enqueueLocked(&clientItem{kind: itemClose, f: f, reason: ReasonCode(ci.Reason), at: ci.At}) {
		c.dropFrameLocked()
	}
}

// System implements flow.SystemHandler.
func (c *Client) System(ev flow.SystemEvent) {
	j := systemJSON{
		Kind: string(ev.Kind), PID: ev.Process.PID, PPID: ev.Process.PPID, Exe: ev.Exe, Name: ev.Process.Name,
		BundleID: ev.Process.BundleID, Args: ev.Args, Cwd: ev.Cwd, ExitCode: ev.ExitCode, Signal: ev.Signal,
		RuntimeNS: int64(ev.Runtime), ChildPID: ev.ChildPID, Protocol: ev.Protocol, Success: ev.Success,
		Error: ev.Error, LatencyNS: int64(ev.Latency), Path: ev.Path, Flags: ev.Flags,
		BytesWritten: ev.BytesWritten, Created: ev.Created, Truncated: ev.Truncated,
	}
	if j.Exe == "" {
		j.Exe = ev.Process.Exe
	}
	if ev.Process.UID >= 0 {
		uid := ev.Process.UID
		j.UID = &uid
	}
	if ev.Remote.IsValid() {
		j.Remote = ev.Remote.String()
	}
	raw, err := json.Marshal(j)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || len(raw) > MaxSystemJSON || !c.enqueueLocked(&clientItem{kind: itemSystem,
		system: System{At: unixNano(ev.At), JSON: raw}}) {
		c.dropFrameLocked()
	}
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

// Flush waits until everything queued so far has been written to the
// socket, or ctx ends.
func (c *Client) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queue) > c.queueHead || c.sending || c.dirty {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.cond.Wait()
	}
	return nil
}

// Run connects to the sensor and sends until ctx ends, reconnecting with
// backoff whenever the connection fails.
func (c *Client) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.stopping = true
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	backoff := c.cfg.MinBackoff
	failures := 0
	for ctx.Err() == nil {
		conn, hello, err := c.connect(ctx)
		if err != nil {
			failures++
			if failures == 1 {
				c.log.Warn("extension socket client: cannot reach the sensor, will retry", "err", err)
			} else {
				c.log.Debug("extension socket client: connect failed", "err", err, "attempt", failures)
			}
			c.st.Count("socket_client.connect_failed", 1)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, c.cfg.MaxBackoff)
			continue
		}
		failures = 0
		backoff = c.cfg.MinBackoff
		c.mu.Lock()
		c.alive = true
		c.gen++
		gen := c.gen
		c.credit = int64(hello.Credit)
		c.peerMax = hello.MaxFrame
		c.stats.Connects++
		lost := c.lostSince
		c.lostSince = ClientStats{}
		c.mu.Unlock()
		if gen > 1 && (lost.DroppedBytes > 0 || lost.DroppedFrames > 0) {
			c.log.Warn("extension socket client: reconnected; data was lost while the sensor was unreachable or slow",
				"dropped_bytes", lost.DroppedBytes, "dropped_chunks", lost.DroppedChunks, "dropped_frames", lost.DroppedFrames)
		} else {
			c.log.Info("extension socket client: connected", "sensor", hello.Name, "connection", gen)
		}
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			c.readLoop(conn)
		}()
		err = c.writeLoop(ctx, conn)
		c.mu.Lock()
		c.alive = false
		c.dirty = false // whatever was buffered went with the connection
		c.cond.Broadcast()
		c.mu.Unlock()
		if ctx.Err() != nil {
			b, _ := AppendFrame(nil, &Goodbye{Code: CodeNormal, Message: "client stopping"})
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			conn.Write(b)
		}
		conn.Close()
		<-readDone
		if ctx.Err() == nil {
			c.log.Warn("extension socket client: connection to the sensor lost, reconnecting", "err", err)
			c.st.Count("socket_client.disconnects", 1)
		}
	}
	c.mu.Lock()
	lost := c.lostSince
	c.mu.Unlock()
	if lost.DroppedBytes > 0 || lost.DroppedFrames > 0 {
		c.log.Warn("extension socket client: stopped with unsent data",
			"dropped_bytes", lost.DroppedBytes, "dropped_chunks", lost.DroppedChunks, "dropped_frames", lost.DroppedFrames)
	}
	return nil
}

func (c *Client) connect(ctx context.Context) (net.Conn, *Hello, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	conn, err := d.DialContext(ctx, "unix", c.cfg.Path)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	b, err := AppendFrame(nil, &Hello{Version: Version, MaxFrame: MinMaxFrame, Name: c.cfg.Name})
	if err == nil {
		_, err = conn.Write(b)
	}
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("sending HELLO: %w", err)
	}
	f, err := NewFrameReader(bufio.NewReader(conn)).Next()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("reading the sensor's HELLO: %w", err)
	}
	switch f := f.(type) {
	case *Hello:
		if f.Version != Version {
			b, _ := AppendFrame(nil, &Goodbye{Code: CodeVersionUnsupported, Message: fmt.Sprintf("speaks version %d", Version)})
			conn.Write(b)
			conn.Close()
			return nil, nil, fmt.Errorf("sensor speaks protocol version %d, this client %d", f.Version, Version)
		}
		conn.SetDeadline(time.Time{})
		return conn, f, nil
	case *Goodbye:
		conn.Close()
		return nil, nil, fmt.Errorf("sensor refused the connection: %s: %s", f.Code, f.Message)
	default:
		conn.Close()
		return nil, nil, fmt.Errorf("sensor sent %s instead of HELLO", f.Type())
	}
}

// readLoop takes CREDIT and GOODBYE frames from the sensor.
func (c *Client) readLoop(conn net.Conn) {
	fr := NewFrameReader(bufio.NewReader(conn))
	defer func() {
		c.mu.Lock()
		c.alive = false
		c.cond.Broadcast()
		c.mu.Unlock()
	}()
	for {
		f, err := fr.Next()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *Credit:
			c.mu.Lock()
			c.credit += int64(f.Grant)
			c.cond.Broadcast()
			c.mu.Unlock()
		case *Goodbye:
			if f.Code != CodeShuttingDown && f.Code != CodeNormal {
				c.log.Warn("extension socket client: sensor closed the connection", "code", f.Code.String(), "message", f.Message)
			}
			return
		case *Unknown:
		default:
			c.log.Warn("extension socket client: unexpected frame from the sensor", "type", f.Type().String())
			return
		}
	}
}

// writeLoop sends queued items while the connection lives. Only one item
// is out of the queue at a time; bytes of it not sent when the connection
// dies are dropped and counted.
func (c *Client) writeLoop(ctx context.Context, conn net.Conn) error {
	bw := bufio.NewWriterSize(conn, 64<<10)
	var buf []byte
	write := func(f Frame) error {
		var err error
		buf, err = AppendFrame(buf[:0], f)
		if err != nil {
			return err
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err = bw.Write(buf)
		return err
	}
	flush := func() error {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		return bw.Flush()
	}
	c.mu.Lock()
	for {
		for len(c.queue) == c.queueHead && c.alive && !c.stopping {
			if bw.Buffered() > 0 {
				c.mu.Unlock()
				err := flush()
				c.mu.Lock()
				if err != nil {
					c.mu.Unlock()
					return err
				}
				continue
			}
			if c.dirty {
				c.dirty = false
				c.cond.Broadcast()
			}
			c.cond.Wait()
		}
		if !c.alive || c.stopping {
			c.mu.Unlock()
			return flush()
		}
		it := c.queue[c.queueHead]
		c.queue[c.queueHead] = nil
		c.queueHead++
		if c.queueHead == len(c.queue) {
			c.queue, c.queueHead = c.queue[:0], 0
		}
		c.sending = true
		c.dirty = true
		err := c.sendItemLocked(it, write, flush)
		c.sending = false
		c.cond.Broadcast()
		if err != nil {
			c.mu.Unlock()
			return err
		}
	}
}

// sendItemLocked is called with c.mu held and returns with it held; it
// releases the lock around every write.
func (c *Client) sendItemLocked(it *clientItem, write func(Frame) error, flush func() error) error {
	gen := c.gen
	unlocked := func(fn func() error) error {
		c.mu.Unlock()
		err := fn()
		c.mu.Lock()
		return err
	}
	if it.f != nil && it.f.openGen != gen {
		o := openFrame(it.f)
		it.f.openGen = gen
		it.f.everOpened = true
		if err := unlocked(func() error { return write(o) }); err != nil {
			return c.abandonLocked(it, err)
		}
	}
	switch it.kind {
	case itemOpen:
		return nil
	case itemSystem:
		return unlocked(func() error { return write(&it.system) })
	case itemClose:
		f := it.f
		x := &FlowClose{FlowID: f.wireID, At: unixNano(it.at), Reason: it.reason,
			BytesC2S: f.bytes[0], BytesS2C: f.bytes[1], DroppedC2S: f.dropped[0], DroppedS2C: f.dropped[1]}
		return unlocked(func() error { return write(x) })
	}
	d := it.data
	d.FlowID = it.f.wireID
	maxPayload := int64(c.peerMax) - 1 - dataFixedBody
	for {
		// Wait only while there is no credit at all; otherwise send what
		// the credit allows, so a window smaller than a chunk still moves.
		n := min(int64(len(d.Payload)), maxPayload)
		for n > 0 && c.credit <= 0 && c.alive && !c.stopping {
			// Let the sensor see what we have before waiting for credit.
			if err := unlocked(flush); err != nil {
				return c.abandonLocked(&clientItem{kind: itemData, f: it.f, data: d}, err)
			}
			if c.credit <= 0 && c.alive && !c.stopping {
				c.cond.Wait()
			}
		}
		if !c.alive || c.stopping {
			return c.abandonLocked(&clientItem{kind: itemData, f: it.f, data: d}, errors.New("connection closed"))
		}
		n = min(n, c.credit)
		piece := d
		piece.Payload = d.Payload[:n]
		last := n == int64(len(d.Payload))
		if !last {
			piece.Flags &^= FlagFin
		}
		c.credit -= n
		c.queued -= n
		c.stats.SentBytes += n
		if err := unlocked(func() error { return write(&piece) }); err != nil {
			return c.abandonLocked(&clientItem{kind: itemData, f: it.f, data: Data{Dir: d.Dir, Payload: d.Payload[n:]}}, err)
		}
		if last {
			return nil
		}
		d.Payload = d.Payload[n:]
		d.Seq += uint64(n)
	}
}

// abandonLocked accounts for the unsent part of an item when the
// connection fails under it.
func (c *Client) abandonLocked(it *clientItem, err error) error {
	if it.kind == itemData && len(it.data.Payload) > 0 {
		n := len(it.data.Payload)
		c.queued -= int64(n)
		c.dropDataLocked(it.f, it.data.Dir, n)
	} else if it.kind != itemOpen {
		c.dropFrameLocked()
	}
	return err
}

func openFrame(f *clientFlow) *FlowOpen {
	in := f.info
	o := &FlowOpen{
		FlowID:        f.wireID,
		Started:       unixNano(in.Started),
		Transport:     uint8(in.Transport),
		PID:           uint32(max(in.Process.PID, 0)),
		PPID:          uint32(max(in.Process.PPID, 0)),
		UID:           UnknownUID,
		RemotePort:    in.RemotePort,
		Local:         in.Local,
		Remote:        in.Remote,
		ProcessPath:   clip(in.Process.Exe, maxProcessPath),
		ProcessName:   clip(in.Process.Name, maxShortString),
		BundleID:      clip(in.Process.BundleID, maxShortString),
		RemoteHost:    clip(in.RemoteHost, maxShortString),
		SNI:           clip(in.SNI, maxShortString),
		ALPN:          clip(in.ALPN, maxALPN),
		CaptureMethod: clip(string(in.Method), maxCaptureMethod),
	}
	if in.Process.UID >= 0 {
		o.UID = uint32(in.Process.UID)
	}
	if o.ProcessName == "" && o.ProcessPath != "" {
		o.ProcessName = clip(filepath.Base(o.ProcessPath), maxShortString)
	}
	if in.TLS {
		o.Flags |= FlagTLS
	}
	if f.everOpened {
		o.Flags |= FlagResumed
	}
	return o
}

// clip cuts s to at most n bytes on a rune boundary, keeping it valid
// UTF-8 so the frame always encodes.
func clip(s string, n int) string {
	if len(s) <= n {
		return toValidUTF8(s)
	}
	return toValidUTF8(truncateUTF8(s, n))
}

func toValidUTF8(s string) string { return strings.ToValidUTF8(s, "?") }
