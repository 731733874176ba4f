package provider

import (
	"bytes"
	"net/url"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stream"
)

// Hugging Face serverless inference (api-inference.huggingface.co, and
// router.huggingface.co/hf-inference that replaced it):
//
//	POST /models/{owner}/{model}  {"inputs": "…", "parameters": {…}, "stream": bool}
//	     → [{"generated_text": "…", "details": {…}}] (text generation)
//	     → TGI's SSE when streamed: {"token": {"text": …}, "generated_text":
//	       null} per token, the last event with the whole generated_text
//	       and details (finish_reason, generated_tokens)
//	     → {"error": "…"} or plain text ("Not Found") when it fails
//
// Reported as a legacy completion: the inputs string is the user's
// prompt, the generated text the answer (as returned: by default it
// repeats the prompt, unless parameters.return_full_text is false). A
// model's own OpenAI-compatible routes (/models/{id}/v1/chat/completions)
// are left to the OpenAI decoders.

const apiHuggingFaceInference = "huggingface.inference"

type huggingFaceInferenceAPI struct{}

func (huggingFaceInferenceAPI) Name() string { return apiHuggingFaceInference }

func (huggingFaceInferenceAPI) Match(t Target, x *httpmsg.Exchange) bool {
	return t.ProviderID == "huggingface" && isPost(x) && huggingFaceModel(trimPath(x)) != ""
}

// huggingFaceModel returns the model of an inference path
// (/models/{model} or /models/{owner}/{model}, under /hf-inference on the
// router); "" for any other path.
func huggingFaceModel(path string) string {
	path = strings.TrimPrefix(path, "/hf-inference")
	rest, ok := strings.CutPrefix(path, "/models/")
	if !ok || rest == "" || strings.Count(rest, "/") > 1 {
		return ""
	}
	if u, err := url.PathUnescape(rest); err == nil {
		rest = u
	}
	return rest
}

type huggingFaceRequestBody struct {
	Inputs     json.RawMessage `json:"inputs"`
	Stream     jBool           `json:"stream"`
	Parameters *struct {
		Temperature      jFloat          `json:"temperature"`
		TopP             jFloat          `json:"top_p"`
		MaxNewTokens     jInt            `json:"max_new_tokens"`
		Stop             json.RawMessage `json:"stop"`
		StopSequences    json.RawMessage `json:"stop_sequences"`
		FrequencyPenalty jFloat          `json:"frequency_penalty"`
	} `json:"parameters"`
}

// huggingFaceGeneration is one generation of an answer, or one event of
// a TGI stream.
type huggingFaceGeneration struct {
	GeneratedText *jStr `json:"generated_text"`
	Token         *struct {
		Text    jStr  `json:"text"`
		Special jBool `json:"special"`
	} `json:"token"`
	Details *struct {
		FinishReason    jStr `json:"finish_reason"`
		GeneratedTokens jInt `json:"generated_tokens"`
	} `json:"details"`
	Error json.RawMessage `json:"error"`
}

func (huggingFaceInferenceAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	res := newResult(apiHuggingFaceInference, t, x, oisp.RequestCompletion)
	req := res.Request
	req.Model = &oisp.Model{ID: huggingFaceModel(trimPath(x))}
	req.Streaming = oisp.Ptr(false)
	var b huggingFaceRequestBody
	if decodeRequestBody(x.Request.Body.Data, &b, res) {
		req.Streaming = oisp.Ptr(b.Stream.V)
		if s, ok := rawString(b.Inputs); ok {
			req.Messages = append(req.Messages, newMessage("user", s, 0))
			req.InputCount = 1
		}
		if p := b.Parameters; p != nil {
			stop := stringList(p.Stop)
			if stop == nil {
				stop = stringList(p.StopSequences)
			}
			req.Parameters = &oisp.Parameters{
				Temperature:      p.Temperature.Ptr(),
				TopP:             p.TopP.Ptr(),
				MaxTokens:        p.MaxNewTokens.Ptr(),
				Stop:             stop,
				FrequencyPenalty: p.FrequencyPenalty.Ptr(),
			}
		}
	}
	finishRequest(req)
	if resp := startResponse(res, x); resp != nil {
		if looksSSE(x) {
			decodeSSEStream(&huggingFaceStream{}, x, res, resp)
		} else {
			decodeHuggingFaceResponse(x.Response.Body.Data, res, resp)
		}
		endResponse(res, resp, x)
	}
	finishResult(env, t.ProviderID, res)
	return res, nil
}

// decodeHuggingFaceResponse reads a whole answer: a list of generations
// (or one), or an error ({"error": "…"}, or text that is not JSON).
func decodeHuggingFaceResponse(body []byte, res *Result, resp *oisp.AIResponse) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return
	}
	var gens []huggingFaceGeneration
	switch rawKind(body) {
	case '[':
		if _, err := decodeLoose(body, &gens); err != nil {
			res.note(noteResponseNotJSON)
			return
		}
	case '{':
		var g huggingFaceGeneration
		if _, err := decodeLoose(body, &g); err != nil {
			res.note(noteResponseNotJSON)
			return
		}
		gens = append(gens, g)
	default:
		// The retired host answers a plain "Not Found": noted as every
		// API notes a body that is not JSON; a failed status gets the
		// generic error with the text.
		res.note(noteResponseNotJSON)
		return
	}
	var s huggingFaceStream
	for i := range gens {
		s.add(&gens[i], time.Time{})
	}
	s.fill(resp)
}

// huggingFaceStream reassembles a TGI stream (or merges a whole answer's
// generations, the first of which is the answer).
type huggingFaceStream struct {
	text         strings.Builder
	whole        *string // generated_text of the last event / the answer
	finishReason string
	tokens       jInt
	err          *oisp.Error
	events, bad  int
	contentClock
}

func (s *huggingFaceStream) addSSE(ev *stream.SSEEvent) {
	var g huggingFaceGeneration
	if _, err := decodeLoose(ev.Data, &g); err != nil {
		s.bad++
		return
	}
	s.events++
	s.add(&g, ev.At)
}

func (s *huggingFaceStream) add(g *huggingFaceGeneration, at time.Time) {
	if k := rawKind(g.Error); k != 0 && k != 'n' && s.err == nil {
		s.err = &oisp.Error{Type: "error", Message: rawText(g.Error)}
	}
	if g.Token != nil && !g.Token.Special.V && g.Token.Text != "" {
		s.text.WriteString(string(g.Token.Text))
		s.content(at)
	}
	if g.GeneratedText != nil && s.whole == nil {
		w := string(*g.GeneratedText)
		s.whole = &w
		s.content(at)
	}
	if d := g.Details; d != nil && s.finishReason == "" {
		s.finishReason = string(d.FinishReason)
		s.tokens = d.GeneratedTokens
	}
}

// finish completes a streamed answer: it ended with the event carrying
// the whole generated text.
func (s *huggingFaceStream) finish(res *Result, resp *oisp.AIResponse) {
	resp.StreamEvents = s.events
	noteBadEvents(res, s.bad)
	endStream(res, resp, s.err, s.events, s.whole != nil)
	if s.err == nil {
		s.fill(resp)
	}
}

// fill writes the answer: the whole generated text when it arrived, else
// the tokens streamed so far.
func (s *huggingFaceStream) fill(resp *oisp.AIResponse) {
	if s.err != nil {
		setFailure(resp, s.err, resp.StatusCode < 400)
		return
	}
	text := s.text.String()
	if s.whole != nil {
		text = *s.whole
	}
	fr := huggingFaceFinish(s.finishReason)
	resp.Choices = oneChoice(text, fr, rawIfDifferent(s.finishReason, fr))
	resp.FinishReason = fr
	if s.tokens.OK {
		resp.Usage = &oisp.Usage{CompletionTokens: s.tokens.Ptr()}
	}
}

// huggingFaceFinish maps TGI finish reasons (length, eos_token,
// stop_sequence).
func huggingFaceFinish(raw string) string {
	if raw == "eos_token" {
		return oisp.FinishStop
	}
	return oisp.FinishReason(raw)
}
