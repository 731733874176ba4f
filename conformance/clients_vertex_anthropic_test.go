package conformance

import (
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
)

// No fixture records Claude on Vertex AI yet; these recordings have the
// URL and body shapes of one (the model in the URL, anthropic_version in
// the body).
func vertexClaudeRecording(op string, status int, contentType, response string) *cassette.Recording {
	return postRecording("https://us-east5-aiplatform.googleapis.com/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:"+op,
		`{"anthropic_version":"vertex-2023-10-16","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, status, contentType, response)
}

func TestVertexAnthropicOperation(t *testing.T) {
	for _, c := range []struct {
		url                    string
		project, region, model string
		stream, ok             bool
	}{
		{"https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-x@1:rawPredict", "p", "us-east5", "claude-x@1", false, true},
		{"https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/anthropic/models/claude-x:streamRawPredict", "p", "global", "claude-x", true, true},
		{"https://aiplatform.eu.rep.googleapis.com/v1/projects/p/locations/eu/publishers/anthropic/models/claude-x:rawPredict", "p", "eu", "claude-x", false, true},
		{"https://aiplatform.googleapis.com/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-x:rawPredict", "", "", "", false, false},
		{"https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/gemini:generateContent", "", "", "", false, false},
	} {
		p, r, m, s, ok := vertexAnthropicOperation(c.url)
		if ok != c.ok || ok && (p != c.project || r != c.region || m != c.model || s != c.stream) {
			t.Errorf("vertexAnthropicOperation(%s) = %q %q %q %v %v", c.url, p, r, m, s, ok)
		}
	}
}

// TestVertexAnthropicSDK drives Claude-on-Vertex recordings through
// anthropic-sdk-go's vertex option and shows its checks can fail.
func TestVertexAnthropicSDK(t *testing.T) {
	message := func(text string) string {
		return `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"` + text + `"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}`
	}
	right := vertexClaudeRecording("rawPredict", 200, "application/json", message("Hello"))
	wrong := vertexClaudeRecording("rawPredict", 200, "application/json", message("Bye"))
	overloaded := vertexClaudeRecording("rawPredict", 529, "application/json", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	stream := vertexClaudeRecording("streamRawPredict", 200, "text/event-stream",
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n"+
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	stream.Interactions[0].Request.Body = []byte(`{"anthropic_version":"vertex-2023-10-16","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	checkVerdicts(t, []verdict{
		{"same message", right, right, true},
		{"different text", wrong, right, false},
		{"529 for a recorded 200", overloaded, right, false},
		{"recorded 529", overloaded, overloaded, true},
		{"stream", stream, stream, true},
	}, appliedAgainst(loopback.H2, VertexAnthropicSDK))
}
