package pipeline

import (
	"strconv"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/jsonstr"
)

// argumentsObject parses tool-call arguments into the object an
// agent.tool_call carries: exactly the map encoding/json.Unmarshal makes
// of them (numbers as float64, strings unescaped with invalid UTF-8 and
// lone surrogates as U+FFFD, the last of a repeated name winning), and nil
// where Unmarshal would fail or leave the map nil — invalid JSON, a value
// that is not an object, a number beyond float64, nesting past its limit.
// Arguments that are not an object are left to the hash.
//
// Unmarshal checks the whole text with its scanner before it decodes it
// again by reflection; for the short objects models write that costs
// several times the maps it makes, once per tool call. Strings without
// escapes are slices of s (a string: nothing can change them).
func argumentsObject(s string) map[string]any {
	p := argsParser{s: s}
	p.ws()
	if p.i >= len(s) || s[p.i] != '{' {
		return nil
	}
	m, ok := p.object(1)
	if !ok {
		return nil
	}
	p.ws()
	if p.i != len(s) {
		return nil
	}
	return m
}

// maxArgsDepth is encoding/json's nesting limit: an object or array nested
// deeper fails its check.
const maxArgsDepth = 10000

// argsParser reads one JSON text; i is the offset of the next byte.
type argsParser struct {
	s string
	i int
}

// ws passes whitespace as RFC 8259 defines it.
func (p *argsParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value reads the value at p.i (whitespace passed) as encoding/json
// decodes a value into an interface.
func (p *argsParser) value(depth int) (any, bool) {
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; {
	case c == '{':
		m, ok := p.object(depth + 1)
		return m, ok
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, false
}

func (p *argsParser) literal(lit string) bool {
	if !strings.HasPrefix(p.s[p.i:], lit) {
		return false
	}
	p.i += len(lit)
	return true
}

// object reads the object at p.i, at the given nesting depth.
func (p *argsParser) object(depth int) (map[string]any, bool) {
	if depth > maxArgsDepth {
		return nil, false
	}
	p.i++ // '{'
	m := make(map[string]any)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return m, true
	}
	for {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, false
		}
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.ws()
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		m[key] = v
		more, ok := p.next('}')
		if !ok {
			return nil, false
		}
		if !more {
			return m, true
		}
	}
}

// array reads the array at p.i; an empty one is an empty slice, not nil,
// as encoding/json makes it.
func (p *argsParser) array(depth int) ([]any, bool) {
	if depth > maxArgsDepth {
		return nil, false
	}
	p.i++ // '['
	a := make([]any, 0)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return a, true
	}
	for {
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		more, ok := p.next(']')
		if !ok {
			return nil, false
		}
		if !more {
			return a, true
		}
	}
}

// next passes what follows a member or an element: a comma (more is
// true) or the closing byte of its object or array.
func (p *argsParser) next(closing byte) (more, ok bool) {
	p.ws()
	if p.i >= len(p.s) {
		return false, false
	}
	switch p.s[p.i] {
	case ',':
		p.i++
		p.ws()
		return true, true
	case closing:
		p.i++
		return false, true
	}
	return false, false
}

// number reads the number at p.i by the grammar and converts it as
// encoding/json does (strconv.ParseFloat; out of range fails).
func (p *argsParser) number() (any, bool) {
	s, start := p.s, p.i
	i := start
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i+1)
	default:
		return nil, false
	}
	if i < len(s) && s[i] == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			return nil, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return nil, false
		}
		i = j
	}
	p.i = i
	f, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil {
		return nil, false
	}
	return f, true
}

// digits returns the offset after the decimal digits at s[i:].
func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// str reads the string at p.i and returns its value: a slice of p.s when
// its contents are its value, else an unescaped copy.
func (p *argsParser) str() (string, bool) {
	v, n, ok := jsonstr.Unquote(p.s[p.i+1:])
	p.i += 1 + n
	return v, ok
}
