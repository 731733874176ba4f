package conformance

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
)

// clientPaths are the capture paths driven by real clients other than the
// built-in Go client: curl, and the official provider SDKs for the fixtures
// whose requests they can make, each SDK over every HTTP version its
// provider serves (Ollama, a local server, over HTTP/1.1 only).
// sdkDriver is an SDK client: it drives the recordings it applies to.
type sdkDriver interface {
	loopback.Driver
	Applies(rec *cassette.Recording) bool
}

func clientPaths() []capturePath {
	paths := []capturePath{
		{name: "tls-h1-curl", skip: CurlMissing, run: overLoopback(loopback.H1, Curl{})},
		{name: "tls-h2-curl", skip: CurlMissing, run: overLoopback(loopback.H2, Curl{HTTP2: true})},
	}
	sdks := []struct {
		name       string
		driver     sdkDriver
		transports []loopback.Transport
	}{
		{"openai-go", OpenAISDK{}, []loopback.Transport{loopback.H1, loopback.H2, loopback.H3}},
		{"anthropic-go", AnthropicSDK{}, []loopback.Transport{loopback.H1, loopback.H2, loopback.H3}},
		{"genai-go", GenAISDK, []loopback.Transport{loopback.H1, loopback.H2, loopback.H3}},
		{"vertex-go", VertexSDK, []loopback.Transport{loopback.H1, loopback.H2, loopback.H3}},
		// No fixture records Claude on Vertex AI yet: the path applies
		// to none until one does (TestVertexAnthropicSDK covers it).
		{"vertex-anthropic-go", VertexAnthropicSDK, []loopback.Transport{loopback.H2}},
		{"gapic-go", GAPICSDK, []loopback.Transport{loopback.H1, loopback.H2}},
		{"cohere-go", CohereSDK, []loopback.Transport{loopback.H1, loopback.H2}},
		{"bedrock-go", BedrockSDK, []loopback.Transport{loopback.H1, loopback.H2}},
		{"multi-sdk-go", MultiSDK{}, []loopback.Transport{loopback.H1, loopback.H2}},
		{"ollama-go", OllamaSDK, []loopback.Transport{loopback.H1}},
	}
	for _, sdk := range sdks {
		for _, tr := range sdk.transports {
			paths = append(paths, capturePath{
				name:    "tls-" + string(tr) + "-" + sdk.name,
				applies: sdk.driver.Applies,
				run:     overLoopback(tr, sdk.driver),
			})
		}
	}
	return paths
}

func TestCurlQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:             `"plain"`,
		`a "quoted" \ path`: `"a \"quoted\" \\ path"`,
		"line\nbreak\r\t":   `"line\nbreak\r\t"`,
	} {
		if got := curlQuote(in); got != want {
			t.Errorf("curlQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func interaction(method, url, contentEncoding string, body string) cassette.Interaction {
	in := cassette.Interaction{
		Request:  cassette.Request{Method: method, URL: url, Header: http.Header{}, Body: []byte(body)},
		Response: cassette.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}},
	}
	if contentEncoding != "" {
		in.Response.Header.Set("Content-Encoding", contentEncoding)
	}
	return in
}

func TestSDKApplies(t *testing.T) {
	rec := func(ins ...cassette.Interaction) *cassette.Recording { return &cassette.Recording{Interactions: ins} }
	chat := interaction("POST", "https://api.openai.com/v1/chat/completions", "", `{"model":"m"}`)
	azure := interaction("POST", "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-02-01", "gzip", `{}`)
	embed := interaction("POST", "https://api.openai.com/v1/embeddings", "", `{"input":"x"}`)
	messages := interaction("POST", "https://api.anthropic.com/v1/messages?beta=true", "", `{"model":"c"}`)
	complete := interaction("POST", "https://api.anthropic.com/v1/complete", "", `{"model":"claude-2","prompt":"\n\nHuman: hi\n\nAssistant:","max_tokens_to_sample":8}`)
	streamedComplete := interaction("POST", "https://api.anthropic.com/v1/complete", "", `{"model":"claude-2","stream":true}`)
	models := interaction("GET", "https://api.openai.com/v1/models", "", ``)
	brotli := interaction("POST", "https://api.openai.com/v1/chat/completions", "br", `{}`)
	notJSON := interaction("POST", "https://api.openai.com/v1/chat/completions", "", `model=m`)
	textReply := interaction("POST", "https://api.openai.com/v1/chat/completions", "", `{}`)
	textReply.Response.Header.Set("Content-Type", "text/plain")
	textFailure := textReply
	textFailure.Response.Status = 502
	for _, c := range []struct {
		name      string
		rec       *cassette.Recording
		openai    bool
		anthropic bool
	}{
		{"chat", rec(chat), true, false},
		{"azure chat, gzip", rec(azure), true, false},
		{"chat then embeddings", rec(chat, embed), true, false},
		{"messages", rec(messages), false, true},
		{"legacy completion", rec(complete), false, true},
		{"streamed legacy completion", rec(streamedComplete), false, false},
		{"mixed providers", rec(chat, messages), false, false},
		{"a GET among them", rec(chat, models), false, false},
		{"brotli response", rec(brotli), false, false},
		{"form body", rec(notJSON), false, false},
		{"text/plain reply", rec(textReply), false, false},
		{"text/plain failure", rec(textFailure), true, false},
		{"empty", rec(), false, false},
	} {
		if got := (OpenAISDK{}).Applies(c.rec); got != c.openai {
			t.Errorf("%s: OpenAISDK.Applies = %v", c.name, got)
		}
		if got := (AnthropicSDK{}).Applies(c.rec); got != c.anthropic {
			t.Errorf("%s: AnthropicSDK.Applies = %v", c.name, got)
		}
	}
	_, base, _ := endpointFor(openAIEndpoints, azure)
	if want := "/openai/deployments/d/"; base != want {
		t.Errorf("Azure base path %q, want %q", base, want)
	}
	_, base, _ = endpointFor(anthropicEndpoints, messages)
	if base != "/" {
		t.Errorf("Anthropic base path %q, want /", base)
	}
}

func TestRecordedHeadersDropsConnectionHeaders(t *testing.T) {
	h := recordedHeaders(http.Header{
		"content-type": {"application/json"}, "Content-Length": {"12"}, "host": {"x"},
		":authority": {"x"}, "Connection": {"keep-alive"}, "X-Stainless-Lang": {"python"},
	})
	var keys []string
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if got := strings.Join(keys, ","); got != "Content-Type,X-Stainless-Lang" {
		t.Errorf("kept %s", got)
	}
}

// driveAgainst serves served and drives the client with what it expects,
// expected.
func driveAgainst(t *testing.T, tr loopback.Transport, drv loopback.Driver, served, expected *cassette.Recording) error {
	t.Helper()
	srv, err := loopback.Start(served, tr, discardFlows{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	return drv.Drive(context.Background(), srv, expected)
}

// TestClientsFailOnWrongBytes shows each real client's check can fail: the
// server serves one response while the client expects the recorded other.
func TestClientsFailOnWrongBytes(t *testing.T) {
	type client struct {
		name string
		tr   loopback.Transport
		drv  loopback.Driver
	}
	clients := []client{{"openai-go h2", loopback.H2, OpenAISDK{}}}
	if CurlMissing() == "" {
		clients = append(clients, client{"curl h1", loopback.H1, Curl{}}, client{"curl h2", loopback.H2, Curl{HTTP2: true}})
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) { checkVerdicts(t, chatVerdicts(), against(c.tr, c.drv)) })
	}
	t.Run("openai-go stream", func(t *testing.T) {
		stream := chatRecording(200, "text/event-stream", "data: "+`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}`+"\n\ndata: [DONE]\n\n")
		emptyStream := chatRecording(200, "text/event-stream", "data: [DONE]\n\n")
		stream.Interactions[0].Request.Body = []byte(`{"model":"m","stream":true,"messages":[]}`)
		emptyStream.Interactions[0].Request.Body = stream.Interactions[0].Request.Body
		checkVerdicts(t, []verdict{
			{"stream", stream, stream, true},
			{"a stream without events", emptyStream, stream, false},
		}, against(loopback.H2, OpenAISDK{}))
	})
}
