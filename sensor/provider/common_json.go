package provider

import (
	"bytes"
	"encoding/binary"
	"errors"
	json "github.com/goccy/go-json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/oisp/oisp-sensor/sensor/jsonstr"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/stream/memo"
)

// Provider bodies are decoded into typed structs whose scalar fields use the
// tolerant types below. encoding/json already skips a field whose JSON type
// does not fit its Go type (and reports the first such field at the end);
// the tolerant scalars go further and accept the odd encodings real servers
// send (numbers as strings, integers as 12.0, null), so one unexpected value
// never costs the rest of the body.

// maxExactInt bounds accepted integers to what a float64 holds exactly
// (token counts never come near it; larger values are garbage).
const maxExactInt = 1 << 53

// jInt is an integer that also accepts a numeric string or an integral
// float. OK is false when the value was absent, null or unusable.
type jInt struct {
	V  int
	OK bool
}

// UnmarshalJSON never fails: an unusable value leaves the field unset.
func (n *jInt) UnmarshalJSON(b []byte) error {
	*n = jInt{}
	b = unquoteScalar(b)
	if len(b) == 0 {
		return nil
	}
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		if v <= maxExactInt && v >= -maxExactInt {
			*n = jInt{V: int(v), OK: true}
		}
		return nil
	}
	if f, err := strconv.ParseFloat(string(b), 64); err == nil && f == math.Trunc(f) && math.Abs(f) <= maxExactInt {
		*n = jInt{V: int(f), OK: true}
	}
	return nil
}

// Ptr returns a pointer to the value, or nil when unset.
func (n jInt) Ptr() *int {
	if !n.OK {
		return nil
	}
	v := n.V
	return &v
}

// usageBlock is a usage and the counts its pointer fields point to,
// allocated together: one allocation instead of up to seven.
type usageBlock struct {
	usage oisp.Usage
	ints  [6]int
	used  int
	// costs is where finishResult prices the usage (see Result.usageRoom).
	costs [3]float64
}

// count returns a pointer to v, taken from the block while it has room.
func (b *usageBlock) count(v int) *int {
	var p *int
	if b.used < len(b.ints) {
		p = &b.ints[b.used]
		b.used++
	} else {
		p = new(int)
	}
	*p = v
	return p
}

// of is count for a tolerant integer: nil when it is unset.
func (b *usageBlock) of(n jInt) *int {
	if !n.OK {
		return nil
	}
	return b.count(n.V)
}

// jFloat is a number that also accepts a numeric string.
type jFloat struct {
	V  float64
	OK bool
}

// UnmarshalJSON never fails.
func (n *jFloat) UnmarshalJSON(b []byte) error {
	*n = jFloat{}
	b = unquoteScalar(b)
	if len(b) == 0 {
		return nil
	}
	if f, err := strconv.ParseFloat(string(b), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
		*n = jFloat{V: f, OK: true}
	}
	return nil
}

// Ptr returns a pointer to the value, or nil when unset.
func (n jFloat) Ptr() *float64 {
	if !n.OK {
		return nil
	}
	v := n.V
	return &v
}

// jStr is a string that also accepts a number or boolean (rendered as its
// JSON text); objects, arrays and null leave it empty.
type jStr string

// UnmarshalJSON never fails.
func (s *jStr) UnmarshalJSON(b []byte) error {
	*s = ""
	b = trimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		// Fast path: no escapes (the decoder has validated the token).
		// The string is a copy: an Unmarshaler may not keep the bytes it
		// is given.
		if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 {
			*s = jStr(tokenString(b[1 : len(b)-1]))
			return nil
		}
		// The decoder would read it as jsonstr does (see the
		// FuzzGoccyAgrees there), for less than its reflection costs.
		if v, ok := jsonstr.UnquoteLiteral(b); ok {
			*s = jStr(v)
		}
	case '{', '[', 'n':
	default:
		*s = jStr(b)
	}
	return nil
}

// tokenString returns b as a string; the words most bodies repeat (roles,
// object and block types, finish reasons: a third of the decoded strings
// of the conformance corpus) are returned without a copy of their own.
func tokenString(b []byte) string {
	switch string(b) { // compared in place, no conversion
	case "user":
		return "user"
	case "assistant":
		return "assistant"
	case "system":
		return "system"
	case "developer":
		return "developer"
	case "tool":
		return "tool"
	case "model":
		return "model"
	case "text":
		return "text"
	case "function":
		return "function"
	case "function_call":
		return "function_call"
	case "function_call_output":
		return "function_call_output"
	case "tool_calls":
		return "tool_calls"
	case "tool_use":
		return "tool_use"
	case "tool_result":
		return "tool_result"
	case "message":
		return "message"
	case "reasoning":
		return "reasoning"
	case "thinking":
		return "thinking"
	case "output_text":
		return "output_text"
	case "input_text":
		return "input_text"
	case "image_url":
		return "image_url"
	case "chat.completion":
		return "chat.completion"
	case "chat.completion.chunk":
		return "chat.completion.chunk"
	case "text_completion":
		return "text_completion"
	case "response":
		return "response"
	case "response.output_text.delta":
		return "response.output_text.delta"
	case "completed":
		return "completed"
	case "list":
		return "list"
	case "embedding":
		return "embedding"
	case "stop":
		return "stop"
	case "STOP":
		return "STOP"
	case "length":
		return "length"
	case "end_turn":
		return "end_turn"
	case "max_tokens":
		return "max_tokens"
	case "content_filter":
		return "content_filter"
	}
	return string(b)
}

// jBool is a boolean that also accepts "true"/"false" strings.
type jBool struct {
	V  bool
	OK bool
}

// UnmarshalJSON never fails.
func (v *jBool) UnmarshalJSON(b []byte) error {
	*v = jBool{}
	switch string(unquoteScalar(b)) {
	case "true":
		*v = jBool{V: true, OK: true}
	case "false":
		*v = jBool{V: false, OK: true}
	}
	return nil
}

// unquoteScalar trims b and removes one pair of surrounding quotes; it
// returns nil for null, objects and arrays.
func unquoteScalar(b []byte) []byte {
	b = trimSpace(b)
	if len(b) == 0 || b[0] == '{' || b[0] == '[' || bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		return trimSpace(b[1 : len(b)-1])
	}
	return b
}

// trimSpace is bytes.TrimSpace, answered without the call for bytes that
// begin and end with printable ASCII, which it would return unchanged:
// the tokens decoders hand to UnmarshalJSON are exact, and every tolerant
// scalar of a body is trimmed.
func trimSpace(b []byte) []byte {
	if n := len(b); n > 0 && b[0] > ' ' && b[0] < utf8.RuneSelf && b[n-1] > ' ' && b[n-1] < utf8.RuneSelf {
		return b
	}
	return bytes.TrimSpace(b)
}

// errNotJSON is returned when a body is not a JSON value at all.
var errNotJSON = errors.New("body is not JSON")

// decodeLoose unmarshals data into v. Fields whose JSON type does not fit
// are skipped (mismatch is then true); only a syntax error, which leaves v
// unusable, is returned as an error.
func decodeLoose(data []byte, v any) (mismatch bool, err error) {
	return decodeLooseMemo(data, v, nil)
}

// decodeLooseMemo is decodeLoose for a stream's event: a scanned shape's
// strings are taken from strs when it holds them (see jsonScan.memo).
func decodeLooseMemo(data []byte, v any, strs *memo.Strings) (mismatch bool, err error) {
	data = trimSpace(data)
	if len(data) == 0 {
		return false, errNotJSON
	}
	// The scanned shapes, by concrete type (an interface assertion would
	// look the type up on every call).
	var sb scannedBody
	switch t := v.(type) {
	case *openaiChatRequestBody:
		sb = t
	case *openaiChatResponseBody:
		sb = t
	case *anthropicEvent:
		sb = t
	case *anthropicRequestBody:
		sb = t
	case *anthropicResponseBody:
		sb = t
	case *geminiRequestBody:
		sb = t
	case *geminiResponseBody:
		sb = t
	case *geminiContentList:
		sb = t
	case *geminiContent:
		sb = t
	case *responsesItemList:
		sb = t
	case *responsesRequestBody:
		sb = t
	case *ollamaLine:
		sb = t
	case *openaiPartList:
		sb = t
	case *anthropicContentList:
		sb = t
	case *openaiErrorObject:
		sb = t
	case *embeddingsRequestBody:
		sb = t
	case *embeddingsResponseBody:
		sb = t
	}
	if sb != nil {
		if sb.scanJSON(data, strs) {
			return false, nil
		}
		sb.resetScan()
	}
	err = json.Unmarshal(data, v)
	if err == nil {
		return false, nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return true, nil
	}
	return false, err
}

// decodeRequestBody decodes a request body into v with decodeLoose and
// notes on res a body that is not JSON or has members of unexpected types.
// It reports whether v is usable.
func decodeRequestBody(body []byte, v any, res *Result) bool {
	return decodeBodyNoting(body, v, res, noteRequestNotJSON, noteRequestTypeMismatch)
}

// decodeResponseBody is decodeRequestBody for a response body.
func decodeResponseBody(body []byte, v any, res *Result) bool {
	return decodeBodyNoting(body, v, res, noteResponseNotJSON, noteResponseTypeMismatch)
}

func decodeBodyNoting(body []byte, v any, res *Result, notJSON, mismatchNote string) bool {
	mismatch, err := decodeLoose(body, v)
	if err != nil {
		if len(bytes.TrimSpace(body)) > 0 {
			res.note(notJSON)
		}
		return false
	}
	if mismatch {
		res.note(mismatchNote)
	}
	return true
}

// rawKind returns the first significant byte of a raw JSON value: '"', '{',
// '[', 'n' (null), 't'/'f' or a digit/'-'; 0 when empty.
func rawKind(raw json.RawMessage) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// rawString returns raw as a string when it is a JSON string.
func rawString(raw json.RawMessage) (string, bool) {
	if rawKind(raw) != '"' {
		return "", false
	}
	if s, ok := plainString(raw); ok {
		return s, true
	}
	return jsonstr.UnquoteLiteral(bytes.TrimSpace(raw))
}

// plainString returns the contents of a JSON string that needs no
// unescaping: no backslash, no control character and only ASCII (so
// encoding/json would return exactly these bytes). ok is false otherwise.
func plainString(raw []byte) (string, bool) {
	body, ok := plainStringBytes(raw)
	if !ok {
		return "", false
	}
	return string(body), true
}

// plainStringBytes is plainString without the copy: the contents are a
// slice of raw.
func plainStringBytes(raw []byte) ([]byte, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	body := raw[1 : len(raw)-1]
	if !plainASCII(body) {
		return nil, false
	}
	return body, true
}

// Byte-lane constants of plainASCII.
const (
	lanes20 = 0x2020202020202020
	lanes80 = 0x8080808080808080
)

// plainASCII reports whether b holds only bytes 0x20–0x7f other than '"'
// and '\\': the contents of a JSON string that decodes to exactly its own
// bytes. Prompts run to kilobytes: quotes and backslashes are looked for
// with bytes.IndexByte, the rest is checked 8 bytes per step (in each lane
// x-0x20 sets the top bit for a byte below 0x20 and x itself for a byte of
// 0x80 or more; a borrow only crosses into a higher lane from a lane that
// already matched).
func plainASCII(b []byte) bool {
	if bytes.IndexByte(b, '"') >= 0 || bytes.IndexByte(b, '\\') >= 0 {
		return false
	}
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x|(x-lanes20))&lanes80 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// rawArray splits a JSON array into its elements; nil when raw is not an
// array.
func rawArray(raw json.RawMessage) []json.RawMessage {
	if rawKind(raw) != '[' {
		return nil
	}
	var out []json.RawMessage
	if json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
}

// rawText renders a JSON value as text for content fields: strings as
// themselves, null as "", anything else as its compact JSON.
func rawText(raw json.RawMessage) string {
	switch rawKind(raw) {
	case 0, 'n':
		return ""
	case '"':
		s, _ := rawString(raw)
		return s
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(bytes.TrimSpace(raw))
	}
	return buf.String()
}

// stringList reads a string or an array of strings (OpenAI "stop",
// Anthropic "stop_sequences").
func stringList(raw json.RawMessage) []string {
	switch rawKind(raw) {
	case '"':
		if s, ok := rawString(raw); ok && s != "" {
			return []string{s}
		}
	case '[':
		var out []string
		for _, e := range rawArray(raw) {
			if s, ok := rawString(e); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// anyValue decodes raw into a generic value (for oisp.ToolChoice, which
// takes strings and maps); nil on failure.
func anyValue(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	if b, ok := plainStringBytes(raw); ok {
		// What the decoder makes of a string needing no unescaping; the
		// usual tool choices are constants, boxed without an allocation.
		switch string(b) {
		case "auto":
			return "auto"
		case "required":
			return "required"
		case "none":
			return "none"
		case "any":
			return "any"
		}
		return string(b)
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return v
}

// countArray counts the elements of a JSON array without materialising
// them (embedding vectors run to thousands of floats). It returns -1 when
// raw is not a well-formed array. Strings and arrays of plain numbers are
// skipped with bytes.IndexByte rather than byte by byte: embedding bodies
// are almost entirely number arrays.
func countArray(raw json.RawMessage) int {
	i := 0
	for i < len(raw) && isSpace(raw[i]) {
		i++
	}
	if i >= len(raw) || raw[i] != '[' {
		return -1
	}
	if n, ok := countNumberArray(raw[i:]); ok {
		return n
	}
	i++
	depth, n, sawValue := 0, 0, false
	for ; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '"':
			end := stringEnd(raw, i+1)
			if end < 0 {
				return -1
			}
			i = end
			sawValue = true
		case '[':
			if end := numberArrayEnd(raw[i:]); end > 0 {
				i += end
				sawValue = true
				continue
			}
			depth++
			sawValue = true
		case '{':
			depth++
			sawValue = true
		case ']', '}':
			if depth == 0 {
				if sawValue {
					n++
				}
				return n
			}
			depth--
		case ',':
			if depth == 0 {
				n++
				sawValue = false
			}
		case ' ', '\t', '\r', '\n':
		default:
			sawValue = true
		}
	}
	return -1
}

// stringEnd returns the index of the quote closing the JSON string whose
// contents start at raw[from], or -1 when it does not close.
func stringEnd(raw []byte, from int) int {
	for from <= len(raw) {
		k := bytes.IndexByte(raw[from:], '"')
		if k < 0 {
			return -1
		}
		q := from + k
		bs := 0
		for j := q - 1; j >= from && raw[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return q
		}
		from = q + 1
	}
	return -1
}

// numberArrayEnd returns the offset of the ']' closing the array that
// starts at raw[0] when that array holds only numbers (no nested arrays,
// objects or strings), else 0.
func numberArrayEnd(raw []byte) int {
	j := 1
	for j < len(raw) && isSpace(raw[j]) {
		j++
	}
	if j >= len(raw) || (raw[j] != '-' && (raw[j] < '0' || raw[j] > '9')) {
		return 0
	}
	k := bytes.IndexByte(raw[j:], ']')
	if k < 0 {
		return 0
	}
	seg := raw[j : j+k]
	if bytes.IndexByte(seg, '[') >= 0 || bytes.IndexByte(seg, '{') >= 0 || bytes.IndexByte(seg, '"') >= 0 {
		return 0
	}
	return j + k
}

// countNumberArray counts the elements of an array of plain numbers
// starting at raw[0]; ok is false for any other array (which the general
// scan then counts).
func countNumberArray(raw []byte) (n int, ok bool) {
	end := numberArrayEnd(raw)
	if end == 0 {
		return 0, false
	}
	seg := bytes.TrimRight(raw[1:end], " \t\r\n")
	if len(seg) == 0 || seg[len(seg)-1] == ',' || bytes.Contains(seg, []byte(",,")) {
		return 0, false
	}
	return bytes.Count(seg, []byte(",")) + 1, true
}

// isSpace reports whether c is JSON whitespace (one comparison and a bit
// test, where four comparisons would be made for most bytes).
func isSpace(c byte) bool { return c <= ' ' && jsonSpaces>>c&1 != 0 }

const jsonSpaces = 1<<' ' | 1<<'\t' | 1<<'\r' | 1<<'\n'
