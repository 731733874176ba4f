package cassette

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The recordings in the wild were written by Python (vcrpy with PyYAML) and
// by JavaScript (nock). Their bodies are sometimes stored as parsed trees
// that we must turn back into bytes exactly as the recorder's own tooling
// would (Python's json.dumps). To get those bytes right we first read a file
// into the value model Python would have seen — PyYAML's YAML 1.1 scalar
// resolution differs from YAML 1.2 ("1e5" and "inf" are strings, "yes" is a
// boolean) — and only then interpret it.

type pyKind uint8

const (
	pyNone pyKind = iota
	pyBool
	pyInt
	pyFloat
	pyStr
	pyBytes
	pyList
	pyDict
)

func (k pyKind) String() string {
	return [...]string{"null", "bool", "int", "float", "str", "bytes", "list", "dict"}[k]
}

// pyValue is one value as Python's yaml.safe_load or json.loads returns it.
// Dicts keep insertion order, as Python dicts do.
type pyValue struct {
	kind  pyKind
	b     bool
	i     *big.Int
	f     float64
	s     string // pyStr
	raw   []byte // pyBytes
	items []*pyValue
	keys  []*pyValue // pyDict, parallel to items

	// fromPlain is set for a plain (unquoted, untagged) YAML scalar, whose
	// text lit a Go YAML decoder would have kept as a string; see goText.
	fromPlain bool
	lit       string
}

// get returns the value under a string key of a dict.
func (v *pyValue) get(key string) *pyValue {
	if v == nil || v.kind != pyDict {
		return nil
	}
	for i, k := range v.keys {
		if k.kind == pyStr && k.s == key {
			return v.items[i]
		}
	}
	return nil
}

// has reports whether a dict has a string key ("key" in d).
func (v *pyValue) has(key string) bool {
	if v == nil || v.kind != pyDict {
		return false
	}
	for _, k := range v.keys {
		if k.kind == pyStr && k.s == key {
			return true
		}
	}
	return false
}

// truthy is Python's bool(v); a missing value is falsy.
func (v *pyValue) truthy() bool {
	if v == nil {
		return false
	}
	switch v.kind {
	case pyNone:
		return false
	case pyBool:
		return v.b
	case pyInt:
		return v.i.Sign() != 0
	case pyFloat:
		return v.f != 0
	case pyStr:
		return v.s != ""
	case pyBytes:
		return len(v.raw) > 0
	default:
		return len(v.items) > 0
	}
}

// or returns v when truthy, else w (Python's `v or w`).
func (v *pyValue) or(w *pyValue) *pyValue {
	if v.truthy() {
		return v
	}
	return w
}

// hashKey identifies a dict key the way Python's equality does for the
// scalar kinds a mapping key can have (1 == 1.0 == True).
func (v *pyValue) hashKey() (string, error) {
	switch v.kind {
	case pyNone:
		return "none", nil
	case pyBool:
		if v.b {
			return "n:1", nil
		}
		return "n:0", nil
	case pyInt:
		return "n:" + v.i.String(), nil
	case pyFloat:
		if !math.IsInf(v.f, 0) && !math.IsNaN(v.f) && v.f == math.Trunc(v.f) {
			bf := new(big.Float).SetFloat64(v.f)
			n, _ := bf.Int(nil)
			return "n:" + n.String(), nil
		}
		return "f:" + pyFloatRepr(v.f), nil
	case pyStr:
		return "s:" + v.s, nil
	case pyBytes:
		return "b:" + string(v.raw), nil
	}
	return "", fmt.Errorf("unhashable mapping key (%s)", v.kind)
}

// dictBuilder builds a dict with Python's duplicate-key rule: the last value
// wins, the first position stays.
type dictBuilder struct {
	v    *pyValue
	seen map[string]int
}

func newDict() *dictBuilder {
	return &dictBuilder{v: &pyValue{kind: pyDict}, seen: map[string]int{}}
}

func (d *dictBuilder) set(k, val *pyValue) error {
	h, err := k.hashKey()
	if err != nil {
		return err
	}
	if i, ok := d.seen[h]; ok {
		d.v.items[i] = val
		return nil
	}
	d.seen[h] = len(d.v.keys)
	d.v.keys = append(d.v.keys, k)
	d.v.items = append(d.v.items, val)
	return nil
}

// ---------------------------------------------------------------- YAML

// PyYAML's implicit resolvers (resolver.py), YAML 1.1.
var (
	pyBoolRE  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	pyFloatRE = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	pyIntRE   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	pyNullRE  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
)

// yamlBudget bounds the values built from one document, so that aliases
// (which a YAML tree may reference many times) cannot expand without bound.
type yamlBudget struct{ left int }

func (b *yamlBudget) spend() error {
	b.left--
	if b.left < 0 {
		return errors.New("YAML expands to too many values (alias bomb?)")
	}
	return nil
}

// parseYAMLDocument reads exactly one YAML document into Python values.
func parseYAMLDocument(data []byte) (*pyValue, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &pyValue{kind: pyNone}, nil
		}
		return nil, fmt.Errorf("YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("YAML: more than one document")
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	budget := &yamlBudget{left: 64*len(data) + 1<<16}
	v, err := fromYAML(&doc, budget, 0)
	if err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	return v, nil
}

const maxDepth = 10000

func fromYAML(n *yaml.Node, budget *yamlBudget, depth int) (*pyValue, error) {
	if err := budget.spend(); err != nil {
		return nil, err
	}
	if depth > maxDepth {
		return nil, errors.New("YAML nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &pyValue{kind: pyNone}, nil
		}
		return fromYAML(n.Content[0], budget, depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: unknown alias", n.Line)
		}
		return fromYAML(n.Alias, budget, depth+1)
	case yaml.ScalarNode:
		v, err := yamlScalar(n)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	case yaml.SequenceNode:
		if n.Style&yaml.TaggedStyle != 0 && shortTag(n.Tag) != "!!seq" {
			return nil, fmt.Errorf("line %d: unsupported sequence tag %s", n.Line, n.Tag)
		}
		v := &pyValue{kind: pyList, items: make([]*pyValue, 0, len(n.Content))}
		for _, c := range n.Content {
			cv, err := fromYAML(c, budget, depth+1)
			if err != nil {
				return nil, err
			}
			v.items = append(v.items, cv)
		}
		return v, nil
	case yaml.MappingNode:
		if n.Style&yaml.TaggedStyle != 0 && shortTag(n.Tag) != "!!map" {
			return nil, fmt.Errorf("line %d: unsupported mapping tag %s", n.Line, n.Tag)
		}
		pairs, err := flattenMerge(n, depth)
		if err != nil {
			return nil, err
		}
		d := newDict()
		for i := 0; i+1 < len(pairs); i += 2 {
			k, err := fromYAML(pairs[i], budget, depth+1)
			if err != nil {
				return nil, err
			}
			val, err := fromYAML(pairs[i+1], budget, depth+1)
			if err != nil {
				return nil, err
			}
			if err := d.set(k, val); err != nil {
				return nil, fmt.Errorf("line %d: %w", pairs[i].Line, err)
			}
		}
		return d.v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// flattenMerge applies YAML merge keys ("<<") as PyYAML does: merged pairs
// come first, the mapping's own pairs after them (and so override them).
func flattenMerge(n *yaml.Node, depth int) ([]*yaml.Node, error) {
	hasMerge := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			hasMerge = true
			break
		}
	}
	if !hasMerge {
		return n.Content, nil
	}
	if depth > maxDepth {
		return nil, errors.New("YAML merge nested too deeply")
	}
	var merged, own []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			own = append(own, k, v)
			continue
		}
		v = resolveAlias(v)
		var sources []*yaml.Node
		switch v.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{v}
		case yaml.SequenceNode:
			// Later mappings in the list are overridden by earlier ones.
			for j := len(v.Content) - 1; j >= 0; j-- {
				sources = append(sources, resolveAlias(v.Content[j]))
			}
		default:
			return nil, fmt.Errorf("line %d: merge value is not a mapping", v.Line)
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("line %d: merge value is not a mapping", s.Line)
			}
			sub, err := flattenMerge(s, depth+1)
			if err != nil {
				return nil, err
			}
			merged = append(merged, sub...)
		}
	}
	return append(merged, own...), nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 &&
		(k.Style&yaml.TaggedStyle == 0 || shortTag(k.Tag) == "!!merge")
}

func shortTag(t string) string {
	const long = "tag:yaml.org,2002:"
	if strings.HasPrefix(t, long) {
		return "!!" + t[len(long):]
	}
	return t
}

func yamlScalar(n *yaml.Node) (*pyValue, error) {
	v, err := yamlScalarValue(n)
	if err != nil {
		return nil, err
	}
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) == 0 {
		v.fromPlain, v.lit = true, n.Value
	}
	return v, nil
}

func yamlScalarValue(n *yaml.Node) (*pyValue, error) {
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
	tag := ""
	if n.Style&yaml.TaggedStyle != 0 {
		tag = shortTag(n.Tag)
	} else if !quoted {
		tag = pyResolve(n.Value)
	}
	switch tag {
	case "", "!", "!!str", "!!timestamp", "!!value":
		// Timestamps stay text: they never occur in HTTP recordings except as
		// header text, which Python would print back the same way.
		return &pyValue{kind: pyStr, s: n.Value}, nil
	case "!!null":
		return &pyValue{kind: pyNone}, nil
	case "!!bool":
		switch strings.ToLower(n.Value) {
		case "yes", "true", "on":
			return &pyValue{kind: pyBool, b: true}, nil
		case "no", "false", "off":
			return &pyValue{kind: pyBool, b: false}, nil
		}
		return nil, fmt.Errorf("bad !!bool %q", n.Value)
	case "!!int":
		i, err := pyConstructInt(n.Value)
		if err != nil {
			return nil, err
		}
		return &pyValue{kind: pyInt, i: i}, nil
	case "!!float":
		f, err := pyConstructFloat(n.Value)
		if err != nil {
			return nil, err
		}
		return &pyValue{kind: pyFloat, f: f}, nil
	case "!!binary":
		b, err := decodeBase64Lenient(n.Value)
		if err != nil {
			return nil, fmt.Errorf("bad !!binary: %w", err)
		}
		return &pyValue{kind: pyBytes, raw: b}, nil
	}
	return nil, fmt.Errorf("unsupported scalar tag %s", n.Tag)
}

// pyResolve is PyYAML's implicit tag for a plain scalar.
func pyResolve(s string) string {
	if s == "" {
		return "!!null"
	}
	switch c := s[0]; {
	case c == '~' || c == 'n' || c == 'N':
		if pyNullRE.MatchString(s) {
			return "!!null"
		}
	case c == '<' && s == "<<":
		return "!!merge"
	}
	if strings.ContainsRune("yYnNtTfFoO", rune(s[0])) && pyBoolRE.MatchString(s) {
		return "!!bool"
	}
	if strings.ContainsRune("-+0123456789.", rune(s[0])) {
		if pyFloatRE.MatchString(s) {
			return "!!float"
		}
		if pyIntRE.MatchString(s) {
			return "!!int"
		}
	}
	return ""
}

func pyConstructInt(s string) (*big.Int, error) {
	v := strings.ReplaceAll(s, "_", "")
	sign := 1
	if v != "" && (v[0] == '-' || v[0] == '+') {
		if v[0] == '-' {
			sign = -1
		}
		v = v[1:]
	}
	n := new(big.Int)
	var ok bool
	switch {
	case v == "0":
		ok = true
	case strings.HasPrefix(v, "0b"):
		_, ok = n.SetString(v[2:], 2)
	case strings.HasPrefix(v, "0x"):
		_, ok = n.SetString(v[2:], 16)
	case strings.HasPrefix(v, "0"):
		_, ok = n.SetString(v[1:], 8)
	case strings.Contains(v, ":"):
		ok = true
		sixty := big.NewInt(60)
		for _, part := range strings.Split(v, ":") {
			d, good := new(big.Int).SetString(part, 10)
			if !good {
				ok = false
				break
			}
			n.Mul(n, sixty).Add(n, d)
		}
	default:
		_, ok = n.SetString(v, 10)
	}
	if !ok {
		return nil, fmt.Errorf("bad !!int %q", s)
	}
	if sign < 0 {
		n.Neg(n)
	}
	return n, nil
}

func pyConstructFloat(s string) (float64, error) {
	v := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	sign := 1.0
	if v != "" && (v[0] == '-' || v[0] == '+') {
		if v[0] == '-' {
			sign = -1
		}
		v = v[1:]
	}
	switch {
	case v == ".inf":
		return sign * math.Inf(1), nil
	case v == ".nan":
		return math.NaN(), nil
	case strings.Contains(v, ":"):
		f := 0.0
		for _, part := range strings.Split(v, ":") {
			d, err := strconv.ParseFloat(part, 64)
			if err != nil {
				return 0, fmt.Errorf("bad !!float %q", s)
			}
			f = f*60 + d
		}
		return sign * f, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("bad !!float %q", s)
	}
	return sign * f, nil
}

// decodeBase64Lenient decodes base64 the way Python's base64.decodebytes
// does: characters outside the alphabet (line breaks) are ignored.
func decodeBase64Lenient(s string) ([]byte, error) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(out, clean)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// ---------------------------------------------------------------- JSON

// parseJSONValue reads a JSON document as Python's json.loads would:
// objects keep key order, integers stay exact, other numbers are floats.
func parseJSONValue(data []byte) (*pyValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := jsonValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("JSON: extra data after the top-level value")
	}
	return v, nil
}

func jsonValue(dec *json.Decoder, depth int) (*pyValue, error) {
	if depth > maxDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	switch t := tok.(type) {
	case nil:
		return &pyValue{kind: pyNone}, nil
	case bool:
		return &pyValue{kind: pyBool, b: t}, nil
	case string:
		return &pyValue{kind: pyStr, s: t}, nil
	case json.Number:
		s := string(t)
		if !strings.ContainsAny(s, ".eE") {
			n, ok := new(big.Int).SetString(s, 10)
			if !ok {
				return nil, fmt.Errorf("JSON: bad number %q", s)
			}
			return &pyValue{kind: pyInt, i: n}, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("JSON: bad number %q", s)
		}
		return &pyValue{kind: pyFloat, f: f}, nil
	case json.Delim:
		switch t {
		case '[':
			v := &pyValue{kind: pyList}
			for dec.More() {
				item, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.items = append(v.items, item)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("JSON: %w", err)
			}
			return v, nil
		case '{':
			d := newDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("JSON: %w", err)
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("JSON: object key is not a string")
				}
				val, err := jsonValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				if err := d.set(&pyValue{kind: pyStr, s: key}, val); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("JSON: %w", err)
			}
			return d.v, nil
		}
	}
	return nil, fmt.Errorf("JSON: unexpected token %v", tok)
}

// ---------------------------------------------------------------- json.dumps

// pyJSONDumps serialises v like Python's json.dumps(v) with default
// arguments: separators ", " and ": ", ASCII-only output with \uXXXX escapes
// (surrogate pairs above U+FFFF), keys in insertion order, NaN and Infinity
// as bare words.
func pyJSONDumps(v *pyValue) ([]byte, error) {
	return appendPyJSON(nil, v, 0)
}

func appendPyJSON(dst []byte, v *pyValue, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, errors.New("json.dumps: nested too deeply")
	}
	switch v.kind {
	case pyNone:
		return append(dst, "null"...), nil
	case pyBool:
		if v.b {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case pyInt:
		return v.i.Append(dst, 10), nil
	case pyFloat:
		return append(dst, pyJSONFloat(v.f)...), nil
	case pyStr:
		return appendPyJSONString(dst, v.s), nil
	case pyList:
		dst = append(dst, '[')
		for i, it := range v.items {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			var err error
			if dst, err = appendPyJSON(dst, it, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case pyDict:
		dst = append(dst, '{')
		for i, k := range v.keys {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			ks, err := pyJSONKey(k)
			if err != nil {
				return nil, err
			}
			dst = appendPyJSONString(dst, ks)
			dst = append(dst, ": "...)
			if dst, err = appendPyJSON(dst, v.items[i], depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("json.dumps: %s is not JSON serializable", v.kind)
}

// pyJSONKey is how json.dumps turns a non-string dict key into a string.
func pyJSONKey(k *pyValue) (string, error) {
	switch k.kind {
	case pyStr:
		return k.s, nil
	case pyNone:
		return "null", nil
	case pyBool:
		if k.b {
			return "true", nil
		}
		return "false", nil
	case pyInt:
		return k.i.String(), nil
	case pyFloat:
		return pyJSONFloat(k.f), nil
	}
	return "", fmt.Errorf("json.dumps: keys must be str, int, float, bool or None, not %s", k.kind)
}

func pyJSONFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return pyFloatRepr(f)
}

// pyFloatRepr is Python's repr(float): the shortest round-tripping digits,
// positional between 1e-4 and 1e16, otherwise d.ddde±XX.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // "-1.2345e+06"
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	var b strings.Builder
	b.WriteString(sign)
	if exp < 0 {
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -exp-1))
		b.WriteString(digits)
		return b.String()
	}
	if len(digits) <= exp+1 {
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", exp+1-len(digits)))
		b.WriteString(".0")
		return b.String()
	}
	b.WriteString(digits[:exp+1])
	b.WriteByte('.')
	b.WriteString(digits[exp+1:])
	return b.String()
}

func appendPyJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u := func(dst []byte, r rune) []byte {
		return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '"':
				dst = append(dst, '\\', '"')
			case c == '\\':
				dst = append(dst, '\\', '\\')
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c < 0x20 || c == 0x7f:
				dst = u(dst, rune(c))
			default:
				dst = append(dst, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r > 0xffff {
			r -= 0x10000
			dst = u(dst, 0xd800|(r>>10)&0x3ff)
			dst = u(dst, 0xdc00|r&0x3ff)
			continue
		}
		dst = u(dst, r)
	}
	return append(dst, '"')
}

// ---------------------------------------------------------------- str()

// pyText is Python's str(v) for scalars, except that bytes decode as
// Latin-1 (how recordings store byte-valued header values).
func pyText(v *pyValue) (string, error) {
	if v == nil {
		return "None", nil
	}
	switch v.kind {
	case pyNone:
		return "None", nil
	case pyBool:
		if v.b {
			return "True", nil
		}
		return "False", nil
	case pyInt:
		return v.i.String(), nil
	case pyFloat:
		return pyFloatRepr(v.f), nil
	case pyStr:
		return v.s, nil
	case pyBytes:
		return latin1(v.raw), nil
	}
	return "", fmt.Errorf("expected a scalar, found a %s", v.kind)
}

// goText is the string a Go YAML decoder (go-vcr's) stores in a string
// field: the literal text of a plain scalar ("1:30" stays "1:30", where
// PyYAML would read the integer 90), "" for null, the raw bytes of
// !!binary; other values as pyText.
func goText(v *pyValue) (string, error) {
	if v != nil && v.fromPlain {
		if v.kind == pyNone {
			return "", nil
		}
		return v.lit, nil
	}
	if v == nil || v.kind == pyNone {
		return "", nil
	}
	if v.kind == pyBytes { // Go encoders write non-UTF-8 strings as !!binary
		return string(v.raw), nil
	}
	return pyText(v)
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
