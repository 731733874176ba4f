// Command oisp-sensor sees every AI interaction on a machine and reports it
// as OISP v0.1 events.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/oisp/oisp-sensor/sensor/session"
)

// exitError carries a process exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// reportFileError writes a per-file failure to w, naming the file once:
// errors from reading a recording already carry its name ("cassette
// NAME: …", "open NAME: …").
func reportFileError(w io.Writer, name string, err error) {
	msg := err.Error()
	if !strings.Contains(msg, name+":") {
		msg = name + ": " + msg
	}
	fmt.Fprintf(w, "oisp-sensor: %s\n", msg)
}

func main() {
	session.TuneRuntime()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI; it is what the testscript tests call.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintln(stderr, "oisp-sensor:", ee.err)
			}
			return ee.code
		}
		fmt.Fprintln(stderr, "oisp-sensor:", err)
		return 2
	}
	return 0
}

type globals struct {
	verbose bool
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func (g *globals) logger() *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "oisp-sensor",
		Short: "See every AI interaction on this machine, as OISP events",
		Long: `oisp-sensor captures traffic to AI providers (capture proxy, macOS network
extension, Linux eBPF), decodes HTTP/1.1, HTTP/2 and HTTP/3 and the providers'
APIs, and writes OISP v0.1 events: ai.request, ai.response, agent.tool_call,
process.exec, file.write, network.connect, …

Start with:
  oisp-sensor replay FILE...        decode recorded traffic into events
  oisp-sensor validate FILE.jsonl   check events against the OISP v0.1 schema`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log decoder details to stderr")
	root.AddCommand(
		newRecordCmd(g), newProxyCmd(g), newCACmd(g),
		newReplayCmd(g),
		newValidateCmd(g), newReportCmd(g),
		newFixturesCmd(g),
		newVersionCmd(g), newDoctorCmd(g),
	)
	return root
}
