package loopback

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
)

// chunkCounter is a flow.Handler that counts plaintext bytes per direction.
type chunkCounter struct {
	mu    sync.Mutex
	bytes map[flow.Direction]int
}

func (c *chunkCounter) Open(*flow.Info) {}
func (c *chunkCounter) Data(_ string, ch flow.Chunk) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes == nil {
		c.bytes = map[flow.Direction]int{}
	}
	c.bytes[ch.Dir] += len(ch.Data)
}
func (c *chunkCounter) Close(string, flow.CloseInfo) {}

func sampleRecording() *cassette.Recording {
	sse := "data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n"
	return &cassette.Recording{Interactions: []cassette.Interaction{
		{
			Request: cassette.Request{Method: "POST", URL: "https://api.example.test/v1/chat/completions",
				Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"model":"m","stream":true}`)},
			Response: cassette.Response{Status: 200,
				Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: []byte(sse)},
		},
		{
			Request:  cassette.Request{Method: "GET", URL: "https://api.example.test/v1/models", Header: http.Header{}},
			Response: cassette.Response{Status: 404, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"error":"no"}`)},
		},
	}}
}

// pcapBlocks splits a little-endian pcapng file into its blocks' types and
// checks every block's two length fields agree.
func pcapBlocks(t *testing.T, b []byte) []uint32 {
	t.Helper()
	var types []uint32
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("pcapng: %d trailing bytes", len(b))
		}
		typ, n := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if n%4 != 0 || int(n) > len(b) || binary.LittleEndian.Uint32(b[n-4:]) != n {
			t.Fatalf("pcapng: bad block length %d", n)
		}
		types = append(types, typ)
		b = b[n:]
	}
	return types
}

func TestCapturingGoClientWritesPcapAndKeyLog(t *testing.T) {
	for _, tr := range []Transport{H1, H2, H3} {
		t.Run(string(tr), func(t *testing.T) {
			var pcap, keys bytes.Buffer
			pw, err := NewPcapNG(&pcap)
			if err != nil {
				t.Fatal(err)
			}
			h := &chunkCounter{}
			src := New(sampleRecording(), Options{Transport: tr, Client: CapturingGoClient{Capture: ClientOptions{KeyLog: &keys, Pcap: pw}}})
			if err := src.Run(context.Background(), h); err != nil {
				t.Fatal(err)
			}
			if err := pw.Err(); err != nil {
				t.Fatal(err)
			}
			types := pcapBlocks(t, pcap.Bytes())
			if len(types) < 2+3+4 || types[0] != blockSectionHeader || types[1] != blockInterface {
				t.Fatalf("pcapng blocks %x", types)
			}
			if pw.Packets() != len(types)-2 {
				t.Errorf("Packets() = %d, file has %d", pw.Packets(), len(types)-2)
			}
			if !strings.Contains(keys.String(), "CLIENT_") {
				t.Errorf("key log has no secrets: %q", keys.String())
			}
			if h.bytes[flow.ClientToServer] == 0 || h.bytes[flow.ServerToClient] == 0 {
				t.Errorf("tap saw %v", h.bytes)
			}
			tshark, err := exec.LookPath("tshark")
			if err != nil {
				t.Log("tshark not installed: decryption of the capture not checked")
				return
			}
			dir := t.TempDir()
			capFile, keyFile := filepath.Join(dir, "cap.pcapng"), filepath.Join(dir, "keys")
			os.WriteFile(capFile, pcap.Bytes(), 0o644)
			os.WriteFile(keyFile, keys.Bytes(), 0o600)
			args := []string{"-n", "-r", capFile, "-o", "tls.keylog_file:" + keyFile,
				"-d", "tcp.port==1-65535,tls", "-d", "udp.port==1-65535,quic", "-T", "fields"}
			switch tr {
			case H1:
				args = append(args, "-Y", "http.request", "-e", "http.request.uri")
			case H2:
				args = append(args, "-Y", "http2.type == 1", "-e", "http2.headers.path")
			case H3:
				// Wireshark 4.0 does not decode QPACK: check that it
				// decrypted QUIC and found HTTP/3 frames on both
				// request streams.
				args = append(args, "-Y", "http3", "-e", "quic.stream.stream_id", "-e", "http3.frame_type")
			}
			out, err := exec.Command(tshark, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("tshark: %v\n%s", err, out)
			}
			got := string(out)
			if tr == H3 {
				// HEADERS (type 1) on both request streams, 0 and 4. A
				// packet may carry frames of several streams (the control
				// stream's SETTINGS beside request 0's HEADERS), so each
				// line is "ids<TAB>types" with comma lists.
				for _, id := range []string{"0", "4"} {
					if !h3PacketCarries(got, id, "1") {
						t.Errorf("tshark did not decrypt HEADERS on stream %s:\n%s", id, got)
					}
				}
				return
			}
			for _, w := range []string{"/v1/chat/completions", "/v1/models"} {
				if !strings.Contains(got, w) {
					t.Errorf("tshark did not decrypt %q:\n%s", w, got)
				}
			}
		})
	}
}

// h3PacketCarries reports whether a line of tshark's "stream ids<TAB>frame
// types" output lists the stream id and the frame type.
func h3PacketCarries(out, streamID, frameType string) bool {
	for _, line := range strings.Split(out, "\n") {
		ids, types, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && slices.Contains(strings.Split(ids, ","), streamID) &&
			slices.Contains(strings.Split(types, ","), frameType) {
			return true
		}
	}
	return false
}

func TestH3PacketCarries(t *testing.T) {
	// The shape CI saw: request 0's HEADERS shares a packet with the
	// control stream's SETTINGS.
	out := "0,2\t1,0,4\n3\t0,4,1,0,0,0\n4\t1\n4\t1,0\n"
	for _, c := range []struct {
		id, typ string
		want    bool
	}{{"0", "1", true}, {"4", "1", true}, {"8", "1", false}, {"3", "7", false}, {"2", "4", true}} {
		if got := h3PacketCarries(out, c.id, c.typ); got != c.want {
			t.Errorf("stream %s type %s: %v, want %v", c.id, c.typ, got, c.want)
		}
	}
}
