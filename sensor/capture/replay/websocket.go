package replay

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/url"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// WebSocketSource replays a WebSocket transcript as one HTTP/1.1
// connection: the upgrade request, the 101 answer, then one frame per
// recorded message (client frames masked, as RFC 6455 requires).
type WebSocketSource struct {
	flow Flow
}

// TokenWSExchangeSkipped counts HTTP exchanges recorded between WebSocket
// messages, which a single upgraded connection cannot carry.
const TokenWSExchangeSkipped = "replay.ws_exchange_skipped"

// NewWebSocket plans the replay of tr against wsURL (wss://host/path?query).
// Transcripts do not record their URL, so the caller names it.
func NewWebSocket(tr *cassette.WebSocketTranscript, wsURL string, opt Options) (*WebSocketSource, error) {
	if tr.URL != "" {
		wsURL = tr.URL
	}
	u, err := url.Parse(wsURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("replay: WebSocket URL %q: want wss://host/path", wsURL)
	}
	scheme := "https"
	if u.Scheme == "ws" || u.Scheme == "http" {
		scheme = "http"
	}
	ep, err := parseEndpoint(scheme + "://" + u.Host + u.RequestURI())
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	if opt.Clock.IsZero() {
		opt.Clock = DefaultClock
	}
	if opt.IDPrefix == "" {
		opt.IDPrefix = "replay"
	}
	s := &Source{opt: opt}
	clock := opt.Clock
	f := Flow{Info: s.info(1, ep, clock)}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: b2lzcC1zZW5zb3ItcmVwbGF5\r\n\r\n"
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: e1iJ4lKkxBN2/8hDuZoJ7F1K3Zk=\r\n\r\n"
	clock = s.emit(&f, flow.ClientToServer, []byte(req), clock)
	clock = s.emit(&f, flow.ServerToClient, []byte(resp), clock)
	var mask uint32 = 0x1f2e3d4c
	for _, m := range tr.Messages {
		switch {
		case m.Exchange != nil:
			if opt.Stats != nil {
				opt.Stats.Count(TokenWSExchangeSkipped, 1)
			}
			continue
		case m.Close:
			payload := binary.BigEndian.AppendUint16(nil, uint16(m.CloseCode))
			payload = append(payload, m.CloseReason...)
			clock = s.emit(&f, flow.ServerToClient, wsFrame(0x8, payload, false, 0), clock)
			continue
		}
		op := byte(0x1)
		if m.Binary {
			op = 0x2
		}
		if m.Sent {
			mask = mask*1664525 + 1013904223
			clock = s.emit(&f, flow.ClientToServer, wsFrame(op, m.Data, true, mask), clock)
		} else {
			clock = s.emit(&f, flow.ServerToClient, wsFrame(op, m.Data, false, 0), clock)
		}
	}
	f.Chunks[len(f.Chunks)-1].Fin = true
	f.Close = flow.CloseInfo{At: clock, Reason: "eof"}
	return &WebSocketSource{flow: f}, nil
}

// wsFrame encodes one final frame.
func wsFrame(op byte, payload []byte, masked bool, key uint32) []byte {
	b := []byte{0x80 | op}
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], key)
	b = append(b, k[:]...)
	for i, c := range payload {
		b = append(b, c^k[i%4])
	}
	return b
}

// Plan returns the planned flow.
func (s *WebSocketSource) Plan() []Flow { return []Flow{s.flow} }

// Run delivers the connection to h.
func (s *WebSocketSource) Run(ctx context.Context, h flow.Handler) error {
	f := s.flow
	info := f.Info
	h.Open(&info)
	for _, c := range f.Chunks {
		if err := ctx.Err(); err != nil {
			h.Close(info.ID, flow.CloseInfo{At: c.At, Reason: "source_closed"})
			return err
		}
		h.Data(info.ID, c)
	}
	h.Close(info.ID, f.Close)
	return nil
}
