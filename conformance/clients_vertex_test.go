package conformance

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
)

func TestVertexOperation(t *testing.T) {
	const prefix = "/v1beta1/projects/p-1/locations/"
	for _, c := range []struct {
		url  string
		want vertexTarget
		ok   bool
	}{
		{"https://aiplatform.googleapis.com" + prefix + "global/publishers/google/models/gemini-2.0-flash:generateContent",
			vertexTarget{"v1beta1", "p-1", "global", "gemini-2.0-flash", "generateContent"}, true},
		{"https://europe-west4-aiplatform.googleapis.com" + prefix + "europe-west4/publishers/google/models/g:streamGenerateContent?alt=sse",
			vertexTarget{"v1beta1", "p-1", "europe-west4", "g", "streamGenerateContent"}, true},
		{"https://us-central1-aiplatform.googleapis.com/v1/projects/p-1/locations/us-central1/publishers/google/models/g:countTokens",
			vertexTarget{"v1", "p-1", "us-central1", "g", "countTokens"}, true},
		// The host is not the one the SDK derives from the location.
		{"https://aiplatform.googleapis.com" + prefix + "europe-west4/publishers/google/models/g:generateContent", vertexTarget{}, false},
		// A stream without alt=sse, a query on a unary call.
		{"https://aiplatform.googleapis.com" + prefix + "global/publishers/google/models/g:streamGenerateContent", vertexTarget{}, false},
		{"https://aiplatform.googleapis.com" + prefix + "global/publishers/google/models/g:generateContent?x=1", vertexTarget{}, false},
		// Partner models and the OpenAI-compatible endpoint are other
		// clients' requests.
		{"https://aiplatform.googleapis.com" + prefix + "global/publishers/anthropic/models/claude:rawPredict", vertexTarget{}, false},
		{"https://aiplatform.googleapis.com" + prefix + "global/endpoints/openapi/chat/completions", vertexTarget{}, false},
		{"https://generativelanguage.googleapis.com/v1beta/models/g:generateContent", vertexTarget{}, false},
		{"http://aiplatform.googleapis.com" + prefix + "global/publishers/google/models/g:generateContent", vertexTarget{}, false},
	} {
		got, ok := vertexOperation(c.url)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("vertexOperation(%s) = %+v, %v; want %+v, %v", c.url, got, ok, c.want, c.ok)
		}
	}
}

func TestStandardBase64Bytes(t *testing.T) {
	in := `{"contents":[{"parts":[{"thoughtSignature":"a-b_c="},{"inlineData":{"mimeType":"image/png","data":"x_y-"}},{"text":"keep-this_text"}]}]}`
	got := string(standardBase64Bytes([]byte(in)))
	for _, want := range []string{`"thoughtSignature":"a+b/c="`, `"data":"x/y+"`, `"text":"keep-this_text"`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %s", got, want)
		}
	}
	if plain := `{"contents":[]}`; string(standardBase64Bytes([]byte(plain))) != plain {
		t.Error("a body without URL-safe bytes was rewritten")
	}
}

const vertexURL = "https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/publishers/google/models/gemini-2.0-flash:"

func vertexRecording(op string, status int, contentType, body string) *cassette.Recording {
	return postRecording(vertexURL+op, `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`, status, contentType, body)
}

// TestVertexSDKFailsOnWrongBytes shows the Vertex driver's checks can fail:
// the server serves one response while the driver expects the recorded
// other.
func TestVertexSDKFailsOnWrongBytes(t *testing.T) {
	const answer = `{"candidates":[{"content":{"role":"model","parts":[{"text":"%s"}]},"finishReason":"STOP"}],"modelVersion":"gemini-2.0-flash","responseId":"r1"}`
	right := vertexRecording("generateContent", 200, "application/json", fmt.Sprintf(answer, "Paris"))
	wrong := vertexRecording("generateContent", 200, "application/json", fmt.Sprintf(answer, "Lyon"))
	failure := vertexRecording("generateContent", 429, "application/json", `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`)
	event := func(text string) string { return "data: " + fmt.Sprintf(answer, text) + "\r\n\r\n" }
	stream := vertexRecording("streamGenerateContent?alt=sse", 200, "text/event-stream", event("Pa")+event("ris"))
	shortStream := vertexRecording("streamGenerateContent?alt=sse", 200, "text/event-stream", event("Paris"))
	count := vertexRecording("countTokens", 200, "application/json", `{"totalTokens":7}`)
	wrongCount := vertexRecording("countTokens", 200, "application/json", `{"totalTokens":8}`)

	checkVerdicts(t, []verdict{
		{"same response", right, right, true},
		{"different text", wrong, right, false},
		{"500 for a recorded 200", failure, right, false},
		{"200 for a recorded 429", right, failure, false},
		{"recorded failure", failure, failure, true},
		{"same stream", stream, stream, true},
		{"a stream with fewer events", shortStream, stream, false},
		{"same count", count, count, true},
		{"different count", wrongCount, count, false},
	}, appliedAgainst(loopback.H2, VertexSDK))
}
