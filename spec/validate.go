package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Validator checks OISP v0.1 events in branch mode: the whole event against
// the envelope schema, then its data object against the $defs branch of
// events/<category>.schema.json named by event_type. Whole-file validation
// of data is not used because the branches of an event file overlap, so its
// top-level oneOf rejects ordinary payloads.
//
// Unlike the bare upstream envelope, Validator rejects an event_type that
// has no branch, and it checks an event without data as if data were {} so
// that the branch's required fields still apply.
//
// All schemas are compiled once in the constructor; a Validator is
// read-only afterwards and safe for concurrent use.
type Validator struct {
	envelope *jsonschema.Schema
	// branches maps an event type such as "ai.request" to the compiled
	// schema of its data payload.
	branches   map[string]*jsonschema.Schema
	eventTypes []string
	printer    *message.Printer
}

// Problem is one reason an event failed validation.
type Problem struct {
	// Location is the failing value as a JSON pointer without the leading
	// slash ("data/usage/prompt_tokens"); "(root)" for the event itself.
	Location string
	// Message says what is wrong ("got string, want integer").
	Message string
}

func (p Problem) String() string { return p.Location + ": " + p.Message }

// ValidationError reports every problem found in one event.
type ValidationError struct {
	// EventType is the event's event_type when it was a string, else "".
	EventType string
	// Problems is sorted by location and never empty.
	Problems []Problem
}

// Error renders one line per problem.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// NewValidator compiles the embedded OISP v0.1 schemas.
func NewValidator() (*Validator, error) {
	v, err := NewValidatorFS(SchemaFS, embeddedSchemaRoot)
	if err != nil {
		return nil, fmt.Errorf("compile embedded OISP schemas: %w", err)
	}
	return v, nil
}

// NewValidatorFS compiles the OISP v0.1 schema tree found at root in fsys
// (a directory laid out like schema/v0.1: envelope.schema.json, common/,
// events/). Every *.json file is registered under its $id, which must be
// SchemaBaseURL followed by the file's path below root. Nothing is fetched:
// a $ref to a document that is not in the tree is a compile error.
//
// The event types are read from the tree: each entry "#/$defs/<name>" of
// the top-level oneOf of events/<category>.schema.json defines the event
// type "<category>.<name>".
func NewValidatorFS(fsys fs.FS, root string) (*Validator, error) {
	docs, err := loadSchemaDocs(fsys, root)
	if err != nil {
		return nil, err
	}
	if _, ok := docs["envelope.schema.json"]; !ok {
		return nil, fmt.Errorf("schema tree %q has no envelope.schema.json", root)
	}

	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.AssertFormat()
	compiler.UseLoader(offlineLoader{})
	relPaths := make([]string, 0, len(docs))
	for rel := range docs {
		relPaths = append(relPaths, rel)
	}
	slices.Sort(relPaths)
	for _, rel := range relPaths {
		if err := compiler.AddResource(SchemaBaseURL+rel, docs[rel]); err != nil {
			return nil, fmt.Errorf("register schema %s: %w", rel, err)
		}
	}

	v := &Validator{
		branches: make(map[string]*jsonschema.Schema),
		printer:  message.NewPrinter(language.Und),
	}
	v.envelope, err = compiler.Compile(EnvelopeSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile envelope schema: %w", err)
	}
	for _, rel := range relPaths {
		category, ok := eventCategory(rel)
		if !ok {
			continue
		}
		names, err := branchNames(rel, docs[rel])
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			loc := SchemaBaseURL + rel + "#/$defs/" + name
			branch, err := compiler.Compile(loc)
			if err != nil {
				return nil, fmt.Errorf("compile branch %s: %w", loc, err)
			}
			eventType := category + "." + name
			if _, dup := v.branches[eventType]; dup {
				return nil, fmt.Errorf("event type %s is defined twice in %s", eventType, rel)
			}
			v.branches[eventType] = branch
			v.eventTypes = append(v.eventTypes, eventType)
		}
	}
	if len(v.branches) == 0 {
		return nil, fmt.Errorf("schema tree %q defines no event types (no events/*.schema.json with a top-level oneOf)", root)
	}
	slices.Sort(v.eventTypes)
	return v, nil
}

// EventTypes lists the event types the schema defines, sorted.
func (v *Validator) EventTypes() []string {
	return slices.Clone(v.eventTypes)
}

// Validate checks one JSON-encoded event. It returns nil for a valid event,
// a *ValidationError listing every problem for an invalid one, or a plain
// error when the input is not a single JSON value.
func (v *Validator) Validate(event []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(event))
	if err != nil {
		return fmt.Errorf("event is not valid JSON: %w", err)
	}
	return v.validateDoc(doc)
}

// ValidateValue checks an event held in memory. A map[string]any is taken
// to be decoded JSON (as produced by encoding/json or
// jsonschema.UnmarshalJSON) and is validated as is; []byte and
// json.RawMessage are treated as encoded JSON; any other value, such as an
// event struct, is first encoded with encoding/json.
func (v *Validator) ValidateValue(event any) error {
	switch ev := event.(type) {
	case map[string]any:
		return v.validateDoc(ev)
	case []byte:
		return v.Validate(ev)
	case json.RawMessage:
		return v.Validate(ev)
	}
	encoded, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("encode event as JSON: %w", err)
	}
	return v.Validate(encoded)
}

func (v *Validator) validateDoc(doc any) error {
	var problems []Problem
	if err := v.envelope.Validate(doc); err != nil {
		if problems, err = v.appendProblems(problems, err, nil); err != nil {
			return err
		}
	}
	obj, _ := doc.(map[string]any)
	eventType, _ := obj["event_type"].(string)
	if eventType != "" {
		var err error
		if problems, err = v.validateData(problems, obj, eventType); err != nil {
			return err
		}
	}
	return v.result(eventType, problems)
}

// validateData applies the data branch selected by eventType.
func (v *Validator) validateData(problems []Problem, event map[string]any, eventType string) ([]Problem, error) {
	branch, ok := v.branches[eventType]
	if !ok {
		if !hasProblemAt(problems, "event_type") {
			problems = append(problems, Problem{
				Location: "event_type",
				Message:  fmt.Sprintf("event type %q is not defined by OISP v0.1", eventType),
			})
		}
		return problems, nil
	}
	data, present := event["data"]
	if !present {
		// An absent payload is checked as an empty one so that event
		// types with required data fields cannot skip them.
		if err := branch.Validate(map[string]any{}); err != nil {
			missing, err := v.appendProblems(nil, err, nil)
			if err != nil {
				return nil, err
			}
			for _, p := range missing {
				problems = append(problems, Problem{
					Location: "data",
					Message:  fmt.Sprintf("absent, but %s requires it: %s", eventType, p.Message),
				})
			}
		}
		return problems, nil
	}
	if _, isObject := data.(map[string]any); !isObject {
		// The envelope has already reported that data must be an object.
		return problems, nil
	}
	if err := branch.Validate(data); err != nil {
		return v.appendProblems(problems, err, []string{"data"})
	}
	return problems, nil
}

func (v *Validator) result(eventType string, problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	slices.SortFunc(problems, func(a, b Problem) int {
		if c := strings.Compare(a.Location, b.Location); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	problems = slices.Compact(problems)
	return &ValidationError{EventType: eventType, Problems: problems}
}

// appendProblems flattens a jsonschema error tree into one Problem per
// failing keyword. prefix is prepended to every instance location (the
// data payload is validated on its own, so its locations lack "data").
func (v *Validator) appendProblems(problems []Problem, err error, prefix []string) ([]Problem, error) {
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return nil, fmt.Errorf("validate event: %w", err)
	}
	return v.flatten(problems, verr, prefix), nil
}

func (v *Validator) flatten(problems []Problem, e *jsonschema.ValidationError, prefix []string) []Problem {
	switch k := e.ErrorKind.(type) {
	case *kind.OneOf:
		if len(k.Subschemas) > 1 {
			return append(problems, Problem{
				Location: pointer(prefix, e.InstanceLocation),
				Message: fmt.Sprintf("matches more than one allowed form (oneOf alternatives %d and %d, from 0) but must match exactly one",
					k.Subschemas[0], k.Subschemas[1]),
			})
		}
		return append(problems, v.noAlternative(e, prefix))
	case *kind.AnyOf:
		return append(problems, v.noAlternative(e, prefix))
	}
	if len(e.Causes) == 0 {
		return append(problems, Problem{
			Location: pointer(prefix, e.InstanceLocation),
			Message:  v.message(e.ErrorKind),
		})
	}
	for _, cause := range e.Causes {
		problems = v.flatten(problems, cause, prefix)
	}
	return problems
}

// noAlternative summarises a oneOf/anyOf that nothing matched as a single
// problem listing why each alternative failed, because the individual
// failures ("want string", "want object") are misleading on their own.
func (v *Validator) noAlternative(e *jsonschema.ValidationError, prefix []string) Problem {
	at := pointer(prefix, e.InstanceLocation)
	reasons := make([]string, 0, len(e.Causes))
	for _, alternative := range e.Causes {
		var parts []string
		for _, p := range v.flatten(nil, alternative, prefix) {
			if p.Location == at {
				parts = append(parts, p.Message)
			} else {
				parts = append(parts, strings.TrimPrefix(p.Location, at+"/")+": "+p.Message)
			}
		}
		reasons = append(reasons, strings.Join(parts, ", "))
	}
	return Problem{
		Location: at,
		Message:  "matches none of the allowed forms: " + strings.Join(reasons, " | "),
	}
}

// message describes one failed keyword. Numeric bounds are formatted here
// because the library's localised printer groups digits ("70,000").
func (v *Validator) message(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Minimum:
		return "minimum: got " + ratString(k.Got) + ", want " + ratString(k.Want)
	case *kind.Maximum:
		return "maximum: got " + ratString(k.Got) + ", want " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "exclusiveMinimum: got " + ratString(k.Got) + ", want " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "exclusiveMaximum: got " + ratString(k.Got) + ", want " + ratString(k.Want)
	case *kind.MultipleOf:
		return "multipleOf: got " + ratString(k.Got) + ", want " + ratString(k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("minLength: got %d, want %d", k.Got, k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("maxLength: got %d, want %d", k.Got, k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("minItems: got %d, want %d", k.Got, k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("maxItems: got %d, want %d", k.Got, k.Want)
	case *kind.Format:
		msg := k.LocalizedString(v.printer)
		if k.Want == "date-time" {
			msg += " (want RFC 3339 such as 2025-12-22T20:15:05.123456Z)"
		}
		return msg
	}
	return k.LocalizedString(v.printer)
}

func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func hasProblemAt(problems []Problem, location string) bool {
	for _, p := range problems {
		if p.Location == location {
			return true
		}
	}
	return false
}

// pointer renders an instance location as a JSON pointer without the
// leading slash, escaping "~" and "/" inside keys.
func pointer(prefix, tokens []string) string {
	if len(prefix)+len(tokens) == 0 {
		return "(root)"
	}
	var sb strings.Builder
	for i, tok := range slices.Concat(prefix, tokens) {
		if i > 0 {
			sb.WriteByte('/')
		}
		if strings.ContainsAny(tok, "~/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
		}
		sb.WriteString(tok)
	}
	return sb.String()
}

// loadSchemaDocs reads every *.json file below root, keyed by its path
// relative to root, and checks that each declares the matching $id.
func loadSchemaDocs(fsys fs.FS, root string) (map[string]any, error) {
	docs := make(map[string]any)
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".json" {
			return nil
		}
		rel := p
		if root != "." {
			rel = strings.TrimPrefix(p, root+"/")
		}
		raw, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("parse schema %s: %w", rel, err)
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			return fmt.Errorf("schema %s is not a JSON object", rel)
		}
		if id, want := obj["$id"], SchemaBaseURL+rel; id != want {
			return fmt.Errorf("schema %s declares $id %v, want %q", rel, id, want)
		}
		docs[rel] = doc
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load schema tree %q: %w", root, err)
	}
	return docs, nil
}

// eventCategory reports whether rel is an event file (events/<c>.schema.json)
// and returns its category c.
func eventCategory(rel string) (string, bool) {
	dir, file := path.Split(rel)
	if dir != "events/" {
		return "", false
	}
	category, ok := strings.CutSuffix(file, ".schema.json")
	return category, ok && category != ""
}

// branchNames returns the $defs names listed by the top-level oneOf of an
// event file, in file order.
func branchNames(rel string, doc any) ([]string, error) {
	obj, _ := doc.(map[string]any)
	oneOf, ok := obj["oneOf"].([]any)
	if !ok {
		return nil, fmt.Errorf("event schema %s has no top-level oneOf listing its branches", rel)
	}
	names := make([]string, 0, len(oneOf))
	for i, entry := range oneOf {
		obj, _ := entry.(map[string]any)
		ref, _ := obj["$ref"].(string)
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("event schema %s: oneOf[%d] is not a {\"$ref\": \"#/$defs/<name>\"} entry", rel, i)
		}
		names = append(names, name)
	}
	return names, nil
}

// offlineLoader refuses every URL: all schemas must be registered up front,
// so validation never depends on the network or the file system.
type offlineLoader struct{}

func (offlineLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not part of the OISP schema tree and will not be fetched", url)
}
