package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	anthropicvertex "github.com/anthropics/anthropic-sdk-go/v2/vertex"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// VertexAnthropicSDK drives Claude-on-Vertex-AI requests (rawPredict,
// streamRawPredict) through anthropic-sdk-go's vertex option, set up as a
// Google Cloud user sets it up: region and project (from the recorded URL)
// and Google credentials (a static OAuth token: the replay server checks
// no authentication). The SDK's vertex middleware moves the model from the
// body into the URL and picks the stream specifier; the driver fails unless
// that URL is the recorded one. The request leaves with the recorded body
// and headers (recordedWire); the SDK parses the response as it parses
// Anthropic's own.
var VertexAnthropicSDK = moreSDKDriver{applies: vertexAnthropicApplies, call: vertexAnthropicCall}

// vertexAnthropicOperation splits a Claude-on-Vertex URL:
// https://{host}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:{rawPredict|streamRawPredict},
// with the host the SDK derives from the region.
func vertexAnthropicOperation(raw string) (project, region, model string, stream, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.RawQuery != "" {
		return "", "", "", false, false
	}
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(segs) != 9 || segs[0] != "v1" || segs[1] != "projects" || segs[3] != "locations" ||
		segs[5] != "publishers" || segs[6] != "anthropic" || segs[7] != "models" {
		return "", "", "", false, false
	}
	project, region = segs[2], segs[4]
	model, op, found := strings.Cut(segs[8], ":")
	if !found || project == "" || region == "" || model == "" {
		return "", "", "", false, false
	}
	var host string
	switch region {
	case "global":
		host = "aiplatform.googleapis.com"
	case "us", "eu":
		host = "aiplatform." + region + ".rep.googleapis.com"
	default:
		host = region + "-aiplatform.googleapis.com"
	}
	if u.Host != host {
		return "", "", "", false, false
	}
	switch op {
	case "rawPredict":
		return project, region, model, false, true
	case "streamRawPredict":
		return project, region, model, true, true
	}
	return "", "", "", false, false
}

// vertexAnthropicParams is the recorded body as the SDK's params: the
// model the URL names put back into the body (Vertex carries it in the
// URL; the SDK takes it from the params).
func vertexAnthropicParams(model string, body []byte) (anthropic.MessageNewParams, error) {
	var params anthropic.MessageNewParams
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return params, err
	}
	m, _ := json.Marshal(model)
	fields["model"] = m
	delete(fields, "anthropic_version")
	b, err := json.Marshal(fields)
	if err != nil {
		return params, err
	}
	err = json.Unmarshal(b, &params)
	return params, err
}

func vertexAnthropicApplies(in cassette.Interaction) bool {
	_, _, model, _, ok := vertexAnthropicOperation(in.Request.URL)
	if !ok {
		return false
	}
	if _, err := vertexAnthropicParams(model, in.Request.Body); err != nil {
		return false
	}
	ct := strings.ToLower(in.Response.Header.Get("Content-Type"))
	return recordedStatus(in.Response) >= 300 || strings.Contains(ct, "json") || strings.Contains(ct, "text/event-stream")
}

func vertexAnthropicCall(ctx context.Context, client *http.Client, in cassette.Interaction) error {
	project, region, model, stream, _ := vertexAnthropicOperation(in.Request.URL)
	params, err := vertexAnthropicParams(model, in.Request.Body)
	if err != nil {
		return fmt.Errorf("recorded request is not a messages request for the SDK: %w", err)
	}
	resp, err := decodedResponseBody(in.Response)
	if err != nil {
		return fmt.Errorf("recorded response: %w", err)
	}
	client.Transport = sdkRequestCheck{next: client.Transport, check: func(r *http.Request) error {
		if got, want := r.Header.Get("Authorization"), "Bearer "+placeholderKey; got != want {
			return fmt.Errorf("SDK sent Authorization %q, want its credentials' bearer token", got)
		}
		if got := r.URL.String(); got != in.Request.URL {
			return fmt.Errorf("SDK built URL %s, recorded %s", got, in.Request.URL)
		}
		return nil
	}}
	creds := &google.Credentials{
		ProjectID:   project,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: placeholderKey, TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}),
	}
	c := anthropic.NewClient(
		anthropicoption.WithHTTPClient(client),
		anthropicvertex.WithCredentials(ctx, region, project, creds),
		anthropicoption.WithoutOpenTelemetry(),
		anthropicoption.WithMaxRetries(0),
		anthropicoption.WithRequestTimeout(clientTimeout),
	)
	cl := &sdkCall{in: in, response: resp}
	if stream {
		return cl.drainStream(c.Messages.NewStreaming(ctx, params), anthropicStatus)
	}
	res, err := c.Messages.New(ctx, params)
	if done, err := cl.checkStatus(err, anthropicStatus); done {
		return err
	}
	return cl.checkJSON(res.RawJSON())
}
