package cassette

import (
	"errors"
	"fmt"
)

// WebSocketTranscript is a recorded WebSocket session as pydantic-ai's
// realtime tests store it: the messages in order, without the HTTP Upgrade.
type WebSocketTranscript struct {
	// URL is the WebSocket URL when the transcript records it; pydantic-ai
	// transcripts do not, so it is usually empty.
	URL      string
	Messages []WSMessage
}

// WSMessage is one entry of a transcript: a message, a close, or an HTTP
// exchange recorded between messages (WebRTC sideband setup).
type WSMessage struct {
	Sent bool // written by the client; false: received from the server
	// Data is the message payload: JSON events re-serialised (json.dumps
	// conventions, the recordings store them parsed), text as stored.
	Data   []byte
	Binary bool // a binary message (stored as !!binary)

	Close       bool // a close frame; Sent is not recorded for it
	CloseCode   int
	CloseReason string

	Exchange *Interaction // set for an HTTP exchange entry
}

// ReadWebSocketTranscript reads a WebSocket transcript file (gzip allowed).
func ReadWebSocketTranscript(path string) (*WebSocketTranscript, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return ParseWebSocketTranscript(path, data)
}

// ParseWebSocketTranscript reads a WebSocket transcript; name is used in
// errors only.
func ParseWebSocketTranscript(name string, data []byte) (*WebSocketTranscript, error) {
	t, err := parseWebSocketTranscript(data)
	if err != nil {
		return nil, fmt.Errorf("websocket transcript %s: %w", name, err)
	}
	return t, nil
}

func parseWebSocketTranscript(data []byte) (*WebSocketTranscript, error) {
	data, err := gunzipIfCompressed(data)
	if err != nil {
		return nil, err
	}
	top, _, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	its := top.get("interactions")
	if top.kind != pyDict || its == nil || its.kind != pyList {
		return nil, errors.New("no interactions list")
	}
	t := &WebSocketTranscript{}
	if u := top.get("url"); u != nil && u.kind == pyStr {
		t.URL = u.s
	}
	sawKind := false
	for i, it := range its.items {
		m, err := wsEntry(it)
		if err != nil {
			return nil, fmt.Errorf("interaction %d: %w", i, err)
		}
		if m.Exchange == nil {
			sawKind = true
		}
		t.Messages = append(t.Messages, m)
	}
	if !sawKind {
		return nil, errors.New("no WebSocket messages (an HTTP cassette?)")
	}
	return t, nil
}

func wsEntry(it *pyValue) (WSMessage, error) {
	var m WSMessage
	if it.kind != pyDict {
		return m, fmt.Errorf("a %s, not a mapping", it.kind)
	}
	if it.has("request") && it.has("response") {
		in, _, err := vcrInteraction(it.get("request"), it.get("response"), pyText)
		if err != nil {
			return m, err
		}
		m.Exchange = &in
		return m, nil
	}
	kind, _ := pyText(it.get("kind"))
	switch kind {
	case "message":
		switch dir, _ := pyText(it.get("direction")); dir {
		case "sent":
			m.Sent = true
		case "received":
		default:
			return m, fmt.Errorf("bad direction %q", dir)
		}
		d := it.get("data")
		switch {
		case d == nil || d.kind == pyNone:
		case d.kind == pyStr:
			m.Data = []byte(d.s)
		case d.kind == pyBytes:
			m.Data, m.Binary = d.raw, true
		default:
			b, err := pyJSONDumps(d)
			if err != nil {
				return m, fmt.Errorf("data: %w", err)
			}
			m.Data = b
		}
	case "close":
		m.Close = true
		if c := it.get("code"); c != nil && c.kind == pyInt && c.i.IsInt64() {
			m.CloseCode = int(c.i.Int64())
		}
		if r := it.get("reason"); r != nil && r.kind == pyStr {
			m.CloseReason = r.s
		}
	default:
		return m, fmt.Errorf("unknown entry kind %q", kind)
	}
	return m, nil
}
