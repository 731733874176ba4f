package spec

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Keywords that only document a schema; they never change a verdict and
// are the one place our files are allowed to differ from upstream.
var annotationKeywords = map[string]bool{
	"title": true, "description": true, "examples": true, "$comment": true,
}

// Keywords whose value is a map from names to subschemas.
var schemaMapKeywords = map[string]bool{
	"properties": true, "patternProperties": true, "$defs": true, "definitions": true, "dependentSchemas": true,
}

// Keywords whose value is a single subschema.
var subschemaKeywords = map[string]bool{
	"items": true, "additionalProperties": true, "not": true, "if": true, "then": true, "else": true,
	"contains": true, "propertyNames": true, "unevaluatedItems": true, "unevaluatedProperties": true,
	"contentSchema": true,
}

// Keywords whose value is a list of subschemas (order kept).
var schemaListKeywords = map[string]bool{
	"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true,
}

// Keywords whose list value is a set: order carries no meaning.
var setKeywords = map[string]bool{
	"enum": true, "required": true, "type": true,
}

// compareSchemas walks two schemas side by side and describes every
// difference in validation keywords (properties, types, enums, required,
// patterns, formats, bounds, refs …). Annotations are ignored, and object
// keys that are property names are never mistaken for keywords.
func compareSchemas(ours, theirs any, at string) []string {
	o, oIsObj := ours.(map[string]any)
	t, tIsObj := theirs.(map[string]any)
	if !oIsObj || !tIsObj {
		// Boolean schemas, or a type mismatch between the two sides.
		if !reflect.DeepEqual(ours, theirs) {
			return []string{fmt.Sprintf("%s: ours %s, upstream %s", at, compact(ours), compact(theirs))}
		}
		return nil
	}
	var diffs []string
	for _, key := range unionKeys(o, t) {
		if annotationKeywords[key] {
			continue
		}
		where := at + "/" + key
		ov, inOurs := o[key]
		tv, inTheirs := t[key]
		switch {
		case !inTheirs:
			diffs = append(diffs, fmt.Sprintf("%s: only in ours (%s)", where, compact(ov)))
		case !inOurs:
			diffs = append(diffs, fmt.Sprintf("%s: only upstream (%s)", where, compact(tv)))
		case schemaMapKeywords[key]:
			om, ok1 := ov.(map[string]any)
			tm, ok2 := tv.(map[string]any)
			if !ok1 || !ok2 {
				diffs = append(diffs, fmt.Sprintf("%s: ours %s, upstream %s", where, compact(ov), compact(tv)))
				continue
			}
			for _, name := range unionKeys(om, tm) {
				sub := where + "/" + name
				switch os, ts := om[name], tm[name]; {
				case ts == nil:
					diffs = append(diffs, sub+": only in ours")
				case os == nil:
					diffs = append(diffs, sub+": only upstream")
				default:
					diffs = append(diffs, compareSchemas(os, ts, sub)...)
				}
			}
		case subschemaKeywords[key]:
			diffs = append(diffs, compareSchemas(ov, tv, where)...)
		case schemaListKeywords[key]:
			ol, ok1 := ov.([]any)
			tl, ok2 := tv.([]any)
			if !ok1 || !ok2 || len(ol) != len(tl) {
				diffs = append(diffs, fmt.Sprintf("%s: ours %s, upstream %s", where, compact(ov), compact(tv)))
				continue
			}
			for i := range ol {
				diffs = append(diffs, compareSchemas(ol[i], tl[i], fmt.Sprintf("%s/%d", where, i))...)
			}
		case setKeywords[key]:
			if !sameSet(ov, tv) {
				diffs = append(diffs, fmt.Sprintf("%s: ours %s, upstream %s", where, compact(ov), compact(tv)))
			}
		default:
			if !reflect.DeepEqual(ov, tv) {
				diffs = append(diffs, fmt.Sprintf("%s: ours %s, upstream %s", where, compact(ov), compact(tv)))
			}
		}
	}
	return diffs
}

func unionKeys(a, b map[string]any) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// sameSet compares two keyword values as sets when both are lists and
// exactly otherwise (type may be a single string).
func sameSet(a, b any) bool {
	al, ok1 := a.([]any)
	bl, ok2 := b.([]any)
	if !ok1 || !ok2 {
		return reflect.DeepEqual(a, b)
	}
	if len(al) != len(bl) {
		return false
	}
	as, bs := make([]string, len(al)), make([]string, len(bl))
	for i := range al {
		as[i], bs[i] = compact(al[i]), compact(bl[i])
	}
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// readSchemaTree decodes every *.json file below root, keyed by relative path.
func readSchemaTree(t testing.TB, fsys fs.FS, root string) map[string]any {
	t.Helper()
	tree := map[string]any{}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".json" {
			return err
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		rel := p
		if root != "." {
			rel = strings.TrimPrefix(p, root+"/")
		}
		tree[rel] = doc
		return nil
	})
	if err != nil {
		t.Fatalf("read schema tree %s: %v", root, err)
	}
	return tree
}

// compareSchemaTrees reports files present on one side only and every
// keyword difference inside files present on both.
func compareSchemaTrees(ours, theirs map[string]any) []string {
	var diffs []string
	for _, rel := range unionKeys(ours, theirs) {
		o, inOurs := ours[rel]
		t, inTheirs := theirs[rel]
		switch {
		case !inTheirs:
			diffs = append(diffs, rel+": file only in ours")
		case !inOurs:
			diffs = append(diffs, rel+": file only upstream")
		default:
			diffs = append(diffs, compareSchemas(o, t, rel+"#")...)
		}
	}
	return diffs
}

// TestSchemaCompareDetectsDifferences proves the structural comparison can
// fail: each mutation of a copy of our own envelope/event schemas must be
// reported at the right place, and annotation-only edits must not be.
func TestSchemaCompareDetectsDifferences(t *testing.T) {
	tests := []struct {
		name string
		file string
		edit func(doc map[string]any)
		want string // expected diff line; "" means no difference
	}{
		{"enum value renamed", "envelope.schema.json", func(d map[string]any) {
			enum := dig(d, "$defs", "source", "properties", "capture_method", "enum").([]any)
			enum[0] = "ebpf_trace"
		}, `envelope.schema.json#/$defs/source/properties/capture_method/enum: ours`},
		{"required field dropped", "events/agent.schema.json", func(d map[string]any) {
			delete(dig(d, "$defs", "tool_call").(map[string]any), "required")
		}, `events/agent.schema.json#/$defs/tool_call/required: only upstream (["tool"])`},
		{"pattern changed", "common/process.schema.json", func(d map[string]any) {
			dig(d, "properties", "hash", "properties", "md5").(map[string]any)["pattern"] = "^[a-f0-9]{31}$"
		}, `common/process.schema.json#/properties/hash/properties/md5/pattern: ours "^[a-f0-9]{31}$", upstream "^[a-f0-9]{32}$"`},
		{"format removed", "common/web_context.schema.json", func(d map[string]any) {
			delete(dig(d, "properties", "origin").(map[string]any), "format")
		}, `common/web_context.schema.json#/properties/origin/format: only upstream ("uri")`},
		{"type changed", "events/ai.schema.json", func(d map[string]any) {
			dig(d, "$defs", "response", "properties", "latency_ms").(map[string]any)["type"] = "number"
		}, `events/ai.schema.json#/$defs/response/properties/latency_ms/type: ours "number", upstream "integer"`},
		{"property added", "events/file.schema.json", func(d map[string]any) {
			dig(d, "$defs", "write", "properties").(map[string]any)["mode"] = map[string]any{"type": "string"}
		}, `events/file.schema.json#/$defs/write/properties/mode: only in ours`},
		{"property named like an annotation removed", "events/agent.schema.json", func(d map[string]any) {
			delete(dig(d, "$defs", "plan_step", "properties").(map[string]any), "description")
		}, `events/agent.schema.json#/$defs/plan_step/properties/description: only upstream`},
		{"bound changed", "events/network.schema.json", func(d map[string]any) {
			dig(d, "$defs", "endpoint", "properties", "port").(map[string]any)["maximum"] = 65536.0
		}, `events/network.schema.json#/$defs/endpoint/properties/port/maximum: ours 65536, upstream 65535`},
		{"closed envelope opened", "envelope.schema.json", func(d map[string]any) {
			d["additionalProperties"] = true
		}, `envelope.schema.json#/additionalProperties: ours true, upstream false`},
		{"ref retargeted", "events/process.schema.json", func(d map[string]any) {
			dig(d, "$defs", "exec", "properties", "binary_hash").(map[string]any)["$ref"] = "../common/process.schema.json#/properties/parent"
		}, `events/process.schema.json#/$defs/exec/properties/binary_hash/$ref: ours`},
		{"oneOf branch dropped", "events/process.schema.json", func(d map[string]any) {
			d["oneOf"] = d["oneOf"].([]any)[:2]
		}, `events/process.schema.json#/oneOf: ours`},
		{"enum reordered is not a difference", "common/host.schema.json", func(d map[string]any) {
			slices.Reverse(dig(d, "properties", "os", "enum").([]any))
		}, ""},
		{"descriptions and titles are not differences", "events/ai.schema.json", func(d map[string]any) {
			d["title"] = "changed"
			dig(d, "$defs", "request").(map[string]any)["description"] = "changed"
			dig(d, "$defs", "auth_info", "properties", "key_prefix").(map[string]any)["examples"] = []any{"x"}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			original := readSchemaTree(t, SchemaFS, embeddedSchemaRoot)
			mutated := readSchemaTree(t, SchemaFS, embeddedSchemaRoot)
			tc.edit(mutated[tc.file].(map[string]any))
			diffs := compareSchemaTrees(mutated, original)
			if tc.want == "" {
				if len(diffs) != 0 {
					t.Errorf("unexpected differences:\n%s", strings.Join(diffs, "\n"))
				}
				return
			}
			if len(diffs) != 1 || !strings.HasPrefix(diffs[0], tc.want) {
				t.Errorf("got differences:\n%s\nwant exactly one starting with:\n%s", strings.Join(diffs, "\n"), tc.want)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		original := readSchemaTree(t, SchemaFS, embeddedSchemaRoot)
		mutated := readSchemaTree(t, SchemaFS, embeddedSchemaRoot)
		delete(mutated, "common/app.schema.json")
		want := []string{"common/app.schema.json: file only upstream"}
		if got := compareSchemaTrees(mutated, original); !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

// dig follows object keys into a decoded JSON document.
func dig(doc map[string]any, keys ...string) any {
	var cur any = doc
	for _, k := range keys {
		cur = cur.(map[string]any)[k]
	}
	return cur
}
