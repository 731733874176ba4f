package provider

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Embedding responses are almost entirely vectors: arrays of 256 to 3,072
// numbers that the sensor only counts. Decoding such a body with goccy
// skips every vector once to find its end, copies it for the field's
// UnmarshalJSON and counts it again. The scanner here measures the vectors
// of the common, well-formed shape in one pass that also checks their
// grammar, and hands the decoder the body with the vectors' array replaced
// by [] (a few hundred bytes). Whenever the body is not exactly that shape
// (escaped or differently-cased keys, duplicates, values of other types,
// anything malformed), the scanner declines and the body is decoded whole,
// as before, so the result never differs.

// measureOpenAIEmbeddingData measures the "data" member of an OpenAI-style
// embeddings response: the number of vectors and the dimensions of the
// first (as embeddingDimensions counts them). rest is the body with the
// data array replaced by []. ok is false when the body is not of the shape
// the scanner reads; the caller then decodes the body whole.
func measureOpenAIEmbeddingData(body []byte) (rest []byte, count, dims int, ok bool) {
	start, end, count, dims, ok := findOpenAIEmbeddingData(body)
	if !ok {
		return nil, 0, 0, false
	}
	rest = make([]byte, 0, len(body)-(end-start)+2)
	rest = append(rest, body[:start]...)
	rest = append(rest, '[', ']')
	rest = append(rest, body[end:]...)
	return rest, count, dims, true
}

// findOpenAIEmbeddingData walks the members of the top-level object and
// measures the array of the one member named "data": [start, end) is the
// array's extent in body.
func findOpenAIEmbeddingData(body []byte) (start, end, count, dims int, ok bool) {
	start = -1
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return 0, 0, 0, 0, false
	}
	i = skipWS(body, i+1)
	if i < len(body) && body[i] == '}' {
		return 0, 0, 0, 0, false
	}
	for {
		key, next, ok := scanKey(body, i)
		if !ok {
			return 0, 0, 0, 0, false
		}
		i = next
		switch {
		case string(key) == "data":
			if start >= 0 {
				return 0, 0, 0, 0, false
			}
			start = i
			n, d, next, ok := scanVectorList(body, i, openaiVectors)
			if !ok {
				return 0, 0, 0, 0, false
			}
			count, dims, end, i = n, d, next, next
		case bytes.EqualFold(key, []byte("data")):
			// The decoder matches member names without regard to case.
			return 0, 0, 0, 0, false
		default:
			next := skipJSONValue(body, i)
			if next < 0 {
				return 0, 0, 0, 0, false
			}
			i = next
		}
		i = skipWS(body, i)
		if i >= len(body) {
			return 0, 0, 0, 0, false
		}
		switch body[i] {
		case ',':
			i = skipWS(body, i+1)
			continue
		case '}':
		default:
			return 0, 0, 0, 0, false
		}
		break
	}
	if start < 0 || skipWS(body, i+1) != len(body) {
		return 0, 0, 0, 0, false
	}
	return start, end, count, dims, true
}

// scanKey reads a member name of printable ASCII without escapes and the
// colon after it, returning the name and the offset of the member's value.
// (Names inside a replaced value must be checked here: the decoder never
// sees them.)
func scanKey(b []byte, i int) (key []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	end, ok := plainStringEnd(b, i)
	if !ok {
		return nil, 0, false
	}
	key = b[i+1 : end]
	j := skipWS(b, end+1)
	if j >= len(b) || b[j] != ':' {
		return nil, 0, false
	}
	return key, skipWS(b, j+1), true
}

// vectorShape describes the objects that hold a vector: the member naming
// it, whether a base64 string counts (OpenAI) or only a number array
// (Google), and the names of the object's other decoded members, which the
// scanner declines (they may have to report a type mismatch).
type vectorShape struct {
	key     string
	base64  bool
	decoded []string
}

var (
	openaiVectors = vectorShape{key: "embedding", base64: true}
	googleVectors = vectorShape{key: "values", decoded: []string{"statistics"}}
)

// scanVectorList reads an array of objects each of which holds a vector
// as shape says, and otherwise only scalars. It returns the number of
// objects, the dimensions of the first one's vector (0 when it has none)
// and the offset after the array.
func scanVectorList(b []byte, i int, shape vectorShape) (count, dims, next int, ok bool) {
	if i >= len(b) || b[i] != '[' {
		return 0, 0, 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return 0, 0, i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '{' {
			return 0, 0, 0, false
		}
		d, next, ok := scanVectorObject(b, i, shape)
		if !ok {
			return 0, 0, 0, false
		}
		if count == 0 {
			dims = d
		}
		count++
		i = skipWS(b, next)
		if i >= len(b) {
			return 0, 0, 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return count, dims, i + 1, true
		default:
			return 0, 0, 0, false
		}
	}
}

// scanVectorObject reads one object of scanVectorList starting at b[i]
// ('{'): its vector's dimensions and the offset after it.
func scanVectorObject(b []byte, i int, shape vectorShape) (dims, next int, ok bool) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return 0, i + 1, true
	}
	seen := false
	for {
		key, j, ok := scanKey(b, i)
		if !ok {
			return 0, 0, false
		}
		switch {
		case string(key) == shape.key:
			if seen {
				return 0, 0, false
			}
			seen = true
			dims, j, ok = scanVector(b, j, shape.base64)
		case bytes.EqualFold(key, []byte(shape.key)) || equalFoldAny(key, shape.decoded):
			return 0, 0, false
		default:
			j, ok = scanScalar(b, j)
		}
		if !ok {
			return 0, 0, false
		}
		i = skipWS(b, j)
		if i >= len(b) {
			return 0, 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return dims, i + 1, true
		default:
			return 0, 0, false
		}
	}
}

// scanVector measures a vector at b[i]: an array of numbers (its length)
// or, when base64 is set, a base64 string of little-endian float32s
// without escapes (as embeddingDimensions measures it).
func scanVector(b []byte, i int, base64 bool) (dims, next int, ok bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	switch {
	case b[i] == '[':
		return scanNumberArray(b, i)
	case b[i] == '"' && base64:
		end, ok := plainStringEnd(b, i)
		if !ok {
			return 0, 0, false
		}
		n := end - i - 1
		for n > 0 && b[i+n] == '=' {
			n--
		}
		return n * 6 / 8 / 4, end + 1, true
	}
	return 0, 0, false
}

// scanNumberArray checks that b[i:] starts with an array of JSON numbers
// (strict grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?) and
// returns its length and the offset after it. Vectors are most of an
// embedding body's bytes, so the loop is written for speed: the array can
// only end at the first ']', which is found at once and then stops every
// inner loop, so they need no end checks of their own.
func scanNumberArray(b []byte, i int) (n, next int, ok bool) {
	k := bytes.IndexByte(b[i:], ']')
	if k < 0 {
		return 0, 0, false
	}
	// seg is the array's contents and its closing bracket.
	seg := b[i+1 : i+k+1]
	next = i + k + 1
	j := 0
	for isSpace(seg[j]) {
		j++
	}
	if seg[j] == ']' {
		return 0, next, true
	}
	for {
		c := seg[j]
		if c == '-' {
			j++
			c = seg[j]
		}
		switch {
		case c == '0':
			j++
		case c-'1' < 9:
			j = skipDigits(seg, j+1)
		default:
			return 0, 0, false
		}
		if seg[j] == '.' {
			d := j + 1
			if j = skipDigits(seg, d); j == d {
				return 0, 0, false
			}
		}
		if seg[j]|0x20 == 'e' {
			j++
			if seg[j] == '+' || seg[j] == '-' {
				j++
			}
			d := j
			if j = skipDigits(seg, d); j == d {
				return 0, 0, false
			}
		}
		n++
		for isSpace(seg[j]) {
			j++
		}
		switch seg[j] {
		case ',':
			j = skipWS(seg, j+1)
		case ']':
			return n, next, true
		default:
			return 0, 0, false
		}
	}
}

// numberEnd returns the offset after the JSON number at b[i] (strict
// grammar, as scanNumberArray reads it).
func numberEnd(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i = digitsEnd(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		d := i + 1
		if i = digitsEnd(b, d); i == d {
			return 0, false // a fraction needs a digit
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		if i = digitsEnd(b, d); i == d {
			return 0, false // so does an exponent
		}
	}
	return i, true
}

// digitsEnd returns the offset after the run of digits at b[i].
func digitsEnd(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// scanScalar checks the scalar at b[i] (a string of printable ASCII
// without escapes, a number, true, false or null) and returns the offset
// after it.
func scanScalar(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, ok := plainStringEnd(b, i)
		return end + 1, ok
	case c == '-' || ('0' <= c && c <= '9'):
		return numberEnd(b, i)
	case bytes.HasPrefix(b[i:], []byte("true")):
		return i + 4, true
	case bytes.HasPrefix(b[i:], []byte("false")):
		return i + 5, true
	case bytes.HasPrefix(b[i:], []byte("null")):
		return i + 4, true
	}
	return 0, false
}

// plainStringEnd returns the offset of the quote closing the string at
// b[i] when the string holds only printable ASCII without escapes. (Base64
// vectors are long: the bytes are checked eight at a time.)
func plainStringEnd(b []byte, i int) (int, bool) {
	k := bytes.IndexByte(b[i+1:], '"')
	if k < 0 {
		return 0, false
	}
	s := b[i+1 : i+1+k]
	if bytes.IndexByte(s, '\\') >= 0 {
		return 0, false
	}
	for len(s) >= 8 {
		// A byte at or over 0x80 sets its high bit in x, a byte under
		// 0x20 in x-0x20…20 (a borrow into the next byte comes only
		// from such a byte).
		x := binary.LittleEndian.Uint64(s)
		if (x|(x-0x2020202020202020))&0x8080808080808080 != 0 {
			return 0, false
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 || c >= 0x80 {
			return 0, false
		}
	}
	return i + 1 + k, true
}

// skipJSONValue returns the offset after the value at b[i], following
// strings and nesting only (the decoder checks the grammar of what the
// scanner passes over); -1 when the value does not end.
func skipJSONValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end := stringEnd(b, i+1)
		if end < 0 {
			return -1
		}
		return end + 1
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := stringEnd(b, i+1)
				if end < 0 {
					return -1
				}
				i = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

// skipWS returns the offset of the first byte at or after i that is not
// JSON whitespace. Pretty-printed bodies indent each line with a run of
// spaces, passed over eight bytes per step (a shorter run in one).
func skipWS(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		if c > ' ' || !isSpace(c) {
			return i
		}
		i++
		if c == '\n' {
			for i+8 <= len(b) {
				// The lowest lane that is not a space ends the run.
				if x := binary.LittleEndian.Uint64(b[i:]) ^ lanes20; x != 0 {
					i += bits.TrailingZeros64(x) >> 3
					break
				}
				i += 8
			}
		}
	}
	return i
}

func equalFoldAny(key []byte, names []string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// googleVectorsMeasured is what measureGoogleEmbeddings read of a
// Gemini embedContent / batchEmbedContents response.
type googleVectorsMeasured struct {
	// single is set when the body has an "embedding" object, whose vector
	// has singleDims dimensions (the object is {} in the rest).
	single     bool
	singleDims int
	// listCount vectors were in "embeddings" (an empty array in the
	// rest), the first of listDims dimensions.
	listCount, listDims int
}

// measureGoogleEmbeddings measures the "embedding" object and the
// "embeddings" array of a Gemini embedding response (Vertex "predictions"
// are left to the decoder) and returns the body with them replaced by {}
// and []. ok is false when the body is not of the shape the scanner reads
// (m is then meaningless).
func measureGoogleEmbeddings(body []byte) (rest []byte, m googleVectorsMeasured, ok bool) {
	type cut struct {
		start, end  int
		replacement string
	}
	var cuts []cut
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, m, false
	}
	i = skipWS(body, i+1)
	if i < len(body) && body[i] == '}' {
		return nil, m, false
	}
	seenList := false
	for {
		key, next, ok := scanKey(body, i)
		if !ok {
			return nil, m, false
		}
		i = next
		switch {
		case string(key) == "embedding":
			if m.single {
				return nil, m, false
			}
			if i >= len(body) || body[i] != '{' {
				return nil, m, false
			}
			d, next, ok := scanVectorObject(body, i, googleVectors)
			if !ok {
				return nil, m, false
			}
			m.single, m.singleDims = true, d
			cuts = append(cuts, cut{i, next, "{}"})
			i = next
		case string(key) == "embeddings":
			if seenList {
				return nil, m, false
			}
			seenList = true
			n, d, next, ok := scanVectorList(body, i, googleVectors)
			if !ok {
				return nil, m, false
			}
			m.listCount, m.listDims = n, d
			cuts = append(cuts, cut{i, next, "[]"})
			i = next
		case bytes.EqualFold(key, []byte("embedding")) || bytes.EqualFold(key, []byte("embeddings")):
			return nil, m, false
		default:
			next := skipJSONValue(body, i)
			if next < 0 {
				return nil, m, false
			}
			i = next
		}
		i = skipWS(body, i)
		if i >= len(body) {
			return nil, m, false
		}
		if body[i] == ',' {
			i = skipWS(body, i+1)
			continue
		}
		if body[i] != '}' {
			return nil, m, false
		}
		break
	}
	if len(cuts) == 0 || skipWS(body, i+1) != len(body) {
		return nil, m, false
	}
	size := len(body)
	for _, c := range cuts {
		size += len(c.replacement) - (c.end - c.start)
	}
	rest = make([]byte, 0, size)
	from := 0
	for _, c := range cuts {
		rest = append(rest, body[from:c.start]...)
		rest = append(rest, c.replacement...)
		from = c.end
	}
	rest = append(rest, body[from:]...)
	return rest, m, true
}

// skipDigits returns the index of the first byte at or after j in seg
// that is not an ASCII digit. seg ends in a non-digit (the array's closing
// bracket), so the scan stops inside it.
// The usual vector element has seven to nine digits after its point:
// they are passed eight per step while eight bytes remain.
func skipDigits(seg []byte, j int) int {
	for ; j+8 <= len(seg); j += 8 {
		if m := nonDigits(binary.LittleEndian.Uint64(seg[j:])); m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
	}
	for seg[j]-'0' < 10 {
		j++
	}
	return j
}

// nonDigits sets the top bit of each lane of x from the first that is
// not an ASCII digit (so the lowest set bit is that byte's): x+0x46 sets
// it for a byte from ':' to 0xb9, x-0x30 for one under '0' or from 0xba
// (where the addition wraps). Lanes before it, digits, neither carry nor
// borrow.
func nonDigits(x uint64) uint64 {
	return ((x + 0x4646464646464646) | (x - 0x3030303030303030)) & lanes80
}
