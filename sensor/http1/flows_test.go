package http1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// cmpOpts compare exchanges: the flow's addresses by value, and empty
// slices and maps equal to nil.
var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.AddrPort{}), cmpopts.EquateEmpty()}

// testFlow is the two byte streams of one connection.
type testFlow struct {
	name           string
	client, server []byte
	// closeDelimited: the last response ends with the flow, so a
	// truncated flow can look complete.
	closeDelimited bool
}

// genFlow builds a keep-alive flow of n exchanges of assorted shapes from a
// seeded generator: Content-Length and chunked bodies both ways, chunk
// extensions and trailers, HEAD, 204, 304, 100-continue, gzip bodies, bare
// LF lines and obs-fold.
//
// strict flows use only CRLF and no obs-fold, which net/http rejects in
// some places.
func genFlow(seed uint64, n int, strict bool) testFlow {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var c, s strings.Builder
	body := func(min int) string {
		k := min + rng.IntN(400)
		var b strings.Builder
		b.WriteString(`{"model":"m","messages":[`)
		for b.Len() < k {
			fmt.Fprintf(&b, `{"role":"user","content":"tok %d"},`, rng.IntN(1000))
		}
		b.WriteString(`{}]}`)
		return b.String()
	}
	for i := range n {
		eol := "\r\n"
		if rng.IntN(6) == 0 && !strict {
			eol = "\n"
		}
		method := "POST"
		var reqBody string
		head := false
		switch rng.IntN(6) {
		case 0:
			method = "GET"
		case 1:
			method, head = "HEAD", true
		default:
			reqBody = body(10)
		}
		fmt.Fprintf(&c, "%s /v1/x/%d?q=%d HTTP/1.1%sHost: api.example.com%sUser-Agent: t/1%s", method, i, rng.IntN(9), eol, eol, eol)
		if rng.IntN(8) == 0 && !strict {
			fmt.Fprintf(&c, "X-Folded: a%s  b%s", eol, eol)
		}
		expect := reqBody != "" && rng.IntN(5) == 0
		if expect {
			fmt.Fprintf(&c, "Expect: 100-continue%s", eol)
		}
		switch {
		case reqBody == "":
			c.WriteString(eol)
		case rng.IntN(3) == 0:
			fmt.Fprintf(&c, "Transfer-Encoding: chunked%s%s", eol, eol)
			c.WriteString(chunkedExt(rng, reqBody, eol))
		default:
			fmt.Fprintf(&c, "Content-Length: %d%s%s%s", len(reqBody), eol, eol, reqBody)
		}

		if expect {
			s.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		}
		respBody := body(0)
		switch k := rng.IntN(7); {
		case k == 0 && !head:
			s.WriteString("HTTP/1.1 204 No Content\r\nX-Id: 1\r\n\r\n")
		case k == 1:
			s.WriteString("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
		case k == 2 && !head:
			fmt.Fprintf(&s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n%s", strings.TrimSuffix(chunkedExt(rng, respBody, "\r\n"), "\r\n"))
			s.WriteString("X-T: done\r\n\r\n")
		case k == 3 && !head:
			z := gzipped(respBody)
			fmt.Fprintf(&s, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(z), z)
		case head:
			fmt.Fprintf(&s, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(respBody))
		default:
			fmt.Fprintf(&s, "HTTP/1.1 %d Status\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", statuses[rng.IntN(len(statuses))], len(respBody), respBody)
		}
	}
	return testFlow{name: fmt.Sprintf("generated-%d-strict=%v", seed, strict), client: []byte(c.String()), server: []byte(s.String())}
}

// statuses are the final statuses with bodies the generator uses.
var statuses = []int{200, 201, 400, 401, 404, 429, 500, 503}

// chunkedExt chunk-encodes body with random sizes, sometimes with chunk
// extensions.
func chunkedExt(rng *rand.Rand, body, eol string) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(len(body), 1+rng.IntN(200))
		ext := ""
		if rng.IntN(4) == 0 {
			ext = ";ext=1"
		}
		fmt.Fprintf(&b, "%x%s%s%s%s", n, ext, eol, body[:n], eol)
		body = body[n:]
	}
	return b.String() + "0" + eol + eol
}

// corpus is the set of flows the property tests run over: generated flows
// and the real recorded traces in testdata.
func corpus(t testing.TB) []testFlow {
	flows := []testFlow{genFlow(1, 8, false), genFlow(2, 5, false), genFlow(3, 10, true)}
	paths, err := filepath.Glob("testdata/*.httprr")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no httprr traces in testdata: %v", err)
	}
	for _, p := range paths {
		for i, r := range readHTTPRR(t, p) {
			f := testFlow{name: fmt.Sprintf("%s#%d", filepath.Base(p), i), client: r.req, server: r.resp}
			f.closeDelimited = !bytes.Contains(r.resp, []byte("Content-Length:")) && !bytes.Contains(r.resp, []byte("Transfer-Encoding:"))
			flows = append(flows, f)
		}
	}
	return flows
}

// decodeFlow decodes a flow fed as the given client and server chunks
// (client first), with content decoding on.
func decodeFlow(f testFlow, client, server []flow.Chunk) result {
	return run(append(append([]flow.Chunk(nil), client...), server...), httpmsg.Limits{}, Options{})
}

// sameExchanges is a fast deep comparison; cmp.Diff, much slower, is only
// used to explain a difference.
func sameExchanges(a, b []*httpmsg.Exchange) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	return cmp.Diff(a, b, cmpOpts...) == ""
}

func whole(dir flow.Direction, b []byte) []flow.Chunk {
	return []flow.Chunk{{Dir: dir, Data: bytes.Clone(b), At: t0}}
}

func TestSplitAnywhere(t *testing.T) {
	for _, f := range corpus(t) {
		t.Run(f.name, func(t *testing.T) {
			ref := decodeFlow(f, whole(flow.ClientToServer, f.client), whole(flow.ServerToClient, f.server))
			if len(ref.xs) == 0 {
				t.Fatal("reference decode produced no exchange")
			}
			for _, x := range ref.xs {
				if x.Partial {
					t.Fatalf("reference exchange %d is partial: %q", x.Seq, x.Notes)
				}
			}
			check := func(what string, got result) {
				t.Helper()
				if !sameExchanges(ref.xs, got.xs) {
					t.Fatalf("%s: exchanges differ (-whole +split):\n%s", what, cmp.Diff(ref.xs, got.xs, cmpOpts...))
				}
				if diff := cmp.Diff(ref.stats.Snapshot(), got.stats.Snapshot()); diff != "" {
					t.Fatalf("%s: counters differ (-whole +split):\n%s", what, diff)
				}
			}
			// Every single split point of each direction.
			for i := 1; i < len(f.client); i++ {
				check(fmt.Sprintf("client split at %d", i), decodeFlow(f,
					split(flow.ClientToServer, f.client, []int{i}, t0), whole(flow.ServerToClient, f.server)))
			}
			for i := 1; i < len(f.server); i++ {
				check(fmt.Sprintf("server split at %d", i), decodeFlow(f,
					whole(flow.ClientToServer, f.client), split(flow.ServerToClient, f.server, []int{i}, t0)))
			}
			// Byte at a time, and random seeded splits of both.
			check("one byte per chunk", decodeFlow(f,
				split(flow.ClientToServer, f.client, seq(len(f.client)), t0), split(flow.ServerToClient, f.server, seq(len(f.server)), t0)))
			rng := rand.New(rand.NewPCG(42, uint64(len(f.server))))
			for i := range 50 {
				cc := randomCuts(rng, 1+rng.IntN(30), len(f.client))
				sc := randomCuts(rng, 1+rng.IntN(30), len(f.server))
				check(fmt.Sprintf("random split %d", i), decodeFlow(f,
					split(flow.ClientToServer, f.client, cc, t0), split(flow.ServerToClient, f.server, sc, t0)))
			}
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestMarksFollowArrival checks that with distinct arrival times the body
// marks say which chunk each byte came in, whatever the split.
func TestMarksFollowArrival(t *testing.T) {
	body := strings.Repeat("data: {\"x\":1}\n\n", 40)
	server := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 100, 200, 50))
	rng := rand.New(rand.NewPCG(7, 7))
	for range 20 {
		cuts := randomCuts(rng, 10, len(server))
		chunks := split(flow.ServerToClient, server, cuts, t0)
		for i := range chunks {
			chunks[i].At = t0.Add(time.Duration(i) * time.Second)
		}
		r := run(append(whole(flow.ClientToServer, []byte(get("/"))), chunks...), httpmsg.Limits{}, Options{})
		b := r.xs[0].Response.Body
		if string(b.Data) != body {
			t.Fatalf("body differs")
		}
		// Where does each body byte sit on the wire? Recompute by walking
		// the chunks and compare with TimeAt.
		pos := bytes.Index(server, []byte("\r\n\r\n")) + 4
		wireOff := func(bodyOff int) int { // chunked layout of chunked(body, 100, 200, 50)
			sizes := []int{100, 200, 50, len(body) - 350}
			w := pos
			for _, n := range sizes {
				hdr := len(fmt.Sprintf("%x\r\n", n))
				if bodyOff < n {
					return w + hdr + bodyOff
				}
				bodyOff -= n
				w += hdr + n + 2
			}
			return -1
		}
		for off := 0; off < len(body); off += 37 {
			w := wireOff(off)
			ci := chunkIndex(chunks, w)
			if got, want := b.TimeAt(off), t0.Add(time.Duration(ci)*time.Second); !got.Equal(want) {
				t.Fatalf("byte %d (wire %d) arrived at %v; marks say %v", off, w, want.Sub(t0), got.Sub(t0))
			}
		}
		if last := b.Marks[len(b.Marks)-1]; last.Offset != len(body) {
			t.Fatalf("last mark at %d of %d", last.Offset, len(body))
		}
	}
}

func chunkIndex(chunks []flow.Chunk, wire int) int {
	for i, c := range chunks {
		if wire < len(c.Data) {
			return i
		}
		wire -= len(c.Data)
	}
	return len(chunks) - 1
}

func TestMarksAreCapped(t *testing.T) {
	body := strings.Repeat("x", 1000)
	var chunks []flow.Chunk
	chunks = append(chunks, c2s(0, get("/")), s2c(1, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"))
	for i := range 100 {
		chunks = append(chunks, s2c(2+i, body[i*10:i*10+10]))
	}
	r := run(chunks, httpmsg.Limits{MaxMarks: 8}, Options{})
	marks := r.xs[0].Response.Body.Marks
	if len(marks) != 8 {
		t.Fatalf("%d marks; want 8", len(marks))
	}
	for i := range 7 {
		if want := (httpmsg.Mark{Offset: 10 * (i + 1), At: t0.Add(time.Duration(2+i) * time.Millisecond)}); marks[i] != want {
			t.Errorf("mark %d = %+v; want %+v", i, marks[i], want)
		}
	}
	if want := (httpmsg.Mark{Offset: 1000, At: t0.Add(101 * time.Millisecond)}); marks[7] != want {
		t.Errorf("last mark = %+v; want %+v", marks[7], want)
	}
}

// TestEOFPrefix cuts each direction of each flow at every length: nothing
// panics, every request still yields an exchange, and every exchange not
// marked partial equals the one decoded from the whole flow.
func TestEOFPrefix(t *testing.T) {
	for _, f := range corpus(t) {
		t.Run(f.name, func(t *testing.T) {
			ref := decodeFlow(f, whole(flow.ClientToServer, f.client), whole(flow.ServerToClient, f.server))
			verify := func(what string, got result, serverCut bool) {
				t.Helper()
				for _, x := range got.xs {
					if x.Partial {
						continue
					}
					if x.Seq >= len(ref.xs) {
						t.Fatalf("%s: complete exchange %d not in the reference", what, x.Seq)
					}
					last := x.Seq == len(ref.xs)-1
					if serverCut && last && f.closeDelimited {
						continue // a cut close-delimited body looks complete
					}
					if !sameExchanges(ref.xs[x.Seq:x.Seq+1], []*httpmsg.Exchange{x}) {
						t.Fatalf("%s: exchange %d is not partial but differs (-whole +cut):\n%s", what, x.Seq, cmp.Diff(ref.xs[x.Seq], x, cmpOpts...))
					}
				}
				if serverCut && len(got.xs) != len(ref.xs) {
					t.Fatalf("%s: %d exchanges; want %d (every request is delivered)", what, len(got.xs), len(ref.xs))
				}
			}
			for k := 0; k < len(f.client); k++ {
				verify(fmt.Sprintf("client cut at %d", k), decodeFlow(f,
					whole(flow.ClientToServer, f.client[:k]), whole(flow.ServerToClient, f.server)), false)
			}
			for k := 0; k < len(f.server); k++ {
				verify(fmt.Sprintf("server cut at %d", k), decodeFlow(f,
					whole(flow.ClientToServer, f.client), whole(flow.ServerToClient, f.server[:k])), true)
			}
		})
	}
}

// TestAgainstNetHTTP decodes the same bytes with net/http's ReadRequest and
// ReadResponse and compares what both saw.
func TestAgainstNetHTTP(t *testing.T) {
	flows := corpus(t)[3:] // the recorded traces
	for seed := range uint64(20) {
		flows = append(flows, genFlow(100+seed, 10, true))
	}
	for _, f := range flows {
		t.Run(f.name, func(t *testing.T) {
			r := run(append(whole(flow.ClientToServer, f.client), whole(flow.ServerToClient, f.server)...),
				httpmsg.Limits{}, Options{KeepContentEncoding: true})
			reqs, resps := netHTTPParse(t, f.client, f.server)
			if len(r.xs) != len(reqs) {
				t.Fatalf("%d exchanges; net/http read %d requests", len(r.xs), len(reqs))
			}
			for i, x := range r.xs {
				want := reqs[i]
				got := x.Request
				if got.Method != want.Method || got.Target != want.RequestURI || got.Authority != want.Host {
					t.Errorf("exchange %d: request %s %s (%s); net/http %s %s (%s)", i, got.Method, got.Target, got.Authority, want.Method, want.RequestURI, want.Host)
				}
				if diff := cmp.Diff(canonicalHeader(want.Header), canonicalHeader(got.Header.HTTPHeader())); diff != "" {
					t.Errorf("exchange %d: request header (-net/http +ours):\n%s", i, diff)
				}
				if wb := mustReadBody(t, want.Body); string(wb) != string(got.Body.Data) {
					t.Errorf("exchange %d: request body %d bytes; net/http %d", i, len(got.Body.Data), len(wb))
				}
				wr := resps[i]
				if x.Response == nil {
					t.Fatalf("exchange %d: no response", i)
				}
				if x.Response.Status != wr.StatusCode {
					t.Errorf("exchange %d: status %d; net/http %d", i, x.Response.Status, wr.StatusCode)
				}
				if diff := cmp.Diff(canonicalHeader(wr.Header), canonicalHeader(x.Response.Header.HTTPHeader())); diff != "" {
					t.Errorf("exchange %d: response header (-net/http +ours):\n%s", i, diff)
				}
				if string(wr.body) != string(x.Response.Body.Data) {
					t.Errorf("exchange %d: response body %d bytes; net/http %d", i, len(x.Response.Body.Data), len(wr.body))
				}
				if len(wr.Trailer) > 0 || len(x.Response.Trailer) > 0 {
					if diff := cmp.Diff(wr.Trailer, x.Response.Trailer.HTTPHeader()); diff != "" {
						t.Errorf("exchange %d: trailer (-net/http +ours):\n%s", i, diff)
					}
				}
			}
		})
	}
}

type netResponse struct {
	*http.Response
	body []byte
}

// netHTTPParse reads every request and final response with net/http.
func netHTTPParse(t testing.TB, client, server []byte) ([]*http.Request, []netResponse) {
	t.Helper()
	var reqs []*http.Request
	cr := bufio.NewReader(bytes.NewReader(client))
	for {
		if _, err := cr.Peek(1); err == io.EOF {
			break
		}
		req, err := http.ReadRequest(cr)
		if err != nil {
			t.Fatalf("net/http ReadRequest %d: %v", len(reqs), err)
		}
		body := mustReadBody(t, req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		reqs = append(reqs, req)
	}
	var resps []netResponse
	sr := bufio.NewReader(bytes.NewReader(server))
	for len(resps) < len(reqs) {
		resp, err := http.ReadResponse(sr, reqs[len(resps)])
		if err != nil {
			t.Fatalf("net/http ReadResponse %d: %v", len(resps), err)
		}
		body := mustReadBody(t, resp.Body)
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			continue
		}
		resps = append(resps, netResponse{resp, body})
	}
	return reqs, resps
}

func mustReadBody(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("net/http body: %v", err)
	}
	r.Close()
	return b
}

func FuzzDecoder(f *testing.F) {
	for _, fl := range corpus(f) {
		f.Add(fl.client, fl.server, uint64(len(fl.client)))
	}
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 101 Switching Protocols\r\n\r\nxx"), uint64(3))
	f.Add([]byte("CONNECT a:1 HTTP/1.1\r\n\r\nabc"), []byte("HTTP/1.1 200 OK\r\n\r\nxyz"), uint64(9))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), []byte("\x00\x00\x00\x04"), uint64(1))
	f.Add([]byte("junk\x00POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), []byte("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n"), uint64(5))
	f.Fuzz(func(t *testing.T, client, server []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 1))
		lim := httpmsg.Limits{MaxBody: 1 << 10, MaxHeaderBytes: 512, MaxMarks: 4}
		var chunks []flow.Chunk
		cc := split(flow.ClientToServer, client, randomCuts(rng, rng.IntN(8), len(client)), t0)
		sc := split(flow.ServerToClient, server, randomCuts(rng, rng.IntN(8), len(server)), t0)
		for len(cc)+len(sc) > 0 { // interleave the directions pseudo-randomly
			if len(sc) == 0 || len(cc) > 0 && rng.IntN(2) == 0 {
				chunks, cc = append(chunks, cc[0]), cc[1:]
			} else {
				chunks, sc = append(chunks, sc[0]), sc[1:]
			}
			if rng.IntN(10) == 0 {
				chunks[len(chunks)-1].Gap = int64(rng.IntN(50))
			}
		}
		r := run(chunks, lim, Options{MaxPending: 4})
		for i, x := range r.xs {
			if x.Seq < 0 || x.Request.Body.Data != nil && len(x.Request.Body.Data) > lim.MaxBody {
				t.Fatalf("exchange %d: bad seq or body over the cap", i)
			}
			if x.Response != nil && len(x.Response.Body.Data) > lim.MaxBody {
				t.Fatalf("exchange %d: response body %d over the cap", i, len(x.Response.Body.Data))
			}
			for _, b := range []*httpmsg.Body{&x.Request.Body, respBody(x)} {
				if b == nil {
					continue
				}
				if len(b.Marks) > lim.MaxMarks {
					t.Fatalf("exchange %d: %d marks", i, len(b.Marks))
				}
				if n := len(b.Marks); n > 0 && b.Marks[n-1].Offset != len(b.Data) && b.ContentEncoding == "" {
					t.Fatalf("exchange %d: last mark %d, body %d", i, b.Marks[n-1].Offset, len(b.Data))
				}
			}
		}
		for i := 1; i < len(r.xs); i++ {
			if r.xs[i].Seq <= r.xs[i-1].Seq {
				t.Fatalf("exchanges out of order: %d after %d", r.xs[i].Seq, r.xs[i-1].Seq)
			}
		}
	})
}

func respBody(x *httpmsg.Exchange) *httpmsg.Body {
	if x.Response == nil {
		return nil
	}
	return &x.Response.Body
}

// TestHeaderBlockSizes: blocks with fewer and more fields than are gathered
// on the stack, bad lines and a folded line among them, read in place (one
// chunk) and gathered (a byte per chunk), give the same fields in order and
// the same counts.
func TestHeaderBlockSizes(t *testing.T) {
	for _, n := range []int{0, 1, maxStackFields - 1, maxStackFields, maxStackFields + 1, 3 * maxStackFields} {
		var fields strings.Builder
		var want httpmsg.Header
		for i := range n {
			fmt.Fprintf(&fields, "x-field-%d: v%d\r\n", i, i)
			want = append(want, httpmsg.Field{Name: fmt.Sprintf("X-Field-%d", i), Value: fmt.Sprintf("v%d", i)})
			if i == n/2 {
				fields.WriteString("\tfolded\r\nnot a field\r\n")
				want[i].Value += " folded"
			}
		}
		client := []byte(get("/h", fields.String()))
		server := []byte(ok("{}"))
		for _, cuts := range [][]int{nil, seq(len(client))} {
			r := run(append(split(flow.ClientToServer, client, cuts, t0), whole(flow.ServerToClient, server)...),
				httpmsg.Limits{}, Options{})
			if len(r.xs) != 1 {
				t.Fatalf("%d fields, %d cuts: %d exchanges", n, len(cuts), len(r.xs))
			}
			got := r.xs[0].Request.Header
			if got.Get("Host") != "api.example.com" || !slices.Equal(got[1:], want) {
				t.Errorf("%d fields, %d cuts: header %v", n, len(cuts), got)
			}
			wantBad := int64(0)
			if n > 0 {
				wantBad = int64(len("not a field\r\n"))
			}
			if bad := r.stats.Get(TokenBadHeaderLine); bad != wantBad {
				t.Errorf("%d fields, %d cuts: %d bad bytes; want %d", n, len(cuts), bad, wantBad)
			}
		}
	}
}

// TestResponseHeaderRoom: the request header takes the start of the
// exchange's room for fields, the response header the rest when it fits
// (the whole room after a request too large for it) and has its own when
// not; a 100 Continue takes no room, and adding to one header never changes
// the other.
func TestResponseHeaderRoom(t *testing.T) {
	fieldsOf := func(n int) (string, httpmsg.Header) {
		var b strings.Builder
		var h httpmsg.Header
		for i := range n {
			fmt.Fprintf(&b, "x-r-%d: v%d\r\n", i, i)
			h = append(h, httpmsg.Field{Name: fmt.Sprintf("X-R-%d", i), Value: fmt.Sprintf("v%d", i)})
		}
		return b.String(), h
	}
	// A request has Host, a response Content-Type and Content-Length with
	// the n fields of sizes: the first fills the room exactly, the second
	// is one over, the fifth follows a request too large for the room.
	sizes := []int{exchangeFields - 3, exchangeFields - 2, 2, 3, exchangeFields - 2, exchangeFields + 4, 0}
	var client, server strings.Builder
	var want []httpmsg.Header
	for i, n := range sizes {
		if i == 4 {
			reqExtra, _ := fieldsOf(exchangeFields + 1)
			client.WriteString(get("/h", reqExtra))
		} else {
			client.WriteString(get("/h"))
		}
		if i == 1 {
			server.WriteString("HTTP/1.1 100 Continue\r\nx-interim: 1\r\n\r\n")
		}
		extra, h := fieldsOf(n)
		server.WriteString(ok("{}", extra))
		want = append(want, append(h,
			httpmsg.Field{Name: "Content-Type", Value: "application/json"},
			httpmsg.Field{Name: "Content-Length", Value: "2"}))
	}
	r := run(both(client.String(), server.String()), httpmsg.Limits{}, Options{})
	if len(r.xs) != len(sizes) {
		t.Fatalf("%d exchanges; want %d", len(r.xs), len(sizes))
	}
	for i, x := range r.xs {
		if x.Response == nil || !slices.Equal(x.Response.Header, want[i]) {
			t.Fatalf("exchange %d: response header %v; want %v", i, x.Response, want[i])
		}
		x.Request.Header.Add("X-Added", "1")
		if !slices.Equal(x.Response.Header, want[i]) || x.Request.Header.Get("X-Added") != "1" {
			t.Errorf("exchange %d: adding to the request header changed the response's: %v", i, x.Response.Header)
		}
		x.Response.Header.Add("X-Added", "2")
		if x.Request.Header.Get("X-Added") != "1" || x.Request.Header.Get("Host") != "api.example.com" {
			t.Errorf("exchange %d: adding to the response header changed the request's: %v", i, x.Request.Header)
		}
	}
}
