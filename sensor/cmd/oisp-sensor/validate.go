package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/oisp/oisp-sensor/spec"
	"github.com/spf13/cobra"
)

func newValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE.jsonl...",
		Short: "Check OISP events against the v0.1 schema",
		Long: `validate checks every line of each JSONL file (or standard input for "-")
against the OISP v0.1 schema: the envelope, then data against the definition
chosen by event_type. It prints one line per invalid event with its file and
line number and exits 1 if any event is invalid.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := spec.NewValidator()
			if err != nil {
				return err
			}
			var total, bad int
			for _, name := range args {
				n, b, err := validateFile(v, name, g)
				total += n
				bad += b
				if err != nil {
					fmt.Fprintf(g.stderr, "%s: %v\n", name, err)
					bad++
				}
			}
			fmt.Fprintf(g.stdout, "%d events, %d invalid\n", total, bad)
			if bad > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d invalid events", bad)}
			}
			return nil
		},
	}
}

func validateFile(v *spec.Validator, name string, g *globals) (total, bad int, err error) {
	var r io.Reader
	if name == "-" {
		r = g.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		total++
		if err := v.Validate(b); err != nil {
			bad++
			fmt.Fprintf(g.stdout, "%s:%d: %v\n", name, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return total, bad, fmt.Errorf("line %d: %w", line+1, err)
	}
	return total, bad, nil
}
