package provider

import (
	"bytes"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	json "github.com/goccy/go-json"
	"github.com/oisp/oisp-sensor/sensor/httpmsg"
	"github.com/oisp/oisp-sensor/sensor/oisp"
)

// This file holds the exchange-level helpers every API decoder shares:
// provider and auth description, the response skeleton (status, ids,
// latency), message construction, usage arithmetic and model enrichment.

// Note tokens put into Result.Notes.
const (
	// The host is not in the registry; the exchange was recognised by
	// path and body shape only (confidence is lower).
	noteUnknownHostOpenAI    = "unknown_host_openai_shape"
	noteUnknownHostAnthropic = "unknown_host_anthropic_shape"
	noteRequestNotJSON       = "request_body_not_json"
	noteRequestTypeMismatch  = "request_body_unexpected_types"
	noteResponseNotJSON      = "response_body_not_json"
	noteResponseTypeMismatch = "response_body_unexpected_types"
	noteRequestTruncated     = "request_body_truncated"
	noteResponseTruncated    = "response_body_truncated"
	noteResponseIncomplete   = "response_incomplete"
	noteStreamBadEvent       = "stream_event_not_json"
	noteStreamUnterminated   = "stream_not_terminated"
	noteNoResponse           = "no_response"
	noteContentDecodeError   = "content_decode_error"
	// The request body's Content-Encoding could not be undone: its raw
	// bytes were read.
	noteRequestDecodeError = "request_content_decode_error"
)

// resultParts is a Result and the values its request points to, allocated
// together.
type resultParts struct {
	res  Result
	req  oisp.AIRequest
	prov oisp.Provider
	auth oisp.Auth
}

// responseParts is a response and the values its pointers start with,
// allocated together (with the result when the exchange has a response).
type responseParts struct {
	resp      oisp.AIResponse
	success   bool
	streaming bool // false until a decoder finds a stream (it then replaces the pointer)
	latency   int64
}

// result starts a Result for api with the request's provider, endpoint and
// auth filled in.
func newResult(api string, t Target, x *httpmsg.Exchange, requestType string) *Result {
	// The result, its request, provider and auth live and die together:
	// one allocation instead of four on every exchange; with the room for
	// the response newResponse will start when the exchange has one.
	var a *resultParts
	if x.Response != nil {
		withResponse := &struct {
			resultParts
			resp responseParts
		}{}
		a = &withResponse.resultParts
		a.res.responseRoom = &withResponse.resp
	} else {
		a = &resultParts{}
	}
	req := &a.req
	req.RequestType = requestType
	req.Endpoint = api
	a.prov = providerOf(t, x)
	req.Provider = &a.prov
	if auth, ok := describeAuth(x.Request.Header); ok {
		a.auth = auth
		req.Auth = &a.auth
	}
	res := &a.res
	res.Request = req
	if x.Request.Body.Truncated {
		res.note(noteRequestTruncated)
	}
	if x.Request.Body.DecodeError != "" {
		res.note(noteRequestDecodeError)
	}
	if !t.Known {
		switch {
		case strings.HasPrefix(api, "openai."):
			res.note(noteUnknownHostOpenAI)
		case strings.HasPrefix(api, "anthropic."):
			res.note(noteUnknownHostAnthropic)
		}
	}
	return res
}

// note records a note once and marks the result partial for notes that
// mean lost information.
func (r *Result) note(n string) {
	for _, have := range r.Notes {
		if have == n {
			return
		}
	}
	r.Notes = append(r.Notes, n)
	switch n {
	case noteUnknownHostOpenAI, noteUnknownHostAnthropic:
	default:
		r.Partial = true
	}
}

// SettleEndUnseen gives the content's verdict on an exchange whose
// response end the transport did not see (httpmsg.Exchange.EndUnseen):
// when the stream carried its own end marker, nothing was cut, so the
// incompleteness taken from the transport is withdrawn. It reports whether
// the response is whole.
func (r *Result) SettleEndUnseen(x *httpmsg.Exchange) bool {
	if !x.EndUnseen || !r.StreamEnded {
		return false
	}
	r.Notes = slices.DeleteFunc(r.Notes, func(n string) bool { return n == noteResponseIncomplete })
	r.Partial = false
	for _, n := range r.Notes {
		switch n {
		case noteUnknownHostOpenAI, noteUnknownHostAnthropic:
		default:
			r.Partial = true
		}
	}
	return true
}

// providerOf describes the provider: the schema enum name, the sensor's id
// when it differs, the endpoint URL without its query (queries can carry
// keys), the real host, and OpenAI organisation/project headers.
func providerOf(t Target, x *httpmsg.Exchange) oisp.Provider {
	id := t.ProviderID
	if id == "" {
		id = "other"
	}
	p := *oisp.NewProvider(id, endpointURL(x))
	p.Host = t.Host
	if p.Host == "" {
		p.Host = x.Host()
	}
	if h := x.Request.Header; h != nil {
		p.OrganizationID = headerValue(h, "Openai-Organization")
		p.ProjectID = headerValue(h, "Openai-Project")
	}
	if p.OrganizationID == "" && x.Response != nil && x.Response.Header != nil {
		p.OrganizationID = headerValue(x.Response.Header, "Openai-Organization")
	}
	return p
}

// endpointURL is the request URL without query or fragment.
func endpointURL(x *httpmsg.Exchange) string {
	u := x.Request.URL()
	// Two vectorised searches cost less than IndexAny's byte loop over a
	// URL that mostly has neither.
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u = u[:i]
	}
	return u
}

// authOf describes the credential of a request: its kind and a short
// prefix; nil when the request carries none.
func authOf(h httpmsg.Header) *oisp.Auth {
	if a, ok := describeAuth(h); ok {
		return &a
	}
	return nil
}

// describeAuth is authOf by value (ok is false without a credential). The
// credential itself never leaves this function.
func describeAuth(h httpmsg.Header) (auth oisp.Auth, ok bool) {
	if h == nil {
		return oisp.Auth{}, false
	}
	if k := headerValue(h, "X-Api-Key"); k != "" {
		return oisp.Auth{Type: "api_key", KeyPrefix: oisp.KeyPrefix(k)}, true
	}
	if k := headerValue(h, "Api-Key"); k != "" {
		return oisp.Auth{Type: "api_key", KeyPrefix: oisp.KeyPrefix(k)}, true
	}
	if k := headerValue(h, "X-Goog-Api-Key"); k != "" {
		return oisp.Auth{Type: "api_key", KeyPrefix: oisp.KeyPrefix(k)}, true
	}
	a := strings.TrimSpace(headerValue(h, "Authorization"))
	if a == "" {
		return oisp.Auth{}, false
	}
	scheme, cred, _ := strings.Cut(a, " ")
	cred = strings.TrimSpace(cred)
	// Schemes are case-insensitive; EqualFold compares without lowering
	// into a new string.
	switch {
	case strings.EqualFold(scheme, "bearer"):
		typ := "api_key"
		// OAuth access tokens: Anthropic's sk-ant-oat…, and JWTs (Azure AD,
		// Google) which always start with a base64url '{"'.
		if strings.HasPrefix(cred, "sk-ant-oat") || strings.HasPrefix(cred, "eyJ") || strings.HasPrefix(cred, "ya29.") {
			typ = "oauth"
		}
		return oisp.Auth{Type: typ, KeyPrefix: oisp.KeyPrefix(cred)}, true
	case strings.EqualFold(scheme, "aws4-hmac-sha256"):
		return oisp.Auth{Type: "service_account"}, true
	case strings.EqualFold(scheme, "token"):
		return oisp.Auth{Type: "api_key", KeyPrefix: oisp.KeyPrefix(cred)}, true
	}
	return oisp.Auth{Type: "unknown"}, true
}

// newResponse starts an ai.response for an exchange that has one: provider,
// status, success (refined by the decoder when an error is found in the
// body), streaming false (until a decoder reads a stream), latency and
// the provider's request id from headers.
func newResponse(res *Result, x *httpmsg.Exchange) *oisp.AIResponse {
	a := res.responseRoom
	if a == nil {
		a = &responseParts{}
	}
	res.responseRoom = nil // a second response of the result gets its own
	a.success = x.Response.Status >= 200 && x.Response.Status < 300
	resp := &a.resp
	resp.Provider = res.Request.Provider
	resp.StatusCode = x.Response.Status
	resp.Success = &a.success
	a.streaming = false
	resp.Streaming = &a.streaming
	if ms, ok := msSince(requestDone(x), x.Response.End); ok {
		a.latency = ms
		resp.LatencyMS = &a.latency
	}
	resp.ProviderRequestID = headerRequestID(x.Response.Header)
	return resp
}

// headerRequestID returns the provider request id carried in headers.
func headerRequestID(h httpmsg.Header) string {
	if h == nil {
		return ""
	}
	for _, k := range []string{"X-Request-Id", "Request-Id", "Apim-Request-Id", "X-Amzn-Requestid"} {
		if v := headerValue(h, k); v != "" {
			return v
		}
	}
	return ""
}

// requestDone is when the request finished leaving the client: its end, or
// its start when the end is unknown.
func requestDone(x *httpmsg.Exchange) time.Time {
	if !x.Request.End.IsZero() {
		return x.Request.End
	}
	return x.Request.Start
}

// latencyMS is the time from the end of the request to the end of the
// response, in whole milliseconds; nil when either time is unknown.
func latencyMS(x *httpmsg.Exchange) *int64 {
	if x.Response == nil {
		return nil
	}
	return msBetween(requestDone(x), x.Response.End)
}

// msBetween returns b−a rounded to milliseconds (never negative); nil when
// a time is unknown.
func msBetween(a, b time.Time) *int64 {
	if ms, ok := msSince(a, b); ok {
		return &ms
	}
	return nil
}

// msSince is msBetween by value; ok is false when a time is unknown.
func msSince(a, b time.Time) (ms int64, ok bool) {
	if a.IsZero() || b.IsZero() {
		return 0, false
	}
	d := b.Sub(a)
	if d < 0 {
		d = 0
	}
	return int64(math.Round(float64(d) / float64(time.Millisecond))), true
}

// setFailure marks a response as failed with err. Errors that arrive in a
// 200 stream or body also set finish_reason "error".
func setFailure(resp *oisp.AIResponse, e *oisp.Error, inBand bool) {
	resp.Success = oisp.Ptr(false)
	if e != nil && (e.Type != "" || e.Message != "" || e.Code != "") {
		resp.Error = e
	} else if resp.Error == nil {
		resp.Error = &oisp.Error{Type: "http_error"}
	}
	if inBand {
		resp.FinishReason = oisp.FinishError
	}
}

// httpError fills the generic error of a failed status whose body carries
// no error the API's decoder could read (httpFailure).
func httpError(resp *oisp.AIResponse, status int, body []byte) {
	if resp.Error != nil {
		return
	}
	resp.Error = httpFailure(status, body)
	resp.Success = oisp.Ptr(false)
}

// httpFailure is the error every API reports for a failed status without
// a provider error in its body: type http_error, the status as code, and
// httpFailureMessage.
func httpFailure(status int, body []byte) *oisp.Error {
	return &oisp.Error{Type: "http_error", Code: itoa(status), Message: httpFailureMessage(status, body)}
}

// maxHTTPFailureMessage bounds the body text kept as a generic error's
// message: enough for a proxy's reason, not a whole page.
const maxHTTPFailureMessage = 512

// httpFailureMessage is the message of a failed status without a provider
// error: the body's text (a proxy's page, a plain-text reason, JSON of
// another shape), cut on a rune boundary, else the status text.
func httpFailureMessage(status int, body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) > maxHTTPFailureMessage {
		n := maxHTTPFailureMessage
		for n > 0 && !utf8.RuneStart(body[n]) {
			n--
		}
		body = body[:n]
	}
	if len(body) == 0 {
		return http.StatusText(status)
	}
	return string(body)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// newMessage builds a request message with its content and length; its
// hash is left to finishRequest, which hashes all of a request's messages
// into one buffer.
func newMessage(rawRole, content string, images int) oisp.Message {
	role, orig := oisp.Role(rawRole)
	if role == "" {
		role = "user"
	}
	m := oisp.Message{Role: role, OriginalRole: orig, Content: content}
	if content != "" {
		m.ContentLength = len(content)
	}
	if images > 0 {
		m.HasImages = true
		m.ImageCount = images
	}
	return m
}

// hashedMessage is newMessage with its hash, for a message that no
// finishRequest will see.
func hashedMessage(rawRole, content string, images int) oisp.Message {
	m := newMessage(rawRole, content, images)
	if content != "" {
		m.ContentHash = oisp.Hash(content)
	}
	return m
}

// assistantMessage is the message of a response choice: the message and
// its hash in one allocation.
func assistantMessage(content string) *oisp.Message {
	return new(messageRoom).assistant(content)
}

// messageRoom is a response message and the bytes of its hash, allocated
// together.
type messageRoom struct {
	msg  oisp.Message
	hash [oisp.HashLen]byte
}

// assistant makes the room's message the assistant message of content,
// its hash written into the room's bytes, and returns it.
func (r *messageRoom) assistant(content string) *oisp.Message {
	r.msg = newMessage("assistant", content, 0)
	if content != "" {
		h := oisp.AppendHash(r.hash[:0], content)
		// The bytes are written once, here, and the room is the message's.
		r.msg.ContentHash = unsafe.String(unsafe.SliceData(h), len(h))
	}
	return &r.msg
}

// oneChoice is a response's only choice, the assistant message of
// content: the choices, the message and its hash in one allocation. An
// answer with neither content nor a finish reason (an empty object, a
// stream cut before its first delta) has no choice, as the OpenAI family
// reads an empty choices list.
func oneChoice(content, finish, rawFinish string) []oisp.Choice {
	if content == "" && finish == "" && rawFinish == "" {
		return nil
	}
	a := &struct {
		choices [1]oisp.Choice
		room    messageRoom
	}{}
	a.choices[0] = oisp.Choice{Message: a.room.assistant(content), FinishReason: finish, RawFinishReason: rawFinish}
	return a.choices[:]
}

// hashMessages sets the content hash of every message with content and no
// hash yet. The hashes are written into one buffer that becomes one string,
// sliced per message: a request's history costs one allocation instead of
// one per message.
func hashMessages(msgs []oisp.Message) {
	n := 0
	for i := range msgs {
		if msgs[i].Content != "" && msgs[i].ContentHash == "" {
			n++
		}
	}
	if n == 0 {
		return
	}
	buf := make([]byte, 0, n*oisp.HashLen)
	for i := range msgs {
		if m := &msgs[i]; m.Content != "" && m.ContentHash == "" {
			buf = oisp.AppendHash(buf, m.Content)
		}
	}
	// buf is complete and never written again, so the string may share it.
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	for i := range msgs {
		if m := &msgs[i]; m.Content != "" && m.ContentHash == "" {
			m.ContentHash, all = all[:oisp.HashLen], all[oisp.HashLen:]
		}
	}
}

// setSystemPrompt records a system prompt on the request.
func setSystemPrompt(req *oisp.AIRequest, system string) {
	req.HasSystemPrompt = true
	if system == "" {
		return
	}
	// Most often the prompt is a system message already in the request:
	// its hash, made with the others in one buffer, serves.
	for i := range req.Messages {
		if m := &req.Messages[i]; m.Content == system {
			hashMessages(req.Messages)
			req.SystemPromptHash = m.ContentHash
			return
		}
	}
	req.SystemPromptHash = oisp.Hash(system)
}

// finishRequest computes the request totals from its messages.
func finishRequest(req *oisp.AIRequest) {
	hashMessages(req.Messages)
	req.MessagesCount = len(req.Messages)
	req.ToolsCount = len(req.Tools)
	for _, m := range req.Messages {
		req.ImageCount += m.ImageCount
	}
	req.HasImages = req.ImageCount > 0
	if req.Parameters != nil && req.Parameters.Empty() {
		req.Parameters = nil
	}
}

// or returns n, or alt when n is absent: of two names of one parameter (a
// newer and an older one, camelCase and snake_case), the first present
// wins.
func (n jInt) or(alt jInt) jInt {
	if n.OK {
		return n
	}
	return alt
}

// or returns f, or alt when f is absent (see jInt.or).
func (f jFloat) or(alt jFloat) jFloat {
	if f.OK {
		return f
	}
	return alt
}

// requestTypeOf is the request type of one of a provider's chat, generate
// and embed APIs (Cohere's, Ollama's): generate answers a prompt, embed
// makes vectors, the others chat.
func requestTypeOf(api, generateAPI, embedAPI string) string {
	switch api {
	case generateAPI:
		return oisp.RequestCompletion
	case embedAPI:
		return oisp.RequestEmbedding
	}
	return oisp.RequestChat
}

// textOrList reads content that is a string or a list of parts: the
// string's text, or the list to decode (nil when the content is neither:
// absent, null, or another kind, which has no text).
func textOrList(raw json.RawMessage) (string, json.RawMessage) {
	switch rawKind(raw) {
	case '"':
		s, _ := rawString(raw)
		return s, nil
	case '[':
		return "", raw
	}
	return "", nil
}

// textOrItems is textOrList for the APIs that take a lone item where they
// take a list of items (Cohere v2, Gemini Interactions): an object is read
// as a list of one.
func textOrItems(raw json.RawMessage) (string, json.RawMessage) {
	if rawKind(raw) == '{' {
		return "", json.RawMessage("[" + string(raw) + "]")
	}
	return textOrList(raw)
}

// setToolCalls gives resp its tool calls and their count.
func setToolCalls(resp *oisp.AIResponse, calls []oisp.ToolCall) {
	resp.ToolCalls = calls
	resp.ToolCallsCount = len(calls)
}

// setThinking gives resp the reasoning text as its thinking (the text, its
// length and hash); no text leaves resp's thinking as it is.
func setThinking(resp *oisp.AIResponse, text string) {
	if text != "" {
		resp.Thinking = &oisp.Thinking{Content: text, ContentLength: len(text), ContentHash: oisp.Hash(text)}
	}
}

// explainFailedStatus gives resp the generic http_error when its status
// failed (400 and up) and the decoder read no error from the body:
// httpError keeps an error already set.
func explainFailedStatus(resp *oisp.AIResponse, body []byte) {
	if resp.StatusCode >= 400 {
		httpError(resp, resp.StatusCode, body)
	}
}

// toolType maps a provider tool type onto the tool_definition enum
// (function, code_interpreter, file_search, computer_use, other).
func toolType(raw string) string {
	switch t := oisp.ToolType(raw); t {
	case "function", "code_interpreter", "file_search", "computer_use", "other":
		return t
	case "retrieval":
		return "file_search"
	}
	return "other"
}

// toolCall builds a response tool call with its arguments hash.
func toolCall(id, name, typ, args string) oisp.ToolCall {
	tc := oisp.ToolCall{ID: id, Name: name, Type: typ, Arguments: args}
	if args != "" {
		tc.ArgumentsHash = oisp.Hash(args)
	}
	return tc
}

// optStr is a tolerant string member whose presence counts: null or
// absent leaves it unset. Held in place, it spares the allocation a *jStr
// costs for every member read.
type optStr struct {
	V  jStr
	OK bool
}

// UnmarshalJSON never fails.
func (o *optStr) UnmarshalJSON(b []byte) error {
	if string(trimSpace(b)) == "null" {
		*o = optStr{}
		return nil
	}
	o.OK = true
	return o.V.UnmarshalJSON(b)
}

// joinText joins non-empty parts with newlines.
func joinText(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p)
	}
	return b.String()
}

// looksSSE reports whether a response body is a server-sent event stream:
// by content type, or by its first line when the type is missing or wrong.
func looksSSE(x *httpmsg.Exchange) bool {
	if x.Response == nil {
		return false
	}
	if containsFold(headerValue(x.Response.Header, "Content-Type"), "text/event-stream") {
		return true
	}
	b := bytes.TrimLeft(x.Response.Body.Data, " \t\r\n")
	return bytes.HasPrefix(b, []byte("data:")) || bytes.HasPrefix(b, []byte("event:")) ||
		bytes.HasPrefix(b, []byte(":")) || bytes.HasPrefix(b, []byte("id:"))
}

// isPost reports whether the exchange is a POST (AI inference calls are).
func isPost(x *httpmsg.Exchange) bool {
	// Every API's Match asks, for every exchange: the method as sent
	// ("POST") is settled by one comparison, before the case-blind one.
	m := x.Request.Method
	return m == http.MethodPost || strings.EqualFold(m, http.MethodPost)
}

// trimPath is the request path without trailing slashes.
func trimPath(x *httpmsg.Exchange) string {
	return strings.TrimRight(x.Request.Path(), "/")
}

// headerValue is h.Get for a key already in canonical form: a key that is
// absent costs the scan alone, without checking the key's case.
func headerValue(h httpmsg.Header, canonicalKey string) string {
	for i := range h {
		if h[i].Name == canonicalKey {
			return h[i].Value
		}
	}
	return ""
}

// containsFold reports whether s contains substr, which must be lower-case
// ASCII letters and punctuation other than 'i' and 'k' (the only ASCII
// letters strings.ToLower produces from non-ASCII runes): it is
// strings.Contains(strings.ToLower(s), substr) without the copy.
func containsFold(s, substr string) bool {
	n := len(substr)
outer:
	for i := 0; i+n <= len(s); i++ {
		for j := 0; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != substr[j] {
				continue outer
			}
		}
		return true
	}
	return false
}
