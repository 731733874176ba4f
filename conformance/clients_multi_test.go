package conformance

import (
	"testing"

	"github.com/oisp/oisp-sensor/sensor/cassette"
)

func TestMultiSDKApplies(t *testing.T) {
	rec := func(ins ...cassette.Interaction) *cassette.Recording { return &cassette.Recording{Interactions: ins} }
	chat := interaction("POST", "https://api.openai.com/v1/chat/completions", "", `{"model":"m"}`)
	messages := interaction("POST", "https://api.anthropic.com/v1/messages?beta=true", "", `{"model":"c"}`)
	gemini := interaction("POST", "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent", "", `{"contents":[]}`)
	oldGemini := interaction("POST", "https://generativelanguage.googleapis.com/v1beta/models/g:generateContent", "", `{"contents":[],"tools":{"function_declarations":[]}}`)
	models := interaction("GET", "https://api.openai.com/v1/models", "", ``)
	for _, c := range []struct {
		name string
		rec  *cassette.Recording
		want bool
	}{
		{"openai then anthropic", rec(chat, messages, chat), true},
		{"anthropic then gemini", rec(messages, gemini), true},
		{"one SDK alone", rec(chat, chat), false},
		{"a request no SDK makes", rec(chat, messages, models), false},
		{"a Gemini body the SDK cannot decode", rec(messages, oldGemini), false},
		{"empty", rec(), false},
	} {
		if got := (MultiSDK{}).Applies(c.rec); got != c.want {
			t.Errorf("%s: MultiSDK.Applies = %v, want %v", c.name, got, c.want)
		}
	}
}
