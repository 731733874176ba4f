package pipeline

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// h2Frames writes HTTP/2 frames for one direction of a test connection.
type h2Frames struct {
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func newH2Frames(preface bool) *h2Frames {
	f := &h2Frames{}
	if preface {
		f.buf.WriteString(http2.ClientPreface)
	}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.enc = hpack.NewEncoder(&f.hb)
	_ = f.fr.WriteSettings()
	return f
}

func (f *h2Frames) headers(end bool, kv ...string) {
	f.hb.Reset()
	for i := 0; i < len(kv); i += 2 {
		_ = f.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: f.hb.Bytes(), EndStream: end, EndHeaders: true})
}

func (f *h2Frames) take() []byte {
	out := bytes.Clone(f.buf.Bytes())
	f.buf.Reset()
	return out
}

const (
	sseChunks = "data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"OK\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"id\":\"c1\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
	streamRequest = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Say OK"}]}`
)

// h2ClientCancels feeds an HTTP/2 flow whose client resets the event
// stream with CANCEL before the server's END_STREAM arrives.
func h2ClientCancels(p *Pipeline, body string) {
	info := &flow.Info{ID: "h2", Transport: flow.TCP, TLS: true, SNI: "api.openai.com", ALPN: "h2",
		Remote: netip.MustParseAddrPort("192.0.2.1:443"), Started: t0}
	p.Open(info)
	cli, srv := newH2Frames(true), newH2Frames(false)
	cli.headers(false, ":method", "POST", ":scheme", "https", ":authority", "api.openai.com", ":path", "/v1/chat/completions", "content-type", "application/json")
	_ = cli.fr.WriteData(1, true, []byte(streamRequest))
	p.Data("h2", flow.Chunk{Dir: flow.ClientToServer, Data: cli.take(), At: t0})
	srv.headers(false, ":status", "200", "content-type", "text/event-stream")
	_ = srv.fr.WriteData(1, false, []byte(body))
	p.Data("h2", flow.Chunk{Dir: flow.ServerToClient, Data: srv.take(), At: t0.Add(100 * time.Millisecond)})
	_ = cli.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	p.Data("h2", flow.Chunk{Dir: flow.ClientToServer, Data: cli.take(), At: t0.Add(110 * time.Millisecond)})
	p.Close("h2", flow.CloseInfo{At: t0.Add(time.Second), Reason: "eof"})
}

// h1FlowEndsBeforeLastChunk feeds an HTTP/1.1 flow that ends before the
// chunked event stream's terminating chunk.
func h1FlowEndsBeforeLastChunk(p *Pipeline, body string) {
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n", len(body), body)
	runFlow(p, "h1", 7, [2]string{httpRequest(streamRequest), resp})
}

// TestResponseEndUnseen: the transport misses only the end of an event
// stream, because the client stopped reading at its last event and closed
// (HTTP/2: RST_STREAM CANCEL before END_STREAM; HTTP/1.1: the flow ends
// before the last chunk). When the stream had carried its end marker
// ([DONE]) the events are complete; when it had not, they are partial and
// say why.
func TestResponseEndUnseen(t *testing.T) {
	for _, feed := range []struct {
		name string
		run  func(*Pipeline, string)
	}{{"h2", h2ClientCancels}, {"h1", h1FlowEndsBeforeLastChunk}} {
		for _, tc := range []struct {
			name, body string
			want       string
		}{
			{"after [DONE]", sseChunks + "data: [DONE]\n\n", oisp.CompleteFull},
			{"before [DONE]", sseChunks, oisp.CompletePartial},
		} {
			t.Run(feed.name+"/"+tc.name, func(t *testing.T) {
				p, mem := newTestPipeline(t, ContentFull)
				feed.run(p, tc.body)
				resps := mem.ofType(oisp.TypeAIResponse)
				if len(resps) != 1 {
					t.Fatalf("got %d responses", len(resps))
				}
				c := resps[0].Confidence
				if c.Completeness != tc.want {
					t.Errorf("completeness = %s, want %s (limitations %q)", c.Completeness, tc.want, c.Limitations)
				}
				if tc.want == oisp.CompletePartial && len(c.Limitations) == 0 {
					t.Error("a partial response must say why")
				}
				validateAll(t, mem.events)
			})
		}
	}
}
