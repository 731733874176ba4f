package provider

import (
	"testing"

	json "github.com/goccy/go-json"
)

// TestOptStr holds a Gemini part's text read by the scan and by the
// decoder to what the *jStr it replaced gave: unset for null and absent,
// set (possibly empty) for any other value.
func TestOptStr(t *testing.T) {
	for _, c := range []struct {
		part string
		want optStr
	}{
		{`{}`, optStr{}},
		{`{"text":null}`, optStr{}},
		{`{"text": null }`, optStr{}},
		{`{"text":""}`, optStr{OK: true}},
		{`{"text":"hi"}`, optStr{V: "hi", OK: true}},
		{`{"text":"a\nb"}`, optStr{V: "a\nb", OK: true}},
		{`{"text":5}`, optStr{V: "5", OK: true}},
		{`{"text":{"x":1}}`, optStr{OK: true}},
		{`{"text":[]}`, optStr{OK: true}},
	} {
		var decoded geminiPart
		if err := json.Unmarshal([]byte(c.part), &decoded); err != nil || decoded.Text != c.want {
			t.Errorf("decoded %s: %+v, %v; want %+v", c.part, decoded.Text, err, c.want)
		}
		var scanned geminiPart
		s := &jsonScan{b: []byte(c.part)}
		if !s.geminiPart(&scanned) || scanned.Text != c.want {
			t.Errorf("scanned %s: %+v; want %+v", c.part, scanned.Text, c.want)
		}
		var choice openaiChoice
		if err := json.Unmarshal([]byte(c.part), &choice); err != nil || choice.Text != c.want {
			t.Errorf("chat choice %s: %+v, %v; want %+v", c.part, choice.Text, err, c.want)
		}
	}
}
