package content

import (
	"bytes"
	stdflate "compress/flate"
	stdgzip "compress/gzip"
	stdzlib "compress/zlib"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/stats"
)

// compress applies one coding with the real library encoder.
func compress(t testing.TB, coding string, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip", "x-gzip":
		w = stdgzip.NewWriter(&buf)
	case "deflate": // zlib, as RFC 9110 defines it
		w = stdzlib.NewWriter(&buf)
	case "rawdeflate": // what some servers send as "deflate"
		fw, err := stdflate.NewWriter(&buf, stdflate.DefaultCompression)
		if err != nil {
			t.Fatal(err)
		}
		w = fw
	case "br":
		w = brotli.NewWriterLevel(&buf, brotli.DefaultCompression)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		t.Fatalf("no encoder for %q", coding)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var plainJSON = []byte(strings.Repeat(`{"id":"chatcmpl-1","choices":[{"delta":{"content":"Hello"}}]}`+"\n", 50))

func TestDecode(t *testing.T) {
	gz := compress(t, "gzip", plainJSON)
	tests := []struct {
		name     string
		encoding string
		wire     []byte
		want     []byte
	}{
		{"gzip from compress/gzip", "gzip", gz, plainJSON},
		{"x-gzip is gzip", "x-gzip", gz, plainJSON},
		{"coding names are case-insensitive", " GZip ", gz, plainJSON},
		{"deflate as zlib", "deflate", compress(t, "deflate", plainJSON), plainJSON},
		{"deflate sent as a raw stream", "deflate", compress(t, "rawdeflate", plainJSON), plainJSON},
		{"brotli", "br", compress(t, "br", plainJSON), plainJSON},
		{"zstd", "zstd", compress(t, "zstd", plainJSON), plainJSON},
		{"identity returns the wire bytes", "identity", plainJSON, plainJSON},
		{"empty encoding returns the wire bytes", "", plainJSON, plainJSON},
		{"stacked gzip then br is removed br first", "gzip, br", compress(t, "br", gz), plainJSON},
		{"stacked with identity entries", "identity, gzip,identity", gz, plainJSON},
		{"same coding twice", "gzip, gzip", compress(t, "gzip", gz), plainJSON},
		{"three layers", "deflate, zstd, br", compress(t, "br", compress(t, "zstd", compress(t, "deflate", plainJSON))), plainJSON},
		{"multi-member gzip", "gzip", append(compress(t, "gzip", plainJSON[:100]), compress(t, "gzip", plainJSON[100:])...), plainJSON},
		{"empty gzip body", "gzip", compress(t, "gzip", nil), []byte{}},
	}
	d := NewDecoder(stats.Discard{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, dec := range []string{"reused decoder", "fresh decoder"} {
				var out []byte
				var truncated bool
				var err error
				if dec == "reused decoder" {
					out, truncated, err = d.Decode(tt.encoding, tt.wire, 1<<20)
				} else {
					out, truncated, err = Decode(tt.encoding, tt.wire, 1<<20, stats.Discard{})
				}
				if err != nil {
					t.Fatalf("%s: Decode: %v", dec, err)
				}
				if truncated {
					t.Errorf("%s: truncated = true; want false", dec)
				}
				if !bytes.Equal(out, tt.want) {
					t.Errorf("%s: got %d bytes %q...; want %d bytes", dec, len(out), head(out), len(tt.want))
				}
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 40)] }

func TestDecodeRealServerGzip(t *testing.T) {
	// A gzip body exactly as api.anthropic.com sent it (with a sync flush
	// before the final block), from the openllmetry cassette named in
	// testdata/README.md.
	wire, err := os.ReadFile("testdata/anthropic-complete.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	out, truncated, err := Decode("gzip", wire, 1<<20, stats.Discard{})
	if err != nil || truncated {
		t.Fatalf("Decode: truncated=%v err=%v", truncated, err)
	}
	if !bytes.HasPrefix(out, []byte(`{"type":"completion"`)) || !bytes.HasSuffix(out, []byte(`"log_id":"compl_01EjfrPvPEsRDRUKD6VoBxtK"}`)) {
		t.Errorf("got %q", out)
	}
}

func TestDecodeErrors(t *testing.T) {
	gz := compress(t, "gzip", plainJSON)
	tests := []struct {
		name      string
		encoding  string
		wire      []byte
		wantErr   error // nil: any non-nil error
		wantToken string
		wantPrefx bool // a non-empty decoded prefix comes back
	}{
		{"unknown coding is refused", "compress", []byte("xx"), ErrUnknownEncoding, TokenUnknownEncoding, false},
		{"unknown coding inside a stack", "gzip, snappy", gz, ErrUnknownEncoding, TokenUnknownEncoding, false},
		{"gzip cut short keeps the prefix", "gzip", gz[:len(gz)/2], ErrTruncated, TokenDecodeError, true},
		{"zstd cut short", "zstd", compress(t, "zstd", plainJSON)[:40], ErrTruncated, TokenDecodeError, false},
		{"br cut short", "br", compress(t, "br", plainJSON)[:20], ErrTruncated, TokenDecodeError, false},
		{"deflate cut short", "deflate", compress(t, "deflate", plainJSON)[:30], ErrTruncated, TokenDecodeError, false},
		{"not gzip at all", "gzip", []byte("{\"plain\": true}"), nil, TokenDecodeError, false},
		{"not zstd at all", "zstd", []byte("{\"plain\": true}"), nil, TokenDecodeError, false},
		{"not brotli at all", "br", []byte("{\"plain\": true}"), nil, TokenDecodeError, false},
		{"gzip with a corrupted checksum", "gzip", corruptTail(gz), nil, TokenDecodeError, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec stats.Counters
			out, _, err := Decode(tt.encoding, tt.wire, 1<<20, &rec)
			if err == nil {
				t.Fatalf("Decode succeeded with %d bytes; want an error", len(out))
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v; want %v", err, tt.wantErr)
			}
			if rec.Get(tt.wantToken) != 1 {
				t.Errorf("counter %s = %d; want 1 (all: %v)", tt.wantToken, rec.Get(tt.wantToken), rec.Snapshot())
			}
			if tt.wantPrefx && (len(out) == 0 || !bytes.HasPrefix(plainJSON, out)) {
				t.Errorf("prefix = %q; want a non-empty prefix of the plain text", head(out))
			}
		})
	}
}

func corruptTail(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-5] ^= 0xff // CRC32
	return c
}

func TestDecodeTrailingGarbageAfterGzip(t *testing.T) {
	var rec stats.Counters
	wire := append(compress(t, "gzip", plainJSON), "\r\n"...)
	out, _, err := Decode("gzip", wire, 1<<20, &rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, plainJSON) {
		t.Errorf("decoded data differs")
	}
	if rec.Get(TokenTrailingGarbage) != 1 {
		t.Errorf("trailing garbage not counted: %v", rec.Snapshot())
	}
}

func TestDecodeCap(t *testing.T) {
	for _, coding := range []string{"gzip", "deflate", "br", "zstd", "identity"} {
		t.Run(coding+" exactly at the cap is not truncated", func(t *testing.T) {
			wire := plainJSON
			if coding != "identity" {
				wire = compress(t, coding, plainJSON)
			}
			out, truncated, err := Decode(coding, wire, len(plainJSON), stats.Discard{})
			if err != nil || truncated || !bytes.Equal(out, plainJSON) {
				t.Errorf("got %d bytes truncated=%v err=%v; want all %d", len(out), truncated, err, len(plainJSON))
			}
		})
		t.Run(coding+" one byte over the cap is truncated and counted", func(t *testing.T) {
			wire := plainJSON
			if coding != "identity" {
				wire = compress(t, coding, plainJSON)
			}
			var rec stats.Counters
			out, truncated, err := Decode(coding, wire, len(plainJSON)-1, &rec)
			if err != nil || !truncated || !bytes.Equal(out, plainJSON[:len(plainJSON)-1]) {
				t.Errorf("got %d bytes truncated=%v err=%v; want %d truncated", len(out), truncated, err, len(plainJSON)-1)
			}
			if rec.Get(TokenTruncated) != 1 {
				t.Errorf("content.truncated = %d; want 1", rec.Get(TokenTruncated))
			}
		})
	}
}

func TestDecompressionBombStaysUnderTheCap(t *testing.T) {
	// 64 MiB of zeros compresses to well under 1 MiB; decoding with a
	// 1 MiB cap must not allocate anywhere near the inflated size.
	const inflated = 64 << 20
	const limit = 1 << 20
	for _, coding := range []string{"gzip", "zstd", "br", "gzip, br"} {
		t.Run(coding, func(t *testing.T) {
			wire := bomb(t, coding, inflated)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			out, truncated, err := Decode(coding, wire, limit, stats.Discard{})
			runtime.ReadMemStats(&after)
			if err != nil || !truncated || len(out) != limit {
				t.Fatalf("got %d bytes truncated=%v err=%v; want %d truncated", len(out), truncated, err, limit)
			}
			// Decompressor state (brotli and zstd windows) comes on top of
			// the output; everything together must stay far below the bomb.
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d KiB wire, %d KiB allocated", len(wire)>>10, alloc>>10)
			if alloc > 24<<20 {
				t.Errorf("allocated %d MiB decoding a bomb with a 1 MiB cap", alloc>>20)
			}
		})
	}
}

func bomb(t *testing.T, coding string, n int) []byte {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var buf bytes.Buffer
	var ws []interface {
		Write([]byte) (int, error)
		Close() error
	}
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	layers := strings.Split(coding, ", ")
	// Build the writer stack: the first listed coding is applied first,
	// so it is the innermost writer.
	var dst interface{ Write([]byte) (int, error) } = &buf
	for i := len(layers) - 1; i >= 0; i-- {
		switch layers[i] {
		case "gzip":
			w = stdgzip.NewWriter(dst)
		case "br":
			w = brotli.NewWriterLevel(dst, 1)
		case "zstd":
			zw, err := zstd.NewWriter(dst, zstd.WithEncoderLevel(zstd.SpeedFastest))
			if err != nil {
				t.Fatal(err)
			}
			w = zw
		}
		ws = append(ws, w)
		dst = w
	}
	for written := 0; written < n; written += len(zeros) {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	for i := len(ws) - 1; i >= 0; i-- {
		if err := ws[i].Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestKnown(t *testing.T) {
	for enc, want := range map[string]bool{"": true, "gzip": true, "br, zstd": true, "compress": false, "gzip, x": false} {
		if got := Known(enc); got != want {
			t.Errorf("Known(%q) = %v; want %v", enc, got, want)
		}
	}
}

// flushedStream compresses events one flush at a time, the way a server
// streams compressed SSE, and returns the wire bytes with one arrival mark
// per flush.
func flushedStream(t *testing.T, coding string, events []string, t0 time.Time) (wire []byte, marks []httpmsg.Mark) {
	t.Helper()
	var buf bytes.Buffer
	type flusher interface {
		Write([]byte) (int, error)
		Flush() error
		Close() error
	}
	var w flusher
	switch coding {
	case "gzip":
		w = stdgzip.NewWriter(&buf)
	case "deflate":
		w = stdzlib.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	for i, ev := range events {
		if _, err := w.Write([]byte(ev)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if i == len(events)-1 {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
		marks = append(marks, httpmsg.Mark{Offset: buf.Len(), At: t0.Add(time.Duration(i+1) * time.Second)})
	}
	return buf.Bytes(), marks
}

func TestDecodeBodyKeepsArrivalTimesPerFlush(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var events []string
	for i := range 12 {
		events = append(events, fmt.Sprintf("data: {\"n\":%d,\"text\":%q}\n\n", i, strings.Repeat("tok ", i+1)))
	}
	plain := strings.Join(events, "")
	for _, coding := range []string{"gzip", "deflate", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			wire, marks := flushedStream(t, coding, events, t0)
			b := httpmsg.Body{Data: wire, Marks: marks, WireLength: int64(len(wire))}
			capped, err := NewDecoder(stats.Discard{}).DecodeBody(&b, coding, httpmsg.Limits{})
			if err != nil || capped {
				t.Fatalf("DecodeBody: capped=%v err=%v", capped, err)
			}
			if string(b.Data) != plain || b.ContentEncoding != coding {
				t.Fatalf("got %q (encoding %q)", head(b.Data), b.ContentEncoding)
			}
			if last := b.Marks[len(b.Marks)-1]; last.Offset != len(b.Data) {
				t.Errorf("last mark covers %d of %d bytes", last.Offset, len(b.Data))
			}
			// Every event's first and last byte arrived with its own flush.
			off := 0
			for i, ev := range events {
				want := t0.Add(time.Duration(i+1) * time.Second)
				if got := b.TimeAt(off); !got.Equal(want) {
					t.Errorf("event %d first byte at %v; want %v", i, got.Sub(t0), want.Sub(t0))
				}
				off += len(ev)
				if got := b.TimeAt(off - 1); !got.Equal(want) {
					t.Errorf("event %d last byte at %v; want %v", i, got.Sub(t0), want.Sub(t0))
				}
			}
		})
	}
}

func TestDecodeBodyOutcomes(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gz := compress(t, "gzip", plainJSON)
	tests := []struct {
		name       string
		encoding   string
		wire       []byte
		lim        httpmsg.Limits
		want       httpmsg.Body
		wantErr    error
		wantCapped bool
	}{
		{
			name: "identity leaves the body alone", encoding: "identity", wire: []byte("abc"),
			want: httpmsg.Body{Data: []byte("abc"), Marks: []httpmsg.Mark{{Offset: 3, At: at}}},
		},
		{
			name: "gzip in one arrival", encoding: "gzip", wire: gz,
			want: httpmsg.Body{Data: plainJSON, Marks: []httpmsg.Mark{{Offset: len(plainJSON), At: at}}, ContentEncoding: "gzip"},
		},
		{
			name: "gzip over the cap is truncated", encoding: "gzip", wire: gz, lim: httpmsg.Limits{MaxBody: 100},
			want:       httpmsg.Body{Data: plainJSON[:100], Marks: []httpmsg.Mark{{Offset: 100, At: at}}, ContentEncoding: "gzip", Truncated: true},
			wantCapped: true,
		},
		{
			name: "unknown coding keeps the raw bytes", encoding: "lzma", wire: []byte("raw"),
			want:    httpmsg.Body{Data: []byte("raw"), Marks: []httpmsg.Mark{{Offset: 3, At: at}}, DecodeError: `content coding "lzma": unknown content encoding`},
			wantErr: ErrUnknownEncoding,
		},
		{
			name: "corrupt gzip keeps the raw bytes", encoding: "gzip", wire: []byte("not gzip data at all"),
			want:    httpmsg.Body{Data: []byte("not gzip data at all"), Marks: []httpmsg.Mark{{Offset: 20, At: at}}, DecodeError: "gzip: gzip: invalid header"},
			wantErr: errAny,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := httpmsg.Body{Data: tt.wire, Marks: []httpmsg.Mark{{Offset: len(tt.wire), At: at}}}
			tt.want.WireLength = 0
			capped, err := DecodeBody(&b, tt.encoding, tt.lim, stats.Discard{})
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && err == nil || tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v; want %v", err, tt.wantErr)
			}
			if capped != tt.wantCapped {
				t.Errorf("capped = %v; want %v", capped, tt.wantCapped)
			}
			if diff := cmp.Diff(tt.want, b); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestDecodeBodyTruncatedWireKeepsPrefix(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var events []string
	for i := range 20 {
		events = append(events, fmt.Sprintf("data: %d\n\n", i))
	}
	wire, marks := flushedStream(t, "gzip", events, at)
	// Cut the wire in the middle of the last flush, as a body cap would.
	cut := marks[len(marks)-2].Offset + 3
	b := httpmsg.Body{Data: wire[:cut], Marks: append(marks[:len(marks)-2:len(marks)-2], httpmsg.Mark{Offset: cut, At: marks[len(marks)-1].At})}
	_, err := DecodeBody(&b, "gzip", httpmsg.Limits{}, stats.Discard{})
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v; want ErrTruncated", err)
	}
	// The first 19 events are whole; a few bytes of the last may follow.
	if want := strings.Join(events[:19], ""); !strings.HasPrefix(string(b.Data), want) || !strings.HasPrefix(strings.Join(events, ""), string(b.Data)) {
		t.Errorf("prefix = %q; want the first 19 events", b.Data)
	}
	if b.DecodeError != "" || b.ContentEncoding != "gzip" {
		t.Errorf("DecodeError=%q ContentEncoding=%q; want decoded prefix", b.DecodeError, b.ContentEncoding)
	}
}

func TestDecodeBodyCapsMarks(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var events []string
	for i := range 50 {
		events = append(events, fmt.Sprintf("data: %d\n\n", i))
	}
	wire, marks := flushedStream(t, "zstd", events, at)
	b := httpmsg.Body{Data: wire, Marks: marks}
	if _, err := DecodeBody(&b, "zstd", httpmsg.Limits{MaxMarks: 10}, stats.Discard{}); err != nil {
		t.Fatal(err)
	}
	if len(b.Marks) != 10 {
		t.Fatalf("%d marks; want 10", len(b.Marks))
	}
	if last := b.Marks[9]; last.Offset != len(b.Data) || !last.At.Equal(marks[49].At) {
		t.Errorf("last mark = %+v; want offset %d at the final arrival", last, len(b.Data))
	}
	if first := b.Marks[0]; first.Offset != len(events[0]) || !first.At.Equal(marks[0].At) {
		t.Errorf("first mark = %+v; want it exact", first)
	}
}

func FuzzDecode(f *testing.F) {
	real, err := os.ReadFile("testdata/anthropic-complete.json.gz")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("gzip", real)
	f.Add("deflate", compress(f, "deflate", plainJSON[:300]))
	f.Add("deflate", compress(f, "rawdeflate", plainJSON[:300]))
	f.Add("br", compress(f, "br", plainJSON[:300]))
	f.Add("zstd", compress(f, "zstd", plainJSON[:300]))
	f.Add("gzip, br", compress(f, "br", real))
	f.Add("identity", []byte("plain"))
	f.Fuzz(func(t *testing.T, encoding string, wire []byte) {
		const limit = 64 << 10
		d := NewDecoder(stats.Discard{})
		out, truncated, err := d.Decode(encoding, wire, limit)
		if len(out) > limit {
			t.Fatalf("%d bytes out with a %d cap", len(out), limit)
		}
		if truncated && len(out) != limit {
			t.Fatalf("truncated with only %d bytes", len(out))
		}
		// The marked path must agree with the plain one.
		marks := []httpmsg.Mark{{Offset: len(wire) / 3, At: time.Unix(1, 0)}, {Offset: len(wire), At: time.Unix(2, 0)}}
		b := httpmsg.Body{Data: wire, Marks: marks}
		_, berr := d.DecodeBody(&b, encoding, httpmsg.Limits{MaxBody: limit})
		if (err == nil) != (berr == nil) {
			t.Fatalf("Decode err %v, DecodeBody err %v", err, berr)
		}
		if err == nil && !bytes.Equal(out, b.Data) {
			t.Fatalf("DecodeBody decoded %d bytes, Decode %d", len(b.Data), len(out))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	plain := bytes.Repeat(plainJSON, 200) // ~1.3 MB
	for _, coding := range []string{"gzip", "deflate", "br", "zstd"} {
		wire := compress(b, coding, plain)
		b.Run(coding, func(b *testing.B) {
			d := NewDecoder(stats.Discard{})
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := d.Decode(coding, wire, 8<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestZstdDecodingStartsNoGoroutines(t *testing.T) {
	// The zstd decoder is created synchronous; fresh decoders per body
	// must not leave goroutines behind.
	wire := compress(t, "zstd", plainJSON)
	before := runtime.NumGoroutine()
	for range 50 {
		if _, _, err := Decode("zstd", wire, 1<<20, stats.Discard{}); err != nil {
			t.Fatal(err)
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines grew from %d to %d", before, after)
	}
}

// TestDecoderKeepsNoBody checks that a Decoder, which keeps the readers of
// the body it decodes to save their allocations, lets go of the body and of
// the lent gzip reader when the body is done.
func TestDecoderKeepsNoBody(t *testing.T) {
	real, err := os.ReadFile("testdata/anthropic-complete.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	var shared Readers
	d := NewSharedDecoder(stats.Discard{}, &shared)
	for _, encoding := range []string{"gzip", "gzip, gzip", "identity, gzip"} {
		wire := real
		if encoding == "gzip, gzip" {
			wire = compress(t, "gzip", real)
		}
		if _, _, err := d.Decode(encoding, wire, 1<<20); err != nil {
			t.Fatalf("%s: %v", encoding, err)
		}
		if d.wire.Size() != 0 || d.members != (gzipMembers{}) || d.gz != nil {
			t.Fatalf("%s: the decoder still holds the body's readers after it", encoding)
		}
	}
}

// BenchmarkDecodeBody decodes a small recorded gzip response body, as
// providers send them, with its arrival mark: the fixed cost of a body.
func BenchmarkDecodeBody(b *testing.B) {
	real, err := os.ReadFile("testdata/anthropic-complete.json.gz")
	if err != nil {
		b.Fatal(err)
	}
	var shared Readers
	d := NewSharedDecoder(stats.Discard{}, &shared)
	at := time.Unix(1, 0)
	b.SetBytes(int64(len(real)))
	b.ReportAllocs()
	for b.Loop() {
		body := httpmsg.Body{Data: real, Marks: []httpmsg.Mark{{Offset: len(real), At: at}}}
		if _, err := d.DecodeBody(&body, "gzip", httpmsg.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodedGzipSizedByItsTrailer: a lone gzip member's body is decoded
// into room for the size its trailer states (and the byte that shows the
// end), however small, not into a default-sized buffer; a body without a
// stated size gets room for four times its wire size.
func TestDecodedGzipSizedByItsTrailer(t *testing.T) {
	for _, n := range []int{1, 300, 5000} {
		plain := bytes.Repeat([]byte("a"), n)
		b := httpmsg.Body{Data: compress(t, "gzip", plain)}
		if _, err := DecodeBody(&b, "gzip", httpmsg.Limits{}, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Data, plain) || cap(b.Data) != n+1 {
			t.Errorf("%d bytes decoded into %d (cap %d); want cap %d", n, len(b.Data), cap(b.Data), n+1)
		}
	}
	wire := compress(t, "deflate", plainJSON)
	b := httpmsg.Body{Data: wire}
	if _, err := DecodeBody(&b, "deflate", httpmsg.Limits{}, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Data, plainJSON) || cap(b.Data) < max(4*len(wire), 4096) {
		t.Errorf("deflate: %d bytes decoded, cap %d; want at least %d", len(b.Data), cap(b.Data), max(4*len(wire), 4096))
	}
}
