package cassette

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// addSharedSeeds adds a few real recordings of the shared corpus as seeds
// when it is present (it is reference material, not shipped).
func addSharedSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(sharedCassettes, n))
		if err != nil {
			continue
		}
		if len(data) <= 64<<10 {
			f.Add(data)
		}
	}
}

// checkParse is the property every parser input must satisfy: no panic, a
// named error, and a recording that survives Write and Parse unchanged
// (unless Write had secrets to redact).
func checkParse(t *testing.T, data []byte) {
	rec, err := Parse("fuzz", data)
	if err != nil {
		if !bytes.HasPrefix([]byte(err.Error()), []byte("cassette fuzz: ")) {
			t.Fatalf("error does not name the file: %v", err)
		}
		return
	}
	for _, in := range rec.Interactions {
		if RedactURL(in.Request.URL) != in.Request.URL || hasSecretHeader(in.Request.Header) || hasSecretHeader(in.Response.Header) {
			return
		}
	}
	var buf bytes.Buffer
	if err := Write(&buf, rec); err != nil {
		t.Fatalf("Write: %v", err)
	}
	back, err := Parse("written", buf.Bytes())
	if err != nil {
		t.Fatalf("re-reading our own cassette: %v\n%s", err, buf.Bytes())
	}
	if diff := diffInteractions(rec.Interactions, back.Interactions); diff != "" {
		t.Fatalf("Write/Parse changed the recording:\n%s", diff)
	}
}

func hasSecretHeader(h map[string][]string) bool {
	for k := range h {
		if RedactHeader(map[string][]string{k: {"x"}})[k][0] == Redacted {
			return true
		}
	}
	return false
}

func FuzzParseYAML(f *testing.F) {
	plain, _ := vcrpyPlain(f)
	f.Add([]byte(plain))
	f.Add([]byte(parsedBodyYAML))
	f.Add([]byte("requests:\n- {method: GET, uri: 'http://a/'}\nresponses:\n- {status: {code: 200}}\n"))
	f.Add([]byte("version: 1\ninteractions:\n- kind: message\n  direction: sent\n  data: {a: 1}\n"))
	f.Add([]byte("a: &a [1, *a]\n"))
	var buf bytes.Buffer
	if err := Write(&buf, sampleRecording(f)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	addSharedSeeds(f,
		"pydantic-ai/tests/models/cassettes/test_openai/test_openai_tool_output.yaml",
		"pydantic-ai/tests/models/cassettes/test_bedrock/test_bedrock_model_stream.yaml",
		"openllmetry/packages/opentelemetry-instrumentation-openai/tests/traces/cassettes/test_chat/test_chat_tools.yaml",
		"pydantic-ai/tests/realtime/cassettes/test_openai_ws/test_tool_call_round.yaml",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
		_, _ = ParseWebSocketTranscript("fuzz", data)
	})
}

func FuzzParseHTTPRR(f *testing.F) {
	f.Add([]byte(httprrTrace()))
	f.Add([]byte(httprrMagic))
	f.Add([]byte(httprrMagic + httprrRecord("GET http://x/ HTTP/1.1\n\n", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3;x=y\nabc\n0\n\n")))
	addSharedSeeds(f,
		"langchaingo/llms/ollama/internal/ollamaclient/testdata/TestClient_GenerateChatStream.httprr",
		"langchaingo/llms/googleai/testdata/TestGoogleAIWithStreaming.httprr",
		"langchaingo/llms/anthropic/internal/anthropicclient/testdata/TestClient_CreateMessageStream.httprr",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte(httprrMagic)) {
			data = append([]byte(httprrMagic), data...)
		}
		checkParse(t, data)
	})
}

func FuzzParseNock(f *testing.F) {
	f.Add([]byte(`[{"scope":"https://api.openai.com:443","method":"POST","path":"/v1/chat/completions","body":{"a":[1,2.5,null]},"status":200,"response":{"id":"x"},"rawHeaders":["Content-Type","application/json"]}]`))
	f.Add([]byte(`[{"scope":"https://x:443","method":"GET","path":"/","status":200,"response":"00ff","responseIsBinary":true,"reqheaders":{"a":["1","2"]}}]`))
	f.Add([]byte(`[{"scope":"https://x","method":"GET","path":"/","response":["1f8b","00"],"headers":{"content-encoding":"gzip"}}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
	})
}

// diffInteractions reports how two interaction lists differ ("" if they do
// not), treating nil and empty alike. It compares cheaply first: cmp.Diff
// walks byte slices element by element and takes seconds on large bodies.
func diffInteractions(a, b []Interaction) string {
	if len(a) == len(b) {
		same := true
		for i := range a {
			if !sameInteraction(a[i], b[i]) {
				same = false
				break
			}
		}
		if same {
			return ""
		}
	}
	return cmp.Diff(a, b, cmpopts.EquateEmpty())
}

func sameInteraction(x, y Interaction) bool {
	return x.Request.Method == y.Request.Method && x.Request.URL == y.Request.URL && x.Request.Proto == y.Request.Proto &&
		bytes.Equal(x.Request.Body, y.Request.Body) && sameHeader(x.Request.Header, y.Request.Header) &&
		x.Response.Status == y.Response.Status && x.Response.Reason == y.Response.Reason && x.Response.Proto == y.Response.Proto &&
		bytes.Equal(x.Response.Body, y.Response.Body) && sameHeader(x.Response.Header, y.Response.Header)
}

func sameHeader(x, y map[string][]string) bool {
	if len(x) != len(y) {
		return false
	}
	for k, xv := range x {
		yv, ok := y[k]
		if !ok || len(xv) != len(yv) {
			return false
		}
		for i := range xv {
			if xv[i] != yv[i] {
				return false
			}
		}
	}
	return true
}
