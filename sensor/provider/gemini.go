package provider

// Google Gemini API (generativelanguage.googleapis.com): generateContent,
// streamGenerateContent (SSE with ?alt=sse, a streamed JSON array
// otherwise), countTokens, embedContent and batchEmbedContents. Vertex AI
// serves the same bodies under project/location/publisher paths; vertex.go
// reuses everything here.
//
// Reusable entry points:
//
//	parseGooglePath(path string) (googlePath, bool)
//	    Splits /v1beta/models/{model}:{verb} and
//	    /v1/projects/{p}/locations/{l}/publishers/{pub}/models/{model}:{verb}.
//	decodeGeminiRequest(body []byte, res *Result)
//	    Fills res.Request from a GenerateContentRequest: messages (system
//	    instruction first; "model" → assistant; functionResponse parts → tool
//	    messages and res.ToolResults), tools, tool choice, parameters.
//	decodeGeminiResponse(x, res, resp)
//	    A whole response, an SSE stream or a JSON-array stream; usage,
//	    finish reason, tool calls, thinking, errors.
//
// Bodies may use the proto field names (snake_case) as well as the JSON
// names (lowerCamelCase): the API accepts both and clients mix them.

import (
	"bytes"
	json "github.com/goccy/go-json"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// API names of the Gemini decoders.
const (
	apiGeminiGenerate     = "gemini.generate_content"
	apiGeminiCountTokens  = "gemini.count_tokens"
	apiGeminiEmbed        = "gemini.embed_content"
	apiGeminiInteractions = "gemini.interactions"
)

// Notes of the Google decoders.
const (
	noteUnknownHostGoogle = "unknown_host_google_shape"
	noteStreamError       = "stream_error_event"
)

// ---------------------------------------------------------------- paths

// googlePath is a parsed Gemini or Vertex AI model path.
type googlePath struct {
	Version   string // "v1beta", "v1", "v1beta1"
	Project   string // Vertex only
	Location  string // Vertex only
	Publisher string // Vertex: "google", "anthropic", "mistralai", "meta"…; "" for Gemini
	Model     string // model id, URL-decoded ("gemini-2.5-flash", "claude-sonnet-4@20250514")
	Endpoint  string // Vertex endpoints/{id} paths: the endpoint id (Model is empty)
	Verb      string // generateContent, streamGenerateContent, rawPredict, …
}

// parseGooglePath splits a Gemini or Vertex AI path. It accepts
// /{version}/models/{m}:{verb}, /{version}/tunedModels/{m}:{verb},
// /{version}/publishers/{pub}/models/{m}:{verb} (Vertex express mode) and
// /{version}/projects/{p}/locations/{l}/publishers/{pub}/models/{m}:{verb}
// or …/endpoints/{e}:{verb}.
func parseGooglePath(path string) (googlePath, bool) {
	var p googlePath
	// Every API's Match asks about every exchange: a path that has no
	// colon, even escaped, is none of Google's, and one without a '%'
	// needs no unescaping (PathUnescape would return it as it is, after
	// looking at each of its bytes).
	escaped := strings.IndexByte(path, '%') >= 0
	if !escaped && strings.IndexByte(path, ':') < 0 {
		return p, false
	}
	if escaped {
		// The verb's colon, literal or escaped, is in the last segment:
		// a '/' after it, even escaped, rejects the path. Bedrock's model
		// paths (/model/x%3A0/converse) are refused here, before the
		// copy PathUnescape makes, by every Google API's Match.
		if !hasVerbColon(path[strings.LastIndexByte(path, '/')+1:]) {
			return p, false
		}
		if dec, err := url.PathUnescape(path); err == nil {
			path = dec
		}
	}
	path = strings.TrimPrefix(path, "/")
	colon := strings.LastIndexByte(path, ':')
	if colon < 0 || strings.IndexByte(path[colon:], '/') >= 0 {
		return p, false
	}
	p.Verb = path[colon+1:]
	var room [9]string // the segments of the longest path accepted
	segs := pathSegments(room[:0], path[:colon])
	if len(segs) < 3 || p.Verb == "" {
		return p, false
	}
	p.Version = segs[0]
	rest := segs[1:]
	if len(rest) >= 4 && rest[0] == "projects" && rest[2] == "locations" {
		p.Project, p.Location = rest[1], rest[3]
		rest = rest[4:]
	}
	if len(rest) == 2 && rest[0] == "endpoints" {
		p.Endpoint = rest[1]
		return p, p.Endpoint != ""
	}
	if len(rest) >= 2 && rest[0] == "publishers" {
		p.Publisher = rest[1]
		rest = rest[2:]
	}
	if len(rest) != 2 || (rest[0] != "models" && rest[0] != "tunedModels") || rest[1] == "" {
		return p, false
	}
	p.Model = rest[1]
	if rest[0] == "tunedModels" {
		p.Model = "tunedModels/" + p.Model
	}
	return p, true
}

// hasVerbColon reports whether an escaped path's last segment holds a
// colon, literal or escaped (%3A, %3a).
func hasVerbColon(seg string) bool {
	if strings.IndexByte(seg, ':') >= 0 {
		return true
	}
	for {
		i := strings.IndexByte(seg, '%')
		if i < 0 || i+2 >= len(seg) {
			return false
		}
		if seg[i+1] == '3' && (seg[i+2] == 'A' || seg[i+2] == 'a') {
			return true
		}
		seg = seg[i+1:]
	}
}

// pathSegments is strings.Split(s, "/") into buf's room when s has no
// more segments than that (every path parseGooglePath accepts).
func pathSegments(buf []string, s string) []string {
	if strings.Count(s, "/") >= cap(buf) {
		return strings.Split(s, "/")
	}
	for {
		i := strings.IndexByte(s, '/')
		if i < 0 {
			return append(buf, s)
		}
		buf = append(buf, s[:i])
		s = s[i+1:]
	}
}

// modelID is the model the path names (the endpoint id for endpoints).
func (p googlePath) modelID() string {
	if p.Model != "" {
		return p.Model
	}
	return p.Endpoint
}

// isGoogleGenerateVerb reports whether verb is a generateContent verb.
func isGoogleGenerateVerb(verb string) bool {
	return verb == "generateContent" || verb == "streamGenerateContent"
}

// ---------------------------------------------------------------- the API

// geminiAPI decodes the generativelanguage.googleapis.com model verbs. The
// same type, with vertex set, serves Vertex AI's Google publisher.
type geminiAPI struct {
	name   string
	vertex bool
	verbs  map[string]bool
}

func newGeminiAPIs() []API {
	return []API{
		&geminiAPI{name: apiGeminiGenerate, verbs: map[string]bool{"generateContent": true, "streamGenerateContent": true}},
		&geminiAPI{name: apiGeminiCountTokens, verbs: map[string]bool{"countTokens": true}},
		&geminiAPI{name: apiGeminiEmbed, verbs: map[string]bool{"embedContent": true, "batchEmbedContents": true}},
		geminiInteractionsAPI{},
	}
}

func (a *geminiAPI) Name() string { return a.name }

func (a *geminiAPI) Match(t Target, x *httpmsg.Exchange) bool {
	// The target settles most exchanges before the path is parsed (every
	// API's Match sees every exchange): Vertex's only Vertex hosts,
	// Gemini's Google's and unknown hosts.
	if a.vertex {
		if t.ProviderID != "google_vertex" {
			return false
		}
	} else if t.ProviderID != "google" && (t.ProviderID == "google_vertex" || t.Known) {
		return false
	}
	if !isPost(x) {
		return false
	}
	p, ok := parseGooglePath(x.Request.Path())
	if !ok || !a.verbs[p.Verb] {
		return false
	}
	switch {
	case a.vertex:
		return p.Publisher == "" || p.Publisher == "google"
	case t.ProviderID == "google":
		return true
	}
	// An unknown host (a gateway, a proxy) speaking the Gemini API: the
	// model path and verb are distinctive enough.
	return p.Model != ""
}

func (a *geminiAPI) Decode(t Target, x *httpmsg.Exchange, env Env) (*Result, error) {
	p, _ := parseGooglePath(x.Request.Path())
	return decodeGoogleModelVerb(a.name, t, p, x, env), nil
}

// decodeGoogleModelVerb decodes a generateContent, countTokens or embedding
// exchange on a Gemini or Vertex model path.
func decodeGoogleModelVerb(api string, t Target, p googlePath, x *httpmsg.Exchange, env Env) *Result {
	reqType := oisp.RequestChat
	switch p.Verb {
	case "countTokens":
		reqType = oisp.RequestOther
	case "embedContent", "batchEmbedContents", "predict":
		reqType = oisp.RequestEmbedding
	}
	res := newResult(api, t, x, reqType)
	if !t.Known {
		res.Notes = append(res.Notes, noteUnknownHostGoogle)
	}
	req := res.Request
	setGoogleProvider(req.Provider, p)
	if m := strings.TrimPrefix(p.modelID(), "models/"); m != "" {
		req.Model = &oisp.Model{ID: m}
	}
	switch reqType {
	case oisp.RequestEmbedding:
		decodeGoogleEmbedding(p, x, res)
	case oisp.RequestOther:
		decodeGeminiCountTokens(x, res)
	default:
		streaming := p.Verb == "streamGenerateContent"
		decodeGeminiRequest(x.Request.Body.Data, res)
		req.Streaming = oisp.Ptr(streaming)
		if x.Response != nil {
			resp := newResponse(res, x)
			decodeGeminiResponse(x, res, resp, streaming, envStats(env))
			res.Response = resp
		}
	}
	finishGoogle(env, t, p, x, res)
	return res
}

// setGoogleProvider records the Vertex project and location.
func setGoogleProvider(p *oisp.Provider, gp googlePath) {
	if gp.Project != "" {
		p.ProjectID = gp.Project
	}
	if gp.Location != "" && gp.Location != "global" {
		p.Region = gp.Location
	}
}

// finishGoogle completes a Google result: the response's request id from
// headers when the body had none, missing-response notes, enrichment.
func finishGoogle(env Env, t Target, p googlePath, x *httpmsg.Exchange, res *Result) {
	if x.Response == nil {
		res.note(noteNoResponse)
	} else {
		noteResponseBody(res, x)
	}
	id := t.ProviderID
	if id == "" || id == "other" {
		id = "google"
	}
	finishResult(env, id, res)
}

// ---------------------------------------------------------------- wire types

// geminiBlobSize records the length of a base64 field without copying it:
// inline data is described (type, size), never copied.
type geminiBlobSize int

// UnmarshalJSON never fails.
func (n *geminiBlobSize) UnmarshalJSON(b []byte) error {
	*n = geminiBlobSize(max(len(b)-2, 0) * 3 / 4)
	return nil
}

type geminiBlob struct {
	MimeType      jStr           `json:"mimeType"`
	MimeTypeSnake jStr           `json:"mime_type"`
	Data          geminiBlobSize `json:"data"`
	FileURI       jStr           `json:"fileUri"`
	FileURISnake  jStr           `json:"file_uri"`
}

func (b *geminiBlob) mime() string {
	if b.MimeType != "" {
		return string(b.MimeType)
	}
	return string(b.MimeTypeSnake)
}

type geminiFunctionCall struct {
	ID       jStr            `json:"id"`
	Name     jStr            `json:"name"`
	Args     json.RawMessage `json:"args"`
	Response json.RawMessage `json:"response"` // functionResponse
}

// geminiPart is one part of a content. Both spellings of every field are
// decoded.
type geminiPart struct {
	Text                  optStr              `json:"text"`
	Thought               jBool               `json:"thought"`
	InlineData            *geminiBlob         `json:"inlineData"`
	InlineDataSnake       *geminiBlob         `json:"inline_data"`
	FileData              *geminiBlob         `json:"fileData"`
	FileDataSnake         *geminiBlob         `json:"file_data"`
	FunctionCall          *geminiFunctionCall `json:"functionCall"`
	FunctionCallSnake     *geminiFunctionCall `json:"function_call"`
	FunctionResponse      *geminiFunctionCall `json:"functionResponse"`
	FunctionResponseSnake *geminiFunctionCall `json:"function_response"`
}

// camelOrSnake returns a member given in camelCase, else its snake_case
// spelling: Gemini accepts both (jInt.or is the same rule for numbers).
func camelOrSnake[T any](camel, snake *T) *T {
	if camel != nil {
		return camel
	}
	return snake
}

func (p *geminiPart) inline() *geminiBlob { return camelOrSnake(p.InlineData, p.InlineDataSnake) }

func (p *geminiPart) file() *geminiBlob { return camelOrSnake(p.FileData, p.FileDataSnake) }

func (p *geminiPart) call() *geminiFunctionCall {
	return camelOrSnake(p.FunctionCall, p.FunctionCallSnake)
}

func (p *geminiPart) result() *geminiFunctionCall {
	return camelOrSnake(p.FunctionResponse, p.FunctionResponseSnake)
}

type geminiContent struct {
	Role  jStr         `json:"role"`
	Parts []geminiPart `json:"parts"`
}

type geminiFunctionDecl struct {
	Name        jStr `json:"name"`
	Description jStr `json:"description"`
}

// geminiTool is one entry of "tools": function declarations, or one
// built-in tool (its key names it).
type geminiTool struct {
	FunctionDeclarations []geminiFunctionDecl
	Others               []string
}

// UnmarshalJSON reads the declarations and names every other key (a
// built-in tool: googleSearch, codeExecution, urlContext, …).
func (t *geminiTool) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil
	}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "functionDeclarations", "function_declarations":
			var decls []geminiFunctionDecl
			decodeLoose(v, &decls) //nolint:errcheck // broken declarations are skipped
			t.FunctionDeclarations = append(t.FunctionDeclarations, decls...)
		default:
			t.Others = append(t.Others, k)
		}
	}
	return nil
}

type geminiCallingConfig struct {
	Mode                      jStr   `json:"mode"`
	AllowedFunctionNames      []jStr `json:"allowedFunctionNames"`
	AllowedFunctionNamesSnake []jStr `json:"allowed_function_names"`
}

type geminiToolConfig struct {
	FunctionCallingConfig      *geminiCallingConfig `json:"functionCallingConfig"`
	FunctionCallingConfigSnake *geminiCallingConfig `json:"function_calling_config"`
}

// geminiGenerationConfig holds the sampling parameters in both spellings.
type geminiGenerationConfig struct {
	Temperature           jFloat          `json:"temperature"`
	TopP                  jFloat          `json:"topP"`
	TopPSnake             jFloat          `json:"top_p"`
	MaxOutputTokens       jInt            `json:"maxOutputTokens"`
	MaxOutputTokensSnake  jInt            `json:"max_output_tokens"`
	StopSequences         json.RawMessage `json:"stopSequences"`
	StopSequencesSnake    json.RawMessage `json:"stop_sequences"`
	PresencePenalty       jFloat          `json:"presencePenalty"`
	PresencePenaltySnake  jFloat          `json:"presence_penalty"`
	FrequencyPenalty      jFloat          `json:"frequencyPenalty"`
	FrequencyPenaltySnake jFloat          `json:"frequency_penalty"`
}

type geminiRequestBody struct {
	Model                  jStr                    `json:"model"`
	Contents               json.RawMessage         `json:"contents"`
	SystemInstruction      json.RawMessage         `json:"systemInstruction"`
	SystemInstructionSnake json.RawMessage         `json:"system_instruction"`
	Tools                  []geminiTool            `json:"tools"`
	ToolConfig             *geminiToolConfig       `json:"toolConfig"`
	ToolConfigSnake        *geminiToolConfig       `json:"tool_config"`
	GenerationConfig       *geminiGenerationConfig `json:"generationConfig"`
	GenerationConfigSnake  *geminiGenerationConfig `json:"generation_config"`
	CachedContent          jStr                    `json:"cachedContent"`
	// countTokens may wrap a whole generate request.
	GenerateContentRequest *geminiRequestBody `json:"generateContentRequest"`
}

type geminiUsageBody struct {
	PromptTokenCount        jInt `json:"promptTokenCount"`
	CandidatesTokenCount    jInt `json:"candidatesTokenCount"`
	TotalTokenCount         jInt `json:"totalTokenCount"`
	CachedContentTokenCount jInt `json:"cachedContentTokenCount"`
	ThoughtsTokenCount      jInt `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount jInt `json:"toolUsePromptTokenCount"`
}

type geminiCandidate struct {
	Content      *geminiContent `json:"content"`
	FinishReason jStr           `json:"finishReason"`
	Index        jInt           `json:"index"`
}

type googleErrorBody struct {
	Code    jInt `json:"code"`
	Message jStr `json:"message"`
	Status  jStr `json:"status"`
}

type geminiResponseBody struct {
	Candidates     []geminiCandidate     `json:"candidates"`
	UsageMetadata  *geminiUsageBody      `json:"usageMetadata"`
	ModelVersion   jStr                  `json:"modelVersion"`
	ResponseID     jStr                  `json:"responseId"`
	PromptFeedback *geminiPromptFeedback `json:"promptFeedback"`
	Error          json.RawMessage       `json:"error"`
}

type geminiPromptFeedback struct {
	BlockReason jStr `json:"blockReason"`
}

// reset empties the body for the next decode, as a new one would be, but
// keeps the array of its candidates, and returns it.
func (b *geminiResponseBody) reset() *geminiResponseBody {
	candidates := b.Candidates[:0]
	clear(candidates[:cap(candidates)])
	*b = geminiResponseBody{Candidates: candidates}
	return b
}

// ---------------------------------------------------------------- request

// geminiRequestRoom is a request body and what its system instruction and
// contents are read into, lent together by geminiRequestRooms: the
// contents of a conversation, their parts and the tools are kept
// (cleared) for the next request instead of grown anew. What a result
// keeps is copied out (strings) or points into the body, never into the
// room.
type geminiRequestRoom struct {
	body     geminiRequestBody
	system   geminiContent
	contents geminiContentList
}

var geminiRequestRooms = sync.Pool{New: func() any { return new(geminiRequestRoom) }}

// reset empties the room as a new one would be, keeping its arrays
// (cleared: nothing of the body stays reachable).
func (r *geminiRequestRoom) reset() {
	tools := r.body.Tools[:0]
	clear(tools[:cap(tools)])
	r.body = geminiRequestBody{Tools: tools}
	r.system = geminiContent{Parts: clearedParts(r.system.Parts)}
	contents := r.contents[:cap(r.contents)]
	for i := range contents {
		contents[i] = geminiContent{Parts: clearedParts(contents[i].Parts)}
	}
	r.contents = contents[:0]
}

// clearedParts is parts emptied, its array cleared for reuse.
func clearedParts(parts []geminiPart) []geminiPart {
	parts = parts[:0]
	clear(parts[:cap(parts)])
	return parts
}

// decodeGeminiRequest fills res.Request from a GenerateContentRequest body.
func decodeGeminiRequest(body []byte, res *Result) {
	req := res.Request
	room := geminiRequestRooms.Get().(*geminiRequestRoom)
	defer geminiRequestRooms.Put(room)
	defer room.reset()
	b := &room.body
	if !decodeRequestBody(body, b, res) {
		finishRequest(req)
		return
	}
	if b.GenerateContentRequest != nil && len(b.Contents) == 0 {
		*b = *b.GenerateContentRequest
	}
	if req.Model == nil && b.Model != "" {
		req.Model = &oisp.Model{ID: strings.TrimPrefix(string(b.Model), "models/")}
	}
	sys := b.SystemInstruction
	if len(sys) == 0 {
		sys = b.SystemInstructionSnake
	}
	contents := geminiContents(b.Contents, &room.contents)
	system, images, hasSystem := geminiSystem(sys, &room.system)
	if hasSystem {
		req.Messages = make([]oisp.Message, 0, len(contents)+1)
		req.Messages = append(req.Messages, newMessage("system", system, images))
	} else if len(contents) > 0 {
		req.Messages = make([]oisp.Message, 0, len(contents))
	}
	for i := range contents {
		req.Messages = append(req.Messages, geminiRequestMessage(&contents[i], res))
	}
	if hasSystem {
		// Set once every message is in: the prompt takes the system
		// message's hash, made with the others'.
		setSystemPrompt(req, system)
	}
	for _, t := range b.Tools {
		for _, d := range t.FunctionDeclarations {
			req.Tools = append(req.Tools, oisp.ToolDefinition{Name: string(d.Name), Description: string(d.Description), Type: "function"})
		}
		for _, k := range t.Others {
			req.Tools = append(req.Tools, oisp.ToolDefinition{Name: geminiBuiltinName(k), Type: geminiBuiltinType(k)})
		}
	}
	tc := camelOrSnake(b.ToolConfig, b.ToolConfigSnake)
	if tc != nil {
		req.ToolChoice = geminiToolChoice(tc)
	}
	gc := camelOrSnake(b.GenerationConfig, b.GenerationConfigSnake)
	if gc != nil {
		req.Parameters = geminiParameters(gc)
	}
	finishRequest(req)
}

// geminiContents reads "contents": an array of contents, or (tolerated) a
// single content object, into room.
func geminiContents(raw json.RawMessage, room *geminiContentList) []geminiContent {
	switch rawKind(raw) {
	case '[':
		decodeLoose(raw, room) //nolint:errcheck // a broken array yields what decoded
		return *room
	case '{':
		c := room.one()
		if _, err := decodeLoose(raw, c); err == nil {
			return (*room)[:1]
		}
	}
	return nil
}

// geminiSystem reads a system instruction into c: a content object, or a
// plain string (accepted by the SDKs).
func geminiSystem(raw json.RawMessage, c *geminiContent) (string, int, bool) {
	switch rawKind(raw) {
	case '"':
		s, _ := rawString(raw)
		return s, 0, true
	case '{':
		if _, err := decodeLoose(raw, c); err != nil {
			return "", 0, false
		}
		text, images, _ := geminiFlatten(c.Parts, nil)
		return text, images, true
	}
	return "", 0, false
}

// geminiFlatten renders parts as text: text parts joined, thoughts left
// out, function responses as their JSON; images counted, other inline or
// file data left out. Function responses become ToolResults when results
// is not nil. onlyResults reports whether every part was a function
// response.
func geminiFlatten(parts []geminiPart, results *[]ToolResult) (text string, images int, onlyResults bool) {
	var kept [4]string // most contents have a part or two
	texts := kept[:0]
	onlyResults = len(parts) > 0
	for i := range parts {
		p := &parts[i]
		r := p.result()
		if r == nil {
			onlyResults = false
		}
		switch {
		case p.Text.OK:
			if !p.Thought.V {
				texts = append(texts, string(p.Text.V))
			}
		case p.inline() != nil:
			if strings.HasPrefix(p.inline().mime(), "image/") {
				images++
			}
		case p.file() != nil:
			if strings.HasPrefix(p.file().mime(), "image/") {
				images++
			}
		case r != nil:
			out := compactJSON(r.Response)
			texts = append(texts, out)
			if results != nil {
				*results = append(*results, ToolResult{CallID: string(r.ID), Name: string(r.Name), Content: out, IsError: geminiResultIsError(r.Response)})
			}
		}
	}
	return joinText(texts), images, onlyResults
}

// geminiResultIsError reports whether a function response carries an
// "error" member (the SDKs' convention for failed tools).
func geminiResultIsError(raw json.RawMessage) bool {
	if rawKind(raw) != '{' {
		return false
	}
	var m struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(raw, &m) == nil && len(m.Error) > 0 && rawKind(m.Error) != 'n'
}

// geminiRequestMessage turns one request content into a message and adds
// its function responses to the result's tool results. A user turn made
// only of function responses is a tool message.
func geminiRequestMessage(c *geminiContent, res *Result) oisp.Message {
	first := len(res.ToolResults)
	text, images, onlyResults := geminiFlatten(c.Parts, &res.ToolResults)
	results := res.ToolResults[first:]
	role := string(c.Role)
	if role == "" {
		role = "user"
	}
	var msg oisp.Message
	if onlyResults {
		msg = newMessage("tool", text, images)
		if role != "tool" {
			msg.OriginalRole = role
		}
		if len(results) == 1 {
			msg.ToolCallID = results[0].CallID
			msg.Name = results[0].Name
		}
	} else {
		msg = newMessage(role, text, images)
	}
	return msg
}

// geminiBuiltinName names a built-in tool key in snake_case.
func geminiBuiltinName(key string) string {
	var b strings.Builder
	for i, r := range key {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// geminiBuiltinType maps a built-in tool onto the tool_definition enum.
func geminiBuiltinType(key string) string {
	switch geminiBuiltinName(key) {
	case "code_execution":
		return "code_interpreter"
	case "file_search", "retrieval":
		return "file_search"
	case "computer_use":
		return "computer_use"
	}
	return "other"
}

// geminiToolChoice renders functionCallingConfig: AUTO → auto, NONE →
// none, ANY → required (or the one allowed function's name).
func geminiToolChoice(tc *geminiToolConfig) string {
	fc := camelOrSnake(tc.FunctionCallingConfig, tc.FunctionCallingConfigSnake)
	if fc == nil {
		return ""
	}
	allowed := append(fc.AllowedFunctionNames, fc.AllowedFunctionNamesSnake...)
	switch strings.ToUpper(string(fc.Mode)) {
	case "AUTO", "MODE_UNSPECIFIED", "1", "0":
		return "auto"
	case "NONE", "3":
		return "none"
	case "ANY", "2":
		if len(allowed) == 1 {
			return string(allowed[0])
		}
		return "required"
	case "VALIDATED", "4":
		return "validated"
	case "":
		return ""
	}
	return strings.ToLower(string(fc.Mode))
}

// geminiParameters reads generationConfig.
func geminiParameters(gc *geminiGenerationConfig) *oisp.Parameters {
	p := &oisp.Parameters{
		Temperature:      gc.Temperature.Ptr(),
		TopP:             gc.TopP.or(gc.TopPSnake).Ptr(),
		PresencePenalty:  gc.PresencePenalty.or(gc.PresencePenaltySnake).Ptr(),
		FrequencyPenalty: gc.FrequencyPenalty.or(gc.FrequencyPenaltySnake).Ptr(),
		MaxTokens:        gc.MaxOutputTokens.or(gc.MaxOutputTokensSnake).Ptr(),
		Stop:             stringList(gc.StopSequences),
	}
	if p.Stop == nil {
		p.Stop = stringList(gc.StopSequencesSnake)
	}
	return p
}

// ---------------------------------------------------------------- response

// geminiFinishNames maps the numeric FinishReason values (sent with
// enum-encoding=int) to their names.
var geminiFinishNames = [...]string{
	"FINISH_REASON_UNSPECIFIED", "STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER",
	"LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MALFORMED_FUNCTION_CALL",
	"IMAGE_SAFETY", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
}

// geminiFinishName returns the FinishReason name of a raw value (a name or
// a number).
func geminiFinishName(raw string) string {
	if raw == "" || raw[0] < '0' || raw[0] > '9' {
		return raw
	}
	n := 0
	for _, c := range raw {
		if c < '0' || c > '9' || n > len(geminiFinishNames) {
			return raw
		}
		n = n*10 + int(c-'0')
	}
	if n < len(geminiFinishNames) {
		return geminiFinishNames[n]
	}
	return raw
}

// geminiFinish maps a FinishReason onto the finish_reason enum. A response
// that called functions finished with tool_calls whatever Gemini says
// (it says STOP).
func geminiFinish(raw string, calledTools bool) string {
	name := geminiFinishName(raw)
	switch strings.ToUpper(name) {
	case "":
		if calledTools {
			return oisp.FinishToolCalls
		}
		return ""
	case "STOP":
		if calledTools {
			return oisp.FinishToolCalls
		}
		return oisp.FinishStop
	case "FINISH_REASON_UNSPECIFIED", "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "LANGUAGE", "OTHER":
		// The model produced something unusable, but the exchange did
		// not fail: not "error".
		return oisp.FinishOther
	}
	return oisp.FinishReason(name)
}

// geminiUsage normalises usageMetadata. Gemini reports thinking tokens
// apart from candidatesTokenCount and tool-use prompt tokens apart from
// promptTokenCount; following the sensor's convention completion_tokens
// includes reasoning (thoughts) and prompt_tokens every input token, so
// prompt + completion = totalTokenCount. Cached content tokens are part of
// promptTokenCount already.
// Its block is keep's (see newUsageBlock).
func geminiUsage(keep *Result, u *geminiUsageBody) *oisp.Usage {
	if u == nil || !(u.PromptTokenCount.OK || u.CandidatesTokenCount.OK || u.TotalTokenCount.OK || u.ThoughtsTokenCount.OK) {
		return nil
	}
	blk := keep.newUsageBlock()
	out := &blk.usage
	out.PromptTokens = blk.count(u.PromptTokenCount.V + u.ToolUsePromptTokenCount.V)
	out.CompletionTokens = blk.count(u.CandidatesTokenCount.V + u.ThoughtsTokenCount.V)
	out.TotalTokens = blk.of(u.TotalTokenCount)
	if u.ThoughtsTokenCount.OK {
		out.ReasoningTokens = blk.of(u.ThoughtsTokenCount)
	}
	if u.CachedContentTokenCount.OK {
		out.CachedTokens = blk.of(u.CachedContentTokenCount)
	}
	return out
}

// googleError reads a Google error member ({code, message, status}) or a
// bare string; nil when absent.
func googleError(raw json.RawMessage) *oisp.Error {
	switch rawKind(raw) {
	case 0, 'n':
		return nil
	case '{':
		var e googleErrorBody
		if _, err := decodeLoose(raw, &e); err != nil {
			return &oisp.Error{Type: "error"}
		}
		out := &oisp.Error{Type: string(e.Status), Message: string(e.Message)}
		if e.Code.OK {
			out.Code = itoa(e.Code.V)
		}
		if out.Type == "" {
			out.Type = "error"
		}
		return out
	}
	return &oisp.Error{Type: "error", Message: rawText(raw)}
}

// geminiAcc reassembles a response from one body or many stream chunks.
type geminiAcc struct {
	id, model    string
	text         strings.Builder
	thinking     strings.Builder
	calls        []oisp.ToolCall
	finish       string
	blockReason  string
	usage        *geminiUsageBody
	err          *oisp.Error
	chunks       int
	badChunks    int
	contentClock // when the first content arrived
	// seen and finished are bit sets of the candidate indexes (below 64)
	// that appeared and that carried a finishReason; lastFinished says
	// whether the latest chunk had candidates and all of them finished.
	// Together they are the end of an SSE stream, which has no end marker
	// of its own: a finishReason comes only with a candidate's last chunk.
	seen, finished uint64
	lastFinished   bool
	beyond         bool // a candidate index past the bit sets' reach
	// chunk is the decode target of every chunk (see
	// geminiResponseBody.reset).
	chunk geminiResponseBody
	// strs holds the model version and response id every chunk repeats
	// (see memo.Strings).
	strs memo.Strings
}

// geminiAccs lends the accumulators of responses: the chunk target's
// candidates array is kept (cleared) instead of made for every response.
var geminiAccs = sync.Pool{New: func() any { return new(geminiAcc) }}

// reset empties the accumulator as a new one would be but for the chunk
// target's cleared candidates array. What fill handed out (the texts, the
// calls) is the response's now, not the accumulator's.
func (a *geminiAcc) reset() {
	*a = geminiAcc{chunk: *a.chunk.reset()}
}

// add merges one response object (a whole body or one stream chunk).
func (a *geminiAcc) add(data []byte, at time.Time) {
	b := a.chunk.reset()
	if _, err := decodeLooseMemo(data, b, &a.strs); err != nil {
		a.badChunks++
		return
	}
	a.chunks++
	if e := googleError(b.Error); e != nil && a.err == nil {
		a.err = e
	}
	if b.ResponseID != "" {
		a.id = string(b.ResponseID)
	}
	if b.ModelVersion != "" {
		a.model = string(b.ModelVersion)
	}
	if b.UsageMetadata != nil {
		a.usage = b.UsageMetadata
	}
	if b.PromptFeedback != nil && b.PromptFeedback.BlockReason != "" {
		a.blockReason = string(b.PromptFeedback.BlockReason)
	}
	a.lastFinished = len(b.Candidates) > 0
	for i := range b.Candidates {
		c := &b.Candidates[i]
		a.track(c.Index.V, c.FinishReason != "")
		if c.Index.V != 0 { // only the first candidate is reassembled
			continue
		}
		if c.FinishReason != "" {
			a.finish = string(c.FinishReason)
		}
		if c.Content == nil {
			continue
		}
		for j := range c.Content.Parts {
			a.part(&c.Content.Parts[j], at)
		}
	}
}

// track notes that candidate idx appeared in the latest chunk, finished or
// not. An index beyond the bit sets' reach can never look finished.
func (a *geminiAcc) track(idx int, finished bool) {
	if idx < 0 || idx >= 64 {
		a.lastFinished, a.beyond = false, true
		return
	}
	a.seen |= 1 << idx
	if finished {
		a.finished |= 1 << idx
	} else {
		a.lastFinished = false
	}
}

// sseEnded reports whether an SSE stream reached its end: every chunk
// decoded, the last one finished all its candidates, and every candidate
// seen has finished.
func (a *geminiAcc) sseEnded() bool {
	return a.chunks > 0 && a.badChunks == 0 && a.lastFinished && !a.beyond && a.seen&^a.finished == 0
}

// maxGeminiCalls bounds the tool calls kept from one response.
const maxGeminiCalls = 4096

func (a *geminiAcc) part(p *geminiPart, at time.Time) {
	switch {
	case p.Text.OK:
		if p.Thought.V {
			a.thinking.WriteString(string(p.Text.V))
		} else {
			a.text.WriteString(string(p.Text.V))
		}
		if p.Text.V != "" {
			a.content(at)
		}
	case p.call() != nil:
		fc := p.call()
		if len(a.calls) < maxGeminiCalls {
			a.calls = append(a.calls, toolCall(string(fc.ID), string(fc.Name), "function", compactJSON(fc.Args)))
		}
		a.content(at)
	case p.inline() != nil:
		a.content(at)
	}
}

// fill writes the reassembled response into resp.
func (a *geminiAcc) fill(res *Result, resp *oisp.AIResponse) {
	noteBadEvents(res, a.badChunks)
	nameAnswer(resp, a.id, a.model)
	resp.Usage = geminiUsage(res, a.usage)
	if a.err != nil {
		setFailure(resp, a.err, resp.StatusCode > 0 && resp.StatusCode < 400)
		return
	}
	if a.chunks == 0 {
		return
	}
	raw := a.finish
	fr := geminiFinish(raw, len(a.calls) > 0)
	if raw == "" && a.blockReason != "" {
		raw, fr = a.blockReason, oisp.FinishContentFilter
	}
	text := a.text.String()
	resp.Choices = oneChoice(text, fr, rawIfDifferent(geminiFinishName(raw), fr))
	resp.FinishReason = fr
	setToolCalls(resp, a.calls)
	setThinking(resp, a.thinking.String())
}

// decodeGeminiResponse decodes a generateContent response: one JSON object,
// an SSE stream (alt=sse), or a JSON array of chunks (streaming without
// alt=sse). The body's shape decides, not the request: error replies to
// streaming requests are plain JSON.
func decodeGeminiResponse(x *httpmsg.Exchange, res *Result, resp *oisp.AIResponse, streaming bool, rec stats.Recorder) {
	body := &x.Response.Body
	a := geminiAccs.Get().(*geminiAcc)
	defer geminiAccs.Put(a)
	defer a.reset()
	switch {
	case looksSSE(x):
		for _, ev := range sseEvents(body) {
			a.add(ev.Data, ev.At)
		}
		resp.StreamEvents = a.chunks
		res.StreamEnded = a.sseEnded()
	case rawKind(body.Data) == '[':
		els, closed := jsonArrayElements(body, rec)
		for _, el := range els {
			a.add(el.Data, el.At)
		}
		if a.chunks == 0 && len(bytes.TrimSpace(body.Data)) > 2 {
			res.note(noteResponseNotJSON)
		}
		resp.StreamEvents = a.chunks
		// The closing bracket is the stream's own end.
		res.StreamEnded = closed && a.badChunks == 0
	default:
		if len(bytes.TrimSpace(body.Data)) == 0 {
			break
		}
		a.add(body.Data, time.Time{})
		if a.chunks == 0 {
			res.note(noteResponseNotJSON)
		}
	}
	a.fill(res, resp)
	if streaming {
		markStreamed(resp, x, a.firstContent)
	}
	explainFailedStatus(resp, body.Data)
}

// ---------------------------------------------------------------- countTokens

// decodeGeminiCountTokens reads a countTokens exchange: the request like a
// generate request, the response's count as an extra (not usage: counting
// consumes nothing).
func decodeGeminiCountTokens(x *httpmsg.Exchange, res *Result) {
	decodeGeminiRequest(x.Request.Body.Data, res)
	res.Request.Streaming = oisp.Ptr(false)
	if x.Response == nil {
		return
	}
	resp := newResponse(res, x)
	var b struct {
		TotalTokens jInt            `json:"totalTokens"`
		Error       json.RawMessage `json:"error"`
	}
	if decodeResponseBody(x.Response.Body.Data, &b, res) {
		if e := googleError(b.Error); e != nil {
			setFailure(resp, e, false)
		}
	}
	explainFailedStatus(resp, x.Response.Body.Data)
	res.Response = resp
}
