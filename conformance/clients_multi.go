package conformance

import (
	"context"
	"fmt"
	"net/http"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
	"github.com/oisp/oisp-sensor/sensor/cassette"
)

// MultiSDK drives recordings that talk to more than one provider, as an
// agent framework does when one conversation moves between models: each
// interaction goes through the official SDK of its own API (openai-go,
// anthropic-sdk-go, genai for the Gemini API and Vertex AI, the generated
// generative language REST client, cohere-go, bedrockruntime, ollama), all over one client transport, so the sensor sees the
// providers' connections interleaved in the recorded order. A recording
// one SDK can drive alone is left to that SDK's own path.
type MultiSDK struct{}

// sdkPart is one SDK as a part of MultiSDK: whether it makes an
// interaction, and how it re-issues it over a shared transport.
type sdkPart struct {
	name    string
	applies func(in cassette.Interaction) bool
	drive   func(ctx context.Context, rt http.RoundTripper, in cassette.Interaction) error
}

func single(in cassette.Interaction) *cassette.Recording {
	return &cassette.Recording{Interactions: []cassette.Interaction{in}}
}

// stainlessPart is an SDK driven through sdkDriveClient (openai-go,
// anthropic-sdk-go).
func stainlessPart(name string, eps []sdkEndpoint) sdkPart {
	return sdkPart{
		name:    name,
		applies: func(in cassette.Interaction) bool { return sdkApplies(eps, single(in)) },
		drive: func(ctx context.Context, rt http.RoundTripper, in cassette.Interaction) error {
			return sdkDriveClient(ctx, &http.Client{Transport: rt, Timeout: clientTimeout}, single(in), eps)
		},
	}
}

// morePart is an SDK driven through a moreSDKDriver.
func morePart(name string, d moreSDKDriver) sdkPart {
	return sdkPart{
		name:    name,
		applies: func(in cassette.Interaction) bool { return d.Applies(single(in)) },
		drive: func(ctx context.Context, rt http.RoundTripper, in cassette.Interaction) error {
			return d.call(ctx, wireClient(rt, in), in)
		},
	}
}

func multiSDKParts() []sdkPart {
	return []sdkPart{
		stainlessPart("openai-go", openAIEndpoints),
		stainlessPart("anthropic-sdk-go", anthropicEndpoints),
		morePart("genai", GenAISDK),
		morePart("genai-vertex", VertexSDK),
		morePart("anthropic-sdk-go-vertex", VertexAnthropicSDK),
		morePart("generativelanguage-gapic", GAPICSDK),
		morePart("cohere-go", CohereSDK),
		morePart("bedrockruntime", BedrockSDK),
		morePart("ollama", OllamaSDK),
	}
}

// plan returns the SDK for each interaction of rec, or false when one has
// none.
func (MultiSDK) plan(rec *cassette.Recording) ([]sdkPart, bool) {
	parts := multiSDKParts()
	var out []sdkPart
	for _, in := range rec.Interactions {
		found := false
		for _, p := range parts {
			if p.applies(in) {
				out = append(out, p)
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return out, len(out) > 0
}

// Applies reports whether every interaction of rec is one some SDK makes,
// and more than one SDK is needed.
func (m MultiSDK) Applies(rec *cassette.Recording) bool {
	plan, ok := m.plan(rec)
	if !ok {
		return false
	}
	for _, p := range plan[1:] {
		if p.name != plan[0].name {
			return true
		}
	}
	return false
}

// Drive re-issues every interaction through its SDK, in the recorded
// order, over one client transport.
func (m MultiSDK) Drive(ctx context.Context, srv *loopback.Server, rec *cassette.Recording) error {
	plan, ok := m.plan(rec)
	if !ok {
		return fmt.Errorf("not every interaction is one an SDK driver re-issues")
	}
	rt, closeRT, err := srv.ClientTransport(loopback.ClientOptions{Compression: true})
	if err != nil {
		return err
	}
	defer closeRT()
	for i, in := range rec.Interactions {
		if err := plan[i].drive(ctx, rt, in); err != nil {
			return fmt.Errorf("interaction %d through %s: %w", i+1, plan[i].name, err)
		}
	}
	return nil
}
