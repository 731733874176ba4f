package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	ollama "github.com/ollama/ollama/api"
	"google.golang.org/genai"
)

// These drivers re-issue recordings through three more official SDKs:
// Google's genai (Gemini API), AWS's bedrockruntime and Ollama's api
// package. Each SDK builds its request from the recorded one (decoded into
// the SDK's own types where the SDK has JSON types for it), and the request
// leaves with the recorded body bytes and headers in place of the SDK's
// serialisation (recordedWire), so the sensor sees the recorded request and
// the goldens apply; the response side is entirely the SDK's: its
// deserialisers, its SSE / NDJSON / AWS eventstream readers (which verify
// every frame's CRCs), its API errors.

// recordedWire swaps the request an SDK built for the recorded body and
// headers just before it leaves, keeping the SDK's method, URL and
// connection.
type recordedWire struct {
	next   http.RoundTripper
	body   []byte
	header http.Header
}

func (w *recordedWire) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	out := req.Clone(req.Context())
	// The recording's credentials (scrubbed placeholders, or none) replace
	// the SDK's, so the sensor sees the recorded authentication.
	for _, k := range sdkCredentialHeaders {
		out.Header.Del(k)
	}
	for k, vs := range w.header {
		out.Header[k] = append([]string(nil), vs...)
	}
	out.Header.Del("Content-Length")
	body := w.body
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	return w.next.RoundTrip(out)
}

// sdkCredentialHeaders are the headers these SDKs authenticate with
// (Gemini's API key, AWS SigV4's signature and session token).
var sdkCredentialHeaders = append([]string{"X-Goog-Api-Key", "X-Amz-Security-Token"}, credentialHeaders...)

// wireClient is an http.Client over rt that sends in's recorded body and
// headers (without connection headers and Accept-Encoding, which the
// transport negotiates itself so the SDK reads decoded bodies).
func wireClient(rt http.RoundTripper, in cassette.Interaction) *http.Client {
	h := recordedHeaders(in.Request.Header)
	h.Del("Accept-Encoding")
	return &http.Client{Transport: &recordedWire{next: rt, body: in.Request.Body, header: h}, Timeout: clientTimeout}
}

// moreSDKDriver is an SDK driver (a loopback.Driver with Applies) that
// re-issues each interaction with call; each SDK is one value of it.
type moreSDKDriver struct {
	applies func(in cassette.Interaction) bool
	call    func(ctx context.Context, client *http.Client, in cassette.Interaction) error
}

// Applies reports whether the SDK makes every interaction of rec.
func (d moreSDKDriver) Applies(rec *cassette.Recording) bool {
	if len(rec.Interactions) == 0 {
		return false
	}
	for _, in := range rec.Interactions {
		if in.Request.Method != http.MethodPost || !json.Valid(in.Request.Body) {
			return false
		}
		switch strings.ToLower(in.Response.Header.Get("Content-Encoding")) {
		case "", "identity", "gzip":
		default:
			return false
		}
		if !d.applies(in) {
			return false
		}
	}
	return true
}

// Drive re-issues every interaction of rec through the SDK.
func (d moreSDKDriver) Drive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording) error {
	rt, closeRT, err := srv.ClientTransport(loopback.ClientOptions{Compression: true})
	if err != nil {
		return err
	}
	defer closeRT()
	for i, in := range rec.Interactions {
		if !d.applies(in) {
			return fmt.Errorf("interaction %d (%s %s): not an operation this SDK driver re-issues", i+1, in.Request.Method, in.Request.URL)
		}
		if err := d.call(ctx, wireClient(rt, in), in); err != nil {
			return fmt.Errorf("interaction %d (%s %s): %w", i+1, in.Request.Method, in.Request.URL, err)
		}
	}
	return nil
}

// checkCallStatus checks a call's error against the recorded status: none
// for a success, an API error carrying the recorded status for a failure.
func checkCallStatus(in cassette.Interaction, err error, statusOf func(error) (int, bool)) error {
	want := recordedStatus(in.Response)
	if want < 300 {
		if err != nil {
			return fmt.Errorf("SDK call failed: %w", err)
		}
		return nil
	}
	if err == nil {
		return fmt.Errorf("SDK call succeeded, recorded status %d", want)
	}
	code, ok := statusOf(err)
	if !ok {
		return fmt.Errorf("SDK returned %v, want its API error with status %d", err, want)
	}
	if code != want {
		return fmt.Errorf("SDK API error has status %d, recorded %d", code, want)
	}
	return nil
}

// GenAISDK drives Gemini API generateContent, streamGenerateContent and
// batchEmbedContents requests through google.golang.org/genai.
var GenAISDK = moreSDKDriver{applies: genaiApplies, call: genaiCall}

// genaiOperation splits a Gemini API URL into its model and operation.
func genaiOperation(raw string) (model, op string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host != "generativelanguage.googleapis.com" {
		return "", "", false
	}
	rest, ok := strings.CutPrefix(u.Path, "/v1beta/models/")
	if !ok {
		return "", "", false
	}
	model, op, ok = strings.Cut(rest, ":")
	if !ok || model == "" || strings.Contains(model, "/") {
		return "", "", false
	}
	switch {
	case op == "generateContent" && u.RawQuery == "":
	case op == "streamGenerateContent" && u.RawQuery == "alt=sse":
	case op == "batchEmbedContents" && u.RawQuery == "":
	default:
		return "", "", false
	}
	return model, op, true
}

func genaiApplies(in cassette.Interaction) bool {
	_, op, ok := genaiOperation(in.Request.URL)
	if !ok {
		return false
	}
	// A body that does not decode into the SDK's types (an older wire
	// form some clients send) is not a request the SDK makes.
	if op != "batchEmbedContents" {
		if _, _, err := genaiRequestConfig(in.Request.Body); err != nil {
			return false
		}
	}
	ct := strings.ToLower(in.Response.Header.Get("Content-Type"))
	return recordedStatus(in.Response) >= 300 || strings.Contains(ct, "json") || strings.Contains(ct, "text/event-stream")
}

// genaiRequest is the Gemini API request body: the contents, and the
// fields the SDK carries in GenerateContentConfig.
type genaiRequest struct {
	Contents          []*genai.Content        `json:"contents"`
	SystemInstruction *genai.Content          `json:"systemInstruction"`
	Tools             []*genai.Tool           `json:"tools"`
	ToolConfig        *genai.ToolConfig       `json:"toolConfig"`
	SafetySettings    []*genai.SafetySetting  `json:"safetySettings"`
	CachedContent     string                  `json:"cachedContent"`
	Labels            map[string]string       `json:"labels"`
	GenerationConfig  json.RawMessage         `json:"generationConfig"`
	ServiceTier       genai.ServiceTier       `json:"serviceTier"`
	ModelArmorConfig  *genai.ModelArmorConfig `json:"modelArmorConfig"`
}

func genaiStatus(err error) (int, bool) {
	var v genai.APIError
	if errors.As(err, &v) {
		return v.Code, true
	}
	var p *genai.APIError
	if errors.As(err, &p) {
		return p.Code, true
	}
	return 0, false
}

func genaiCall(ctx context.Context, client *http.Client, in cassette.Interaction) error {
	model, op, _ := genaiOperation(in.Request.URL)
	recorded, err := decodedResponseBody(in.Response)
	if err != nil {
		return fmt.Errorf("recorded response: %w", err)
	}
	// The SDK must build the recorded URL and authenticate with its key
	// before the request is swapped for the recorded one.
	client.Transport = sdkRequestCheck{next: client.Transport, check: func(req *http.Request) error {
		if got := req.Header.Get("X-Goog-Api-Key"); got != placeholderKey {
			return fmt.Errorf("SDK sent x-goog-api-key %q, want its API key", got)
		}
		if got := req.URL.String(); got != in.Request.URL {
			return fmt.Errorf("SDK built URL %s, recorded %s", got, in.Request.URL)
		}
		return nil
	}}
	c, err := genai.NewClient(ctx, &genai.ClientConfig{
		APIKey:     placeholderKey,
		Backend:    genai.BackendGeminiAPI,
		HTTPClient: client,
		HTTPOptions: genai.HTTPOptions{
			BaseURL: "https://generativelanguage.googleapis.com/",
		},
	})
	if err != nil {
		return fmt.Errorf("genai client: %w", err)
	}
	if op == "batchEmbedContents" {
		return geminiEmbed(ctx, c, model, in, recorded)
	}
	return geminiGenerate(ctx, c, model, op == "streamGenerateContent", in, recorded)
}

// geminiEmbed re-issues a batchEmbedContents interaction through the SDK's
// EmbedContent (which sends a batch on the Gemini API): one content per
// recorded request, all with the same settings, and checks that the SDK
// parsed the recorded embeddings value for value.
func geminiEmbed(ctx context.Context, c *genai.Client, model string, in cassette.Interaction, recorded []byte) error {
	var req struct {
		Requests []struct {
			Content              *genai.Content `json:"content"`
			Model                string         `json:"model"`
			TaskType             string         `json:"taskType"`
			Title                string         `json:"title"`
			OutputDimensionality *int32         `json:"outputDimensionality"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(in.Request.Body, &req); err != nil {
		return fmt.Errorf("recorded request is not a batchEmbedContents request for the SDK: %w", err)
	}
	if len(req.Requests) == 0 {
		return errors.New("recorded batchEmbedContents request has no requests")
	}
	first := req.Requests[0]
	cfg := &genai.EmbedContentConfig{TaskType: first.TaskType, Title: first.Title, OutputDimensionality: first.OutputDimensionality}
	var contents []*genai.Content
	for i, r := range req.Requests {
		if r.Model != "models/"+model || r.TaskType != first.TaskType || r.Title != first.Title ||
			!reflect.DeepEqual(r.OutputDimensionality, first.OutputDimensionality) {
			return fmt.Errorf("recorded request %d has settings the SDK's EmbedContent would not send", i+1)
		}
		contents = append(contents, r.Content)
	}
	res, err := c.Models.EmbedContent(ctx, model, contents, cfg)
	if err := checkCallStatus(in, err, genaiStatus); err != nil || recordedStatus(in.Response) >= 300 {
		return err
	}
	var want struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
	}
	if err := json.Unmarshal(recorded, &want); err != nil {
		return fmt.Errorf("recorded response is not an embeddings response: %w", err)
	}
	if len(res.Embeddings) != len(want.Embeddings) || len(want.Embeddings) == 0 {
		return fmt.Errorf("SDK parsed %d embeddings, recorded %d", len(res.Embeddings), len(want.Embeddings))
	}
	for i, e := range res.Embeddings {
		if !slices.Equal(e.Values, want.Embeddings[i].Values) {
			return fmt.Errorf("embedding %d: SDK parsed %d values that differ from the recorded %d", i+1, len(e.Values), len(want.Embeddings[i].Values))
		}
	}
	return nil
}

// OllamaSDK drives Ollama /api/chat, /api/generate and /api/pull requests
// through github.com/ollama/ollama/api.
var OllamaSDK = moreSDKDriver{applies: ollamaApplies, call: ollamaCall}

func ollamaApplies(in cassette.Interaction) bool {
	u, err := url.Parse(in.Request.URL)
	if err != nil || u.RawQuery != "" {
		return false
	}
	// The client signs requests to ollama.com with a local key; only a
	// local server is driven.
	switch u.Hostname() {
	case "localhost", "127.0.0.1":
	default:
		return false
	}
	return u.Path == "/api/chat" || u.Path == "/api/generate" || u.Path == "/api/pull"
}

func ollamaStatus(err error) (int, bool) {
	var se ollama.StatusError
	if errors.As(err, &se) {
		return se.StatusCode, true
	}
	var ae ollama.AuthorizationError
	if errors.As(err, &ae) {
		return ae.StatusCode, true
	}
	return 0, false
}

func ollamaCall(ctx context.Context, client *http.Client, in cassette.Interaction) error {
	u, _ := url.Parse(httpsURL(in.Request.URL))
	c := ollama.NewClient(&url.URL{Scheme: u.Scheme, Host: u.Host}, client)
	n := 0
	var err error
	switch u.Path {
	case "/api/chat":
		var req ollama.ChatRequest
		if err := json.Unmarshal(in.Request.Body, &req); err != nil {
			return fmt.Errorf("recorded request is not a chat request for the SDK: %w", err)
		}
		err = c.Chat(ctx, &req, func(ollama.ChatResponse) error { n++; return nil })
	case "/api/pull":
		var req ollama.PullRequest
		if err := json.Unmarshal(in.Request.Body, &req); err != nil {
			return fmt.Errorf("recorded request is not a pull request for the SDK: %w", err)
		}
		err = c.Pull(ctx, &req, func(ollama.ProgressResponse) error { n++; return nil })
	default:
		var req ollama.GenerateRequest
		if err := json.Unmarshal(in.Request.Body, &req); err != nil {
			return fmt.Errorf("recorded request is not a generate request for the SDK: %w", err)
		}
		err = c.Generate(ctx, &req, func(ollama.GenerateResponse) error { n++; return nil })
	}
	if err := checkCallStatus(in, err, ollamaStatus); err != nil || recordedStatus(in.Response) >= 300 {
		return err
	}
	if n == 0 {
		return errors.New("SDK read no responses")
	}
	// One callback per recorded line: a stream (NDJSON) or one JSON body.
	recorded, err := decodedResponseBody(in.Response)
	if err != nil {
		return fmt.Errorf("recorded response: %w", err)
	}
	lines := 0
	for line := range bytes.SplitSeq(recorded, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			lines++
		}
	}
	if n != lines && !(lines > 1 && n == 1 && json.Valid(recorded)) {
		return fmt.Errorf("SDK read %d responses, the recorded body has %d lines", n, lines)
	}
	return nil
}

// BedrockSDK drives Bedrock runtime InvokeModel,
// InvokeModelWithResponseStream, Converse and ConverseStream requests
// through github.com/aws/aws-sdk-go-v2/service/bedrockruntime. The SDK's
// Converse types are tagged unions without JSON decoding, so a Converse
// request is built from the model id alone and leaves with the recorded
// body; its response is parsed by the SDK's own deserialisers.
var BedrockSDK = moreSDKDriver{applies: bedrockApplies, call: bedrockCall}

// bedrockOperation splits a Bedrock runtime URL into region, model id and
// operation.
func bedrockOperation(raw string) (region, model, op string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery != "" {
		return "", "", "", false
	}
	rest, ok := strings.CutPrefix(u.Hostname(), "bedrock-runtime.")
	if !ok {
		return "", "", "", false
	}
	region, ok = strings.CutSuffix(rest, ".amazonaws.com")
	if !ok || region == "" || strings.Contains(region, ".") {
		return "", "", "", false
	}
	// The model id is one escaped path segment (an ARN's slash is %2F).
	segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if len(segs) != 3 || segs[0] != "model" {
		return "", "", "", false
	}
	model, err = url.PathUnescape(segs[1])
	if err != nil || model == "" {
		return "", "", "", false
	}
	switch segs[2] {
	case "invoke", "invoke-with-response-stream", "converse", "converse-stream":
		return region, model, segs[2], true
	}
	return "", "", "", false
}

func bedrockApplies(in cassette.Interaction) bool {
	_, _, op, ok := bedrockOperation(in.Request.URL)
	if !ok {
		return false
	}
	if strings.HasPrefix(op, "converse") {
		// The recorded body must at least be a Converse request.
		var probe struct {
			Messages []json.RawMessage `json:"messages"`
		}
		if json.Unmarshal(in.Request.Body, &probe) != nil || len(probe.Messages) == 0 {
			return false
		}
	}
	return true
}

func bedrockStatus(err error) (int, bool) {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode(), true
	}
	return 0, false
}

func bedrockCall(ctx context.Context, client *http.Client, in cassette.Interaction) error {
	region, model, op, _ := bedrockOperation(in.Request.URL)
	u, _ := url.Parse(in.Request.URL)
	c := bedrockruntime.New(bedrockruntime.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDOISPCONFORMANCE", "oisp-conformance-placeholder-secret", ""),
		HTTPClient:   client,
		BaseEndpoint: aws.String("https://" + u.Host),
		Retryer:      aws.NopRetryer{},
	})
	failed := recordedStatus(in.Response) >= 300
	switch op {
	case "invoke":
		out, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
			ModelId: aws.String(model), Body: in.Request.Body, ContentType: aws.String("application/json"),
		})
		if err := checkCallStatus(in, err, bedrockStatus); err != nil || failed {
			return err
		}
		if len(out.Body) == 0 {
			return errors.New("SDK returned an empty model response")
		}
		return nil
	case "converse":
		out, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String(model)})
		if err := checkCallStatus(in, err, bedrockStatus); err != nil || failed {
			return err
		}
		if out.Output == nil || out.StopReason == "" {
			return errors.New("SDK parsed a Converse response with no output or stop reason")
		}
		return nil
	case "invoke-with-response-stream":
		out, err := c.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
			ModelId: aws.String(model), Body: in.Request.Body, ContentType: aws.String("application/json"),
		})
		if err := checkCallStatus(in, err, bedrockStatus); err != nil || failed {
			return err
		}
		return readBedrockStream(out.GetStream())
	default: // converse-stream
		out, err := c.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{ModelId: aws.String(model)})
		if err := checkCallStatus(in, err, bedrockStatus); err != nil || failed {
			return err
		}
		return readBedrockStream(out.GetStream())
	}
}

// readBedrockStream reads one of the SDK's event streams to its end and
// checks how it ended.
func readBedrockStream[E any](s interface {
	Events() <-chan E
	Err() error
	Close() error
}) error {
	defer s.Close()
	n := 0
	for range s.Events() {
		n++
	}
	return bedrockStreamEnd(n, s.Err())
}

// bedrockStreamEnd checks a stream read to its end. An exception event
// (a recorded in-band error) ends the stream with the SDK's error and is
// accepted; a broken frame is not.
func bedrockStreamEnd(n int, err error) error {
	if err != nil {
		var re interface{ ErrorCode() string }
		if errors.As(err, &re) && strings.HasSuffix(re.ErrorCode(), "Exception") {
			return nil
		}
		return fmt.Errorf("SDK stream failed after %d events: %w", n, err)
	}
	if n == 0 {
		return errors.New("SDK stream yielded no events")
	}
	return nil
}
