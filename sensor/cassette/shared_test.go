package cassette

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The shared corpus (../shared in the repository's parent) is reference
// material that users do not have: these tests skip cleanly without it.
const sharedCassettes = "../../../shared/cassettes"
const normalizePy = "../../../shared/tools/fidelity/normalize.py"

// recordingSuffixes are the names the fidelity checker treats as recordings.
var recordingSuffixes = []string{".yaml", ".yml", ".json", ".httprr", ".httprr.gz", ".yaml.gz", ".yml.gz"}

// sharedRecordings lists the HTTP recording files of the shared corpus
// (every folder except vercel-ai, which holds response bodies only).
func sharedRecordings(t testing.TB) []string {
	t.Helper()
	if _, err := os.Stat(sharedCassettes); err != nil {
		t.Skipf("shared corpus not present (%v)", err)
	}
	var files []string
	for _, src := range []string{"pydantic-ai", "openllmetry", "langchaingo"} {
		err := filepath.WalkDir(filepath.Join(sharedCassettes, src), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
				return nil
			}
			for _, s := range recordingSuffixes {
				if strings.HasSuffix(d.Name(), s) {
					files = append(files, p)
					break
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("shared corpus present but no recordings found")
	}
	return files
}

// TestSharedCorpus reads every shared recording: each must parse or be
// refused as not HTTP — and a refused WebSocket transcript must read as one.
// A sample (all with OISP_CASSETTE_ALL=1) must also survive Write and Parse.
func TestSharedCorpus(t *testing.T) {
	files := sharedRecordings(t)
	var parsed, notHTTP, empty, interactions int
	formats := map[string]int{}
	all := os.Getenv("OISP_CASSETTE_ALL") != ""
	for n, f := range files {
		if testing.Short() && n%10 != 0 {
			continue // -short: every 10th file
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := Parse(f, data)
		switch {
		case errors.Is(err, ErrNotHTTP):
			notHTTP++
			if strings.Contains(err.Error(), "WebSocket") {
				if _, werr := ReadWebSocketTranscript(f); werr != nil {
					t.Errorf("%s: refused as WebSocket but does not read as a transcript: %v", f, werr)
				}
			}
		case err != nil:
			t.Errorf("%v", err)
		default:
			parsed++
			formats[rec.Format]++
			interactions += len(rec.Interactions)
			if len(rec.Interactions) == 0 {
				empty++
			}
			for i, in := range rec.Interactions {
				if in.Request.Method == "" || !strings.Contains(in.Request.URL, "://") || in.Response.Status == 0 {
					t.Errorf("%s: interaction %d incomplete: %q %q %d", f, i, in.Request.Method, in.Request.URL, in.Response.Status)
				}
			}
			// The fuzz property (Write, Parse, same interactions) on real
			// files: every 8th file, or all with OISP_CASSETTE_ALL=1.
			if all || n%8 == 0 {
				t.Run(filepath.Base(f), func(t *testing.T) { checkParse(t, data) })
			}
		}
	}
	t.Logf("%d files: %d parsed (%d interactions; %d recordings hold none), %d refused as not HTTP; formats %v",
		len(files), parsed, interactions, empty, notHTTP, formats)
}

// normalized is one line of normalize.py's output.
type normalized struct {
	File        string      `json:"file"`
	Index       int         `json:"index"`
	NotHTTP     string      `json:"not_http"`
	Error       string      `json:"error"`
	Method      string      `json:"method"`
	URL         string      `json:"url"`
	Status      any         `json:"status"`
	Reason      *string     `json:"reason"`
	Proto       *string     `json:"proto"`
	ReqHeaders  [][2]string `json:"req_headers"`
	RespHeaders [][2]string `json:"resp_headers"`
	ReqBody     string      `json:"req_body_b64"`
	RespBody    string      `json:"resp_body_b64"`
	Notes       []string    `json:"notes"`
}

// TestAgreesWithNormalize compares our reading of a sample of the shared
// corpus with the independent checker's (normalize.py): which files are not
// HTTP, how many exchanges, and per exchange method, URL, status, reason,
// protocol, headers and body bytes. OISP_CASSETTE_ALL=1 checks every file.
func TestAgreesWithNormalize(t *testing.T) {
	files := sharedRecordings(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not available")
	}
	if _, err := os.Stat(normalizePy); err != nil {
		t.Skipf("normalize.py not present (%v)", err)
	}
	sample := files
	if os.Getenv("OISP_CASSETTE_ALL") == "" {
		sample = sampleFiles(files, 60)
	}
	out, err := exec.Command(python, append([]string{normalizePy}, sample...)...).Output()
	if err != nil {
		t.Fatalf("normalize.py: %v", err)
	}
	byFile := map[string][]normalized{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var n normalized
		if err := json.Unmarshal(sc.Bytes(), &n); err != nil {
			t.Fatalf("normalize.py output: %v", err)
		}
		byFile[n.File] = append(byFile[n.File], n)
	}
	for _, f := range sample {
		compareWithNormalize(t, f, byFile[f])
	}
}

// sampleFiles picks n files spread over the sorted list (so every source and
// format is represented) plus the files SOURCES.md singles out.
func sampleFiles(files []string, n int) []string {
	special := []string{
		"test_bedrock_model_stream.yaml", "test_google_model_stream.yaml", "TestGoogleAIWithStreaming.httprr",
		"TestClient_GenerateChatStream.httprr", "test_chat_tools.yaml", "test_tool_call_round.yaml",
		"test_xai_builtin_code_execution_tool_stream.xai.yaml", "test_openrouter_errors_raised.yaml",
		"test_tool_choice_matrix[none-huggingface].yaml", "test_webrtc_sideband_text_turn.yaml",
	}
	pick := map[string]bool{}
	for i := 0; i < n; i++ {
		pick[files[i*len(files)/n]] = true
	}
	for _, f := range files {
		for _, s := range special {
			if filepath.Base(f) == s {
				pick[f] = true
			}
		}
		if strings.HasSuffix(f, ".gz") && len(pick) < n+20 {
			pick[f] = true // the few gzipped traces
		}
	}
	out := make([]string, 0, len(pick))
	for f := range pick {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

func compareWithNormalize(t *testing.T, file string, want []normalized) {
	t.Helper()
	rec, err := ReadFile(file)
	if len(want) == 1 && want[0].NotHTTP != "" {
		if !errors.Is(err, ErrNotHTTP) {
			t.Errorf("%s: normalize.py says not HTTP (%s); we say %v", file, want[0].NotHTTP, err)
		}
		return
	}
	if len(want) == 1 && want[0].Error != "" {
		t.Errorf("%s: normalize.py fails (%s); we say %v", file, want[0].Error, err)
		return
	}
	if err != nil {
		t.Errorf("%s: normalize.py reads %d exchanges; we fail: %v", file, len(want), err)
		return
	}
	if len(rec.Interactions) != len(want) {
		t.Errorf("%s: %d interactions, normalize.py %d", file, len(rec.Interactions), len(want))
		return
	}
	for i, w := range want {
		got := rec.Interactions[i]
		where := fmt.Sprintf("%s #%d", file, i)
		if got.Request.Method != w.Method || got.Request.URL != w.URL {
			t.Errorf("%s: %s %s, normalize.py %s %s", where, got.Request.Method, got.Request.URL, w.Method, w.URL)
		}
		if fmt.Sprint(w.Status) != fmt.Sprint(got.Response.Status) {
			t.Errorf("%s: status %d, normalize.py %v", where, got.Response.Status, w.Status)
		}
		if w.Reason != nil && *w.Reason != got.Response.Reason {
			t.Errorf("%s: reason %q, normalize.py %q", where, got.Response.Reason, *w.Reason)
		}
		if w.Proto != nil && *w.Proto != got.Response.Proto {
			t.Errorf("%s: proto %q, normalize.py %q", where, got.Response.Proto, *w.Proto)
		}
		reqRebuilt := hasNote(w.Notes, "req:parsed_body")
		respRebuilt := hasNote(w.Notes, "resp:parsed_body") || hasNote(w.Notes, "resp:object")
		wantReq, _ := base64.StdEncoding.DecodeString(w.ReqBody)
		wantResp, _ := base64.StdEncoding.DecodeString(w.RespBody)
		// normalize.py drops a request body stored as a bare JSON tree
		// (no parsed_body key; 5 pydantic-ai files); we rebuild it.
		bareTree := len(wantReq) == 0 && len(got.Request.Body) > 0 && got.Request.Body[0] == '{'
		if !bytes.Equal(got.Request.Body, wantReq) && !bareTree {
			t.Errorf("%s: request body differs:\n got %.200q\nwant %.200q", where, got.Request.Body, wantReq)
		}
		if bareTree {
			reqRebuilt = true
		}
		if !bytes.Equal(got.Response.Body, wantResp) {
			t.Errorf("%s: response body differs:\n got %.200q\nwant %.200q", where, got.Response.Body, wantResp)
		}
		compareHeaders(t, where+" request", got.Request.Header, w.ReqHeaders, reqRebuilt || staleEncoding(w.ReqHeaders, wantReq))
		compareHeaders(t, where+" response", got.Response.Header, w.RespHeaders, respRebuilt || staleEncoding(w.RespHeaders, wantResp))
	}
}

func hasNote(notes []string, n string) bool {
	for _, x := range notes {
		if x == n {
			return true
		}
	}
	return false
}

// staleEncoding: the recording labels a body gzip that is not gzip; we
// drop that Content-Encoding (and recompute Content-Length), normalize.py
// keeps the header and ignores it when decoding.
func staleEncoding(h [][2]string, body []byte) bool {
	for _, kv := range h {
		if strings.EqualFold(kv[0], "Content-Encoding") && strings.EqualFold(kv[1], "gzip") {
			return len(body) > 0 && !bytes.HasPrefix(body, []byte{0x1f, 0x8b})
		}
	}
	return false
}

// compareHeaders compares header multisets case-insensitively; when the
// body was rebuilt (or its stale Content-Encoding dropped), Content-Length
// and Content-Encoding are ours to recompute.
func compareHeaders(t *testing.T, where string, got map[string][]string, want [][2]string, rebuilt bool) {
	t.Helper()
	ours := func(k string) bool {
		return rebuilt && (strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Content-Encoding"))
	}
	var g, w []string
	for k, vs := range got {
		if ours(k) {
			continue
		}
		for _, v := range vs {
			g = append(g, strings.ToLower(k)+": "+v)
		}
	}
	for _, kv := range want {
		if ours(kv[0]) {
			continue
		}
		w = append(w, strings.ToLower(kv[0])+": "+kv[1])
	}
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s headers differ:\n got %q\nwant %q", where, g, w)
	}
}
