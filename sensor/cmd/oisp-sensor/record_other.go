//go:build !linux

package main

import (
	"context"
	"errors"
	"log/slog"
	"runtime"

	"github.com/oisp/oisp-sensor/sensor/session"
)

// platformSources adds the platform's own capture source. Outside Linux
// there is none in this process: on macOS the network extension delivers
// flows over the extension socket.
func platformSources(ctx context.Context, f *recordFlags, s *session.Session, st *statusWriter, log *slog.Logger) ([]session.NamedSource, error) {
	if f.ebpf == "on" {
		return nil, errors.New("--ebpf on: eBPF capture is Linux-only")
	}
	if f.ebpfFilter.set() {
		return nil, errors.New(ebpfOnlyFlags + " configure eBPF capture, which is Linux-only")
	}
	if runtime.GOOS == "darwin" && !f.noSocket {
		st.printf("on macOS the oisp network extension sends its flows to the extension socket\n")
	}
	return nil, nil
}
