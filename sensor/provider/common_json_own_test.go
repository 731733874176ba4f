package provider

import (
	"bytes"
	"testing"
)

// TestJStrOwnsItsBytes: a decoded string field owns its bytes, so it
// survives both a rewrite of the caller's body and later decodes (which may
// reuse the decoder's internal buffers).
func TestJStrOwnsItsBytes(t *testing.T) {
	body := []byte(`{"id":"chatcmpl-first","model":"gpt-4o-mini","object":"chat.completion"}`)
	var first openaiChatResponseBody
	if _, err := decodeLoose(body, &first); err != nil {
		t.Fatal(err)
	}
	copy(body, bytes.Repeat([]byte{'x'}, len(body)))
	for range 50 {
		var other openaiChatResponseBody
		if _, err := decodeLoose([]byte(`{"id":"chatcmpl-other","model":"gpt-4o-XXXX","object":"chat.completionX"}`), &other); err != nil {
			t.Fatal(err)
		}
	}
	if first.ID != "chatcmpl-first" || first.Model != "gpt-4o-mini" || first.Object != "chat.completion" {
		t.Fatalf("decoded strings changed after reuse: %q %q %q", first.ID, first.Model, first.Object)
	}
	var empty struct {
		S jStr `json:"s"`
	}
	if _, err := decodeLoose([]byte(`{"s":""}`), &empty); err != nil || empty.S != "" {
		t.Fatalf("empty string: %q %v", empty.S, err)
	}
}
