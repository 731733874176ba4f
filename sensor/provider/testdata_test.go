package provider

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
)

// coreRecording is one exchange copied from a real recording into testdata (see
// testdata/README.md for the sources).
type coreRecording struct {
	Source      string      `json:"source"`
	Index       int         `json:"index"`
	Method      string      `json:"method"`
	URL         string      `json:"url"`
	ReqHeaders  [][2]string `json:"req_headers"`
	ReqBody     string      `json:"req_body"`
	Status      int         `json:"status"`
	RespHeaders [][2]string `json:"resp_headers"`
	RespBody    string      `json:"resp_body"`
}

// coreEpoch is the fixed request start of every test exchange.
var coreEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// Timing of test exchanges: the request takes 5 ms to send, the response
// headers come 200 ms later, and each SSE event (or the whole body)
// arrives 10 ms after the previous one.
const (
	coreSendTime   = 5 * time.Millisecond
	coreHeaderWait = 200 * time.Millisecond
	coreEventGap   = 10 * time.Millisecond
)

func loadCoreRecording(t testing.TB, name string) *coreRecording {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	var r coreRecording
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("parse testdata %s: %v", name, err)
	}
	return &r
}

// exchange builds the httpmsg.Exchange of a recording. SSE bodies get one
// arrival mark per event (blank-line separated block), coreEventGap apart.
func (r *coreRecording) exchange() *httpmsg.Exchange {
	reqH, respH := httpmsg.Header{}, httpmsg.Header{}
	for _, h := range r.ReqHeaders {
		reqH.Add(h[0], h[1])
	}
	for _, h := range r.RespHeaders {
		respH.Add(h[0], h[1])
	}
	scheme, rest, _ := bytes.Cut([]byte(r.URL), []byte("://"))
	authority, target := string(rest), "/"
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		authority, target = string(rest[:i]), string(rest[i:])
	}
	start := coreEpoch
	reqEnd := start.Add(coreSendTime)
	respStart := reqEnd.Add(coreHeaderWait)
	body := []byte(r.RespBody)
	marks := coreBodyMarks(body, respStart)
	x := &httpmsg.Exchange{
		Proto: "HTTP/1.1",
		Request: httpmsg.Request{
			Method: r.Method, Scheme: string(scheme), Authority: authority, Target: target, Header: reqH,
			Body:  httpmsg.Body{Data: []byte(r.ReqBody), WireLength: int64(len(r.ReqBody))},
			Start: start, End: reqEnd,
		},
		Response: &httpmsg.Response{
			Status: r.Status, Header: respH,
			Body:  httpmsg.Body{Data: body, Marks: marks, WireLength: int64(len(body))},
			Start: respStart, End: marks[len(marks)-1].At, Complete: true,
		},
	}
	return x
}

// coreBodyMarks marks the end of each blank-line separated block of a body
// (an SSE event) coreEventGap after the previous one, and the body's end.
func coreBodyMarks(body []byte, at time.Time) []httpmsg.Mark {
	var marks []httpmsg.Mark
	off := 0
	for off < len(body) {
		nl := bytes.IndexByte(body[off:], '\n')
		if nl < 0 {
			break
		}
		line := body[off : off+nl]
		off += nl + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			at = at.Add(coreEventGap)
			marks = append(marks, httpmsg.Mark{Offset: off, At: at})
		}
	}
	if len(marks) == 0 || marks[len(marks)-1].Offset < len(body) {
		at = at.Add(coreEventGap)
		marks = append(marks, httpmsg.Mark{Offset: len(body), At: at})
	}
	return marks
}
