package conformance

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// This file reads HTTP/2 traffic with tshark (Wireshark's dissector), an
// implementation independent of ours, so the suite can check that our
// decoders saw the same streams on the same capture.

// WireStream is one HTTP/2 stream as a decoder saw it: the connection (by
// its TCP ports), the stream id, the request's :method and :path, the
// response's :status and the DATA payload bytes each way (padding
// excluded).
type WireStream struct {
	ClientPort, ServerPort uint16
	StreamID               uint32
	Method, Path           string
	Status                 int
	RequestBytes           int64
	ResponseBytes          int64
}

func (s WireStream) String() string {
	return fmt.Sprintf("%d→%d stream %d: %s %s → %d (request %d bytes, response %d bytes)",
		s.ClientPort, s.ServerPort, s.StreamID, s.Method, s.Path, s.Status, s.RequestBytes, s.ResponseBytes)
}

// SortWireStreams orders streams by connection, then stream id, then the
// rest (one client port may carry several QUIC connections).
func SortWireStreams(ss []WireStream) {
	slices.SortFunc(ss, func(a, b WireStream) int {
		return cmp.Or(cmp.Compare(a.ClientPort, b.ClientPort), cmp.Compare(a.ServerPort, b.ServerPort),
			cmp.Compare(a.StreamID, b.StreamID), cmp.Compare(a.Method, b.Method), cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Status, b.Status), cmp.Compare(a.RequestBytes, b.RequestBytes),
			cmp.Compare(a.ResponseBytes, b.ResponseBytes))
	})
}

// WireStreamsOf returns the HTTP/2 streams of decoded exchanges, sorted.
func WireStreamsOf(xs []*httpmsg.Exchange) []WireStream {
	var out []WireStream
	for _, x := range xs {
		if x.Proto != "HTTP/2" {
			continue
		}
		s := WireStream{
			StreamID:     uint32(x.StreamID),
			Method:       x.Request.Method,
			Path:         x.Request.Target,
			RequestBytes: x.Request.Body.WireLength,
		}
		if x.Flow != nil {
			s.ClientPort, s.ServerPort = x.Flow.Local.Port(), x.Flow.Remote.Port()
		}
		if x.Response != nil {
			s.Status = x.Response.Status
			s.ResponseBytes = x.Response.Body.WireLength
		}
		out = append(out, s)
	}
	SortWireStreams(out)
	return out
}

// TsharkArgs are the arguments that make tshark decrypt a pcapng with a TLS
// key log, treating every TCP port as TLS (the loopback servers listen on
// ephemeral ports) and showing only packets with HTTP/2 frames.
func TsharkArgs(pcapPath, keyLogPath string) []string {
	return []string{"-n", "-r", pcapPath, "-o", "tls.keylog_file:" + keyLogPath,
		"-d", "tcp.port==1-65535,tls", "-Y", "http2"}
}

// TsharkHTTP2Streams runs tshark on a capture and returns the HTTP/2
// streams it dissected (streams with a request HEADERS frame), sorted.
func TsharkHTTP2Streams(ctx context.Context, tshark, pcapPath, keyLogPath string) ([]WireStream, error) {
	args := append(TsharkArgs(pcapPath, keyLogPath), "-T", "json", "--no-duplicate-keys", "-J", "tcp http2")
	var streams []WireStream
	err := runTshark(ctx, tshark, args, func(out io.Reader) (err error) {
		streams, err = parseTsharkJSON(out)
		return err
	})
	return streams, err
}

// runTshark runs tshark with args, hands its standard output to parse as
// it is written, and waits for it to exit. Its stderr explains a failed
// run.
func runTshark(ctx context.Context, tshark string, args []string, parse func(io.Reader) error) error {
	cmd := exec.CommandContext(ctx, tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("tshark: %w", err)
	}
	perr := parse(out)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("tshark: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if perr != nil {
		return fmt.Errorf("tshark output: %w", perr)
	}
	return nil
}

// eachTsharkPacket reads tshark's `-T json` packet array one packet at a
// time and hands each packet's layers to each. No output is no packets.
func eachTsharkPacket(r io.Reader, each func(layers map[string]any) error) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("want a JSON array, got %v", tok)
	}
	for dec.More() {
		var pkt struct {
			Source struct {
				Layers map[string]any `json:"layers"`
			} `json:"_source"`
		}
		if err := dec.Decode(&pkt); err != nil {
			return err
		}
		if err := each(pkt.Source.Layers); err != nil {
			return err
		}
	}
	return nil
}

// tsharkFrame is one HTTP/2 frame from tshark's JSON.
type tsharkFrame struct {
	src, dst uint16
	streamID uint32
	typ      int
	length   int64
	flags    int64
	pad      int64
	method   string
	path     string
	status   string
}

// parseTsharkJSON reads tshark's `-T json` packet array one packet at a
// time and folds the HTTP/2 frames into streams.
func parseTsharkJSON(r io.Reader) ([]WireStream, error) {
	var frames []tsharkFrame
	err := eachTsharkPacket(r, func(layers map[string]any) error {
		tcp, _ := layers["tcp"].(map[string]any)
		src, dst := atoiField(tcp, "tcp.srcport"), atoiField(tcp, "tcp.dstport")
		for _, f := range objectsWith(layers["http2"], "http2.streamid") {
			fr := tsharkFrame{
				src:      uint16(src),
				dst:      uint16(dst),
				streamID: uint32(atoiField(f, "http2.streamid")),
				typ:      int(atoiField(f, "http2.type")),
				length:   atoiField(f, "http2.length"),
				flags:    atoiField(f, "http2.flags"),
				pad:      atoiField(f, "http2.pad_length"),
				method:   findString(f, "http2.headers.method"),
				path:     findString(f, "http2.headers.path"),
				status:   findString(f, "http2.headers.status"),
			}
			frames = append(frames, fr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return foldFrames(frames), nil
}

// HTTP/2 frame types and flags the fold needs.
const (
	h2FrameData    = 0
	h2FrameHeaders = 1
	h2FlagPadded   = 0x8
)

// foldFrames groups frames into streams. The client of a connection is the
// side that sends request headers.
func foldFrames(frames []tsharkFrame) []WireStream {
	type connKey struct{ lo, hi uint16 }
	keyOf := func(a, b uint16) connKey {
		if a > b {
			a, b = b, a
		}
		return connKey{a, b}
	}
	clientOf := map[connKey]uint16{}
	for _, f := range frames {
		if f.typ == h2FrameHeaders && f.method != "" {
			clientOf[keyOf(f.src, f.dst)] = f.src
		}
	}
	type streamKey struct {
		conn connKey
		id   uint32
	}
	streams := map[streamKey]*WireStream{}
	for _, f := range frames {
		if f.streamID == 0 {
			continue
		}
		ck := keyOf(f.src, f.dst)
		client, ok := clientOf[ck]
		if !ok {
			continue
		}
		sk := streamKey{ck, f.streamID}
		s := streams[sk]
		if s == nil {
			s = &WireStream{ClientPort: client, ServerPort: ck.lo + ck.hi - client, StreamID: f.streamID}
			streams[sk] = s
		}
		fromClient := f.src == client
		switch f.typ {
		case h2FrameHeaders:
			if f.method != "" {
				s.Method, s.Path = f.method, f.path
			}
			if f.status != "" && !fromClient && s.Status == 0 {
				s.Status, _ = strconv.Atoi(f.status)
			}
		case h2FrameData:
			n := f.length
			if f.flags&h2FlagPadded != 0 {
				n -= f.pad + 1
			}
			if fromClient {
				s.RequestBytes += n
			} else {
				s.ResponseBytes += n
			}
		}
	}
	out := make([]WireStream, 0, len(streams))
	for _, s := range streams {
		if s.Method != "" {
			out = append(out, *s)
		}
	}
	SortWireStreams(out)
	return out
}

// findString returns the first string value of key anywhere under v.
func findString(v any, key string) string {
	switch t := v.(type) {
	case map[string]any:
		if s, ok := t[key]; ok {
			if str := firstString(s); str != "" {
				return str
			}
		}
		for _, x := range t {
			if s := findString(x, key); s != "" {
				return s
			}
		}
	case []any:
		for _, x := range t {
			if s := findString(x, key); s != "" {
				return s
			}
		}
	}
	return ""
}

func firstString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []any:
		if len(t) > 0 {
			s, _ := t[0].(string)
			return s
		}
	}
	return ""
}

// atoiField parses a numeric tshark field ("12" or "0x0c").
func atoiField(m map[string]any, key string) int64 {
	s := firstString(m[key])
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0
	}
	return n
}
