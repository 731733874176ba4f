package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// embeddingsResponseCases are embeddings responses of the usual shape and
// of every shape the vector scanner must decline or read exactly as the
// decoder does.
var embeddingsResponseCases = []string{
	`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2,3e-4]},{"object":"embedding","index":1,"embedding":[1,2,3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`,
	` { "data" : [ { "embedding" : [ 0.5 , 1E+2 , -0 ] } ] , "model" : "m" } `,
	`{"data":[{"embedding":"AAAAAAAAAAAAAAAAAAAAAA=="}],"model":"m"}`,
	`{"data":[],"model":"m"}`,
	`{"data":[{}],"model":"m"}`,
	`{"data":[{"embedding":[]}]}`,
	`{"model":"m"}`,
	`{}`,
	// Malformed vectors: the decoder's verdict decides.
	`{"data":[{"embedding":[1,,2]}]}`,
	`{"data":[{"embedding":[-]}]}`,
	`{"data":[{"embedding":[1e]}]}`,
	`{"data":[{"embedding":[1e+]}]}`,
	`{"data":[{"embedding":[.5]}]}`,
	`{"data":[{"embedding":[1 2]}]}`,
	`{"data":[{"embedding":[ 1E+5 , -0.5e-3 ,0, -0 ]}]}`,
	`{"data":[{"embedding":[1,-]}]}`,
	`{"data":[{"embedding":[1]x]}]}`,
	"{\"data\":[{\"embedding\":\"AAAAAAAAAAAAAAAA\x7fAAAAAAA\"}]}",
	"{\"data\":[{\"embedding\":\"AAAAAAAAAAAAAAAA\x1fAAAAAAA\"}]}",
	"{\"data\":[{\"embedding\":\"AAAAAAAAAAAAAAAA\u00e9AAAAAAA\"}]}",
	"{\"data\":[{\"embedding\":\"AAAAAAAAAAAAAAAA\xc3\xa9AAAAAA\"}]}",
	`{"data":[{"embedding":[1,2,]}]}`,
	`{"data":[{"embedding":[01,2]}]}`,
	`{"data":[{"embedding":[1.,2]}]}`,
	`{"data":[{"embedding":[1,tru]}]}`,
	`{"data":[{"embedding":[1,true]}]}`,
	`{"data":[{"embedding":[1,"2"]}]}`,
	`{"data":[{"embedding":[[1],[2]]}]}`,
	`{"data":[{"embedding":[1,2]}]`,
	`{"data":[{"embedding":[1,2]}]} x`,
	`{"data":[{"embedding":[1,2]}],}`,
	// Other shapes of data and its members.
	`{"data":{"embedding":[1,2]}}`,
	`{"data":[null]}`,
	`{"data":[1]}`,
	`{"data":null}`,
	`{"Data":[{"embedding":[1,2]}]}`,
	`{"data":[{"Embedding":[1,2]}]}`,
	`{"data":[{"embedding":[1]}],"data":[{"embedding":[1,2]}]}`,
	`{"data":[{"embedding":[1],"embedding":[1,2]}]}`,
	`{"d\u0061ta":[{"embedding":[1,2]}]}`,
	`{"data":[{"embedding":[1,2],"object":{"x":1}}]}`,
	`{"data":[{"embedding":[1,2],"object":"caf\u00e9"}]}`,
	`{"data":[{"embedding":"AAAA\/AAAAAAAAAAA"}]}`,
	// A control character in a name inside the replaced array.
	"{\"data\":[{\"\x00\":0,\"embedding\":[1]}]}",
	`{"data":[{"embedding":null}]}`,
	// Errors and odd members around the vectors.
	`{"error":{"message":"bad","type":"invalid_request_error"},"data":[{"embedding":[1]}]}`,
	`{"model":5,"usage":{"prompt_tokens":"7"},"data":[{"embedding":[1,2]}]}`,
	`{"model":"m","usage":"x","data":[{"embedding":[1,2]}]}`,
	`{"model":tru,"data":[{"embedding":[1,2]}]}`,
	`{"model":"a\"b","data":[{"embedding":[1,2]}]}`,
	`[{"data":[{"embedding":[1,2]}]}]`,
	``,
}

// embeddingDecoder is an embeddings response decoder that measures the
// vectors with the scanner when scan is set.
type embeddingDecoder func(body []byte, res *Result, emb *oisp.AIEmbedding, scan bool)

func embeddingOutcome(decode embeddingDecoder, body []byte, scan bool) (*Result, *oisp.AIEmbedding) {
	res := &Result{Request: &oisp.AIRequest{}}
	emb := &oisp.AIEmbedding{StatusCode: 200}
	decode(body, res, emb, scan)
	return res, emb
}

// compareScanning fails when decode gives a different result with the
// scanner than without it.
func compareScanning(t *testing.T, decode embeddingDecoder, body []byte) {
	t.Helper()
	wantRes, wantEmb := embeddingOutcome(decode, body, false)
	gotRes, gotEmb := embeddingOutcome(decode, body, true)
	if d := cmp.Diff(wantEmb, gotEmb); d != "" {
		t.Errorf("%q: embedding differs with the scanner (-whole +scanned):\n%s", body, d)
	}
	// (A Result's unexported room for a response is not its content.)
	if d := cmp.Diff(wantRes, gotRes, cmpopts.IgnoreUnexported(Result{})); d != "" {
		t.Errorf("%q: result differs with the scanner (-whole +scanned):\n%s", body, d)
	}
}

// TestEmbeddingVectorScanner checks that measuring vectors with the scanner
// gives exactly what decoding the body whole gives, and that the scanner
// does read the usual shape.
func TestEmbeddingVectorScanner(t *testing.T) {
	for _, body := range embeddingsResponseCases {
		compareScanning(t, decodeOpenAIEmbeddingsResponseScanning, []byte(body))
	}
	for _, body := range embeddingsResponseCases[:6] {
		if _, _, _, ok := measureOpenAIEmbeddingData([]byte(body)); !ok {
			t.Errorf("%s: scanner declined the usual shape", body)
		}
	}
	rec := loadCoreRecording(t, "openai/embeddings.json")
	if _, count, dims, ok := measureOpenAIEmbeddingData([]byte(rec.RespBody)); !ok || count == 0 || dims == 0 {
		t.Errorf("recorded embeddings: scanner ok=%v count=%d dims=%d", ok, count, dims)
	}
	compareScanning(t, decodeOpenAIEmbeddingsResponseScanning, []byte(rec.RespBody))
}

func FuzzEmbeddingVectorScanner(f *testing.F) {
	for _, body := range embeddingsResponseCases {
		f.Add(body)
	}
	rec := loadCoreRecording(f, "openai/embeddings.json")
	if len(rec.RespBody) <= maxFuzzSeed {
		f.Add(rec.RespBody)
	} else {
		f.Add(rec.RespBody[:maxFuzzSeed])
	}
	f.Fuzz(func(t *testing.T, body string) {
		compareScanning(t, decodeOpenAIEmbeddingsResponseScanning, []byte(body))
	})
}

// BenchmarkEmbeddingsResponse decodes a recorded embeddings response with
// the vector scanner and, side by side, whole with the decoder alone.
func BenchmarkEmbeddingsResponse(b *testing.B) {
	body := []byte(loadCoreRecording(b, "openai/embeddings.json").RespBody)
	b.Run("recorded", func(b *testing.B) { benchEmbeddingsResponse(b, body) })
	b.Run("1536x4", func(b *testing.B) { benchEmbeddingsResponse(b, syntheticEmbeddingsResponse(4, 1536)) })
}

// syntheticEmbeddingsResponse is an OpenAI embeddings response of n
// vectors of dims numbers written the way the API writes them.
func syntheticEmbeddingsResponse(n, dims int) []byte {
	var b strings.Builder
	b.WriteString(`{"object":"list","data":[`)
	x := uint32(12345)
	for v := range n {
		if v > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "{\n  \"object\": \"embedding\",\n  \"index\": %d,\n  \"embedding\": [", v)
		for d := range dims {
			if d > 0 {
				b.WriteString(",\n    ")
			}
			x = x*1664525 + 1013904223
			fmt.Fprintf(&b, "%.10g", (float64(x%20000)-10000)/300000)
		}
		b.WriteString("]}")
	}
	b.WriteString(`],"model":"text-embedding-3-small","usage":{"prompt_tokens":12,"total_tokens":12}}`)
	return []byte(b.String())
}

func benchEmbeddingsResponse(b *testing.B, body []byte) {
	for _, scan := range []bool{true, false} {
		name := "whole"
		if scan {
			name = "scanner"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				embeddingOutcome(decodeOpenAIEmbeddingsResponseScanning, body, scan)
			}
		})
	}
}

// googleEmbeddingCases are Gemini and Vertex embedding responses for the
// scanner/decoder comparison.
var googleEmbeddingCases = []string{
	`{"embedding":{"values":[0.1,-0.2,3e-4]}}`,
	`{"embeddings":[{"values":[1,2,3]},{"values":[4,5,6]}],"usageMetadata":{"promptTokenCount":7}}`,
	`{"embedding":{"values":[1,2]},"embeddings":[{"values":[1,2,3]}]}`,
	`{"embeddings":[],"embedding":{"values":[]}}`,
	`{"embeddings":[{}]}`,
	`{"embedding":{}}`,
	`{"predictions":[{"embeddings":{"values":[1,2,3,4],"statistics":{"token_count":5}}}]}`,
	`{"embeddings":[{"values":[1,2]}],"predictions":[{"embeddings":{"values":[1,2,3,4]}}]}`,
	`{"embedding":{"values":"AAAAAAAAAAAAAAAAAAAAAA=="}}`,
	`{"embedding":{"values":[1,2],"statistics":{"token_count":3}}}`,
	`{"embedding":{"values":[1,2],"statistics":3}}`,
	`{"embedding":{"values":[1,2],"Statistics":3}}`,
	`{"embedding":{"Values":[1,2]}}`,
	`{"Embedding":{"values":[1,2]}}`,
	`{"embedding":{"values":[1,2]},"embedding":{"values":[1]}}`,
	`{"embeddings":[{"values":[1]}],"embeddings":[{"values":[1,2]}]}`,
	`{"embedding":{"values":[1,,2]}}`,
	`{"embedding":{"values":[1,2]}`,
	`{"embedding":null}`,
	`{"embeddings":null}`,
	`{"embeddings":[null]}`,
	`{"embeddings":{"values":[1]}}`,
	`{"embedding":[1,2]}`,
	`{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"},"embedding":{"values":[1]}}`,
	`{"usageMetadata":"x","embedding":{"values":[1]}}`,
	`{"usageMetadata":{"promptTokenCount":"4"},"embeddings":[{"values":[1]}]}`,
}

func TestGoogleEmbeddingScanner(t *testing.T) {
	for _, body := range googleEmbeddingCases {
		compareScanning(t, decodeGoogleEmbeddingResponse, []byte(body))
	}
	for _, body := range googleEmbeddingCases[:6] {
		if _, _, ok := measureGoogleEmbeddings([]byte(body)); !ok {
			t.Errorf("%s: scanner declined the usual shape", body)
		}
	}
}

func FuzzGoogleEmbeddingScanner(f *testing.F) {
	for _, body := range googleEmbeddingCases {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		compareScanning(t, decodeGoogleEmbeddingResponse, []byte(body))
	})
}

// TestSkipDigits: the word-at-a-time digit run ends where the byte loop
// ends it, for every byte value at every place of the first two words.
func TestSkipDigits(t *testing.T) {
	naive := func(seg []byte, j int) int {
		for seg[j]-'0' < 10 {
			j++
		}
		return j
	}
	for at := 0; at < 17; at++ {
		for c := 0; c < 256; c++ {
			seg := []byte(strings.Repeat("7", at) + string([]byte{byte(c)}) + "90123456789]")
			for _, from := range []int{0, 1} {
				if got, want := skipDigits(seg, from), naive(seg, from); got != want {
					t.Fatalf("skipDigits(%q, %d) = %d, want %d", seg, from, got, want)
				}
			}
		}
	}
}
