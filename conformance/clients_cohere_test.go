package conformance

import (
	"net/http"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
)

func cohereRecording(status int, response string) *cassette.Recording {
	in := cassette.Interaction{
		Request: cassette.Request{Method: "POST", URL: "https://api.cohere.com/v2/chat",
			Header: http.Header{"Content-Type": {"application/json"}},
			Body:   []byte(`{"model":"command-r7b-12-2024","messages":[{"role":"user","content":"hi"}],"stream":false}`)},
		Response: cassette.Response{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(response)},
	}
	return &cassette.Recording{Interactions: []cassette.Interaction{in}}
}

// TestCohereSDKFailsOnWrongBytes shows the Cohere driver's checks can fail.
func TestCohereSDKFailsOnWrongBytes(t *testing.T) {
	answer := func(text string) string {
		return `{"id":"c1","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"` + text + `"}]}}`
	}
	right := cohereRecording(200, answer("Paris"))
	wrong := cohereRecording(200, answer("Lyon"))
	missing := cohereRecording(404, `{"id":"e1","message":"model not found"}`)
	if !CohereSDK.Applies(right) {
		t.Fatal("driver does not apply to a v2 chat")
	}
	for _, c := range []struct {
		name             string
		served, expected *cassette.Recording
		ok               bool
	}{
		{"same response", right, right, true},
		{"different text", wrong, right, false},
		{"404 for a recorded 200", missing, right, false},
		{"recorded 404", missing, missing, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := driveAgainst(t, loopback.H2, CohereSDK, c.served, c.expected)
			if c.ok && err != nil {
				t.Errorf("want success: %v", err)
			}
			if !c.ok && err == nil {
				t.Error("passed")
			}
		})
	}
}
