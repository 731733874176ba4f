package provider

// OpenAI image, audio and moderation endpoints (and their Azure and
// compatible-provider twins): POST …/images/generations|edits|variations,
// …/audio/speech|transcriptions|translations, …/moderations. They carry
// request_type image, audio or moderation; the decoder reports the model
// (JSON body, or the "model" field of a multipart form), the prompt or
// input as a user message, the HTTP outcome, errors and usage when the
// API reports it (gpt-image-1 and the gpt-4o transcription models do).

import (
	"bytes"
	json "github.com/goccy/go-json"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

const (
	apiOpenAIImages      = "openai.images"
	apiOpenAIAudio       = "openai.audio"
	apiOpenAIModerations = "openai.moderations"
)

// openaiMediaAPI decodes one of the media endpoints.
type openaiMediaAPI struct {
	name, requestType string
	suffixes          []string
}

func openaiMediaAPIs() []API {
	return []API{
		openaiMediaAPI{apiOpenAIImages, oisp.RequestImage, []string{"/images/generations", "/images/edits", "/images/variations"}},
		openaiMediaAPI{apiOpenAIAudio, oisp.RequestAudio, []string{"/audio/speech", "/audio/transcriptions", "/audio/translations"}},
		openaiMediaAPI{apiOpenAIModerations, oisp.RequestModeration, []string{"/moderations"}},
	}
}

func (a openaiMediaAPI) Name() string { return a.name }

// Match accepts registry hosts only: without a body shape to check, an
// unknown host's /moderations or /audio/speech is too weak a signal.
func (a openaiMediaAPI) Match(t Target, x *httpmsg.Exchange) bool {
	if !t.Known || !isPost(x) {
		return false
	}
	p := trimPath(x)
	for _, s := range a.suffixes {
		if strings.HasSuffix(p, s) {
			return true
		}
	}
	return false
}

type mediaRequestBody struct {
	Model  jStr            `json:"model"`
	Prompt jStr            `json:"prompt"`
	Input  json.RawMessage `json:"input"`
	N      jInt            `json:"n"`
	Stream jBool           `json:"stream"`
}

type mediaResponseBody struct {
	ID      jStr              `json:"id"`
	Model   jStr              `json:"model"`
	Text    *jStr             `json:"text"` // transcriptions
	Data    []json.RawMessage `json:"data"`
	Results []struct {
		Flagged jBool `json:"flagged"`
	} `json:"results"` // moderations
	Usage *openaiUsageBody `json:"usage"`
	openaiErrorFields
}

func (a openaiMediaAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(a.name, t, x, a.requestType)
	req := res.Request
	req.Streaming = oisp.Ptr(false)
	b, isForm := mediaRequest(x, res)
	if b.Model != "" {
		req.Model = &oisp.Model{ID: string(b.Model)}
	} else {
		setDeploymentModel(req, x)
	}
	if b.Stream.OK && b.Stream.V {
		req.Streaming = oisp.Ptr(true)
	}
	switch {
	case b.Prompt != "":
		req.Messages = append(req.Messages, newMessage("user", string(b.Prompt), 0))
	case len(b.Input) > 0:
		for _, s := range promptTexts(b.Input) {
			req.Messages = append(req.Messages, newMessage("user", s, 0))
		}
		if rawKind(b.Input) == '[' && len(req.Messages) == 0 {
			req.InputCount = max(countArray(b.Input), 0)
		}
	}
	finishRequest(req)
	if isForm && a.requestType == oisp.RequestImage {
		req.ImageCount, req.HasImages = 1, true // edits and variations upload an image
	}

	if resp := startResponse(res, x); resp != nil {
		body := x.Response.Body.Data
		ct := strings.ToLower(x.Response.Header.Get("Content-Type"))
		switch {
		case looksSSE(x):
			resp.Streaming = oisp.Ptr(true)
			mediaStream(x, res, resp)
		case strings.Contains(ct, "json") || rawKind(body) == '{':
			mediaResponse(body, res, resp)
		case (a.requestType != oisp.RequestAudio || resp.StatusCode >= 400) && len(bytes.TrimSpace(body)) > 0:
			// Images and moderations always answer JSON, and every
			// endpoint fails in JSON: anything else (a proxy's HTML
			// page) is noted. Audio may answer audio bytes or text.
			mediaResponse(body, res, resp)
		}
		endResponse(res, resp, x)
	}
	finishResult(env, t.ProviderID, res)
	return res, nil
}

// mediaRequest reads a JSON or multipart request body.
func mediaRequest(x *httpmsg.Exchange, res *Result) (mediaRequestBody, bool) {
	var b mediaRequestBody
	body := x.Request.Body.Data
	mt, params, _ := mime.ParseMediaType(x.Request.Header.Get("Content-Type"))
	if mt == "multipart/form-data" && params["boundary"] != "" {
		fields := multipartFields(body, params["boundary"], "model", "prompt", "stream")
		b.Model, b.Prompt = jStr(fields["model"]), jStr(fields["prompt"])
		b.Stream = jBool{V: fields["stream"] == "true", OK: fields["stream"] != ""}
		return b, true
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return b, false
	}
	mismatch, err := decodeLoose(body, &b)
	switch {
	case err != nil:
		res.note(noteRequestNotJSON)
	case mismatch:
		res.note(noteRequestTypeMismatch)
	}
	return b, false
}

// maxFormField bounds the bytes read from one multipart text field.
const maxFormField = 64 << 10

// multipartFields returns the named text fields of a multipart body (file
// parts are skipped unread). A truncated body yields the fields before the
// cut.
func multipartFields(body []byte, boundary string, names ...string) map[string]string {
	out := map[string]string{}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if err != nil {
			return out
		}
		name := p.FormName()
		for _, want := range names {
			if name == want && p.FileName() == "" {
				v, _ := io.ReadAll(io.LimitReader(p, maxFormField))
				out[name] = strings.TrimSpace(string(v))
			}
		}
		p.Close()
	}
}

// mediaResponse decodes a JSON media response.
func mediaResponse(body []byte, res *Result, resp *oisp.AIResponse) {
	var b mediaResponseBody
	mismatch, err := decodeLoose(body, &b)
	if err != nil {
		res.note(noteResponseNotJSON)
		return
	}
	if mismatch {
		res.note(noteResponseTypeMismatch)
	}
	nameAnswer(resp, string(b.ID), string(b.Model))
	if e := b.err("", resp.StatusCode); e != nil {
		setFailure(resp, e, resp.StatusCode > 0 && resp.StatusCode < 400)
		return
	}
	if b.Text != nil {
		resp.Choices = oneChoice(string(*b.Text), oisp.FinishStop, "")
		resp.FinishReason = oisp.FinishStop
	}
	for _, r := range b.Results {
		if r.Flagged.V {
			resp.FinishReason = oisp.FinishContentFilter
		}
	}
	if b.Usage != nil {
		resp.Usage = openaiUsage(res, b.Usage)
	}
}

// mediaStream reads streamed transcriptions (transcript.text.delta /
// transcript.text.done) and image generations (image_generation.completed
// with usage).
func mediaStream(x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse) {
	var text strings.Builder
	var first bool
	for _, ev := range sseEvents(&x.Response.Body) {
		var e struct {
			Type  jStr             `json:"type"`
			Delta jStr             `json:"delta"`
			Text  jStr             `json:"text"`
			Usage *openaiUsageBody `json:"usage"`
			Error json.RawMessage  `json:"error"`
		}
		if _, err := decodeLoose(ev.Data, &e); err != nil {
			continue
		}
		resp.StreamEvents++
		if e.Delta != "" {
			text.WriteString(string(e.Delta))
			if !first {
				first = true
				resp.TimeToFirstTokenMS = msBetween(requestDone(x), ev.At)
			}
		}
		if strings.HasSuffix(string(e.Type), ".done") && e.Text != "" {
			text.Reset()
			text.WriteString(string(e.Text))
		}
		if e.Usage != nil {
			resp.Usage = openaiUsage(res, e.Usage)
		}
		if k := rawKind(e.Error); k == '{' || k == '"' {
			setFailure(resp, openaiErrorMember(e.Error), true)
		}
	}
	if text.Len() > 0 {
		resp.Choices = oneChoice(text.String(), "", "")
	}
}
