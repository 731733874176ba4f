package socket

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/oisp/oisp-sensor/sensor/flow"
)

// maxLegacyFlows bounds the flows one legacy connection keeps open; the
// upstream protocol has no close message, so flows otherwise live until the
// connection ends.
const maxLegacyFlows = 4096

// legacyMessage is one upstream NDJSON line (upstream-lessons §2) plus the
// optional extensions conn_id, event, seq, local_port, sni, alpn.
type legacyMessage struct {
	ID          string          `json:"id"`
	TimestampNS uint64          `json:"timestamp_ns"`
	Kind        string          `json:"kind"`
	PID         *uint32         `json:"pid"`
	Data        *string         `json:"data"`
	Metadata    *legacyMetadata `json:"metadata"`
	RemoteHost  string          `json:"remote_host"`
	RemotePort  uint16          `json:"remote_port"`
	ConnID      json.RawMessage `json:"conn_id"`
	Event       string          `json:"event"`
	Seq         *uint64         `json:"seq"`
	LocalPort   uint16          `json:"local_port"`
	SNI         string          `json:"sni"`
	ALPN        string          `json:"alpn"`
}

type legacyMetadata struct {
	Comm     *string `json:"comm"`
	Exe      *string `json:"exe"`
	UID      *uint32 `json:"uid"`
	PPID     uint32  `json:"ppid"`
	BundleID string  `json:"bundle_id"`
}

type legacyFlow struct {
	id     string
	seq    uint64
	hasSeq bool
	opened uint64 // order of opening, for eviction
}

type legacyConn struct {
	c       *serverConn
	br      *bufio.Reader
	flows   map[string]*legacyFlow
	nflows  uint64
	maxLine int
}

func newLegacyConn(c *serverConn, br *bufio.Reader) *legacyConn {
	return &legacyConn{c: c, br: br, flows: map[string]*legacyFlow{}, maxLine: c.srv.cfg.LegacyMaxLine}
}

func (l *legacyConn) count(token string) { l.c.srv.st.Count(token, 1) }

func (l *legacyConn) serve() {
	defer func() {
		for key, f := range l.flows {
			l.c.h.Close(f.id, flow.CloseInfo{At: time.Now(), Reason: "source_closed"})
			delete(l.flows, key)
		}
	}()
	for {
		line, err := l.readLine()
		if len(line) > 0 {
			if perr := l.handle(line); perr != nil {
				l.count("socket.legacy_parse_error")
				l.c.log.Debug("extension socket: skipping legacy line", "err", perr)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !l.c.stopped.Load() {
				l.c.log.Warn("extension socket: legacy connection failed", "err", err)
			}
			return
		}
	}
}

// readLine returns the next line without its newline. A line longer than
// maxLine is skipped (and counted) up to its newline.
func (l *legacyConn) readLine() ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		frag, err := l.br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(frag) > l.maxLine+1 {
				tooLong = true
				buf = nil
			} else {
				buf = append(buf, frag...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				l.count("socket.legacy_line_too_long")
				l.c.log.Warn("extension socket: legacy line longer than the limit skipped", "limit", l.maxLine)
				tooLong = false
				continue
			}
			return bytes.TrimRight(buf, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			if tooLong {
				return nil, err
			}
			return bytes.TrimRight(buf, "\r\n"), err
		}
	}
}

func legacyKey(m *legacyMessage) string {
	if len(m.ConnID) > 0 && string(m.ConnID) != "null" {
		return "c" + string(m.ConnID)
	}
	return fmt.Sprintf("p%d|%s|%d", *m.PID, m.RemoteHost, m.RemotePort)
}

func (l *legacyConn) handle(line []byte) error {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return nil
	}
	var m legacyMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if m.PID == nil {
		return errors.New("missing pid")
	}
	if m.Metadata == nil || m.Metadata.Comm == nil || m.Metadata.Exe == nil || m.Metadata.UID == nil {
		return errors.New("missing metadata.comm, metadata.exe or metadata.uid")
	}
	var dir flow.Direction
	event := m.Event
	if event == "" {
		event = "data"
	}
	switch event {
	case "open", "close":
	case "data":
		switch m.Kind {
		case "SslWrite":
			dir = flow.ClientToServer
		case "SslRead":
			dir = flow.ServerToClient
		default:
			return fmt.Errorf("unknown kind %q", m.Kind)
		}
		if m.Data == nil {
			return errors.New("missing data")
		}
	default:
		return fmt.Errorf("unknown event %q", m.Event)
	}
	key := legacyKey(&m)
	f := l.flows[key]
	if event == "close" {
		if f != nil {
			delete(l.flows, key)
			l.c.h.Close(f.id, flow.CloseInfo{At: nsTime(m.TimestampNS), Reason: "eof"})
		}
		return nil
	}
	var payload []byte
	if event == "data" {
		var err error
		if payload, err = base64.StdEncoding.DecodeString(*m.Data); err != nil {
			return fmt.Errorf("data is not base64: %w", err)
		}
	}
	if f == nil {
		f = l.open(key, &m)
	}
	if m.Seq != nil {
		if f.hasSeq && *m.Seq != f.seq+1 {
			l.count("socket.legacy_seq_gap")
		}
		f.seq, f.hasSeq = *m.Seq, true
	}
	if event == "data" && len(payload) > 0 {
		l.c.srv.st.Count("socket.data_bytes", int64(len(payload)))
		l.c.h.Data(f.id, flow.Chunk{Dir: dir, Data: payload, At: nsTime(m.TimestampNS)})
	}
	return nil
}

func (l *legacyConn) open(key string, m *legacyMessage) *legacyFlow {
	if len(l.flows) >= maxLegacyFlows {
		// Evict the oldest flow: upstream clients never close theirs.
		var oldKey string
		var oldest *legacyFlow
		for k, f := range l.flows {
			if oldest == nil || f.opened < oldest.opened {
				oldKey, oldest = k, f
			}
		}
		delete(l.flows, oldKey)
		l.count("socket.legacy_flows_evicted")
		l.c.h.Close(oldest.id, flow.CloseInfo{At: time.Now(), Reason: "evicted"})
	}
	l.nflows++
	f := &legacyFlow{id: fmt.Sprintf("sock%d.L%d", l.c.id, l.nflows), opened: l.nflows}
	l.flows[key] = f
	info := &flow.Info{
		ID:         f.id,
		Transport:  flow.TCP,
		RemoteHost: m.RemoteHost,
		RemotePort: m.RemotePort,
		SNI:        m.SNI,
		ALPN:       m.ALPN,
		// SslWrite/SslRead are TLS plaintext by definition.
		TLS:     true,
		Method:  flow.CaptureNetworkExtension,
		Started: nsTime(m.TimestampNS),
		Process: flow.Process{
			PID:      int(*m.PID),
			PPID:     int(m.Metadata.PPID),
			UID:      int(*m.Metadata.UID),
			Exe:      *m.Metadata.Exe,
			Name:     *m.Metadata.Comm,
			BundleID: m.Metadata.BundleID,
		},
	}
	if info.Process.Exe == "unknown" {
		info.Process.Exe = ""
	}
	if info.Process.Name == "unknown" {
		info.Process.Name = ""
	}
	l.count("socket.flows")
	l.c.h.Open(info)
	return f
}
