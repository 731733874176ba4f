package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/golden"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/spf13/cobra"
)

func newFixturesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fixtures",
		Short: "Manage conformance fixtures (recorded traffic + expected events)",
	}
	var dir, name, prov, origin string
	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Turn recorded traffic into conformance fixtures",
		Long: `import converts each recording (any format replay accepts) into a fixture:
DIR/<provider>/<name>/cassette.yaml (a go-vcr v4 cassette), expected.jsonl
(the events the sensor produces now, in golden form, to be reviewed) and
SOURCE (where the recording came from). The provider is taken from the first
AI host in the recording and the name from the file name, unless given.`,
		Example: `  oisp-sensor fixtures import --origin "pydantic-ai @ 4fda389 (MIT)" ../shared/cassettes/pydantic-ai/tests/models/cassettes/test_openai/test_request_simple_success.yaml`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name != "" && len(args) > 1 {
				return &exitError{code: 2, err: fmt.Errorf("--name needs exactly one FILE")}
			}
			failed := 0
			for _, f := range args {
				where, err := importFixture(cmd.Context(), f, dir, prov, name, origin)
				if err != nil {
					reportFileError(g.stderr, f, err)
					failed++
					continue
				}
				fmt.Fprintf(g.stdout, "%s -> %s\n", f, where)
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d files could not be imported", failed, len(args))}
			}
			return nil
		},
	}
	imp.Flags().StringVar(&dir, "dir", "fixtures", "fixtures `DIR`ectory")
	imp.Flags().StringVar(&name, "name", "", "fixture name (default: from the file name)")
	imp.Flags().StringVar(&prov, "provider", "", "provider folder (default: from the recording's hosts)")
	imp.Flags().StringVar(&origin, "origin", "", "where the recording comes from (project, commit, licence), written to SOURCE")
	cmd.AddCommand(imp)
	return cmd
}

var unsafeName = regexp.MustCompile(`[^a-z0-9._-]+`)

func fixtureName(file string) string {
	base := filepath.Base(file)
	for _, ext := range []string{".gz", ".yaml", ".yml", ".json", ".httprr"} {
		base = strings.TrimSuffix(base, ext)
	}
	base = strings.TrimPrefix(strings.ToLower(base), "test_")
	return strings.Trim(unsafeName.ReplaceAllString(base, "-"), "-.")
}

func recordingProvider(rec *cassette.Recording) (string, error) {
	reg, err := provider.LoadRegistry(provider.RegistryOptions{})
	if err != nil {
		return "", err
	}
	for _, in := range rec.Interactions {
		u, err := url.Parse(in.Request.URL)
		if err != nil {
			continue
		}
		if t, ok := reg.Lookup(u.Host, 0); ok {
			return t.ProviderID, nil
		}
	}
	return "other", nil
}

// importFixture writes one fixture and returns its folder.
func importFixture(ctx context.Context, file, dir, prov, name, origin string) (string, error) {
	rec, err := cassette.ReadFile(file)
	if err != nil {
		return "", err
	}
	if prov == "" {
		if prov, err = recordingProvider(rec); err != nil {
			return "", err
		}
	}
	if name == "" {
		name = fixtureName(file)
	}
	where := filepath.Join(dir, prov, name)
	if err := os.MkdirAll(where, 0o755); err != nil {
		return "", err
	}
	var cas bytes.Buffer
	if err := cassette.Write(&cas, rec); err != nil {
		return "", fmt.Errorf("write cassette: %w", err)
	}
	if err := os.WriteFile(filepath.Join(where, "cassette.yaml"), cas.Bytes(), 0o644); err != nil {
		return "", err
	}
	// Replay the cassette as written, so the golden describes the fixture.
	written, err := cassette.ReadFile(filepath.Join(where, "cassette.yaml"))
	if err != nil {
		return "", fmt.Errorf("re-read written cassette: %w", err)
	}
	evs, err := session.ReplayGolden(ctx, written, replay.Options{})
	if err != nil {
		return "", err
	}
	var exp bytes.Buffer
	if err := golden.WriteJSONL(&exp, evs); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(where, "expected.jsonl"), exp.Bytes(), 0o644); err != nil {
		return "", err
	}
	if origin == "" {
		origin = file
		if i := strings.Index(file, "cassettes/"); i >= 0 {
			origin = file[i+len("cassettes/"):]
		}
	}
	if err := os.WriteFile(filepath.Join(where, "SOURCE"), []byte(origin+"\n"), 0o644); err != nil {
		return "", err
	}
	return where, nil
}
