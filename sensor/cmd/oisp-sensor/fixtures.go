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
	var o importOptions
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
			if o.name != "" && len(args) > 1 {
				return &exitError{code: 2, err: fmt.Errorf("--name needs exactly one FILE")}
			}
			failed := 0
			for _, f := range args {
				where, err := importFixture(cmd.Context(), f, o)
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
	imp.Flags().StringVar(&o.dir, "dir", "fixtures", "fixtures `DIR`ectory")
	imp.Flags().StringVar(&o.name, "name", "", "fixture name (default: from the file name)")
	imp.Flags().StringVar(&o.provider, "provider", "", "provider folder (default: from the recording's hosts)")
	imp.Flags().StringVar(&o.origin, "origin", "", "where the recording comes from (project, commit, licence), written to SOURCE")
	imp.Flags().BoolVar(&o.force, "force", false, "replace a fixture that already exists")
	cmd.AddCommand(imp)
	return cmd
}

// unsafeName matches what a fixture name may not hold: names are
// lower-case words joined by dashes, as the corpus's are.
var unsafeName = regexp.MustCompile(`[^a-z0-9.-]+`)

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

// importOptions are the import command's flags.
type importOptions struct {
	dir, name, provider, origin string
	// force replaces a fixture that exists: its expected.jsonl is a
	// reviewed golden, not to be overwritten by accident.
	force bool
}

// importFixture writes one fixture and returns its folder. Every file is
// made before any is written, so a recording that fails leaves nothing
// behind.
func importFixture(ctx context.Context, file string, o importOptions) (string, error) {
	rec, err := cassette.ReadFile(file)
	if err != nil {
		return "", err
	}
	prov, name := o.provider, o.name
	if prov == "" {
		if prov, err = recordingProvider(rec); err != nil {
			return "", err
		}
	}
	if name == "" {
		name = fixtureName(file)
	}
	where := filepath.Join(o.dir, prov, name)
	if _, err := os.Stat(where); err == nil && !o.force {
		return "", fmt.Errorf("%s exists (its expected.jsonl is a reviewed golden): --force replaces it, --name imports beside it", where)
	}
	var cas bytes.Buffer
	if err := cassette.Write(&cas, rec); err != nil {
		return "", fmt.Errorf("write cassette: %w", err)
	}
	// Replay the cassette as it will be written, so that the golden
	// describes the fixture.
	written, err := cassette.Parse(filepath.Join(where, "cassette.yaml"), cas.Bytes())
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
	origin := o.origin
	if origin == "" {
		origin = file
		if i := strings.Index(file, "cassettes/"); i >= 0 {
			origin = file[i+len("cassettes/"):]
		}
	}
	if err := os.MkdirAll(where, 0o755); err != nil {
		return "", err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"cassette.yaml", cas.Bytes()},
		{"expected.jsonl", exp.Bytes()},
		{"SOURCE", []byte(origin + "\n")},
	} {
		if err := os.WriteFile(filepath.Join(where, f.name), f.data, 0o644); err != nil {
			return "", err
		}
	}
	return where, nil
}
