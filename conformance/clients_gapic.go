package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	generativelanguage "cloud.google.com/go/ai/generativelanguage/apiv1beta"
	"cloud.google.com/go/ai/generativelanguage/apiv1beta/generativelanguagepb"
	"github.com/googleapis/gax-go/v2"
	"github.com/googleapis/gax-go/v2/apierror"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// GAPICSDK drives Gemini API requests through Google's generated REST
// client, cloud.google.com/go/ai/generativelanguage/apiv1beta: the
// transport under the github.com/google/generative-ai-go SDK (which
// langchaingo and other Go programs used before google.golang.org/genai).
// Its requests are protobuf messages sent as JSON with enums as numbers
// ("$alt=json;enum-encoding=int"), and its responses, a JSON array for a
// stream, are read by gax's protobuf JSON stream reader. The recorded
// request body must decode strictly into the client's request message,
// the client must build the recorded URL, and the request then leaves with
// the recorded body and headers (recordedWire).
var GAPICSDK = moreSDKDriver{applies: gapicApplies, call: gapicCall}

// gapicQuery is the query the generated REST client puts on every call.
const gapicQuery = "%24alt=json%3Benum-encoding%3Dint"

// gapicOperation splits a Gemini API URL of the generated REST client
// into its operation.
func gapicOperation(raw string) (op string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host != "generativelanguage.googleapis.com" || u.RawQuery != gapicQuery {
		return "", false
	}
	rest, ok := strings.CutPrefix(u.Path, "/v1beta/models/")
	if !ok {
		return "", false
	}
	model, op, ok := strings.Cut(rest, ":")
	if !ok || model == "" || strings.Contains(model, "/") {
		return "", false
	}
	switch op {
	case "generateContent", "streamGenerateContent", "batchEmbedContents", "embedContent", "countTokens":
		return op, true
	}
	return "", false
}

// gapicMessage is a request message of the generative language API.
type gapicMessage interface {
	proto.Message
	GetModel() string
}

// gapicRequest decodes a recorded body into the request message of op,
// strictly: an unknown field is a request this client does not make.
func gapicRequest(op string, body []byte) (gapicMessage, error) {
	var msg gapicMessage
	switch op {
	case "generateContent", "streamGenerateContent":
		msg = &generativelanguagepb.GenerateContentRequest{}
	case "batchEmbedContents":
		msg = &generativelanguagepb.BatchEmbedContentsRequest{}
	case "embedContent":
		msg = &generativelanguagepb.EmbedContentRequest{}
	case "countTokens":
		msg = &generativelanguagepb.CountTokensRequest{}
	default:
		return nil, fmt.Errorf("operation %q", op)
	}
	if err := protojson.Unmarshal(body, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func gapicApplies(in cassette.Interaction) bool {
	op, ok := gapicOperation(in.Request.URL)
	if !ok {
		return false
	}
	req, err := gapicRequest(op, in.Request.Body)
	if err != nil {
		return false
	}
	// The client puts the request's model in the path.
	if u, _ := url.Parse(in.Request.URL); u.Path != "/v1beta/"+req.GetModel()+":"+op {
		return false
	}
	ct := strings.ToLower(in.Response.Header.Get("Content-Type"))
	return recordedStatus(in.Response) >= 300 || strings.Contains(ct, "json")
}

func gapicStatus(err error) (int, bool) {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code, true
	}
	var ae *apierror.APIError
	if errors.As(err, &ae) && ae.HTTPCode() > 0 {
		return ae.HTTPCode(), true
	}
	return 0, false
}

func gapicCall(ctx context.Context, client *http.Client, in cassette.Interaction) error {
	op, _ := gapicOperation(in.Request.URL)
	req, err := gapicRequest(op, in.Request.Body)
	if err != nil {
		return fmt.Errorf("recorded request is not a %s request for the client: %w", op, err)
	}
	client.Transport = sdkRequestCheck{next: client.Transport, check: func(r *http.Request) error {
		if got := r.URL.String(); got != in.Request.URL {
			return fmt.Errorf("client built URL %s, recorded %s", got, in.Request.URL)
		}
		return nil
	}}
	c, err := generativelanguage.NewGenerativeRESTClient(ctx,
		option.WithHTTPClient(client),
		option.WithEndpoint("https://generativelanguage.googleapis.com"))
	if err != nil {
		return fmt.Errorf("generative language REST client: %w", err)
	}
	defer c.Close()
	// One attempt: the recording has one response per request.
	noRetry := gax.WithRetry(func() gax.Retryer { return nil })
	recorded, err := decodedResponseBody(in.Response)
	if err != nil {
		return fmt.Errorf("recorded response: %w", err)
	}
	failed := recordedStatus(in.Response) >= 300
	switch op {
	case "generateContent":
		res, err := c.GenerateContent(ctx, req.(*generativelanguagepb.GenerateContentRequest), noRetry)
		if err := checkCallStatus(in, err, gapicStatus); err != nil || failed {
			return err
		}
		return sameGAPICResponse(res, recorded)
	case "streamGenerateContent":
		s, err := c.StreamGenerateContent(ctx, req.(*generativelanguagepb.GenerateContentRequest), noRetry)
		if err := checkCallStatus(in, err, gapicStatus); err != nil || failed {
			return err
		}
		var want []json.RawMessage
		if err := json.Unmarshal(recorded, &want); err != nil {
			return fmt.Errorf("recorded stream is not a JSON array: %w", err)
		}
		n := 0
		for {
			res, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("client stream failed after %d responses: %w", n, err)
			}
			if n >= len(want) {
				return fmt.Errorf("client read more than the %d recorded stream responses", len(want))
			}
			if err := sameGAPICResponse(res, want[n]); err != nil {
				return fmt.Errorf("stream response %d: %w", n+1, err)
			}
			n++
		}
		if n == 0 || n != len(want) {
			return fmt.Errorf("client read %d stream responses, recorded %d", n, len(want))
		}
		return nil
	case "batchEmbedContents":
		res, err := c.BatchEmbedContents(ctx, req.(*generativelanguagepb.BatchEmbedContentsRequest), noRetry)
		if err := checkCallStatus(in, err, gapicStatus); err != nil || failed {
			return err
		}
		var got [][]float32
		for _, e := range res.GetEmbeddings() {
			got = append(got, e.GetValues())
		}
		return sameEmbeddings(got, recorded)
	case "embedContent":
		res, err := c.EmbedContent(ctx, req.(*generativelanguagepb.EmbedContentRequest), noRetry)
		if err := checkCallStatus(in, err, gapicStatus); err != nil || failed {
			return err
		}
		var want struct {
			Embedding struct {
				Values []float32 `json:"values"`
			} `json:"embedding"`
		}
		if err := json.Unmarshal(recorded, &want); err != nil {
			return fmt.Errorf("recorded response is not an embedding: %w", err)
		}
		if !slices.Equal(res.GetEmbedding().GetValues(), want.Embedding.Values) {
			return errors.New("the embedding the client parsed differs from the recorded one")
		}
		return nil
	default: // countTokens
		res, err := c.CountTokens(ctx, req.(*generativelanguagepb.CountTokensRequest), noRetry)
		if err := checkCallStatus(in, err, gapicStatus); err != nil || failed {
			return err
		}
		return sameTotalTokens(res.GetTotalTokens(), recorded)
	}
}

// sameTotalTokens checks the total a client parsed from a countTokens
// response (Gemini API or Vertex AI) against the recorded JSON.
func sameTotalTokens(parsed int32, recorded []byte) error {
	var want struct {
		TotalTokens int32 `json:"totalTokens"`
	}
	if err := json.Unmarshal(recorded, &want); err != nil {
		return fmt.Errorf("recorded response is not JSON: %w", err)
	}
	if parsed != want.TotalTokens {
		return fmt.Errorf("client parsed %d total tokens, recorded %d", parsed, want.TotalTokens)
	}
	return nil
}

// sameEmbeddings checks parsed embeddings against a recorded
// {"embeddings":[{"values":[…]}…]} body, value for value.
func sameEmbeddings(got [][]float32, recorded []byte) error {
	var want struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
	}
	if err := json.Unmarshal(recorded, &want); err != nil {
		return fmt.Errorf("recorded response is not an embeddings response: %w", err)
	}
	if len(got) != len(want.Embeddings) || len(got) == 0 {
		return fmt.Errorf("client parsed %d embeddings, recorded %d", len(got), len(want.Embeddings))
	}
	for i := range got {
		if !slices.Equal(got[i], want.Embeddings[i].Values) {
			return fmt.Errorf("embedding %d: parsed %d values that differ from the recorded %d", i+1, len(got[i]), len(want.Embeddings[i].Values))
		}
	}
	return nil
}

// sameGAPICResponse checks that the client's parsed response says what
// the recorded JSON says: per candidate its finish reason (a number on
// this wire) and text, and the usage token counts.
func sameGAPICResponse(res *generativelanguagepb.GenerateContentResponse, recorded []byte) error {
	var want struct {
		Candidates []struct {
			FinishReason int32 `json:"finishReason"`
			Content      struct {
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"content"`
		} `json:"candidates"`
		UsageMetadata struct {
			PromptTokenCount     int32 `json:"promptTokenCount"`
			CandidatesTokenCount int32 `json:"candidatesTokenCount"`
			TotalTokenCount      int32 `json:"totalTokenCount"`
		} `json:"usageMetadata"`
	}
	if err := json.Unmarshal(recorded, &want); err != nil {
		return fmt.Errorf("recorded response is not JSON with numeric enums: %w", err)
	}
	type summary struct {
		FinishReasons          []int32
		Texts                  []string
		Prompt, Output, Totals int32
	}
	w := summary{Prompt: want.UsageMetadata.PromptTokenCount, Output: want.UsageMetadata.CandidatesTokenCount, Totals: want.UsageMetadata.TotalTokenCount}
	for _, c := range want.Candidates {
		text := ""
		for _, p := range c.Content.Parts {
			text += p.Text
		}
		w.FinishReasons = append(w.FinishReasons, c.FinishReason)
		w.Texts = append(w.Texts, text)
	}
	u := res.GetUsageMetadata()
	g := summary{Prompt: u.GetPromptTokenCount(), Output: u.GetCandidatesTokenCount(), Totals: u.GetTotalTokenCount()}
	for _, c := range res.GetCandidates() {
		text := ""
		for _, p := range c.GetContent().GetParts() {
			text += p.GetText()
		}
		g.FinishReasons = append(g.FinishReasons, int32(c.GetFinishReason()))
		g.Texts = append(g.Texts, text)
	}
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
		return fmt.Errorf("the response the client parsed differs from the recorded one:\n client:   %+v\n recorded: %+v", g, w)
	}
	return nil
}
