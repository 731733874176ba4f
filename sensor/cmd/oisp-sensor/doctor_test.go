package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"

	"github.com/oisp/oisp-sensor/linuxcompat"
)

func runDoctorCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"doctor"}, args...), nil, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// TestDoctorPrivileged checks the privileged shape where eBPF capture can
// run: every required feature ok, and a trial attach that found the
// system libssl and attached to it.
func TestDoctorPrivileged(t *testing.T) {
	if !linuxcompat.Available() {
		t.Skip("eBPF capture is not available here (not root, or the kernel lacks features); doctor.txtar covers this shape")
	}
	dir := t.TempDir()
	out, errOut, code := runDoctorCmd(t, "--require-ebpf", "--ca-dir", filepath.Join(dir, "ca"), "--socket", filepath.Join(dir, "oisp.sock"))
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, re := range []string{
		`(?m)^privileges: +root \(euid 0\)$`,
		`(?m)^eBPF capture: +available$`,
		`(?m)^  ok +needs root +euid 0$`,
		`(?m)^attach report: +[1-9]\d* attached, \d+ unsupported, \d+ failed \(trial attach, .*, probes removed\)$`,
		`(?m)^  attached +openssl .*libssl\.so[^:]*: \d+ probes on SSL_write, SSL_read, SSL_write_ex, SSL_read_ex`,
		`(?m)^capture proxy CA: +not created yet`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ca")); err == nil {
		t.Error("doctor created the CA directory")
	}
}

// TestDoctorSocketStates: a listening sensor, a stale socket file, none.
func TestDoctorSocketStates(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix sockets")
	}
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	stale := filepath.Join(dir, "stale.sock")
	sl, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	sl.(*net.UnixListener).SetUnlinkOnClose(false)
	sl.Close()

	for path, want := range map[string]string{
		live:                            `\(a sensor is listening\)`,
		stale:                           `\(stale: no sensor listening: connection refused\)`,
		filepath.Join(dir, "none.sock"): `\(no sensor listening; 'oisp-sensor record' opens it\)`,
	} {
		out, _, code := runDoctorCmd(t, "--no-attach", "--ca-dir", filepath.Join(dir, "ca"), "--socket", path)
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		re := `(?m)^extension socket: +` + regexp.QuoteMeta(path) + ` ` + want + `$`
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("%s: output does not match %s:\n%s", filepath.Base(path), re, out)
		}
	}
}
