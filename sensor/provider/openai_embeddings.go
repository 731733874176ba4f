package provider

// OpenAI Embeddings (POST …/embeddings) as spoken by OpenAI, Azure and the
// compatible providers. The result carries an ai.request (request_type
// "embedding") and an ai.embedding instead of an ai.response.
//
//	decodeOpenAIEmbeddingsRequest(body []byte, res *Result) (model string, inputs int)
//	decodeOpenAIEmbeddingsResponse(body []byte, res *Result, emb *oisp.AIEmbedding)

import (
	"bytes"
	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/oisp"
)

type embeddingsRequestBody struct {
	Model          jStr            `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     jInt            `json:"dimensions"`
	EncodingFormat jStr            `json:"encoding_format"`
}

type embeddingsResponseBody struct {
	Object jStr              `json:"object"`
	Model  jStr              `json:"model"`
	ID     jStr              `json:"id"`
	Data   []embeddingsDatum `json:"data"`
	Usage  *openaiUsageBody  `json:"usage"`
	openaiErrorFields
}

// embeddingsDatum is one vector of an embeddings response, measured.
type embeddingsDatum struct {
	Embedding embeddingSize `json:"embedding"`
}

// openaiErrorFields are the members an OpenAI-style error body may have.
type openaiErrorFields struct {
	Error   json.RawMessage `json:"error"`
	Message jStr            `json:"message"`
	Type    jStr            `json:"type"`
	Code    jStr            `json:"code"`
	Detail  json.RawMessage `json:"detail"`
}

// err returns the error the fields describe (status decides whether a bare
// message or detail counts).
func (f *openaiErrorFields) err(object string, status int) *oisp.Error {
	if k := rawKind(f.Error); k != 0 && k != 'n' {
		return openaiErrorMember(f.Error)
	}
	if object == "error" || (status >= 400 && f.Message != "") {
		e := &oisp.Error{Type: string(f.Type), Message: string(f.Message), Code: string(f.Code)}
		if e.Type == "" {
			e.Type = "error"
		}
		return e
	}
	if status >= 400 {
		if msg := rawText(f.Detail); msg != "" {
			return &oisp.Error{Type: "error", Message: msg}
		}
	}
	return nil
}

// decodeOpenAIEmbeddingsRequest fills res.Request from an embeddings
// request body; it returns the model, the number of inputs and the
// requested dimensions (0 when not given).
func decodeOpenAIEmbeddingsRequest(body []byte, res *Result) (model string, inputs, dims int) {
	req := res.Request
	req.Streaming = oisp.Ptr(false)
	var b embeddingsRequestBody
	if !decodeRequestBody(body, &b, res) {
		finishRequest(req)
		return "", 0, 0
	}
	model = string(b.Model)
	if model != "" {
		req.Model = &oisp.Model{ID: model}
	}
	inputs = embeddingInputCount(b.Input)
	req.InputCount = inputs
	finishRequest(req)
	return model, inputs, b.Dimensions.V
}

// embeddingInputCount counts inputs: a string or one token array is one
// input; an array of strings or of token arrays is one per element.
func embeddingInputCount(raw json.RawMessage) int {
	switch rawKind(raw) {
	case '"':
		return 1
	case '[':
		i := bytes.IndexByte(raw, '[') + 1
		for i < len(raw) && isSpace(raw[i]) {
			i++
		}
		if i < len(raw) && (raw[i] == '-' || (raw[i] >= '0' && raw[i] <= '9')) {
			return 1
		}
		if n := countArray(raw); n > 0 {
			return n
		}
	}
	return 0
}

// decodeOpenAIEmbeddingsResponse fills emb from an embeddings response
// body.
func decodeOpenAIEmbeddingsResponse(body []byte, res *Result, emb *oisp.AIEmbedding) {
	decodeOpenAIEmbeddingsResponseScanning(body, res, emb, true)
}

// decodeOpenAIEmbeddingsResponseScanning is decodeOpenAIEmbeddingsResponse
// with the vector scanner optional (tests compare both ways).
func decodeOpenAIEmbeddingsResponseScanning(body []byte, res *Result, emb *oisp.AIEmbedding, scan bool) {
	var b embeddingsResponseBody
	// The vectors are measured by a scanner when the body has the usual
	// shape; the decoder then reads the rest with an empty data array.
	var (
		rest        []byte
		count, dims int
		measured    bool
	)
	if scan {
		rest, count, dims, measured = measureOpenAIEmbeddingData(body)
	}
	if measured {
		body = rest
	}
	if !decodeResponseBody(body, &b, res) {
		return
	}
	if b.Model != "" {
		emb.Model = &oisp.Model{ID: string(b.Model)}
	}
	if e := b.err(string(b.Object), emb.StatusCode); e != nil {
		emb.Success = oisp.Ptr(false)
		emb.Error = e
		return
	}
	switch {
	case measured:
		emb.EmbeddingCount, emb.Dimensions = count, dims
	default:
		emb.EmbeddingCount = len(b.Data)
		if len(b.Data) > 0 {
			emb.Dimensions = int(b.Data[0].Embedding)
		}
	}
	if b.Usage != nil {
		u := openaiUsage(res, b.Usage)
		if u != nil {
			// Embeddings have no completion; a provider that reports
			// only total_tokens reports the input.
			if u.PromptTokens == nil {
				u.PromptTokens = u.TotalTokens
			}
			emb.Usage = u
			emb.TotalTokens = u.TotalTokens
		}
	}
}

// embeddingSize is the dimension count of a vector, measured while the
// body is decoded so that the vector itself is never kept.
type embeddingSize int

// UnmarshalJSON never fails.
func (n *embeddingSize) UnmarshalJSON(b []byte) error {
	*n = embeddingSize(embeddingDimensions(b))
	return nil
}

// embeddingDimensions is the length of a vector given as a float array or
// as base64 little-endian float32s.
func embeddingDimensions(raw json.RawMessage) int {
	switch rawKind(raw) {
	case '[':
		if n := countArray(raw); n > 0 {
			return n
		}
	case '"':
		// A base64 vector is measured in place when it needs no
		// unescaping; only an escaped one is decoded to a string first.
		s, ok := plainStringBytes(raw)
		if !ok {
			decoded, _ := rawString(raw)
			s = []byte(decoded)
		}
		n := len(s)
		for n > 0 && s[n-1] == '=' {
			n--
		}
		return n * 6 / 8 / 4
	}
	return 0
}
