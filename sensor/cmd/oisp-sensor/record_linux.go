//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/oisp/oisp-sensor/linuxcompat"
	"github.com/oisp/oisp-sensor/sensor/session"
)

// platformSources adds the platform's own capture source: eBPF on Linux.
func platformSources(ctx context.Context, f *recordFlags, s *session.Session, st *statusWriter, log *slog.Logger) ([]session.NamedSource, error) {
	return linuxSources(ctx, f, s, st, log)
}

// linuxSources decides whether eBPF capture runs and starts reporting its
// attach progress. auto runs it when the machine allows it and the user
// did not choose the proxy: with both, traffic sent through the proxy by
// an OpenSSL or Go client would be captured twice.
func linuxSources(ctx context.Context, f *recordFlags, s *session.Session, st *statusWriter, log *slog.Logger) ([]session.NamedSource, error) {
	switch {
	case f.ebpf == "off":
		return nil, nil
	case f.ebpf == "auto" && f.proxyAddr != "":
		st.printf("eBPF capture off: --proxy was given (--ebpf on adds it; clients using the proxy would then be seen twice)\n")
		return nil, nil
	}
	if !linuxcompat.Available() {
		why := missingFeatures()
		if f.ebpf == "on" {
			return nil, fmt.Errorf("eBPF capture is not available%s: %s", why, ebpfHint)
		}
		st.printf("eBPF capture not available%s: %s\n", why, ebpfHint)
		return nil, nil
	}
	src, err := linuxcompat.New(linuxcompat.Config{
		PIDs:           f.ebpfFilter.pids,
		Executables:    f.ebpfFilter.exes,
		Cgroups:        f.ebpfFilter.cgroups,
		NoSystemEvents: f.ebpfFilter.noSystemEvents,
		NoFileEvents:   f.ebpfFilter.noFileEvents,
		Logger:         log,
		Stats:          s.Stats,
	})
	if err != nil {
		if f.ebpf == "on" {
			return nil, fmt.Errorf("eBPF capture: %w", err)
		}
		st.printf("eBPF capture could not start: %v; %s\n", err, ebpfHint)
		return nil, nil
	}
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-src.Ready():
		}
		counts := map[linuxcompat.AttachStatus]int{}
		for _, a := range src.Attachments() {
			counts[a.Status]++
		}
		st.printf("eBPF capture attached to %d TLS libraries and binaries (%d unsupported, %d failed; 'oisp-sensor doctor' lists them)\n",
			counts[linuxcompat.Attached], counts[linuxcompat.Unsupported], counts[linuxcompat.Failed])
	}()
	return []session.NamedSource{{Name: "eBPF", Source: src}}, nil
}

// missingFeatures names the required kernel features that are absent.
func missingFeatures() string {
	var miss []string
	for _, ft := range linuxcompat.Features() {
		if ft.Required && !ft.OK {
			miss = append(miss, ft.Name)
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return " (missing: " + strings.Join(miss, ", ") + ")"
}
