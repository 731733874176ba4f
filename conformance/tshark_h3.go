package conformance

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/quic-go/qpack"
)

// HTTP/3 through tshark. Wireshark 4.0 decrypts QUIC with a TLS key log and
// reassembles nothing above it that we can use (its HTTP/3 dissector has no
// QPACK), so tshark is the oracle for decryption and for which bytes each
// QUIC stream carried at which offset; the HTTP/3 framing of those bytes
// is read here with a few lines of varint parsing, and HEADERS blocks with
// quic-go/qpack's static-table decoder (the loopback's quic-go encoder uses
// no dynamic table). Our decoder is incremental, handles the dynamic table
// and sees the relay's stream chunks; this path sees the client's packets.

// TsharkQUICArgs are the arguments that make tshark decrypt QUIC on any UDP
// port with a key log and show only QUIC packets.
func TsharkQUICArgs(pcapPath, keyLogPath string) []string {
	return []string{"-n", "-r", pcapPath, "-o", "tls.keylog_file:" + keyLogPath,
		"-d", "udp.port==1-65535,quic", "-Y", "quic"}
}

// WireStreamsOfHTTP3 returns the HTTP/3 request streams of decoded
// exchanges, sorted.
func WireStreamsOfHTTP3(xs []*httpmsg.Exchange) []WireStream {
	var h3 []*httpmsg.Exchange
	for _, x := range xs {
		if x.Proto == "HTTP/3" {
			y := *x
			y.Proto = "HTTP/2" // reuse the HTTP/2 projection
			h3 = append(h3, &y)
		}
	}
	return WireStreamsOf(h3)
}

// quicStreamFrame is the payload of one decrypted QUIC STREAM frame.
type quicStreamFrame struct {
	conn     int64 // tshark's QUIC connection number
	src, dst uint16
	streamID uint64
	offset   uint64
	data     []byte
}

// TsharkHTTP3Streams runs tshark on a capture of QUIC connections and
// returns the HTTP/3 request streams they carried, sorted.
func TsharkHTTP3Streams(ctx context.Context, tshark, pcapPath, keyLogPath string) ([]WireStream, error) {
	args := append(TsharkQUICArgs(pcapPath, keyLogPath), "-T", "json", "--no-duplicate-keys", "-J", "udp quic")
	var frames []quicStreamFrame
	var clients map[int64]uint16
	err := runTshark(ctx, tshark, args, func(out io.Reader) (err error) {
		frames, clients, err = parseTsharkQUIC(out)
		return err
	})
	if err != nil {
		return nil, err
	}
	return foldQUICStreams(frames, clients)
}

// parseTsharkQUIC reads tshark's JSON packets: the STREAM frames, and the
// client port of each QUIC connection (the sender of its first packet, the
// client's Initial). One client socket may carry several connections (one
// per host name) to the same relay address, so connections are told apart
// by tshark's connection number, not by ports.
func parseTsharkQUIC(r io.Reader) ([]quicStreamFrame, map[int64]uint16, error) {
	clients := map[int64]uint16{}
	var frames []quicStreamFrame
	err := eachTsharkPacket(r, func(layers map[string]any) error {
		udp, _ := layers["udp"].(map[string]any)
		src, dst := uint16(atoiField(udp, "udp.srcport")), uint16(atoiField(udp, "udp.dstport"))
		// Coalesced QUIC packets share one datagram and connection.
		conns := objectsWith(layers["quic"], "quic.connection.number")
		if len(conns) == 0 {
			return nil
		}
		conn := atoiField(conns[0], "quic.connection.number")
		if _, seen := clients[conn]; !seen {
			clients[conn] = src
		}
		for _, f := range objectsWith(layers["quic"], "quic.stream.stream_id") {
			data, err := hex.DecodeString(strings.ReplaceAll(firstString(f["quic.stream_data"]), ":", ""))
			if err != nil {
				return fmt.Errorf("stream data: %w", err)
			}
			frames = append(frames, quicStreamFrame{
				conn: conn, src: src, dst: dst,
				streamID: uint64(atoiField(f, "quic.stream.stream_id")),
				offset:   uint64(atoiField(f, "quic.stream.offset")),
				data:     data,
			})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return frames, clients, nil
}

// objectsWith returns every object holding key under v.
func objectsWith(v any, key string) []map[string]any {
	var out []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if _, ok := t[key]; ok {
				out = append(out, t)
				return
			}
			for _, x := range t {
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

// foldQUICStreams reassembles each client-initiated bidirectional stream
// per direction from its frames' offsets, reads the HTTP/3 frames and
// returns one WireStream per request.
func foldQUICStreams(frames []quicStreamFrame, clients map[int64]uint16) ([]WireStream, error) {
	type dirKey struct {
		conn       int64
		id         uint64
		fromClient bool
	}
	parts := map[dirKey][]quicStreamFrame{}
	servers := map[int64]uint16{}
	for _, f := range frames {
		if f.streamID%4 != 0 { // client-initiated bidirectional only
			continue
		}
		fromClient := f.src == clients[f.conn]
		if fromClient {
			servers[f.conn] = f.dst
		}
		k := dirKey{f.conn, f.streamID, fromClient}
		parts[k] = append(parts[k], f)
	}
	type streamKey struct {
		conn int64
		id   uint64
	}
	streams := map[streamKey]*WireStream{}
	var errs []error
	for k, fs := range parts {
		data, err := reassemble(fs)
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %d: %w", k.id, err))
			continue
		}
		sk := streamKey{k.conn, k.id}
		s := streams[sk]
		if s == nil {
			s = &WireStream{ClientPort: clients[k.conn], ServerPort: servers[k.conn], StreamID: uint32(k.id)}
			streams[sk] = s
		}
		if err := readHTTP3(data, s, k.fromClient); err != nil {
			errs = append(errs, fmt.Errorf("QUIC connection %d stream %d (from client %v, %d bytes): %w", k.conn, k.id, k.fromClient, len(data), err))
		}
	}
	out := make([]WireStream, 0, len(streams))
	for _, s := range streams {
		if s.Method != "" {
			out = append(out, *s)
		}
	}
	SortWireStreams(out)
	return out, errors.Join(errs...)
}

// reassemble joins a stream direction's frames by offset; retransmitted
// ranges are taken once, and a hole is an error.
func reassemble(fs []quicStreamFrame) ([]byte, error) {
	slices.SortStableFunc(fs, func(a, b quicStreamFrame) int {
		switch {
		case a.offset < b.offset:
			return -1
		case a.offset > b.offset:
			return 1
		}
		return 0
	})
	var out []byte
	for _, f := range fs {
		end := f.offset + uint64(len(f.data))
		if f.offset > uint64(len(out)) {
			return nil, fmt.Errorf("hole at offset %d", len(out))
		}
		if end > uint64(len(out)) {
			out = append(out, f.data[uint64(len(out))-f.offset:]...)
		}
	}
	return out, nil
}

// HTTP/3 frame types the fold reads (RFC 9114).
const (
	h3FrameData    = 0x0
	h3FrameHeaders = 0x1
)

// readHTTP3 reads the HTTP/3 frames of one stream direction into s: the
// first HEADERS block's pseudo-headers and the DATA payload length.
func readHTTP3(b []byte, s *WireStream, fromClient bool) error {
	sawHeaders := false
	for len(b) > 0 {
		typ, n := quicVarint(b)
		if n == 0 {
			return errors.New("truncated frame type")
		}
		length, m := quicVarint(b[n:])
		if m == 0 || uint64(len(b)-n-m) < length {
			return fmt.Errorf("truncated frame (type %#x, %d bytes, %d present)", typ, length, len(b)-n-m)
		}
		payload := b[n+m : n+m+int(length)]
		b = b[n+m+int(length):]
		switch typ {
		case h3FrameHeaders:
			if sawHeaders {
				continue // trailers
			}
			sawHeaders = true
			fields, err := decodeQPACK(payload)
			if err != nil {
				return err
			}
			if fromClient {
				s.Method, s.Path = fields[":method"], fields[":path"]
			} else {
				s.Status, _ = strconv.Atoi(fields[":status"])
			}
		case h3FrameData:
			if fromClient {
				s.RequestBytes += int64(length)
			} else {
				s.ResponseBytes += int64(length)
			}
		}
	}
	return nil
}

func decodeQPACK(block []byte) (map[string]string, error) {
	next := qpack.NewDecoder().Decode(block)
	fields := map[string]string{}
	for {
		hf, err := next()
		if err == io.EOF {
			return fields, nil
		}
		if err != nil {
			return nil, fmt.Errorf("QPACK: %w", err)
		}
		if _, dup := fields[hf.Name]; !dup {
			fields[hf.Name] = hf.Value
		}
	}
}

// quicVarint reads a QUIC variable-length integer (RFC 9000 §16), returning
// its value and length, or length 0 when b is too short.
func quicVarint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	n := 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0
	}
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n
}
