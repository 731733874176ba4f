package provider

// Gemini embedContent / batchEmbedContents and Vertex AI :predict on
// embedding models: input counts, dimensions and (where reported) tokens.
// Vectors are counted, never parsed.

import (
	json "github.com/goccy/go-json"
	"sort"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream"
)

type googleEmbedRequestBody struct {
	Model     jStr              `json:"model"`
	Content   json.RawMessage   `json:"content"`
	Requests  []json.RawMessage `json:"requests"`
	Instances []json.RawMessage `json:"instances"`
}

type googleEmbedding struct {
	Values json.RawMessage `json:"values"`
	// Vertex :predict reports tokens per instance.
	Statistics *struct {
		TokenCount jInt `json:"token_count"`
	} `json:"statistics"`
}

type googleEmbedResponseBody struct {
	Embedding   *googleEmbedding  `json:"embedding"`
	Embeddings  []googleEmbedding `json:"embeddings"`
	Predictions []struct {
		Embeddings *googleEmbedding `json:"embeddings"`
	} `json:"predictions"`
	UsageMetadata *geminiUsageBody `json:"usageMetadata"`
	Error         json.RawMessage  `json:"error"`
}

// decodeGoogleEmbedding fills an embedding exchange: the request's input
// count and, from the response, vectors, dimensions and tokens.
func decodeGoogleEmbedding(p googlePath, x *httpmsg.Exchange, res *Result) {
	req := res.Request
	req.Streaming = oisp.Ptr(false)
	var b googleEmbedRequestBody
	if mismatch, err := decodeLoose(x.Request.Body.Data, &b); err != nil {
		if len(x.Request.Body.Data) > 0 {
			res.note(noteRequestNotJSON)
		}
	} else {
		if mismatch {
			res.note(noteRequestTypeMismatch)
		}
		switch {
		case len(b.Requests) > 0:
			req.InputCount = len(b.Requests)
		case len(b.Instances) > 0:
			req.InputCount = len(b.Instances)
		case len(b.Content) > 0:
			req.InputCount = 1
		}
		if req.Model == nil && b.Model != "" {
			req.Model = &oisp.Model{ID: trimModelsPrefix(string(b.Model))}
		}
	}
	finishRequest(req)
	if x.Response == nil {
		return
	}
	emb := &oisp.AIEmbedding{
		Provider:   req.Provider,
		Model:      req.Model,
		InputCount: req.InputCount,
		LatencyMS:  latencyMS(x),
		StatusCode: x.Response.Status,
		Success:    oisp.Ptr(x.Response.Status >= 200 && x.Response.Status < 300),
	}
	res.Embedding = emb
	decodeGoogleEmbeddingResponse(x.Response.Body.Data, res, emb, true)
	if emb.StatusCode >= 400 && emb.Error == nil {
		emb.Success = oisp.Ptr(false)
		emb.Error = httpFailure(emb.StatusCode, x.Response.Body.Data)
	}
}

// decodeGoogleEmbeddingResponse fills emb from an embedding response body;
// scan lets measureGoogleEmbeddings measure the vectors (tests compare
// both ways).
func decodeGoogleEmbeddingResponse(body []byte, res *Result, emb *oisp.AIEmbedding, scan bool) {
	var (
		measured googleVectorsMeasured
		ok       bool
		rest     []byte
	)
	if scan {
		rest, measured, ok = measureGoogleEmbeddings(body)
	}
	if ok {
		body = rest
	} else {
		measured = googleVectorsMeasured{}
	}
	var r googleEmbedResponseBody
	if mismatch, err := decodeLoose(body, &r); err != nil {
		if len(body) > 0 {
			res.note(noteResponseNotJSON)
		}
	} else {
		if mismatch {
			res.note(noteResponseTypeMismatch)
		}
		if e := googleError(r.Error); e != nil {
			emb.Success = oisp.Ptr(false)
			emb.Error = e
		}
		vectors := r.Embeddings
		if r.Embedding != nil {
			vectors = append([]googleEmbedding{*r.Embedding}, vectors...)
		}
		tokens, haveTokens := 0, false
		for _, pr := range r.Predictions {
			if pr.Embeddings != nil {
				vectors = append(vectors, *pr.Embeddings)
			}
		}
		for _, v := range vectors {
			if v.Statistics != nil && v.Statistics.TokenCount.OK {
				tokens += v.Statistics.TokenCount.V
				haveTokens = true
			}
		}
		// The measured vectors were replaced by {} (still one vector) and
		// [] (measured.listCount vectors, which come right after it).
		emb.EmbeddingCount = len(vectors) + measured.listCount
		switch {
		case measured.single:
			emb.Dimensions = measured.singleDims
		case measured.listCount > 0:
			emb.Dimensions = measured.listDims
		case len(vectors) > 0:
			emb.Dimensions = max(countArray(vectors[0].Values), 0)
		}
		if r.UsageMetadata != nil && r.UsageMetadata.PromptTokenCount.OK {
			tokens, haveTokens = r.UsageMetadata.PromptTokenCount.V, true
		}
		if haveTokens {
			emb.Usage = &oisp.Usage{PromptTokens: oisp.Ptr(tokens), TotalTokens: oisp.Ptr(tokens)}
			emb.TotalTokens = oisp.Ptr(tokens)
		}
	}
}

// trimModelsPrefix drops the "models/" resource prefix of a model name.
func trimModelsPrefix(m string) string {
	if len(m) > len("models/") && m[:len("models/")] == "models/" {
		return m[len("models/"):]
	}
	return m
}

// jsonElement is one element of a streamed JSON array or NDJSON body with
// the time its last byte arrived.
type jsonElement struct {
	Data []byte
	At   time.Time
}

// jsonArrayElements splits a JSON array body (Gemini streaming without
// alt=sse) into its elements with sensor/stream's reader. A truncated
// array yields the complete elements before the cut; malformed input is
// counted on rec. closed reports whether the array's closing bracket
// arrived with no element cut: the stream's own end.
func jsonArrayElements(b *httpmsg.Body, rec stats.Recorder) (els []jsonElement, closed bool) {
	end := &arrayEndRecorder{Recorder: rec}
	items := stream.ParseJSONArrayBody(b, stream.WithRecorder(end))
	els = make([]jsonElement, len(items))
	for i, it := range items {
		els[i] = jsonElement{Data: it.Data, At: it.At}
	}
	return els, !end.cut
}

// arrayEndRecorder passes counts on and notes the reader's report of an
// array the body ended inside.
type arrayEndRecorder struct {
	stats.Recorder
	cut bool
}

func (r *arrayEndRecorder) Count(token string, n int64) {
	if token == stream.TokenJSONUnterminated || token == stream.TokenJSONIncomplete {
		r.cut = true
	}
	if r.Recorder != nil {
		r.Recorder.Count(token, n)
	}
}

// sortedKeys returns a map's keys in order (stable output for built-in
// tool lists).
func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
