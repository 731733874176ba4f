package http2_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/oisp/oisp-sensor/sensor/flow"
	h2 "github.com/oisp/oisp-sensor/sensor/http2"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// frameAt is one frame of a recording, located by record.
type frameAt struct {
	rec     int
	aligned bool // the record starts with this frame
	fh      http2.FrameHeader
}

// framesOf parses both directions of a recording with a Framer to find
// where frames start.
func framesOf(t testing.TB, recs []record) []frameAt {
	t.Helper()
	var out []frameAt
	for _, dir := range []flow.Direction{cs, sc} {
		var stream []byte
		var starts []int // record index per byte offset start
		var offs []int
		for i, r := range recs {
			if r.Dir != dir {
				continue
			}
			starts = append(starts, i)
			offs = append(offs, len(stream))
			stream = append(stream, r.Data...)
		}
		if dir == cs {
			stream = stream[len(h2.ClientPreface):]
			for i := range offs {
				offs[i] -= len(h2.ClientPreface)
			}
		}
		fr := http2.NewFramer(nil, bytes.NewReader(stream))
		fr.AllowIllegalReads = true
		fr.SetMaxReadFrameSize(1 << 24)
		pos := 0
		for {
			f, err := fr.ReadFrame()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("recording does not parse: %v", err)
			}
			fh := f.Header()
			ri, aligned := 0, false
			for j := range offs {
				if offs[j] <= pos {
					ri, aligned = starts[j], offs[j] == pos
				}
			}
			out = append(out, frameAt{rec: ri, aligned: aligned, fh: fh})
			pos += 9 + int(fh.Length)
		}
	}
	return out
}

// checkSubset asserts that what a partial decode reports agrees with the
// full decode: a mid-connection decoder may know less, never something
// different.
func checkSubset(t *testing.T, what string, part, full *httpmsg.Exchange) {
	t.Helper()
	hdr := func(name string, ph, fh httpmsg.Header) {
		p, f := ph.HTTPHeader(), fh.HTTPHeader()
		for k, vs := range p {
			if got, want := strings.Join(vs, "|"), strings.Join(f[k], "|"); got != want {
				t.Errorf("%s stream %d %s %s = %q; full decode has %q", what, part.StreamID, name, k, got, want)
			}
		}
	}
	pr, fr := part.Request, full.Request
	for _, p := range [][2]string{{pr.Method, fr.Method}, {pr.Target, fr.Target}, {pr.Authority, fr.Authority}} {
		if p[0] != "" && p[0] != p[1] {
			t.Errorf("%s stream %d: %q; full decode has %q", what, part.StreamID, p[0], p[1])
		}
	}
	hdr("request header", pr.Header, fr.Header)
	if !spliced(fr.Body.Data, pr.Body.Data) {
		t.Errorf("%s stream %d: request body is not part of the full one", what, part.StreamID)
	}
	if part.Response == nil {
		return
	}
	if full.Response == nil {
		t.Errorf("%s stream %d: response the full decode lacks", what, part.StreamID)
		return
	}
	ps, fs := part.Response, full.Response
	if ps.Status != 0 && ps.Status != fs.Status {
		t.Errorf("%s stream %d: status %d; full %d", what, part.StreamID, ps.Status, fs.Status)
	}
	hdr("response header", ps.Header, fs.Header)
	hdr("trailer", ps.Trailer, fs.Trailer)
	if !spliced(fs.Body.Data, ps.Body.Data) && ps.Body.ContentEncoding == fs.Body.ContentEncoding {
		t.Errorf("%s stream %d: response body is not part of the full one", what, part.StreamID)
	}
}

// spliced reports whether part is full with one run of bytes missing (at
// the start when joining, in the middle after a gap).
func spliced(full, part []byte) bool {
	a := 0
	for a < len(part) && a < len(full) && part[a] == full[a] {
		a++
	}
	return len(part) <= len(full) && bytes.HasSuffix(full[a:], part[a:])
}

// TestJoinAtEveryFrame starts the decoder at every record of a recorded
// connection (records are writes, so they start at frame boundaries).
func TestJoinAtEveryFrame(t *testing.T) {
	recs := readRecording(t, "chat.bin")
	full := byStream(decodeRecs(t, recs).xs)
	for k := 1; k < len(recs); k++ {
		r := decodeRecs(t, recs[k:])
		if n := r.count("http2.resync_skipped_bytes"); n != 0 {
			t.Errorf("join at record %d: skipped %d bytes at a frame boundary", k, n)
		}
		for _, x := range r.xs {
			f := full[x.StreamID]
			if f == nil {
				t.Fatalf("join at %d: stream %d unknown to the full decode", k, x.StreamID)
			}
			checkSubset(t, "join", x, f)
		}
	}
}

// TestJoinBeforeConcurrentRequests joins right before the concurrent
// requests: their :path literals, bodies and statuses are recovered; what
// the peers had indexed earlier (authority, user-agent) is unknown.
func TestJoinBeforeConcurrentRequests(t *testing.T) {
	recs := readRecording(t, "chat.bin")
	full := byStream(decodeRecs(t, recs).xs)
	k := -1
	for _, f := range framesOf(t, recs) {
		if f.fh.Type == http2.FrameHeaders && f.fh.StreamID == 9 && f.rec > 0 && recs[f.rec].Dir == cs {
			k = f.rec
			break
		}
	}
	if k < 0 {
		t.Fatal("no HEADERS for stream 9")
	}
	r := decodeRecs(t, recs[k:])
	m := byStream(r.xs)
	for id := int64(9); id <= 15; id += 2 {
		x, f := m[id], full[id]
		if x == nil {
			t.Fatalf("stream %d not recovered", id)
		}
		checkSubset(t, "join", x, f)
		if x.Request.Target != f.Request.Target || x.Request.Method != "POST" {
			t.Errorf("stream %d: target %q method %q", id, x.Request.Target, x.Request.Method)
		}
		if !bytes.Equal(x.Request.Body.Data, f.Request.Body.Data) || !bytes.Equal(x.Response.Body.Data, f.Response.Body.Data) {
			t.Errorf("stream %d: bodies differ", id)
		}
		if x.Response.Status != 200 || !x.Response.Complete {
			t.Errorf("stream %d: response %d complete %v", id, x.Response.Status, x.Response.Complete)
		}
		if !x.Partial || !hasNote(x, "joined mid-connection: headers partly unknown") {
			t.Errorf("stream %d notes %q", id, x.Notes)
		}
	}
	if r.count("http2.hpack_unknown_index") == 0 || r.count("http2.preface_mismatch") != 1 {
		t.Errorf("counters %v", r.ctr.Snapshot())
	}
}

// TestJoinInsideFrames starts each direction in the middle of a frame,
// after some garbage: the decoder skips to a confirmed boundary.
func TestJoinInsideFrames(t *testing.T) {
	recs := readRecording(t, "chat.bin")
	full := byStream(decodeRecs(t, recs).xs)
	for k := 2; k < len(recs); k += 3 {
		for _, cut := range []int{1, 5, 9, 13} {
			var tail []record
			cutDone := map[flow.Direction]bool{}
			for _, r := range recs[k:] {
				if !cutDone[r.Dir] {
					cutDone[r.Dir] = true
					if cut >= len(r.Data) {
						continue
					}
					r.Data = append([]byte("\x00garbage\xff"), r.Data[cut:]...)
				}
				tail = append(tail, r)
			}
			res := decodeRecs(t, tail)
			for _, x := range res.xs {
				checkSubset(t, "inside", x, full[x.StreamID])
			}
		}
	}
}

// TestGap loses a server write in the middle of the first SSE response.
func TestGap(t *testing.T) {
	recs := readRecording(t, "chat.bin")
	full := byStream(decodeRecs(t, recs).xs)
	var lossy []record
	lost := false
	seen := 0
	for _, r := range recs {
		if r.Dir == sc && !lost {
			seen++
			if seen == 8 {
				lost = true
				lossy = append(lossy, record{Dir: sc, Gap: int64(len(r.Data))})
				continue
			}
		}
		lossy = append(lossy, r)
	}
	r := decodeRecs(t, lossy)
	if r.count("http2.gap_bytes") == 0 {
		t.Fatal("gap not counted")
	}
	m := byStream(r.xs)
	first := m[1]
	if first == nil || first.Response == nil || first.Response.Complete || !hasNote(first, "response bytes lost") {
		t.Fatalf("stream 1 after the gap: %+v", first)
	}
	for id, x := range m {
		checkSubset(t, "gap", x, full[id])
		if id >= 3 && (x.Request.Target != full[id].Request.Target || !bytes.Equal(x.Response.Body.Data, full[id].Response.Body.Data)) {
			t.Errorf("stream %d after the gap not recovered: %q", id, x.Notes)
		}
	}
	if len(m) != len(full) {
		t.Errorf("got %d exchanges; want %d", len(m), len(full))
	}
}
