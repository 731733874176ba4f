package provider

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	json "github.com/goccy/go-json"
)

// Decoding a tolerant string (jStr) costs goccy a skip of the value, a copy
// of it for UnmarshalJSON and the string: three passes and two allocations
// where a plain string field takes one of each. The hottest body types are
// therefore generic in their strings (…Of[S ~string]): decodeLooseNative
// decodes into the S = string instance first, which has the layout of the
// S = jStr one, and keeps the result when that is exactly what the
// tolerant decode would give:
//
//   - the decode reported nothing: every string member held a JSON string
//     (a number, boolean, object or array is a type mismatch for a plain
//     string, which jStr would have accepted or emptied);
//   - the body has no null: jStr empties itself on null, a plain string
//     keeps what an earlier duplicate member gave it;
//   - the body is valid UTF-8: jStr keeps the bytes of a string without
//     escapes as they are, the decoder of plain strings replaces invalid
//     sequences.
//
// Otherwise the value is reset and decoded again with the tolerant types by
// decodeLoose, as before.

// decodeLooseNative is decodeLoose for a *T whose native twin is N (the
// S = string instance of T's generic type).
func decodeLooseNative[N, T any](data []byte, v *T) (mismatch bool, err error) {
	if unsafe.Sizeof(*new(N)) == unsafe.Sizeof(*v) && nativeDecodable(data) {
		if json.Unmarshal(data, (*N)(unsafe.Pointer(v))) == nil {
			return false, nil
		}
		var zero T
		*v = zero
	}
	return decodeLoose(data, v)
}

// nativeDecodable reports whether a body can be decoded with plain strings
// for tolerant ones (see above).
func nativeDecodable(data []byte) bool {
	return !bytes.Contains(data, []byte("null")) && utf8.Valid(data)
}

// decodeRequestBodyNative is decodeRequestBody with decodeLooseNative.
func decodeRequestBodyNative[N, T any](body []byte, v *T, res *Result) bool {
	return decodeBodyNotingNative[N](body, v, res, noteRequestNotJSON, noteRequestTypeMismatch)
}

// decodeResponseBodyNative is decodeResponseBody with decodeLooseNative.
func decodeResponseBodyNative[N, T any](body []byte, v *T, res *Result) bool {
	return decodeBodyNotingNative[N](body, v, res, noteResponseNotJSON, noteResponseTypeMismatch)
}

func decodeBodyNotingNative[N, T any](body []byte, v *T, res *Result, notJSON, mismatchNote string) bool {
	mismatch, err := decodeLooseNative[N](body, v)
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
