package conformance

import (
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
)

func cohereRecording(status int, response string) *cassette.Recording {
	return postRecording("https://api.cohere.com/v2/chat", `{"model":"command-r7b-12-2024","messages":[{"role":"user","content":"hi"}],"stream":false}`,
		status, "application/json", response)
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
	checkVerdicts(t, []verdict{
		{"same response", right, right, true},
		{"different text", wrong, right, false},
		{"404 for a recorded 200", missing, right, false},
		{"recorded 404", missing, missing, true},
	}, against(loopback.H2, CohereSDK))
}
