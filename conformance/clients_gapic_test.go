package conformance

import (
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
)

func gapicRecording(op string, body string, status int, response string) *cassette.Recording {
	return postRecording("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:"+op+"?"+gapicQuery, body,
		status, "application/json; charset=UTF-8", response)
}

func TestGAPICApplies(t *testing.T) {
	const ok = `{"model":"models/gemini-2.0-flash","contents":[{"parts":[{"text":"hi"}],"role":"user"}],"safetySettings":[{"category":10,"threshold":3}]}`
	for _, c := range []struct {
		name string
		rec  *cassette.Recording
		want bool
	}{
		{"generateContent", gapicRecording("generateContent", ok, 200, `{}`), true},
		{"a field the message lacks", gapicRecording("generateContent", `{"model":"models/gemini-2.0-flash","labels":{}}`, 200, `{}`), false},
		{"a model other than the path's", gapicRecording("generateContent", `{"model":"models/other"}`, 200, `{}`), false},
		{"genai's URL", &cassette.Recording{Interactions: []cassette.Interaction{interaction("POST",
			"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent", "", ok)}}, false},
	} {
		if got := GAPICSDK.Applies(c.rec); got != c.want {
			t.Errorf("%s: Applies = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestGAPICFailsOnWrongBytes shows the generated client's checks can fail.
func TestGAPICFailsOnWrongBytes(t *testing.T) {
	const req = `{"model":"models/gemini-2.0-flash","contents":[{"parts":[{"text":"hi"}],"role":"user"}]}`
	answer := func(text string) string {
		return `{"candidates":[{"content":{"parts":[{"text":"` + text + `"}],"role":"model"},"finishReason":1}],"usageMetadata":{"promptTokenCount":1,"totalTokenCount":2}}`
	}
	right := gapicRecording("generateContent", req, 200, answer("Paris"))
	wrong := gapicRecording("generateContent", req, 200, answer("Lyon"))
	denied := gapicRecording("generateContent", req, 403, `{"error":{"code":403,"message":"no","status":"PERMISSION_DENIED"}}`)
	stream := gapicRecording("streamGenerateContent", req, 200, "["+answer("Pa")+",\r\n"+answer("ris")+"]")
	shortStream := gapicRecording("streamGenerateContent", req, 200, "["+answer("Paris")+"]")
	checkVerdicts(t, []verdict{
		{"same response", right, right, true},
		{"different text", wrong, right, false},
		{"403 for a recorded 200", denied, right, false},
		{"recorded 403", denied, denied, true},
		{"same stream", stream, stream, true},
		{"a stream with fewer responses", shortStream, stream, false},
	}, against(loopback.H2, GAPICSDK))
}
