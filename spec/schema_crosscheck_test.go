package spec

// Cross-checks against the upstream OISP specification kept next to the
// repository in ../shared/oisp-spec. That directory is reference material
// that users do not have, so every test here skips cleanly without it.

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// upstreamSpecDir locates ../shared/oisp-spec next to the repository root
// (the directory holding go.mod) or skips the test.
func upstreamSpecDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test directory")
		}
		dir = parent
	}
	specDir := filepath.Join(dir, "..", "shared", "oisp-spec")
	if _, err := os.Stat(filepath.Join(specDir, "schema", "v0.1", "envelope.schema.json")); err != nil {
		t.Skipf("upstream OISP spec not found at %s (reference checkout ../shared is absent): skipping cross-check", specDir)
	}
	return specDir
}

func upstreamValidator(t *testing.T, specDir string) *Validator {
	t.Helper()
	v, err := NewValidatorFS(os.DirFS(filepath.Join(specDir, "schema", "v0.1")), ".")
	if err != nil {
		t.Fatalf("compile upstream schemas: %v", err)
	}
	return v
}

// TestSchemaMatchesUpstreamStructure is the guarantee that our schema files
// say exactly what upstream's say: same files, and in every file the same
// properties, types, enums, required lists, patterns, formats, bounds and
// references. Only titles, descriptions and examples may differ.
func TestSchemaMatchesUpstreamStructure(t *testing.T) {
	specDir := upstreamSpecDir(t)
	ours := readSchemaTree(t, SchemaFS, embeddedSchemaRoot)
	theirs := readSchemaTree(t, os.DirFS(filepath.Join(specDir, "schema", "v0.1")), ".")
	if len(theirs) == 0 {
		t.Fatal("upstream schema tree is empty")
	}
	if diffs := compareSchemaTrees(ours, theirs); len(diffs) > 0 {
		t.Errorf("%d differences from upstream:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

// TestSchemaUpstreamExamples validates every official example event with
// our schema (and, as a sanity check of the test, with upstream's).
func TestSchemaUpstreamExamples(t *testing.T) {
	specDir := upstreamSpecDir(t)
	ours := newTestValidator(t)
	theirs := upstreamValidator(t, specDir)
	files, err := filepath.Glob(filepath.Join(specDir, "examples", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no examples in %s", filepath.Join(specDir, "examples"))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := ours.Validate(raw); err != nil {
				t.Errorf("our schema rejects the upstream example:\n%v", err)
			}
			if err := theirs.Validate(raw); err != nil {
				t.Errorf("upstream schema rejects its own example:\n%v", err)
			}
		})
	}
}

// TestSchemaSameVerdictAsUpstream runs every hand-written case and every
// testdata event through both schema trees and requires the same verdict
// and the same problem list.
func TestSchemaSameVerdictAsUpstream(t *testing.T) {
	specDir := upstreamSpecDir(t)
	ours := newTestValidator(t)
	theirs := upstreamValidator(t, specDir)
	if got, want := ours.EventTypes(), theirs.EventTypes(); !slices.Equal(got, want) {
		t.Errorf("event types differ:\nours     %v\nupstream %v", got, want)
	}

	events := map[string][]byte{}
	for _, tc := range schemaCases {
		events["case/"+tc.name] = []byte(tc.event)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "schema", "valid", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		events["testdata/"+filepath.Base(file)] = raw
	}

	for name, event := range events {
		oursErr, theirsErr := ours.Validate(event), theirs.Validate(event)
		if (oursErr == nil) != (theirsErr == nil) {
			t.Errorf("%s: verdicts differ\nours:     %v\nupstream: %v", name, oursErr, theirsErr)
			continue
		}
		if oursErr == nil {
			continue
		}
		var o, u *ValidationError
		if !errors.As(oursErr, &o) || !errors.As(theirsErr, &u) {
			t.Errorf("%s: unexpected error kinds: ours %v, upstream %v", name, oursErr, theirsErr)
			continue
		}
		if o.Error() != u.Error() {
			t.Errorf("%s: problems differ\nours:\n%v\nupstream:\n%v", name, o, u)
		}
	}
}
