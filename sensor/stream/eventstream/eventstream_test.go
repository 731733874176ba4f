package eventstream

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	awsstream "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventTypes(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.EventType)
	}
	return out
}

func TestDecodeConverseStream(t *testing.T) {
	body := readFixture(t, "converse-stream.bin")
	var c stats.Counters
	ms, err := DecodeAll(body, &c, Options{})
	if err != nil {
		t.Fatalf("DecodeAll: %v", err)
	}
	if got, want := len(ms), 33; got != want {
		t.Fatalf("got %d frames; want %d", got, want)
	}
	types := eventTypes(ms)
	if types[0] != "messageStart" || types[1] != "contentBlockDelta" || types[30] != "contentBlockStop" ||
		types[31] != "messageStop" || types[32] != "metadata" {
		t.Errorf("event types %v", types)
	}
	for _, m := range ms {
		if m.MessageType != "event" || m.ContentType != "application/json" || m.IsError() {
			t.Errorf("frame %d: message type %q content type %q", m.Start, m.MessageType, m.ContentType)
		}
	}
	if ms[0].Start != 0 || ms[len(ms)-1].End != int64(len(body)) {
		t.Errorf("offsets: first starts at %d, last ends at %d (body %d)", ms[0].Start, ms[len(ms)-1].End, len(body))
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Start != ms[i-1].End {
			t.Errorf("frame %d starts at %d; previous ended at %d", i, ms[i].Start, ms[i-1].End)
		}
	}
	var meta struct {
		Usage struct{ InputTokens, OutputTokens, TotalTokens int }
	}
	if err := json.Unmarshal(ms[32].Payload, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Usage.InputTokens != 13 || meta.Usage.OutputTokens != 82 || meta.Usage.TotalTokens != 95 {
		t.Errorf("metadata usage = %+v", meta.Usage)
	}
	if snap := c.Snapshot(); len(snap) != 0 {
		t.Errorf("counters on a good stream: %v", snap)
	}
}

func TestDecodeInvokeStreamChunks(t *testing.T) {
	body := readFixture(t, "invoke-stream-anthropic.bin")
	ms, err := DecodeAll(body, stats.Discard{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, m := range ms {
		if m.EventType != "chunk" {
			t.Fatalf("event type %q; want chunk", m.EventType)
		}
		inner, err := ChunkBytes(m.Payload, stats.Discard{})
		if err != nil {
			t.Fatal(err)
		}
		var ev struct{ Type string }
		if err := json.Unmarshal(inner, &ev); err != nil {
			t.Fatalf("chunk is not JSON: %v: %q", err, inner)
		}
		kinds = append(kinds, ev.Type)
	}
	if kinds[0] != "message_start" || kinds[len(kinds)-1] != "message_stop" {
		t.Errorf("model events %v", kinds)
	}
	last, _ := ChunkBytes(ms[len(ms)-1].Payload, nil)
	if !bytes.Contains(last, []byte(`"amazon-bedrock-invocationMetrics"`)) {
		t.Errorf("last chunk lacks invocation metrics: %s", last)
	}
}

// Every way of splitting the stream into writes yields the same frames.
func TestIncrementalSplits(t *testing.T) {
	for _, name := range []string{"converse-stream.bin", "invoke-stream-anthropic.bin"} {
		body := readFixture(t, name)
		want, err := DecodeAll(body, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for round := 0; round < 50; round++ {
			var got []Message
			d := NewDecoder(func(m Message) { m.Payload = bytes.Clone(m.Payload); got = append(got, m) }, nil, Options{})
			for rest := body; len(rest) > 0; {
				n := 1 + rng.IntN(min(len(rest), 1+round*13))
				if _, err := d.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s round %d: incremental frames differ from whole-body frames", name, round)
			}
		}
	}
}

// Every prefix of a valid stream decodes the whole frames it contains and
// reports the rest as truncated; none panics or invents frames.
func TestTruncatedPrefixes(t *testing.T) {
	body := readFixture(t, "converse-stream.bin")
	all, _ := DecodeAll(body, nil, Options{})
	for n := 0; n < len(body); n++ {
		var c stats.Counters
		ms, err := DecodeAll(body[:n], &c, Options{})
		whole := 0
		for _, m := range all {
			if m.End <= int64(n) {
				whole++
			}
		}
		if len(ms) != whole {
			t.Fatalf("prefix %d: %d frames; want %d", n, len(ms), whole)
		}
		atBoundary := n == 0 || (whole > 0 && all[whole-1].End == int64(n))
		if atBoundary {
			if err != nil {
				t.Fatalf("prefix %d at a frame boundary: %v", n, err)
			}
			continue
		}
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix %d: err = %v; want ErrTruncated", n, err)
		}
		if c.Get(TokenTruncated) != 1 || c.Get(TokenDroppedBytes) == 0 {
			t.Fatalf("prefix %d: counters %v", n, c.Snapshot())
		}
	}
}

func TestBadMessageCRCSkipsOneFrame(t *testing.T) {
	body := bytes.Clone(readFixture(t, "converse-stream.bin"))
	all, _ := DecodeAll(body, nil, Options{})
	// Corrupt one payload byte of frame 3: its prelude stays valid.
	body[all[3].Start+int64(len(all[3].Payload))/2+100] ^= 0x20
	var c stats.Counters
	ms, err := DecodeAll(body, &c, Options{})
	if err != nil {
		t.Fatalf("a bad message CRC must not stop the stream: %v", err)
	}
	if len(ms) != len(all)-1 {
		t.Fatalf("got %d frames; want %d", len(ms), len(all)-1)
	}
	if c.Get(TokenBadCRC) != 1 || c.Get(TokenDroppedBytes) != all[3].End-all[3].Start {
		t.Errorf("counters %v", c.Snapshot())
	}
}

func TestBadPreludeCRCStops(t *testing.T) {
	body := bytes.Clone(readFixture(t, "converse-stream.bin"))
	all, _ := DecodeAll(body, nil, Options{})
	body[all[5].Start+2] ^= 0x01 // the length field of frame 5
	var c stats.Counters
	ms, err := DecodeAll(body, &c, Options{})
	if !errors.Is(err, ErrBadPreludeCRC) {
		t.Fatalf("err = %v; want ErrBadPreludeCRC", err)
	}
	if len(ms) != 5 {
		t.Errorf("got %d frames before the corrupt one; want 5", len(ms))
	}
	if c.Get(TokenBadCRC) != 1 || c.Get(TokenDroppedBytes) != int64(len(body))-all[5].Start {
		t.Errorf("counters %v", c.Snapshot())
	}
	// Later writes are dropped and counted, with the same error.
	d := NewDecoder(func(Message) {}, &c, Options{})
	d.Write(body)
	before := c.Get(TokenDroppedBytes)
	if _, err := d.Write([]byte("more")); !errors.Is(err, ErrBadPreludeCRC) {
		t.Errorf("write after error: %v", err)
	}
	if c.Get(TokenDroppedBytes) != before+4 {
		t.Errorf("bytes after the error not counted")
	}
}

// A frame longer than MaxFrame is corrupt even with a good prelude CRC.
func TestFrameTooLarge(t *testing.T) {
	body := readFixture(t, "converse-stream.bin")
	var c stats.Counters
	_, err := DecodeAll(body, &c, Options{MaxFrame: 100})
	if !errors.Is(err, ErrBadPrelude) || c.Get(TokenBadPrelude) != 1 {
		t.Fatalf("err = %v, counters %v", err, c.Snapshot())
	}
}

func encode(t testing.TB, headers awsstream.Headers, payload string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := awsstream.NewEncoder().Encode(&buf, awsstream.Message{Headers: headers, Payload: []byte(payload)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExceptionAndErrorFrames(t *testing.T) {
	exc := encode(t, awsstream.Headers{
		{Name: ":message-type", Value: awsstream.StringValue("exception")},
		{Name: ":exception-type", Value: awsstream.StringValue("modelStreamErrorException")},
		{Name: ":content-type", Value: awsstream.StringValue("application/json")},
	}, `{"message":"Model stream error","originalStatusCode":500}`)
	errFrame := encode(t, awsstream.Headers{
		{Name: ":message-type", Value: awsstream.StringValue("error")},
		{Name: ":error-code", Value: awsstream.StringValue("InternalFailure")},
		{Name: ":error-message", Value: awsstream.StringValue("boom")},
	}, "")
	ms, err := DecodeAll(append(exc, errFrame...), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || !ms[0].IsError() || ms[0].ExceptionType != "modelStreamErrorException" ||
		!ms[1].IsError() || ms[1].ErrorCode != "InternalFailure" || ms[1].ErrorMessage != "boom" {
		t.Fatalf("frames %+v", ms)
	}
}

func TestChunkBytesErrors(t *testing.T) {
	var c stats.Counters
	for _, p := range []string{`not json`, `{"bytes":"***"}`, `{"p":"abc"}`} {
		if _, err := ChunkBytes([]byte(p), &c); err == nil {
			t.Errorf("ChunkBytes(%q) succeeded", p)
		}
	}
	if c.Get(TokenBadChunk) != 3 {
		t.Errorf("bad_chunk = %d; want 3", c.Get(TokenBadChunk))
	}
	got, err := ChunkBytes([]byte(`{"bytes":"eyJhIjoxfQ==","p":"abc"}`), &c)
	if err != nil || string(got) != `{"a":1}` {
		t.Errorf("got %q, %v", got, err)
	}
}

// The fast path for Bedrock's chunk layout agrees with encoding/json, and
// unusual layouts fall back to it.
func TestChunkBytesFastPath(t *testing.T) {
	body := readFixture(t, "invoke-stream-anthropic.bin")
	ms, _ := DecodeAll(body, nil, Options{})
	for _, m := range ms {
		fast, ok := chunkBytesFast(m.Payload)
		var c chunkPayload
		if err := json.Unmarshal(m.Payload, &c); err != nil || !ok || !bytes.Equal(fast, c.Bytes) {
			t.Fatalf("fast path %v differs from encoding/json on %q", ok, m.Payload)
		}
	}
	for _, p := range []string{`{"p":"x","bytes":"eyJhIjoxfQ=="}`, `{"bytes":"eyJhIjoxfQ\u003d\u003d"}`, `{ "bytes" : "eyJhIjoxfQ==" }`} {
		if _, ok := chunkBytesFast([]byte(p)); ok {
			t.Errorf("fast path took %s", p)
		}
		got, err := ChunkBytes([]byte(p), nil)
		if err != nil || string(got) != `{"a":1}` {
			t.Errorf("ChunkBytes(%s) = %q, %v", p, got, err)
		}
	}
}

func FuzzDecoder(f *testing.F) {
	for _, name := range []string{"converse-stream.bin", "invoke-stream-anthropic.bin"} {
		b := readFixture(f, name)
		f.Add(b, uint16(7))
		f.Add(b[:300], uint16(1))
	}
	f.Add([]byte(strings.Repeat("\x00", 20)), uint16(3))
	f.Fuzz(func(t *testing.T, body []byte, split uint16) {
		var c stats.Counters
		whole, werr := DecodeAll(body, &c, Options{MaxFrame: 1 << 16})
		var pieces []Message
		d := NewDecoder(func(m Message) {
			m.Payload = bytes.Clone(m.Payload) // it aliases the decoder's buffer
			pieces = append(pieces, m)
		}, nil, Options{MaxFrame: 1 << 16})
		step := int(split%64) + 1
		var perr error
		for rest := body; len(rest) > 0; {
			n := min(step, len(rest))
			if _, err := d.Write(rest[:n]); err != nil && perr == nil {
				perr = err
			}
			rest = rest[n:]
		}
		if err := d.Close(); err != nil && perr == nil {
			perr = err
		}
		if (werr == nil) != (perr == nil) || len(whole) != len(pieces) {
			t.Fatalf("whole: %d frames, %v; pieces: %d frames, %v", len(whole), werr, len(pieces), perr)
		}
		for i := range whole {
			if !reflect.DeepEqual(whole[i], pieces[i]) {
				t.Fatalf("frame %d differs", i)
			}
			if whole[i].End > int64(len(body)) || whole[i].Start >= whole[i].End {
				t.Fatalf("frame %d offsets %d..%d outside body %d", i, whole[i].Start, whole[i].End, len(body))
			}
		}
		if d.Buffered() != 0 {
			t.Fatalf("%d bytes still buffered after Close", d.Buffered())
		}
	})
}

func BenchmarkDecodeAll(b *testing.B) {
	for _, name := range []string{"converse-stream.bin", "invoke-stream-anthropic.bin"} {
		body := readFixture(b, name)
		b.Run(strings.TrimSuffix(name, ".bin"), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeAll(body, stats.Discard{}, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// frameWith returns a frame with the header block and payload given and
// correct CRCs.
func frameWith(headers, payload []byte) []byte {
	total := preludeLen + len(headers) + len(payload) + 4
	b := binary.BigEndian.AppendUint32(nil, uint32(total))
	b = binary.BigEndian.AppendUint32(b, uint32(len(headers)))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	b = append(append(b, headers...), payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// FuzzStringHeaders checks the decoder's own reading of string headers
// against the SDK's decoder: whenever it takes a header block, it must give
// what the SDK gives, whatever the memo holds from the blocks before.
func FuzzStringHeaders(f *testing.F) {
	for _, name := range []string{"converse-stream.bin", "invoke-stream-anthropic.bin"} {
		b := readFixture(f, name)
		for len(b) >= minFrame {
			total := int(binary.BigEndian.Uint32(b))
			headers := int(binary.BigEndian.Uint32(b[4:]))
			f.Add(b[preludeLen : preludeLen+headers])
			b = b[total:]
		}
	}
	var twice, other []byte
	for _, h := range []awsstream.Header{
		{Name: ":event-type", Value: awsstream.StringValue("chunk")},
		{Name: "", Value: awsstream.StringValue("")},
		{Name: ":event-type", Value: awsstream.StringValue("metadata")},
	} {
		twice = appendHeader(f, twice, h)
	}
	f.Add(twice)
	other = appendHeader(f, other, awsstream.Header{Name: ":date", Value: awsstream.TimestampValue(time.Unix(1, 0))})
	f.Add(other)
	f.Add([]byte{3, 'a', 'b', 'c', 7, 0, 9, 'x'})
	d := NewDecoder(func(Message) {}, nil, Options{})
	f.Fuzz(func(t *testing.T, headers []byte) {
		if len(headers) > 1<<16 {
			return
		}
		got, ok := d.stringHeaders(headers)
		m, err := awsstream.NewDecoder().Decode(bytes.NewReader(frameWith(headers, []byte("{}"))), nil)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("the SDK fails (%v) on a block read as %v", err, got)
		}
		if !reflect.DeepEqual(got, m.Headers) {
			t.Fatalf("headers %#v, the SDK reads %#v", got, m.Headers)
		}
	})
}

func appendHeader(t testing.TB, b []byte, h awsstream.Header) []byte {
	var buf bytes.Buffer
	if err := awsstream.NewEncoder().Encode(&buf, awsstream.Message{Headers: awsstream.Headers{h}}); err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()
	return append(b, frame[preludeLen:len(frame)-4]...)
}
