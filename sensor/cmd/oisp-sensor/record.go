package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/socket"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/sink"
	"github.com/oisp/oisp-sensor/sensor/sink/rotate"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type recordFlags struct {
	proxyAddr    string
	capture      captureProxyFlags
	socketPath   string
	noSocket     bool
	ebpf         string
	ebpfFilter   ebpfFilterFlags
	output       string
	content      string
	summaryEvery time.Duration
	exporters    exporterFlags
	rotate       rotateFlags
}

// rotateFlags configure the rotation of the event file.
type rotateFlags struct {
	size     string
	keep     int
	compress bool
}

func (r *rotateFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&r.size, "rotate-size", "", "start a new event file when the current one would pass `SIZE` (e.g. 100MB, 1GiB); the full one is renamed NAME-TIME.jsonl beside it")
	fl.IntVar(&r.keep, "rotate-keep", 10, "with --rotate-size, keep the newest `N` rotated files, removing older ones (0: keep all)")
	fl.BoolVar(&r.compress, "rotate-compress", false, "with --rotate-size, gzip rotated files in the background")
}

// config returns the rotation settings for the output path; the flags are
// refused with standard output or without --rotate-size.
func (r *rotateFlags) config(fl *pflag.FlagSet, output string) (rotate.Config, error) {
	cfg := rotate.Config{Keep: r.keep, Compress: r.compress}
	if r.size == "" {
		for _, name := range []string{"rotate-keep", "rotate-compress"} {
			if fl.Changed(name) {
				return cfg, fmt.Errorf("--%s needs --rotate-size", name)
			}
		}
		cfg.Keep, cfg.Compress = 0, false
		return cfg, nil
	}
	if output == "-" {
		return cfg, errors.New("--rotate-size needs a file: standard output (--output -) cannot be rotated")
	}
	size, err := rotate.ParseSize(r.size)
	if err != nil {
		return cfg, fmt.Errorf("--rotate-size: %w", err)
	}
	if size == 0 {
		return cfg, errors.New("--rotate-size 0: want a size such as 100MB (leave the flag out to never rotate)")
	}
	if r.keep < 0 {
		return cfg, fmt.Errorf("--rotate-keep %d: want 0 (keep all) or more", r.keep)
	}
	cfg.MaxSize = size
	return cfg, nil
}

func newRecordCmd(g *globals) *cobra.Command {
	f := &recordFlags{}
	cmd := &cobra.Command{
		Use:   "record",
		Short: "Capture AI traffic on this machine and write OISP events",
		Long: `record runs the sensor: it captures traffic to AI providers from every
source that is enabled, decodes it and appends OISP events as JSON lines to
--output (by default a dated file in your data directory, printed at start).

Sources, all running at once into one pipeline:
  --proxy ADDR     the capture proxy, an explicit HTTP(S) proxy that needs no
                   privileges and works on every OS: point clients at it with
                   HTTPS_PROXY=http://ADDR and make them trust the sensor CA
                   (the status output says how). Only the provider registry's
                   hosts and --intercept-host are decrypted; everything else
                   is tunnelled untouched.
  --socket PATH    the extension socket (default /tmp/oisp.sock), where the
                   macOS network extension and 'oisp-sensor proxy --emit'
                   deliver flows. --no-socket turns it off.
  eBPF (Linux)     TLS library uprobes and process/file/network activity;
                   on by default when running as root (or with CAP_BPF and
                   CAP_PERFMON) and --proxy is not given; --ebpf on|off|auto.
                   --pid, --exe and --cgroup limit it to those processes and
                   their descendants (any of them; all processes without).

Outputs besides the JSONL file, any of them at once:
  --web ADDR              a live dashboard of the events (keep it on loopback,
                          e.g. 127.0.0.1:7777: events carry prompts)
  --kafka-brokers LIST    one Kafka record per event (--kafka-topic, SASL, TLS)
  --otlp-endpoint URL     OTLP logs to an OpenTelemetry collector, with the
                          GenAI semantic conventions (--otlp-protocol grpc;
                          --otlp-spans adds a client span per AI call,
                          --otlp-metrics GenAI duration and token metrics)
Each has a bounded queue: a peer that is down never stalls capture; what it
cannot take is dropped and counted in the summary.

The event file grows without bound unless --rotate-size SIZE starts a new
one when it would pass SIZE (the full one is renamed NAME-TIME.jsonl, UTC;
--rotate-keep N keeps the newest N, --rotate-compress gzips them). For
logrotate instead, use its create mode and send SIGHUP after the rename:
record reopens --output. Either way no event is split between two files.

Stop it with Ctrl-C (SIGINT) or SIGTERM: flows in flight are decoded and
written before it exits. A one-line summary (flows, events, bytes, drops)
is printed every --summary-every and at exit.`,
		Example: `  oisp-sensor record --proxy 127.0.0.1:8080
  HTTPS_PROXY=http://127.0.0.1:8080 NODE_EXTRA_CA_CERTS=$(oisp-sensor ca path) node app.js

  sudo oisp-sensor record --output events.jsonl          # eBPF on Linux
  oisp-sensor record --proxy 127.0.0.1:8080 --intercept-host llm.internal:8000=vllm -o -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecord(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.proxyAddr, "proxy", "", "run the capture proxy on `ADDR` (e.g. 127.0.0.1:8080; port 0 picks a free one)")
	f.capture.register(fl)
	fl.StringVar(&f.socketPath, "socket", socket.LegacyPath, "listen for capture extensions on the Unix socket `PATH`")
	fl.BoolVar(&f.noSocket, "no-socket", false, "do not open the extension socket")
	fl.StringVar(&f.ebpf, "ebpf", "auto", "Linux eBPF capture: auto (when privileged and --proxy is not given), on, or off")
	f.ebpfFilter.register(fl)
	fl.StringVarP(&f.output, "output", "o", "", "append events to `FILE` (\"-\" for standard output; default: events-DATE.jsonl in the user's data directory); SIGHUP reopens it")
	fl.StringVar(&f.content, "content", "full", "event content: full (prompts and responses) or metadata (lengths and hashes only)")
	fl.DurationVar(&f.summaryEvery, "summary-every", 30*time.Second, "print a one-line summary this often (0: only at exit)")
	f.exporters.register(fl)
	f.rotate.register(fl)
	return cmd
}

// dataDir is where record writes events by default: $XDG_DATA_HOME, else
// the platform's per-user data directory.
func dataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "oisp-sensor"), nil
	}
	switch runtime.GOOS {
	case "darwin", "windows", "ios", "plan9":
		d, err := os.UserConfigDir() // Application Support, %AppData%
		if err != nil {
			return "", err
		}
		return filepath.Join(d, "oisp-sensor"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "share", "oisp-sensor"), nil
}

// output is where record writes events.
type output struct {
	w    io.Writer
	name string
	// file is the rotating writer of a file output (nil for standard
	// output): SIGHUP reopens it.
	file *rotate.Writer
}

// close closes the file, waiting until ctx ends for rotated files to be
// compressed or removed.
func (o *output) close(ctx context.Context) error {
	if o.file == nil {
		return nil
	}
	return o.file.Close(ctx)
}

// openOutput opens the event output: stdout for "-", else the file in
// append mode (several runs on one day share the day's file), rotated as
// cfg says.
func openOutput(name string, stdout io.Writer, cfg rotate.Config, counters stats.Recorder, log *slog.Logger) (*output, error) {
	if name == "-" {
		return &output{w: stdout, name: "standard output"}, nil
	}
	if name == "" {
		dir, err := dataDir()
		if err != nil {
			return nil, fmt.Errorf("no data directory for the default output (use --output): %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
		name = filepath.Join(dir, "events-"+time.Now().Format(time.DateOnly)+".jsonl")
	}
	// Events hold prompts and responses: owner-only, like the CA key.
	cfg.Path, cfg.Perm, cfg.Stats, cfg.Logger = name, 0o600, counters, log
	w, err := rotate.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("opening the event output: %w", err)
	}
	return &output{w: w, name: name, file: w}, nil
}

// reopenOnHangup reopens the output file on every SIGHUP until stop is
// called, which may be more than once (logrotate's create mode renames
// the file and sends it). For
// standard output SIGHUP is ignored rather than fatal: there is nothing
// to reopen.
func reopenOnHangup(out *output, jsonl *sink.JSONL, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-hup:
				if out.file == nil {
					log.Info("SIGHUP: events go to standard output, nothing to reopen")
					continue
				}
				// What was recorded before the signal goes to the old
				// file, whole; what follows to the new one.
				jsonl.Flush()
				out.file.Reopen()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(hup)
			close(done)
			<-finished
		})
	}
}

func runRecord(cmd *cobra.Command, g *globals, f *recordFlags) error {
	ctx := cmd.Context()
	log := g.logger()
	st := &statusWriter{w: g.stderr}
	mode, err := contentMode(f.content)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	switch f.ebpf {
	case "auto", "on", "off":
	default:
		return &exitError{code: 2, err: fmt.Errorf("--ebpf %q: want auto, on or off", f.ebpf)}
	}
	if err := f.ebpfFilter.check(f.ebpf); err != nil {
		return &exitError{code: 2, err: err}
	}
	rules, err := parseInterceptRules(f.capture.interceptHosts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	rotation, err := f.rotate.config(cmd.Flags(), f.output)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	counters := &stats.Counters{}
	evOut, err := openOutput(f.output, g.stdout, rotation, counters, log)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	outName := evOut.name
	outClosed := false
	defer func() {
		if !outClosed {
			ctx, cancel := context.WithTimeout(context.Background(), exporterDrain)
			defer cancel()
			evOut.close(ctx)
		}
	}()
	// A tail -f of the output sees each event within sink.TailLatency.
	jsonl := sink.NewJSONL(evOut.w, sink.TailLatency)
	stopHangup := reopenOnHangup(evOut, jsonl, log)
	defer stopHangup()
	st.printf("oisp-sensor %s recording; events go to %s\n", session.Version, outName)
	if rotation.MaxSize > 0 {
		keep := "all"
		if rotation.Keep > 0 {
			keep = fmt.Sprintf("the newest %d", rotation.Keep)
		}
		st.printf("a new file is started at %s; %s rotated files are kept; SIGHUP reopens the file\n", f.rotate.size, keep)
	} else if evOut.file != nil {
		st.printf("SIGHUP reopens the file (for logrotate's create mode)\n")
	}
	exps, err := openExporters(&f.exporters, counters, log, st)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	// Until the normal shutdown closes them, any return (a source that
	// cannot start) must close them too: the dashboard holds its port.
	exportersOpen := true
	defer func() {
		if exportersOpen {
			drain, cancel := context.WithTimeout(context.Background(), exporterDrain)
			defer cancel()
			closeExporters(drain, exps)
		}
	}()
	out := sink.Tee{jsonl}
	for _, e := range exps {
		out = append(out, e.rec)
	}
	s, err := session.New(session.Options{Out: out, Content: mode, Logger: log, ExtraHosts: rules.extraHosts(), Stats: counters})
	if err != nil {
		return &exitError{code: 1, err: err}
	}

	var sources []session.NamedSource
	var cleanups []func()
	defer func() {
		for _, c := range cleanups {
			c()
		}
	}()
	fail := func(err error) error { return &exitError{code: 1, err: err} }

	if f.proxyAddr != "" {
		cp, err := newCaptureProxy(f.proxyAddr, &f.capture, s.Registry, s.Stats, log)
		if err != nil {
			return fail(fmt.Errorf("capture proxy: %w", err))
		}
		cp.printHints(st, log)
		sources = append(sources, session.NamedSource{Name: "capture proxy", Source: cp.proxy})
	}
	if !f.noSocket {
		srv, err := socket.Listen(socket.ServerConfig{Path: f.socketPath, Stats: s.Stats, Logger: log})
		switch {
		case err == nil:
			cleanups = append(cleanups, func() { srv.Close() })
			st.printf("extension socket listening on %s (capture extensions and 'oisp-sensor proxy --emit unix:%s' connect here)\n",
				srv.Path(), srv.Path())
			sources = append(sources, session.NamedSource{Name: "extension socket", Source: srv})
		case cmd.Flags().Changed("socket"):
			return fail(fmt.Errorf("%w (use another --socket PATH, or --no-socket)", err))
		default:
			// The default path is shared by every sensor on the machine;
			// a second one still records what its other sources see.
			st.printf("extension socket off: %v (use --socket PATH to pick another)\n", err)
		}
	}
	plat, err := platformSources(ctx, f, s, st, log)
	if err != nil {
		return fail(err)
	}
	sources = append(sources, plat...)
	if len(sources) == 0 {
		return fail(errors.New("nothing to capture from: start the capture proxy with --proxy 127.0.0.1:8080 (no privileges needed)"))
	}

	var last string
	summarise := func(final bool) {
		line := summaryLine(s.Summary())
		if n := counters.Snapshot()[rotate.TokenErrors]; n > 0 {
			line += fmt.Sprintf("; output: %d rotation or reopen errors (see the log)", n)
		}
		if final {
			st.printf("final summary: %s\n", line)
			return
		}
		if line != last {
			st.printf("%s summary: %s\n", time.Now().Format(time.TimeOnly), line)
			last = line
		}
	}
	stopTicker := every(ctx, f.summaryEvery, func() { summarise(false) })
	st.printf("recording from %s; press Ctrl-C to stop\n", sourceNames(sources))
	runErr := s.RunSources(ctx, sources, func(name string, err error) {
		if err != nil && ctx.Err() == nil {
			st.printf("%s stopped: %v\n", name, err)
		}
	})
	stopTicker()
	stopHangup()
	flushErr := jsonl.Flush()
	// The file is closed before the summary is printed; compressing the
	// last rotated files gets at most as long as the exporters (a
	// compression cut short keeps the uncompressed file, and the next run
	// compresses it).
	closeCtx, cancelClose := context.WithTimeout(context.Background(), exporterDrain)
	outErr := evOut.close(closeCtx)
	outClosed = true
	cancelClose()
	// Exporters get a bounded time to deliver what they hold: a peer
	// that is gone must not keep the sensor from exiting.
	drain, cancel := context.WithTimeout(context.Background(), exporterDrain)
	exportErr := closeExporters(drain, exps)
	exportersOpen = false
	cancel()
	summarise(true)
	st.printf("%d events written to %s\n", jsonl.Count(), outName)
	if err := errors.Join(runErr, flushErr, outErr, exportErr); err != nil {
		return fail(err)
	}
	return nil
}

func sourceNames(srcs []session.NamedSource) string {
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// ebpfHint is what record says when eBPF capture is not available.
const ebpfHint = "run as root (or with CAP_BPF and CAP_PERFMON) for eBPF, or use --proxy 127.0.0.1:8080, which needs no privileges"
