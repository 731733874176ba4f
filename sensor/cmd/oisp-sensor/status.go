package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oisp/oisp-sensor/sensor/session"
)

// This file holds the status output of the long-running commands (record,
// proxy): what a person reads on the terminal to know where events go, how
// to send traffic through the sensor, and what it has seen so far. Status
// goes to stderr; stdout may carry events (--output -).

// statusWriter serialises status lines from several goroutines.
type statusWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *statusWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// proxyHints tells a person how to point clients at the capture proxy and
// make them trust its CA.
// printHints writes the combined CA bundle and tells the user how to send
// clients through the proxy.
func (cp *capture) printHints(st *statusWriter, log *slog.Logger) {
	bundle, _, _, err := writeBundle(cp.ca, "")
	if err != nil {
		log.Warn("could not write the combined CA bundle", "err", err)
		bundle = ""
	}
	h3 := ""
	if a := cp.proxy.H3Addr(); a != nil {
		h3 = a.String()
	}
	proxyHints(st, cp.proxy.Addr().String(), cp.ca.CertPath(), bundle, cp.rules, h3)
}

func proxyHints(st *statusWriter, addr, certPath, bundlePath string, rules interceptRules, h3 string) {
	url := "http://" + addr
	var b strings.Builder
	fmt.Fprintf(&b, "capture proxy listening on %s\n", addr)
	fmt.Fprintf(&b, "  send a client through it:  export HTTPS_PROXY=%s HTTP_PROXY=%s\n", url, url)
	fmt.Fprintf(&b, "  sensor CA (clients must trust it): %s\n", certPath)
	fmt.Fprintf(&b, "    Node.js:          export NODE_EXTRA_CA_CERTS=%s\n", certPath)
	if bundlePath != "" {
		fmt.Fprintf(&b, "    Python requests:  export REQUESTS_CA_BUNDLE=%s\n", bundlePath)
		fmt.Fprintf(&b, "    OpenSSL/curl/Go:  export SSL_CERT_FILE=%s\n", bundlePath)
		fmt.Fprintf(&b, "    (%s is the system roots plus the sensor CA: SSL_CERT_FILE replaces the system bundle)\n", bundlePath)
	}
	fmt.Fprintf(&b, "    system-wide:      see 'oisp-sensor ca show'\n")
	fmt.Fprintf(&b, "  decrypting: the provider registry's hosts")
	if names := rules.names(); len(names) > 0 {
		fmt.Fprintf(&b, " + %s", strings.Join(names, ", "))
	}
	fmt.Fprintf(&b, "; every other host is tunnelled untouched\n")
	if h3 != "" {
		fmt.Fprintf(&b, "  HTTP/3 relay on udp %s (resolve intercepted hosts to it)\n", h3)
	}
	st.printf("%s", b.String())
}

// humanBytes renders a byte count for people.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// summaryLine renders a session summary on one line:
//
//	3 flows (1 open), 4 events (2 ai.request, 2 ai.response), 12.1 KiB captured, 0 B dropped, 0 partial
func summaryLine(s session.Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d open), %s", plural(s.FlowsOpened, "flow", "flows"), s.FlowsOpen, plural(s.Events, "event", "events"))
	if len(s.EventsByType) > 0 {
		types := make([]string, 0, len(s.EventsByType))
		for t := range s.EventsByType {
			types = append(types, t)
		}
		sort.Strings(types)
		parts := make([]string, len(types))
		for i, t := range types {
			parts[i] = fmt.Sprintf("%d %s", s.EventsByType[t], t)
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, ", %s captured, %s dropped, %d partial", humanBytes(s.Bytes), humanBytes(s.Dropped), s.PartialExchange)
	if s.DecodeErrors > 0 {
		fmt.Fprintf(&b, ", %d decode errors", s.DecodeErrors)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Exporters)) {
		e := s.Exporters[name]
		fmt.Fprintf(&b, "; %s: %d sent, %d dropped", name, e.Sent, e.Dropped)
		if e.Errors > 0 {
			fmt.Fprintf(&b, ", %d errors", e.Errors)
		}
	}
	return b.String()
}

// every calls fn every interval until ctx ends or stop is called; stop
// waits for a call in progress. interval <= 0 never calls it.
func every(ctx context.Context, interval time.Duration, fn func()) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}
