package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// FuzzSchemaValidate feeds arbitrary bytes to Validate. It must never panic,
// must classify every input as valid, invalid (with at least one non-empty
// problem line) or not JSON, and must give the same verdict for the same
// event after a decode/encode round trip.
func FuzzSchemaValidate(f *testing.F) {
	for _, tc := range schemaCases {
		f.Add([]byte(tc.event))
	}
	files, err := filepath.Glob(filepath.Join("testdata", "schema", "valid", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	v := newTestValidator(f)
	f.Fuzz(func(t *testing.T, event []byte) {
		err := v.Validate(event)
		doc, decodeErr := jsonschema.UnmarshalJSON(bytes.NewReader(event))
		if decodeErr != nil {
			if err == nil {
				t.Fatalf("input that is not JSON was accepted: %q", event)
			}
			return
		}
		var verr *ValidationError
		if err != nil {
			if !errors.As(err, &verr) {
				t.Fatalf("decodable input gave a non-validation error: %v", err)
			}
			if len(verr.Problems) == 0 {
				t.Fatal("ValidationError without problems")
			}
			for _, p := range verr.Problems {
				if p.Location == "" || p.Message == "" || strings.Contains(p.String(), "\n") {
					t.Fatalf("malformed problem %q", p.String())
				}
			}
		}
		reencoded, encErr := json.Marshal(doc)
		if encErr != nil {
			t.Fatalf("re-encode decoded input: %v", encErr)
		}
		again := v.Validate(reencoded)
		if (err == nil) != (again == nil) {
			t.Fatalf("verdict changed after a round trip: %v then %v", err, again)
		}
	})
}
