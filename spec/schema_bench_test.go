package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// typicalAIRequest is a fully populated ai.request as the sensor emits it
// (about 4 KB: envelope contexts, four messages, tools, parameters).
func typicalAIRequest(b *testing.B) []byte {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "schema", "valid", "ai.request.json"))
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkSchemaValidateAIRequest(b *testing.B) {
	v := newTestValidator(b)
	event := typicalAIRequest(b)
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(event); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSchemaValidateAIRequestParallel(b *testing.B) {
	v := newTestValidator(b)
	event := typicalAIRequest(b)
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := v.Validate(event); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSchemaValidateValueAIRequest validates an already decoded event,
// isolating schema evaluation from JSON decoding.
func BenchmarkSchemaValidateValueAIRequest(b *testing.B) {
	v := newTestValidator(b)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(typicalAIRequest(b)))
	if err != nil {
		b.Fatal(err)
	}
	event := doc.(map[string]any)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.ValidateValue(event); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSchemaDecodeOnlyAIRequest is the JSON decoding share of Validate.
func BenchmarkSchemaDecodeOnlyAIRequest(b *testing.B) {
	event := typicalAIRequest(b)
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jsonschema.UnmarshalJSON(bytes.NewReader(event)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSchemaCompileAndValidateAIRequest is the alternative without a
// long-lived Validator: compiling the schemas for every event.
func BenchmarkSchemaCompileAndValidateAIRequest(b *testing.B) {
	event := typicalAIRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		v, err := NewValidator()
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Validate(event); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSchemaValidateInvalidAIResponse measures the error path, which
// builds the problem list.
func BenchmarkSchemaValidateInvalidAIResponse(b *testing.B) {
	v := newTestValidator(b)
	event := []byte(withData("ai.response", `{"usage":{"prompt_tokens":"12"},"finish_reason":"end_turn",`+
		`"tool_calls":[{"arguments":`+redacted+`}]}`))
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(event); err == nil {
			b.Fatal("invalid event accepted")
		}
	}
}
