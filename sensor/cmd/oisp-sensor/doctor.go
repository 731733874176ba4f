package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/oisp/oisp-sensor/linuxcompat"
	"github.com/oisp/oisp-sensor/sensor/capture/ca"
	"github.com/oisp/oisp-sensor/sensor/capture/socket"
	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/spf13/cobra"
)

// doctorFlags are the options of `oisp-sensor doctor`.
type doctorFlags struct {
	caDir         string
	socketPath    string
	attachTimeout time.Duration
	noAttach      bool
	requireEBPF   bool
}

func newDoctorCmd(g *globals) *cobra.Command {
	f := &doctorFlags{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Show what this machine can capture: eBPF support, TLS libraries attached, CA, socket",
		Long: `doctor describes what oisp-sensor can capture here and why not:

  platform, privileges and capabilities, kernel BTF
  eBPF capture: each kernel feature it needs or uses, and a trial attach
    (probes are placed for a moment, then removed) listing every TLS
    library and binary found, attached or not and why
  the capture proxy's CA and the extension socket

It changes nothing (the CA is not created) and exits 0 unless
--require-ebpf is given and eBPF capture cannot run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	caFlag(fl, &f.caDir)
	fl.StringVar(&f.socketPath, "socket", socket.LegacyPath, "the extension socket `PATH` to check")
	fl.DurationVar(&f.attachTimeout, "attach-timeout", 30*time.Second, "how long the trial attach may take")
	fl.BoolVar(&f.noAttach, "no-attach", false, "skip the trial attach (no probes are placed)")
	fl.BoolVar(&f.requireEBPF, "require-ebpf", false, "exit 1 when eBPF capture cannot run here (for CI checks)")
	return cmd
}

// report prints aligned "label: value" lines.
type report struct{ w io.Writer }

func (r report) line(label, format string, args ...any) {
	fmt.Fprintf(r.w, "%-19s %s\n", label+":", fmt.Sprintf(format, args...))
}

func (r report) detail(format string, args ...any) {
	fmt.Fprintf(r.w, "  "+format+"\n", args...)
}

func runDoctor(ctx context.Context, g *globals, f *doctorFlags) error {
	r := report{w: g.stdout}
	r.line("platform", "%s/%s%s", runtime.GOOS, runtime.GOARCH, kernelSuffix())
	r.line("privileges", "%s", privileges())
	if caps := capabilities(); caps != "" {
		r.line("capabilities", "%s", caps)
	}
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
			r.line("kernel BTF", "/sys/kernel/btf/vmlinux")
		} else {
			r.line("kernel BTF", "missing (/sys/kernel/btf/vmlinux: %v)", unwrapPathErr(err))
		}
	}

	available := linuxcompat.Available()
	feats := unprobed(linuxcompat.Features())
	if available {
		r.line("eBPF capture", "available")
	} else {
		r.line("eBPF capture", "not available%s", missingOf(feats))
	}
	for _, ft := range feats {
		if ft.Name == "kernel" {
			continue // on the platform line
		}
		state := "ok"
		if ft.OK && strings.HasPrefix(ft.Detail, notProbed) {
			state = "?"
		} else if !ft.OK {
			state = "MISSING"
			if !ft.Required {
				state = "absent"
			}
		}
		kind := "uses"
		if ft.Required {
			kind = "needs"
		}
		r.detail("%-7s %-5s %-20s %s", state, kind, ft.Name, ft.Detail)
	}
	var ebpfErr error
	switch {
	case !available:
		r.detail("record captures with the proxy instead: %s", ebpfHint)
		ebpfErr = errors.New("eBPF capture is not available" + missingOf(feats))
	case f.noAttach:
		r.line("attach report", "skipped (--no-attach)")
	default:
		ebpfErr = trialAttach(ctx, r, f.attachTimeout)
	}

	caStatus(r, f.caDir)
	socketStatus(r, f.socketPath)

	if f.requireEBPF && ebpfErr != nil {
		return &exitError{code: 1, err: ebpfErr}
	}
	return nil
}

// notProbed marks a feature that could not be checked.
const notProbed = "not checked: "

// unprobed turns the failures of feature probes that only failed for lack
// of privileges into "not checked": without root the kernel refuses to
// load even the probe programs, which says nothing about the kernel.
func unprobed(feats []linuxcompat.Feature) []linuxcompat.Feature {
	if os.Geteuid() == 0 {
		return feats
	}
	out := make([]linuxcompat.Feature, len(feats))
	for i, ft := range feats {
		if !ft.OK && ft.Name == "root" {
			ft.Detail = fmt.Sprintf("euid %d: needs root (or CAP_BPF and CAP_PERFMON)", os.Geteuid())
		}
		if !ft.OK && ft.Name != "root" && strings.Contains(ft.Detail, "operation not permitted") {
			ft.OK, ft.Detail = true, notProbed+"probing needs root"
		}
		out[i] = ft
	}
	return out
}

func kernelSuffix() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return ", kernel " + strings.TrimSpace(string(b))
}

func privileges() string {
	if runtime.GOOS == "windows" {
		return "unknown on windows"
	}
	if os.Geteuid() == 0 {
		return "root (euid 0)"
	}
	return fmt.Sprintf("not root (euid %d)", os.Geteuid())
}

// capabilities lists the effective capabilities eBPF capture cares about,
// from /proc/self/status (Linux only).
func capabilities() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return ""
		}
		var parts []string
		for _, c := range []struct {
			name string
			bit  uint
		}{{"CAP_BPF", 39}, {"CAP_PERFMON", 38}, {"CAP_SYS_ADMIN", 21}} {
			mark := "no"
			if eff&(1<<c.bit) != 0 {
				mark = "yes"
			}
			parts = append(parts, c.name+" "+mark)
		}
		return strings.Join(parts, ", ") + " (effective)"
	}
	return ""
}

func missingOf(feats []linuxcompat.Feature) string {
	var miss []string
	for _, ft := range feats {
		if ft.Required && !ft.OK {
			miss = append(miss, ft.Name)
		}
	}
	if len(miss) == 0 {
		return ""
	}
	return " (missing: " + strings.Join(miss, ", ") + ")"
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// trialAttach starts an eBPF source over every process, waits for its
// start-up attach scan, prints the attach report and detaches.
func trialAttach(ctx context.Context, r report, timeout time.Duration) error {
	start := time.Now()
	src, err := linuxcompat.New(linuxcompat.Config{NoSystemEvents: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		r.line("attach report", "eBPF programs did not load: %v", err)
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, nullFlows{}) }()
	var runErr error
	select {
	case <-src.Ready():
	case runErr = <-done:
	case <-time.After(timeout):
		runErr = fmt.Errorf("the start-up attach scan did not finish within %v", timeout)
	case <-ctx.Done():
		runErr = ctx.Err()
	}
	atts := src.Attachments()
	cancel()
	if runErr == nil {
		runErr = <-done
	} else {
		<-done
	}
	took := time.Since(start).Round(10 * time.Millisecond)
	if runErr != nil {
		r.line("attach report", "trial attach failed after %v: %v", took, runErr)
		return runErr
	}
	counts := map[linuxcompat.AttachStatus]int{}
	for _, a := range atts {
		counts[a.Status]++
	}
	r.line("attach report", "%d attached, %d unsupported, %d failed (trial attach, %v, probes removed)",
		counts[linuxcompat.Attached], counts[linuxcompat.Unsupported], counts[linuxcompat.Failed], took)
	sort.SliceStable(atts, func(i, j int) bool {
		if atts[i].Status != atts[j].Status {
			return statusRank(atts[i].Status) < statusRank(atts[j].Status)
		}
		return atts[i].Path < atts[j].Path
	})
	for _, a := range atts {
		lib := a.Library
		if lib == "" {
			lib = "-"
		}
		line := fmt.Sprintf("%-11s %-7s %s", a.Status, lib, a.Path)
		if a.FirstPID > 0 {
			line += fmt.Sprintf(" (seen in pid %d)", a.FirstPID)
		}
		switch {
		case a.Status == linuxcompat.Attached:
			line += fmt.Sprintf(": %d probes on %s", a.Probes, strings.Join(a.Symbols, ", "))
		case a.Reason != "":
			line += ": " + a.Reason
		}
		r.detail("%s", line)
	}
	r.detail("Go programs, Node.js and private OpenSSL copies are attached when they start (record follows new processes).")
	return nil
}

func statusRank(s linuxcompat.AttachStatus) int {
	switch s {
	case linuxcompat.Attached:
		return 0
	case linuxcompat.Failed:
		return 1
	}
	return 2
}

// nullFlows discards what the trial attach captures.
type nullFlows struct{}

func (nullFlows) Open(*flow.Info)              {}
func (nullFlows) Data(string, flow.Chunk)      {}
func (nullFlows) Close(string, flow.CloseInfo) {}

// caStatus reports the capture proxy's CA without creating it.
func caStatus(r report, flagDir string) {
	dir, err := caDir(flagDir)
	if err != nil {
		r.line("capture proxy CA", "unknown: %v", err)
		return
	}
	c, err := ca.Load(dir, ca.Options{})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.line("capture proxy CA", "not created yet (in %s; 'oisp-sensor ca path' or the first 'record --proxy' creates it)", dir)
		return
	case err != nil:
		r.line("capture proxy CA", "unusable: %v", err)
		return
	}
	cert := c.Certificate()
	sum := sha256.Sum256(cert.Raw)
	state := "valid"
	now := time.Now()
	if now.After(cert.NotAfter) {
		state = "EXPIRED"
	} else if now.Before(cert.NotBefore) {
		state = "not yet valid"
	}
	r.line("capture proxy CA", "%s (%s until %s, sha256 %s)", c.CertPath(), state, cert.NotAfter.Format(time.DateOnly), colonHex(sum[:8])+"…")
}

// socketStatus reports whether a sensor listens on the extension socket.
func socketStatus(r report, path string) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.line("extension socket", "%s (no sensor listening; 'oisp-sensor record' opens it)", path)
		return
	case err != nil:
		r.line("extension socket", "%s (%v)", path, unwrapPathErr(err))
		return
	case fi.Mode()&fs.ModeSocket == 0:
		r.line("extension socket", "%s (not a socket: %s)", path, fi.Mode().Type())
		return
	}
	d := net.Dialer{Timeout: time.Second}
	c, err := d.Dial("unix", path)
	if err != nil {
		r.line("extension socket", "%s (stale: no sensor listening: %v)", path, unwrapOpErr(err))
		return
	}
	c.Close()
	r.line("extension socket", "%s (a sensor is listening)", path)
}

func unwrapOpErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return unwrapSyscall(oe.Err)
	}
	return err
}

func unwrapSyscall(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
