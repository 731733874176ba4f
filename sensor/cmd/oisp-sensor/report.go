package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	usagereport "github.com/oisp/oisp-sensor/sensor/report"
	"github.com/spf13/cobra"
)

type reportFlags struct {
	json         bool
	by           string
	top          int
	since, until string
	conversation string
}

func newReportCmd(g *globals) *cobra.Command {
	f := &reportFlags{}
	cmd := &cobra.Command{
		Use:   "report FILE.jsonl...",
		Short: "Summarise recorded events: what AI did on this machine",
		Long: `report reads OISP events (the JSONL that record and replay write; "-" for
standard input) and summarises them: calls, failures, requests with no
response seen, streamed share, tokens (input, output, cache read and write,
reasoning), cost and latency percentiles per provider and model, calls per
application, the top conversations (agent sessions: the calls the sensor
gave one conversation_id, with their models, tokens, cost, tool calls and
time span; sorted by estimated cost, then tokens), the tools models called
and embeddings. --conversation ID restricts the whole report to one.

Cost is the sum of the sensor's own estimates in the events; calls that
carry none are shown as unpriced, never as $0. Latency percentiles come
from a fixed-bucket histogram, within 1/64 of the exact value.

Lines that are not OISP events are counted and the first few shown with
their line numbers; they do not fail the command. The exit status is 1
only when a file cannot be read (the others are still reported).`,
		Example: `  oisp-sensor report events.jsonl
  oisp-sensor replay fixtures/openai/*/cassette.yaml | oisp-sensor report -
  oisp-sensor report --by app --since 2026-01-02 events-*.jsonl
  oisp-sensor report --json events.jsonl
  oisp-sensor report --conversation conv_5a08be5daa25fc7d events.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(g, f, args)
		},
	}
	cmd.Flags().BoolVar(&f.json, "json", false, "print the summary as JSON instead of tables")
	cmd.Flags().StringVar(&f.by, "by", usagereport.ByModel, "group the calls and tokens tables by `model`, provider or app")
	cmd.Flags().IntVar(&f.top, "top", 20, "show at most `N` rows per table (-1: all)")
	cmd.Flags().StringVar(&f.since, "since", "", "count only events at or after `TIME` (RFC 3339, a date, or a duration before now such as 24h)")
	cmd.Flags().StringVar(&f.until, "until", "", "count only events before `TIME` (RFC 3339, a date, or a duration before now)")
	cmd.Flags().StringVar(&f.conversation, "conversation", "", "report only the conversation `ID` (a conversation_id) and the tool and embedding events of its calls")
	return cmd
}

func runReport(g *globals, f *reportFlags, files []string) error {
	switch f.by {
	case usagereport.ByModel, usagereport.ByProvider, usagereport.ByApp:
	default:
		return &exitError{code: 2, err: fmt.Errorf("--by %q: want model, provider or app", f.by)}
	}
	if f.top == 0 {
		return &exitError{code: 2, err: fmt.Errorf("--top 0: want a number of rows, or -1 for all")}
	}
	opts := usagereport.Options{Conversation: f.conversation}
	var err error
	now := time.Now()
	if opts.Since, err = parseWhen(f.since, now); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--since: %w", err)}
	}
	if opts.Until, err = parseWhen(f.until, now); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--until: %w", err)}
	}

	rep := usagereport.New(opts)
	unreadable := 0
	for _, name := range files {
		if err := reportFile(rep, name, g.stdin); err != nil {
			reportFileError(g.stderr, name, err)
			unreadable++
		}
	}
	res := rep.Result()
	if f.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = usagereport.WriteText(g.stdout, res, usagereport.TextOptions{By: f.by, Top: f.top})
	}
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if unreadable > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d files could not be read", unreadable, len(files))}
	}
	return nil
}

func reportFile(rep *usagereport.Report, name string, stdin io.Reader) error {
	if name == "-" {
		return rep.Read(name, stdin)
	}
	file, err := os.Open(name)
	if err != nil {
		return err
	}
	defer file.Close()
	return rep.Read(name, file)
}

// parseWhen reads a --since/--until value: an RFC 3339 time, a date (UTC),
// or a duration meaning that long before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration (24h)", s)
}
