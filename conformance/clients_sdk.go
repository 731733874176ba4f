package conformance

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// The SDK drivers re-issue each recorded request through an official
// provider SDK: the recorded JSON body must decode into the SDK's params
// type (so the request is one the SDK can make), is sent as recorded (so
// the sensor sees the recorded request and the goldens still apply), and
// the SDK must parse the replayed response: the same JSON for a plain
// response, every event of a stream to the end, the recorded status as the
// SDK's API error for a failure. The SDKs run on Go's HTTP stacks with
// transparent gzip, as they do by default.

// placeholderKey is the API key the SDKs send; the recordings' own keys are
// scrubbed and the replay server ignores credentials.
const placeholderKey = "sk-oisp-conformance-placeholder"

// sdkEndpoint is one API operation an SDK driver can re-issue.
type sdkEndpoint struct {
	// suffix is the path the operation ends with, after the SDK's base
	// URL.
	suffix string
	// call performs one interaction through the SDK; base is the recorded
	// URL without suffix (with a trailing slash), query its query
	// parameters.
	call func(ctx context.Context, cl *sdkCall) error
	// unary marks an operation re-issued only without "stream": true.
	unary bool
}

// sdkCall is one interaction being re-issued.
type sdkCall struct {
	in     cassette.Interaction
	body   []byte // recorded request body
	stream bool   // the request asks for a stream
	base   string
	query  url.Values
	header http.Header // recorded headers the SDK should send too
	// credentials are the recorded credential headers (scrubbed
	// placeholders, or none); they replace what the SDK sends, so the
	// sensor sees the recorded request's authentication.
	credentials http.Header
	client      *http.Client
	response    []byte // recorded response body, content decoding removed
}

// OpenAISDK drives chat completions, responses, embeddings and legacy
// completions requests through github.com/openai/openai-go/v3. Any
// OpenAI-compatible host works: the SDK's base URL is the recorded URL up
// to the operation's path.
type OpenAISDK struct{}

var openAIEndpoints = []sdkEndpoint{
	{suffix: "chat/completions", call: openAIChat},
	{suffix: "responses", call: openAIResponses},
	{suffix: "embeddings", call: openAIEmbeddings},
	// After chat/completions, whose path also ends in /completions.
	{suffix: "completions", call: openAICompletions},
}

// Applies reports whether every interaction of rec is an operation the
// driver can re-issue.
func (OpenAISDK) Applies(rec *cassette.Recording) bool { return sdkApplies(openAIEndpoints, rec) }

// Drive re-issues every interaction through the SDK.
func (OpenAISDK) Drive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording) error {
	return sdkDrive(ctx, srv, rec, openAIEndpoints)
}

// AnthropicSDK drives messages and (unstreamed) legacy text completion
// requests through github.com/anthropics/anthropic-sdk-go/v2.
type AnthropicSDK struct{}

var anthropicEndpoints = []sdkEndpoint{
	{suffix: "v1/messages", call: anthropicMessages},
	{suffix: "v1/complete", call: anthropicComplete, unary: true},
}

// Applies reports whether every interaction of rec is a messages or
// legacy completion request.
func (AnthropicSDK) Applies(rec *cassette.Recording) bool {
	return sdkApplies(anthropicEndpoints, rec)
}

// Drive re-issues every interaction through the SDK.
func (AnthropicSDK) Drive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording) error {
	return sdkDrive(ctx, srv, rec, anthropicEndpoints)
}

func endpointFor(eps []sdkEndpoint, in cassette.Interaction) (*sdkEndpoint, string, bool) {
	if in.Request.Method != http.MethodPost {
		return nil, "", false
	}
	u, err := url.Parse(in.Request.URL)
	if err != nil {
		return nil, "", false
	}
	for i := range eps {
		if base, ok := strings.CutSuffix(u.Path, "/"+eps[i].suffix); ok {
			return &eps[i], base + "/", true
		}
	}
	return nil, "", false
}

// sdkApplies is true when rec has interactions, all of them operations in
// eps with a JSON request body and a response the SDK can read: identity or
// gzip coding, and JSON or an event stream when it succeeded (the SDKs make
// an API error of any failed response).
func sdkApplies(eps []sdkEndpoint, rec *cassette.Recording) bool {
	if len(rec.Interactions) == 0 {
		return false
	}
	for _, in := range rec.Interactions {
		ep, _, ok := endpointFor(eps, in)
		if !ok {
			return false
		}
		if !json.Valid(in.Request.Body) {
			return false
		}
		var probe struct {
			Stream bool `json:"stream"`
		}
		if ep.unary && (json.Unmarshal(in.Request.Body, &probe) != nil || probe.Stream) {
			return false
		}
		switch strings.ToLower(in.Response.Header.Get("Content-Encoding")) {
		case "", "identity", "gzip":
		default:
			return false
		}
		ct := strings.ToLower(in.Response.Header.Get("Content-Type"))
		if in.Response.Status < 300 && !strings.Contains(ct, "json") && !strings.Contains(ct, "text/event-stream") {
			return false
		}
	}
	return true
}

func sdkDrive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording, eps []sdkEndpoint) error {
	rt, closeRT, err := srv.ClientTransport(loopback.ClientOptions{Compression: true})
	if err != nil {
		return err
	}
	defer closeRT()
	return sdkDriveClient(ctx, &http.Client{Transport: rt, Timeout: clientTimeout}, rec, eps)
}

// sdkDriveClient re-issues every interaction through the SDK over client.
func sdkDriveClient(ctx context.Context, client *http.Client, rec *cassette.Recording, eps []sdkEndpoint) error {
	for i, in := range rec.Interactions {
		ep, basePath, ok := endpointFor(eps, in)
		if !ok {
			return fmt.Errorf("interaction %d (%s %s): not an operation this SDK driver re-issues", i+1, in.Request.Method, in.Request.URL)
		}
		u, _ := url.Parse(httpsURL(in.Request.URL))
		resp, err := decodedResponseBody(in.Response)
		if err != nil {
			return fmt.Errorf("interaction %d: recorded response: %w", i+1, err)
		}
		var probe struct {
			Stream bool `json:"stream"`
		}
		_ = json.Unmarshal(in.Request.Body, &probe)
		h := recordedHeaders(in.Request.Header)
		creds := http.Header{}
		for _, k := range credentialHeaders {
			if vs, ok := h[k]; ok {
				creds[k] = vs
			}
			h.Del(k)
		}
		h.Del("Content-Type")
		h.Del("Accept-Encoding")
		cl := &sdkCall{
			in:          in,
			body:        in.Request.Body,
			stream:      probe.Stream,
			base:        u.Scheme + "://" + u.Host + basePath,
			query:       u.Query(),
			header:      h,
			credentials: creds,
			client:      client,
			response:    resp,
		}
		if err := ep.call(ctx, cl); err != nil {
			return fmt.Errorf("interaction %d (%s %s): %w", i+1, in.Request.Method, in.Request.URL, err)
		}
	}
	return nil
}

// credentialHeaders are the headers SDKs authenticate with.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "Api-Key"}

// sendRecordedCredentials replaces the SDK's credential headers with the
// recorded ones just before a request leaves.
func (cl *sdkCall) sendRecordedCredentials(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	for _, k := range credentialHeaders {
		req.Header.Del(k)
	}
	for k, vs := range cl.credentials {
		req.Header[k] = append([]string(nil), vs...)
	}
	return next(req)
}

// decodedResponseBody is the recorded response body as the SDK sees it
// after Go's transport removed a gzip coding.
func decodedResponseBody(r cassette.Response) ([]byte, error) {
	if !strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		return r.Body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return io.ReadAll(io.LimitReader(zr, 64<<20))
}

func (cl *sdkCall) status() int {
	if cl.in.Response.Status == 0 {
		return http.StatusOK
	}
	return cl.in.Response.Status
}

func (cl *sdkCall) failed() bool { return cl.status() >= 300 }

// checkJSON compares the raw JSON an SDK kept from its response with the
// recorded body, as JSON values.
func (cl *sdkCall) checkJSON(raw string) error {
	var got, want any
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		return fmt.Errorf("SDK kept no JSON response: %w", err)
	}
	if err := json.Unmarshal(cl.response, &want); err != nil {
		return fmt.Errorf("recorded response is not JSON: %w", err)
	}
	if !reflect.DeepEqual(got, want) {
		return errors.New("the response the SDK parsed differs from the recorded one")
	}
	return nil
}

// checkStatus checks that a failed call failed with the recorded status,
// and that a successful one succeeded.
func (cl *sdkCall) checkStatus(err error, statusOf func(error) (int, bool)) (done bool, _ error) {
	if !cl.failed() {
		if err != nil {
			return true, fmt.Errorf("SDK call failed: %w", err)
		}
		return false, nil
	}
	if err == nil {
		return true, fmt.Errorf("SDK call succeeded, recorded status %d", cl.status())
	}
	code, ok := statusOf(err)
	if !ok {
		return true, fmt.Errorf("SDK returned %v, want its API error with status %d", err, cl.status())
	}
	if code != cl.status() {
		return true, fmt.Errorf("SDK API error has status %d, recorded %d", code, cl.status())
	}
	return true, nil
}

// sdkStream is the event stream an SDK returns for a streamed call.
type sdkStream interface {
	Next() bool
	Err() error
	Close() error
}

// drainStream reads an SDK stream to its end and checks it with
// checkStream.
func (cl *sdkCall) drainStream(s sdkStream, status func(error) (int, bool)) error {
	defer s.Close()
	n := 0
	for s.Next() {
		n++
	}
	return cl.checkStream(n, s.Err(), status)
}

// checkStream checks a stream the SDK read to its end (n events, then
// err): a failure with the recorded status, or a successful stream with
// events. A stream whose recorded body mentions an error may end in the
// SDK's error (an in-band error event); any other must end cleanly.
func (cl *sdkCall) checkStream(n int, err error, statusOf func(error) (int, bool)) error {
	if cl.failed() {
		_, err := cl.checkStatus(err, statusOf)
		return err
	}
	inBandError := bytes.Contains(cl.response, []byte(`"error"`))
	switch {
	case err != nil && !inBandError:
		return fmt.Errorf("SDK stream failed after %d events: %w", n, err)
	case err == nil && n == 0:
		return errors.New("SDK stream yielded no events")
	}
	return nil
}

func (cl *sdkCall) openAIOptions() []openaioption.RequestOption {
	opts := []openaioption.RequestOption{
		openaioption.WithBaseURL(cl.base),
		openaioption.WithHTTPClient(cl.client),
		openaioption.WithAPIKey(placeholderKey),
		openaioption.WithMaxRetries(0),
		openaioption.WithRequestTimeout(clientTimeout),
		openaioption.WithRequestBody("application/json", cl.body),
		openaioption.WithMiddleware(cl.sendRecordedCredentials),
	}
	for k, vs := range cl.query {
		for _, v := range vs {
			opts = append(opts, openaioption.WithQueryAdd(k, v))
		}
	}
	// Set, not add: a recorded header the SDK also sends (a version, a
	// user agent) replaces the SDK's value, so the request is the recorded
	// one.
	for k, vs := range cl.header {
		for i, v := range vs {
			if i == 0 {
				opts = append(opts, openaioption.WithHeader(k, v))
			} else {
				opts = append(opts, openaioption.WithHeaderAdd(k, v))
			}
		}
	}
	return opts
}

func openAIStatus(err error) (int, bool) {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode, true
	}
	return 0, false
}

func openAIChat(ctx context.Context, cl *sdkCall) error {
	var params openai.ChatCompletionNewParams
	if err := json.Unmarshal(cl.body, &params); err != nil {
		return fmt.Errorf("recorded request is not a chat completion request for the SDK: %w", err)
	}
	c := openai.NewClient(cl.openAIOptions()...)
	if cl.stream {
		return cl.drainStream(c.Chat.Completions.NewStreaming(ctx, params), openAIStatus)
	}
	res, err := c.Chat.Completions.New(ctx, params)
	if done, err := cl.checkStatus(err, openAIStatus); done {
		return err
	}
	return cl.checkJSON(res.RawJSON())
}

func openAIResponses(ctx context.Context, cl *sdkCall) error {
	var params responses.ResponseNewParams
	if err := json.Unmarshal(cl.body, &params); err != nil {
		return fmt.Errorf("recorded request is not a responses request for the SDK: %w", err)
	}
	c := openai.NewClient(cl.openAIOptions()...)
	if cl.stream {
		return cl.drainStream(c.Responses.NewStreaming(ctx, params), openAIStatus)
	}
	res, err := c.Responses.New(ctx, params)
	if done, err := cl.checkStatus(err, openAIStatus); done {
		return err
	}
	return cl.checkJSON(res.RawJSON())
}

func openAICompletions(ctx context.Context, cl *sdkCall) error {
	var params openai.CompletionNewParams
	if err := json.Unmarshal(cl.body, &params); err != nil {
		return fmt.Errorf("recorded request is not a completions request for the SDK: %w", err)
	}
	c := openai.NewClient(cl.openAIOptions()...)
	if cl.stream {
		return cl.drainStream(c.Completions.NewStreaming(ctx, params), openAIStatus)
	}
	res, err := c.Completions.New(ctx, params)
	if done, err := cl.checkStatus(err, openAIStatus); done {
		return err
	}
	return cl.checkJSON(res.RawJSON())
}

func openAIEmbeddings(ctx context.Context, cl *sdkCall) error {
	var params openai.EmbeddingNewParams
	if err := json.Unmarshal(cl.body, &params); err != nil {
		return fmt.Errorf("recorded request is not an embeddings request for the SDK: %w", err)
	}
	c := openai.NewClient(cl.openAIOptions()...)
	res, err := c.Embeddings.New(ctx, params)
	if done, err := cl.checkStatus(err, openAIStatus); done {
		return err
	}
	return cl.checkJSON(res.RawJSON())
}

func anthropicStatus(err error) (int, bool) {
	var apiErr *anthropic.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode, true
	}
	return 0, false
}

// anthropicClient is the SDK client for one interaction: the recorded
// base URL, query, headers, body and credentials.
func (cl *sdkCall) anthropicClient() anthropic.Client {
	opts := []anthropicoption.RequestOption{
		anthropicoption.WithoutEnvironmentDefaults(),
		anthropicoption.WithoutOpenTelemetry(),
		anthropicoption.WithBaseURL(cl.base),
		anthropicoption.WithHTTPClient(cl.client),
		anthropicoption.WithAPIKey(placeholderKey),
		anthropicoption.WithMaxRetries(0),
		anthropicoption.WithRequestTimeout(clientTimeout),
		anthropicoption.WithRequestBody("application/json", cl.body),
		anthropicoption.WithMiddleware(cl.sendRecordedCredentials),
	}
	for k, vs := range cl.query {
		for _, v := range vs {
			opts = append(opts, anthropicoption.WithQueryAdd(k, v))
		}
	}
	// Set, not add: a recorded header the SDK also sends (a version, a
	// user agent) replaces the SDK's value, so the request is the recorded
	// one.
	for k, vs := range cl.header {
		for i, v := range vs {
			if i == 0 {
				opts = append(opts, anthropicoption.WithHeader(k, v))
			} else {
				opts = append(opts, anthropicoption.WithHeaderAdd(k, v))
			}
		}
	}
	return anthropic.NewClient(opts...)
}

func anthropicMessages(ctx context.Context, cl *sdkCall) error {
	var params anthropic.MessageNewParams
	if err := json.Unmarshal(cl.body, &params); err != nil {
		return fmt.Errorf("recorded request is not a messages request for the SDK: %w", err)
	}
	c := cl.anthropicClient()
	if cl.stream {
		return cl.drainStream(c.Messages.NewStreaming(ctx, params), anthropicStatus)
	}
	res, err := c.Messages.New(ctx, params)
	if done, err := cl.checkStatus(err, anthropicStatus); done {
		return err
	}
	return cl.checkJSON(res.RawJSON())
}

// anthropicComplete re-issues a legacy text completion. The SDK (v2) has
// no typed Completions service any more; the request goes through the
// client's own request machinery (Client.Post: base URL, authentication,
// headers, API errors) and the JSON it returns must be the recorded one.
// Streamed legacy completions are not re-issued (see anthropicEndpoints).
func anthropicComplete(ctx context.Context, cl *sdkCall) error {
	var params struct {
		Model             string `json:"model"`
		Prompt            string `json:"prompt"`
		MaxTokensToSample int64  `json:"max_tokens_to_sample"`
	}
	if err := json.Unmarshal(cl.body, &params); err != nil || params.Model == "" || params.Prompt == "" || params.MaxTokensToSample == 0 {
		return fmt.Errorf("recorded request is not a legacy completion request (model, prompt, max_tokens_to_sample): %v", err)
	}
	c := cl.anthropicClient()
	var res json.RawMessage
	err := c.Post(ctx, "v1/complete", nil, &res)
	if done, err := cl.checkStatus(err, anthropicStatus); done {
		return err
	}
	return cl.checkJSON(string(res))
}
