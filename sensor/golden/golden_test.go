package golden

import (
	"bytes"
	"strings"
	"testing"
)

func TestCanonicalReplacesVolatileValuesAndKeepsLinks(t *testing.T) {
	in := `{"event_id":"01AAA","event_type":"ai.request","host":{"hostname":"laptop"},"source":{"collector":"oisp-sensor","collector_version":"1.2.3"},"data":{"request_id":"req_X"}}
{"event_id":"01BBB","event_type":"ai.response","data":{"request_id":"req_X","usage":{"prompt_tokens":12}},"related_events":[{"event_id":"01AAA","relationship":"parent"},{"event_id":"01ZZZ","relationship":"caused_by"}]}
{"event_id":"01CCC","event_type":"ai.request","data":{"request_id":"req_Y"}}
`
	evs, err := ReadJSONL(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	Canonical(evs)
	var out bytes.Buffer
	if err := WriteJSONL(&out, evs); err != nil {
		t.Fatal(err)
	}
	want := `{"data":{"request_id":"req-1"},"event_id":"ev-1","event_type":"ai.request","source":{"collector":"oisp-sensor"}}
{"data":{"request_id":"req-1","usage":{"prompt_tokens":12}},"event_id":"ev-2","event_type":"ai.response","related_events":[{"event_id":"ev-1","relationship":"parent"},{"event_id":"ev-outside","relationship":"caused_by"}]}
{"data":{"request_id":"req-2"},"event_id":"ev-3","event_type":"ai.request"}
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestReadJSONLNamesTheBadLine(t *testing.T) {
	_, err := ReadJSONL(strings.NewReader("{}\n\n{not json\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want one naming line 3", err)
	}
}
