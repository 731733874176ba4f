package socket

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/oisp/oisp-sensor/spec"
)

type vectorFile struct {
	ProtocolVersion int `json:"protocol_version"`
	Frames          []struct {
		Name   string         `json:"name"`
		Type   string         `json:"type"`
		Hex    string         `json:"hex"`
		Fields map[string]any `json:"fields"`
	} `json:"frames"`
	Invalid []struct {
		Name     string `json:"name"`
		Hex      string `json:"hex"`
		MaxFrame uint32 `json:"max_frame"`
		Error    string `json:"error"`
	} `json:"invalid"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	raw, err := spec.WireFS.ReadFile("wire/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if v.ProtocolVersion != Version || len(v.Frames) == 0 || len(v.Invalid) == 0 {
		t.Fatalf("vector file: version %d, %d frames, %d invalid", v.ProtocolVersion, len(v.Frames), len(v.Invalid))
	}
	return v
}

// fieldReader turns a vector's JSON fields into Go values; u64 fields are
// decimal strings so that no JSON reader rounds them.
type fieldReader struct {
	t      *testing.T
	fields map[string]any
	used   map[string]bool
}

func (r *fieldReader) get(k string) any {
	v, ok := r.fields[k]
	if !ok {
		r.t.Fatalf("vector lacks field %q", k)
	}
	r.used[k] = true
	return v
}

func (r *fieldReader) num(k string) uint64 {
	switch v := r.get(k).(type) {
	case float64:
		return uint64(v)
	case string:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			r.t.Fatalf("field %s: %v", k, err)
		}
		return n
	}
	r.t.Fatalf("field %s has type %T", k, r.fields[k])
	return 0
}

func (r *fieldReader) str(k string) string { return r.get(k).(string) }

func (r *fieldReader) addr(k string) netip.AddrPort {
	s := r.str(k)
	if s == "" {
		return netip.AddrPort{}
	}
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		r.t.Fatalf("field %s: %v", k, err)
	}
	return a
}

func (r *fieldReader) hex(k string) []byte {
	b, err := hex.DecodeString(r.str(k))
	if err != nil {
		r.t.Fatalf("field %s: %v", k, err)
	}
	return b
}

func (r *fieldReader) frame(typ string) Frame {
	switch typ {
	case "HELLO":
		return &Hello{Version: uint16(r.num("version")), Flags: uint16(r.num("flags")),
			MaxFrame: uint32(r.num("max_frame")), Credit: uint32(r.num("credit")), Name: r.str("name")}
	case "FLOW_OPEN":
		return &FlowOpen{FlowID: r.num("flow_id"), Started: r.num("started"), Transport: uint8(r.num("transport")),
			Flags: uint8(r.num("flags")), PID: uint32(r.num("pid")), PPID: uint32(r.num("ppid")),
			UID: uint32(r.num("uid")), RemotePort: uint16(r.num("remote_port")), Local: r.addr("local"),
			Remote: r.addr("remote"), ProcessPath: r.str("process_path"), ProcessName: r.str("process_name"),
			BundleID: r.str("bundle_id"), SigningID: r.str("signing_id"), RemoteHost: r.str("remote_host"),
			SNI: r.str("sni"), ALPN: r.str("alpn"), CaptureMethod: r.str("capture_method")}
	case "DATA":
		return &Data{FlowID: r.num("flow_id"), Dir: uint8(r.num("dir")), Flags: uint8(r.num("flags")),
			StreamID: r.num("stream_id"), Seq: r.num("seq"), At: r.num("at"), Payload: r.hex("payload_hex")}
	case "FLOW_CLOSE":
		return &FlowClose{FlowID: r.num("flow_id"), At: r.num("at"), Reason: uint8(r.num("reason")),
			BytesC2S: r.num("bytes_c2s"), BytesS2C: r.num("bytes_s2c"),
			DroppedC2S: r.num("dropped_c2s"), DroppedS2C: r.num("dropped_s2c")}
	case "SYSTEM":
		return &System{At: r.num("at"), JSON: []byte(r.str("json"))}
	case "CREDIT":
		return &Credit{Grant: uint32(r.num("grant"))}
	case "GOODBYE":
		return &Goodbye{Code: Code(r.num("code")), Message: r.str("message")}
	case "EXTENSION":
		return &Unknown{FrameType: FrameType(r.num("frame_type")), Body: r.hex("body_hex")}
	}
	r.t.Fatalf("unknown vector type %q", typ)
	return nil
}

func TestVectorsDecode(t *testing.T) {
	v := loadVectors(t)
	for _, vec := range v.Frames {
		t.Run(vec.Name, func(t *testing.T) {
			raw, err := hex.DecodeString(vec.Hex)
			if err != nil {
				t.Fatal(err)
			}
			fr := &fieldReader{t: t, fields: vec.Fields, used: map[string]bool{}}
			want := fr.frame(vec.Type)
			for k := range vec.Fields {
				if !fr.used[k] {
					t.Errorf("vector field %q not checked", k)
				}
			}
			rd := NewFrameReader(bufio.NewReader(bytes.NewReader(raw)))
			rd.Max = MaxMaxFrame
			got, err := rd.Next()
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
				cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Errorf("decoded fields differ (-vector +decoded):\n%s", diff)
			}
			if _, err := rd.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("bytes after the frame: %v", err)
			}
			// Frames without trailing extension bytes must re-encode exactly
			// (a reader ignores those bytes, so they cannot come back).
			if vec.Name == "hello_future_with_trailing_bytes" {
				return
			}
			enc, err := AppendFrame(nil, want)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(enc) != vec.Hex {
				t.Errorf("encoding differs:\n got %x\nwant %s", enc, vec.Hex)
			}
		})
	}
}

func TestVectorsInvalid(t *testing.T) {
	v := loadVectors(t)
	for _, vec := range v.Invalid {
		t.Run(vec.Name, func(t *testing.T) {
			raw, err := hex.DecodeString(vec.Hex)
			if err != nil {
				t.Fatal(err)
			}
			rd := NewFrameReader(bufio.NewReader(bytes.NewReader(raw)))
			rd.Max = vec.MaxFrame
			f, err := rd.Next()
			if err == nil {
				t.Fatalf("decoded %#v, want error %s", f, vec.Error)
			}
			if vec.Error == "truncated" {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("got %v, want unexpected EOF", err)
				}
				return
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v (%T), want a ProtocolError", err, err)
			}
			if pe.Code.String() != vec.Error {
				t.Fatalf("got code %s (%v), want %s", pe.Code, err, vec.Error)
			}
		})
	}
}

func TestEncodeRejectsOutOfLimitFields(t *testing.T) {
	long := string(bytes.Repeat([]byte("a"), 257))
	for _, f := range []Frame{
		&Hello{Version: 1, MaxFrame: MinMaxFrame, Name: long},
		&FlowOpen{FlowID: 1, SNI: long},
		&FlowOpen{FlowID: 1, ProcessPath: "\xff"},
		&System{JSON: bytes.Repeat([]byte(" "), MaxSystemJSON+1)},
	} {
		if b, err := AppendFrame([]byte("keep"), f); err == nil || string(b) != "keep" {
			t.Errorf("%s: err %v, buffer %q", f.Type(), err, b)
		}
	}
	// GOODBYE messages are cut at a rune boundary instead.
	g := &Goodbye{Code: CodeProtocolError, Message: string(bytes.Repeat([]byte("é"), 600))}
	b, err := AppendFrame(nil, g)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseFrame(TypeGoodbye, b[5:])
	if err != nil {
		t.Fatal(err)
	}
	if m := back.(*Goodbye).Message; len(m) != 1024 {
		t.Errorf("message cut to %d bytes", len(m))
	}
}

func TestSystemJSONLimit(t *testing.T) {
	body := append(make([]byte, 8), bytes.Repeat([]byte(" "), MaxSystemJSON+1)...)
	_, err := ParseFrame(TypeSystem, body)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != CodeProtocolError {
		t.Fatalf("got %v", err)
	}
}

// FuzzParseFrame: decoding never panics, and whatever decodes re-encodes to
// something that decodes to the same value.
func FuzzParseFrame(f *testing.F) {
	v := loadVectors(f)
	for _, vec := range v.Frames {
		raw, _ := hex.DecodeString(vec.Hex)
		f.Add(raw)
	}
	for _, vec := range v.Invalid {
		raw, _ := hex.DecodeString(vec.Hex)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rd := NewFrameReader(bufio.NewReader(bytes.NewReader(raw)))
		rd.Max = MaxMaxFrame
		for {
			fr, err := rd.Next()
			if err != nil {
				return
			}
			enc, err := AppendFrame(nil, fr)
			if err != nil {
				t.Fatalf("re-encoding %T: %v", fr, err)
			}
			back, err := ParseFrame(fr.Type(), enc[5:])
			if err != nil {
				t.Fatalf("re-decoding %T: %v", fr, err)
			}
			if !cmp.Equal(fr, back, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
				cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })) {
				t.Fatalf("round trip changed %#v into %#v", fr, back)
			}
		}
	})
}
