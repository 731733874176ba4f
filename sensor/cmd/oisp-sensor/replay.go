package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/oisp/oisp-sensor/sensor/capture/replay"
	"github.com/oisp/oisp-sensor/sensor/cassette"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/pipeline"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/spf13/cobra"
)

type replayFlags struct {
	output    string
	transport string
	seed      int64
	content   string
	stats     bool
	wsURL     string
}

func newReplayCmd(g *globals) *cobra.Command {
	f := &replayFlags{}
	cmd := &cobra.Command{
		Use:   "replay FILE...",
		Short: "Decode recorded AI traffic into OISP events",
		Long: `replay reads recorded HTTP traffic — go-vcr cassettes, vcrpy YAML (plain and
the parsed_body variant, gzipped or not), Go httprr traces and nock JSON
recordings, detected automatically — and runs every exchange through the
sensor's decoders, writing OISP events as JSON lines.

Without --transport the exchanges are synthesized as HTTP/1.1 bytes and fed
straight to the decoders (fast, no sockets). With --transport h1, h2 or h3
each recording is served by a real loopback TLS server to a real Go client
over that protocol, and the plaintext is tapped at the server's TLS boundary.

A file that cannot be read is reported on stderr with the reason; the other
files are still processed, and the exit status is 1.`,
		Example: `  oisp-sensor replay fixtures/openai/lcg-testllmchain/cassette.yaml
  oisp-sensor replay --transport h2 -o events.jsonl recordings/*.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReplay(cmd, g, f, args)
		},
	}
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "write events to `FILE` instead of standard output")
	cmd.Flags().StringVar(&f.transport, "transport", "", "replay over a real loopback connection: h1, h2 or h3")
	cmd.Flags().Int64Var(&f.seed, "split-seed", 0, "re-chunk the synthesized bytes at random points chosen by this seed (0: one chunk per message part)")
	cmd.Flags().StringVar(&f.content, "content", "full", "event content: full (prompts and responses) or metadata (lengths and hashes only)")
	cmd.Flags().StringVar(&f.wsURL, "ws-url", "wss://api.openai.com/v1/realtime", "the `URL` of WebSocket transcripts, which do not record it")
	cmd.Flags().BoolVar(&f.stats, "stats", false, "print the run's counters (exchanges, drops, decode errors) to stderr")
	return cmd
}

func contentMode(s string) (pipeline.ContentMode, error) {
	switch s {
	case "full", "":
		return pipeline.ContentFull, nil
	case "metadata":
		return pipeline.ContentMetadata, nil
	}
	return "", fmt.Errorf("--content %q: want full or metadata", s)
}

func runReplay(cmd *cobra.Command, g *globals, f *replayFlags, files []string) error {
	mode, err := contentMode(f.content)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var w io.Writer = g.stdout
	if f.output != "" {
		out, err := os.Create(f.output)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer out.Close()
		w = out
	}
	jsonl := sink.NewJSONL(w, 0)
	total := &stats.Counters{}
	failed := 0
	for _, name := range files {
		if err := replayFile(cmd, g, f, mode, name, jsonl, total); err != nil {
			reportFileError(g.stderr, name, err)
			failed++
		}
	}
	if err := jsonl.Flush(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if f.stats {
		printStats(g.stderr, total.Snapshot())
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d files could not be replayed", failed, len(files))}
	}
	return nil
}

func replayFile(cmd *cobra.Command, g *globals, f *replayFlags, mode pipeline.ContentMode, name string, out pipeline.Recorder, total *stats.Counters) error {
	s, err := session.New(session.Options{Out: out, Content: mode, Logger: g.logger()})
	if err != nil {
		return err
	}
	var src flow.Source
	rec, err := cassette.ReadFile(name)
	switch {
	case errors.Is(err, cassette.ErrNotHTTP):
		// A WebSocket transcript replays as one upgraded connection.
		tr, werr := cassette.ReadWebSocketTranscript(name)
		if werr != nil || f.transport != "" {
			return err
		}
		if src, err = replay.NewWebSocket(tr, f.wsURL, replay.Options{Seed: f.seed, Stats: s.Stats}); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if src, err = replaySource(rec, f, s.Stats); err != nil {
			return err
		}
	}
	err = s.Run(cmd.Context(), src)
	for k, v := range s.Stats.Snapshot() {
		total.Count(k, v)
	}
	return err
}

func replaySource(rec *cassette.Recording, f *replayFlags, st stats.Recorder) (flow.Source, error) {
	switch f.transport {
	case "":
		return replay.New(rec, replay.Options{Seed: f.seed, Stats: st}), nil
	case "h1", "h2", "h3":
		return wireSource(rec, f.transport)
	}
	return nil, fmt.Errorf("--transport %q: want h1, h2 or h3", f.transport)
}

func printStats(w io.Writer, snap map[string]int64) {
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-40s %d\n", k, snap[k])
	}
	fmt.Fprint(w, "counters:\n"+b.String())
}
