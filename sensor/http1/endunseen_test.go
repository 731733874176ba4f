package http1

import (
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// TestEndUnseen: a chunked response whose flow ends between two chunks
// lacks only its last chunk, which a client that stops at an event
// stream's last event never reads. The exchange stays partial, and says
// that only the end was unseen; any other cut does not.
func TestEndUnseen(t *testing.T) {
	const events = "data: {\"n\":1}\n\ndata: [DONE]\n\n"
	whole := chunked(events, 14)
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
	noEnd := strings.TrimSuffix(whole, "0\r\n\r\n")
	for _, tc := range []struct {
		name     string
		req      string
		resp     string
		unseen   bool
		complete bool
	}{
		{"whole", post("/v1/chat/completions", "{}"), head + "\r\n" + whole, false, true},
		{"last chunk missing", post("/v1/chat/completions", "{}"), head + "\r\n" + noEnd, true, false},
		{"cut inside a chunk", post("/v1/chat/completions", "{}"), head + "\r\n" + noEnd[:len(noEnd)-5], false, false},
		{"cut inside a size line", post("/v1/chat/completions", "{}"), head + "\r\n" + noEnd + "1", false, false},
		{"content-coded", post("/v1/chat/completions", "{}"), head + "Content-Encoding: gzip\r\n\r\n" + noEnd, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(both(tc.req, tc.resp), httpmsg.Limits{}, Options{})
			if len(r.xs) != 1 || r.xs[0].Response == nil {
				t.Fatalf("%d exchanges", len(r.xs))
			}
			x := r.xs[0]
			if x.EndUnseen != tc.unseen || x.Response.Complete != tc.complete || x.Partial == tc.complete {
				t.Errorf("EndUnseen %v Complete %v Partial %v (notes %q), want EndUnseen %v Complete %v",
					x.EndUnseen, x.Response.Complete, x.Partial, x.Notes, tc.unseen, tc.complete)
			}
		})
	}
}
