package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/proxy"
	"github.com/oisp/oisp-sensor/sensor/capture/socket"
	"github.com/oisp/oisp-sensor/sensor/provider"
	"github.com/oisp/oisp-sensor/sensor/session"
	"github.com/oisp/oisp-sensor/sensor/stats"
	"github.com/spf13/cobra"
)

type proxyCmdFlags struct {
	listen       string
	emit         string
	capture      captureProxyFlags
	summaryEvery time.Duration
	flushTimeout time.Duration
}

func newProxyCmd(g *globals) *cobra.Command {
	f := &proxyCmdFlags{}
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the capture proxy as its own process, sending flows to a running 'record'",
		Long: `proxy runs the capture proxy in extension mode: it decrypts traffic to
the provider registry's hosts (and --intercept-host) like 'record --proxy',
but decodes nothing itself. Every flow goes over the extension socket
protocol (spec/wire/PROTOCOL.md) to a running 'oisp-sensor record', exactly
as the macOS network extension sends its flows.

The proxy never waits for the sensor: if the sensor is slow, stopped or
restarting, the proxy keeps forwarding traffic, counts what it could not
send, reconnects, and says what was lost.`,
		Example: `  oisp-sensor record &                        # listens on /tmp/oisp.sock
  oisp-sensor proxy --listen 127.0.0.1:8080 --emit unix:/tmp/oisp.sock`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProxy(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", proxy.DefaultAddr, "listen for proxy clients on `ADDR` (port 0 picks a free one)")
	fl.StringVar(&f.emit, "emit", "unix:"+socket.LegacyPath, "send flows to the sensor's extension socket `unix:PATH`")
	f.capture.register(fl)
	fl.DurationVar(&f.summaryEvery, "summary-every", 30*time.Second, "print a one-line summary this often (0: only at exit)")
	fl.DurationVar(&f.flushTimeout, "flush-timeout", 5*time.Second, "at exit, wait this long for queued flows to reach the sensor")
	return cmd
}

// emitPath parses --emit.
func emitPath(s string) (string, error) {
	if p, ok := strings.CutPrefix(s, "unix:"); ok && p != "" {
		return p, nil
	}
	if strings.HasPrefix(s, "/") {
		return s, nil
	}
	return "", fmt.Errorf("--emit %q: want unix:PATH", s)
}

func runProxy(cmd *cobra.Command, g *globals, f *proxyCmdFlags) error {
	ctx := cmd.Context()
	log := g.logger()
	st := &statusWriter{w: g.stderr}
	path, err := emitPath(f.emit)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	rules, err := parseInterceptRules(f.capture.interceptHosts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	reg, err := provider.LoadRegistry(provider.RegistryOptions{ExtraHosts: rules.extraHosts()})
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	counters := &stats.Counters{}
	cp, err := newCaptureProxy(f.listen, &f.capture, reg, counters, log)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("capture proxy: %w", err)}
	}
	client := socket.NewClient(socket.ClientConfig{Path: path, Name: "oisp-sensor proxy " + session.Version, Stats: counters, Logger: log})
	cp.printHints(st, log)
	st.printf("sending flows to the sensor at unix:%s (start 'oisp-sensor record' if it is not running; flows are counted as lost until it is)\n", path)

	// The client outlives the proxy: after the proxy has handed over its
	// last flows, the client gets --flush-timeout to deliver them.
	clientCtx, stopClient := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		client.Run(clientCtx)
	}()

	var last string
	summarise := func(prefix string) {
		line := proxySummaryLine(counters, client.Stats())
		if prefix != "" || line != last {
			if prefix == "" {
				prefix = time.Now().Format(time.TimeOnly) + " summary"
			}
			st.printf("%s: %s\n", prefix, line)
			last = line
		}
	}
	stopTicker := every(ctx, f.summaryEvery, func() { summarise("") })
	runErr := cp.proxy.Run(ctx, client)
	stopTicker()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.flushTimeout)
	flushErr := client.Flush(fctx)
	cancel()
	stopClient()
	wg.Wait()
	if flushErr != nil {
		st.printf("could not deliver everything to the sensor within %s\n", f.flushTimeout)
	}
	summarise("final summary")
	if runErr != nil {
		return &exitError{code: 1, err: runErr}
	}
	if s := client.Stats(); s.DroppedBytes > 0 || s.DroppedFrames > 0 || errors.Is(flushErr, context.DeadlineExceeded) {
		return &exitError{code: 1, err: fmt.Errorf("%s of captured traffic (%d chunks, %d frames) never reached the sensor",
			humanBytes(s.DroppedBytes), s.DroppedChunks, s.DroppedFrames)}
	}
	return nil
}

// proxySummaryLine renders what the extension-mode proxy did.
func proxySummaryLine(c *stats.Counters, s socket.ClientStats) string {
	conn := "not connected to the sensor"
	if s.Connected {
		conn = "connected to the sensor"
	}
	return fmt.Sprintf("%s intercepted, %d tunnelled, %s sent to the sensor, %s lost (%d chunks, %d frames), %s queued, %s (%d connects)",
		plural(c.Get("proxy.flows"), "flow", "flows"), c.Get("proxy.connect_tunnelled"), humanBytes(s.SentBytes),
		humanBytes(s.DroppedBytes), s.DroppedChunks, s.DroppedFrames, humanBytes(s.QueuedBytes), conn, s.Connects)
}
