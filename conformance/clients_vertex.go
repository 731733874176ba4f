package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/httptransport"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"google.golang.org/genai"
)

// VertexSDK drives Vertex AI Gemini requests (generateContent,
// streamGenerateContent, countTokens) through google.golang.org/genai's
// Vertex AI backend, set up as a Google Cloud user sets it up: a project
// and location (taken from the recorded URL), credentials from
// cloud.google.com/go/auth added to the HTTP client by its authorization
// middleware (a static token here: the replay server checks no
// authentication), and no base URL. The SDK builds the Vertex URL from
// the project, location and model itself, and the driver fails unless it
// is the recorded URL; the request then leaves with the recorded body and
// headers (recordedWire), so the goldens apply. The SDK's Vertex response
// converters parse the replayed responses.
var VertexSDK = moreSDKDriver{applies: vertexApplies, call: vertexCall}

// vertexTarget is a Vertex AI publisher-model URL taken apart.
type vertexTarget struct {
	version, project, location, model, op string
}

// vertexOperation splits a Vertex AI Gemini URL:
// https://{location-}aiplatform.googleapis.com/{version}/projects/{project}/locations/{location}/publishers/google/models/{model}:{op}.
// The host must be the one the SDK derives from the location (the global
// endpoint for "global", the regional one otherwise).
func vertexOperation(raw string) (vertexTarget, bool) {
	var t vertexTarget
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		return t, false
	}
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(segs) != 9 || segs[1] != "projects" || segs[3] != "locations" || segs[5] != "publishers" || segs[6] != "google" || segs[7] != "models" {
		return t, false
	}
	t.version, t.project, t.location = segs[0], segs[2], segs[4]
	var ok bool
	t.model, t.op, ok = strings.Cut(segs[8], ":")
	if !ok || t.model == "" || t.project == "" || t.location == "" {
		return t, false
	}
	switch t.version {
	case "v1", "v1beta1":
	default:
		return t, false
	}
	wantHost := t.location + "-aiplatform.googleapis.com"
	if t.location == "global" {
		wantHost = "aiplatform.googleapis.com"
	}
	if u.Host != wantHost {
		return t, false
	}
	switch {
	case t.op == "generateContent" && u.RawQuery == "":
	case t.op == "streamGenerateContent" && u.RawQuery == "alt=sse":
	case t.op == "countTokens" && u.RawQuery == "":
	default:
		return t, false
	}
	return t, true
}

func vertexApplies(in cassette.Interaction) bool {
	t, ok := vertexOperation(in.Request.URL)
	if !ok {
		return false
	}
	if t.op != "countTokens" {
		if _, _, err := genaiRequestConfig(in.Request.Body); err != nil {
			return false
		}
	}
	ct := strings.ToLower(in.Response.Header.Get("Content-Type"))
	return recordedStatus(in.Response) >= 300 || strings.Contains(ct, "json") || strings.Contains(ct, "text/event-stream")
}

// staticToken is a token provider for a fixed placeholder access token.
type staticToken struct{}

func (staticToken) Token(context.Context) (*auth.Token, error) {
	return &auth.Token{Value: placeholderKey, Type: "Bearer", Expiry: time.Now().Add(time.Hour)}, nil
}

// sdkRequestCheck wraps the round tripper an SDK's requests go through and
// fails a request the SDK built differently from the recording.
type sdkRequestCheck struct {
	next  http.RoundTripper
	check func(*http.Request) error
}

func (c sdkRequestCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := c.check(req); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return c.next.RoundTrip(req)
}

// vertexClient makes the genai client for one interaction: Vertex AI
// backend, the recorded project and location, the placeholder token added
// by cloud.google.com/go/auth's middleware. Before the request is swapped
// for the recorded one, it must carry the SDK's bearer token and the
// recorded URL.
func vertexClient(ctx context.Context, client *http.Client, in cassette.Interaction, t vertexTarget) (*genai.Client, error) {
	wire := client.Transport
	client.Transport = sdkRequestCheck{next: wire, check: func(req *http.Request) error {
		if got, want := req.Header.Get("Authorization"), "Bearer "+placeholderKey; got != want {
			return fmt.Errorf("SDK sent Authorization %q, want its credentials' bearer token", got)
		}
		if got := req.URL.String(); got != in.Request.URL {
			return fmt.Errorf("SDK built URL %s, recorded %s", got, in.Request.URL)
		}
		return nil
	}}
	creds := auth.NewCredentials(&auth.CredentialsOptions{TokenProvider: staticToken{}})
	if err := httptransport.AddAuthorizationMiddleware(client, creds); err != nil {
		return nil, fmt.Errorf("auth middleware: %w", err)
	}
	c, err := genai.NewClient(ctx, &genai.ClientConfig{
		Backend:     genai.BackendVertexAI,
		Project:     t.project,
		Location:    t.location,
		Credentials: creds,
		HTTPClient:  client,
		HTTPOptions: genai.HTTPOptions{APIVersion: t.version},
	})
	if err != nil {
		return nil, fmt.Errorf("genai Vertex AI client: %w", err)
	}
	return c, nil
}

func vertexCall(ctx context.Context, client *http.Client, in cassette.Interaction) error {
	t, _ := vertexOperation(in.Request.URL)
	c, err := vertexClient(ctx, client, in, t)
	if err != nil {
		return err
	}
	recorded, err := decodedResponseBody(in.Response)
	if err != nil {
		return fmt.Errorf("recorded response: %w", err)
	}
	failed := recordedStatus(in.Response) >= 300
	if t.op == "countTokens" {
		var req struct {
			Contents []*genai.Content `json:"contents"`
		}
		if err := json.Unmarshal(in.Request.Body, &req); err != nil {
			return fmt.Errorf("recorded request is not a countTokens request for the SDK: %w", err)
		}
		res, err := c.Models.CountTokens(ctx, t.model, req.Contents, nil)
		if err := checkCallStatus(in, err, genaiStatus); err != nil || failed {
			return err
		}
		return sameTotalTokens(res.TotalTokens, recorded)
	}
	return geminiGenerate(ctx, c, t.model, t.op == "streamGenerateContent", in, recorded)
}

// geminiGenerate re-issues a generateContent (or, with stream,
// streamGenerateContent) interaction through c, and checks the SDK's
// result against the recording: the recorded failure as the SDK's API
// error; the same response id, model version, finish reasons and text; for
// a stream, one SDK response for each recorded data event, each matching
// its event.
func geminiGenerate(ctx context.Context, c *genai.Client, model string, stream bool, in cassette.Interaction, recorded []byte) error {
	failed := recordedStatus(in.Response) >= 300
	contents, cfg, err := genaiRequestConfig(in.Request.Body)
	if err != nil {
		return err
	}
	if !stream {
		res, err := c.Models.GenerateContent(ctx, model, contents, cfg)
		if err := checkCallStatus(in, err, genaiStatus); err != nil || failed {
			return err
		}
		return sameGeminiResponse(res, recorded)
	}
	var got []*genai.GenerateContentResponse
	var streamErr error
	for res, err := range c.Models.GenerateContentStream(ctx, model, contents, cfg) {
		if err != nil {
			streamErr = err
			break
		}
		got = append(got, res)
	}
	if err := checkCallStatus(in, streamErr, genaiStatus); err != nil || failed {
		return err
	}
	events := sseDataLines(recorded)
	if len(got) == 0 || len(got) != len(events) {
		return fmt.Errorf("SDK yielded %d stream responses, the recorded stream has %d data events", len(got), len(events))
	}
	for i := range got {
		if err := sameGeminiResponse(got[i], events[i]); err != nil {
			return fmt.Errorf("stream response %d: %w", i+1, err)
		}
	}
	return nil
}

// genaiRequestConfig decodes a recorded Gemini request body into the SDK's
// contents and GenerateContentConfig.
func genaiRequestConfig(body []byte) ([]*genai.Content, *genai.GenerateContentConfig, error) {
	var req genaiRequest
	if err := json.Unmarshal(standardBase64Bytes(body), &req); err != nil {
		return nil, nil, fmt.Errorf("recorded request is not a generateContent request for the SDK: %w", err)
	}
	cfg := &genai.GenerateContentConfig{}
	if len(req.GenerationConfig) > 0 {
		if err := json.Unmarshal(req.GenerationConfig, cfg); err != nil {
			return nil, nil, fmt.Errorf("recorded generationConfig does not decode into the SDK's config: %w", err)
		}
	}
	cfg.SystemInstruction = req.SystemInstruction
	cfg.Tools = req.Tools
	cfg.ToolConfig = req.ToolConfig
	cfg.SafetySettings = req.SafetySettings
	cfg.CachedContent = req.CachedContent
	cfg.Labels = req.Labels
	cfg.ServiceTier = req.ServiceTier
	cfg.ModelArmorConfig = req.ModelArmorConfig
	return req.Contents, cfg, nil
}

// standardBase64Bytes rewrites the byte fields of a Gemini request
// (thoughtSignature, inlineData.data) from URL-safe to standard base64.
// Python clients send a thought signature back URL-safe encoded; the Go
// SDK's []byte fields decode the standard alphabet only. The bytes are the
// same, and the recorded body still goes on the wire. Any other body is
// returned as it is.
func standardBase64Bytes(body []byte) []byte {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return body
	}
	changed := false
	toStd := strings.NewReplacer("-", "+", "_", "/")
	var walk func(v any, inInlineData bool)
	walk = func(v any, inInlineData bool) {
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				s, isString := x.(string)
				if isString && (k == "thoughtSignature" || inInlineData && k == "data") && strings.ContainsAny(s, "-_") {
					t[k] = toStd.Replace(s)
					changed = true
					continue
				}
				walk(x, k == "inlineData")
			}
		case []any:
			for _, x := range t {
				walk(x, false)
			}
		}
	}
	walk(v, false)
	if !changed {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// sseDataLines returns the payload of every data line of an SSE body.
func sseDataLines(body []byte) [][]byte {
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		if data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:")); ok {
			out = append(out, bytes.Clone(bytes.TrimSpace(data)))
		}
	}
	return out
}

// geminiSummary is what the driver compares between a response the SDK
// parsed and the recorded JSON: the response id, model version, and per
// candidate its finish reason and text.
type geminiSummary struct {
	ResponseID   string
	ModelVersion string
	Candidates   []geminiCandidateSummary
	Blocked      string
}

type geminiCandidateSummary struct {
	FinishReason string
	Text         string
	Parts        int
}

// sameGeminiResponse checks that the SDK's parsed response says what the
// recorded JSON says.
func sameGeminiResponse(res *genai.GenerateContentResponse, recorded []byte) error {
	if res == nil {
		return errors.New("SDK returned no response")
	}
	var want struct {
		ResponseID   string `json:"responseId"`
		ModelVersion string `json:"modelVersion"`
		Candidates   []struct {
			FinishReason string `json:"finishReason"`
			Content      struct {
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"content"`
		} `json:"candidates"`
		PromptFeedback struct {
			BlockReason string `json:"blockReason"`
		} `json:"promptFeedback"`
	}
	if err := json.Unmarshal(recorded, &want); err != nil {
		return fmt.Errorf("recorded response is not JSON: %w", err)
	}
	w := geminiSummary{ResponseID: want.ResponseID, ModelVersion: want.ModelVersion, Blocked: want.PromptFeedback.BlockReason}
	for _, c := range want.Candidates {
		s := geminiCandidateSummary{FinishReason: c.FinishReason, Parts: len(c.Content.Parts)}
		for _, p := range c.Content.Parts {
			s.Text += p.Text
		}
		w.Candidates = append(w.Candidates, s)
	}
	g := geminiSummary{ResponseID: res.ResponseID, ModelVersion: res.ModelVersion}
	if res.PromptFeedback != nil {
		g.Blocked = string(res.PromptFeedback.BlockReason)
	}
	for _, c := range res.Candidates {
		s := geminiCandidateSummary{FinishReason: string(c.FinishReason)}
		if c.Content != nil {
			s.Parts = len(c.Content.Parts)
			for _, p := range c.Content.Parts {
				s.Text += p.Text
			}
		}
		g.Candidates = append(g.Candidates, s)
	}
	if fmt.Sprint(g) != fmt.Sprint(w) {
		return fmt.Errorf("the response the SDK parsed differs from the recorded one:\n SDK:      %+v\n recorded: %+v", g, w)
	}
	return nil
}
