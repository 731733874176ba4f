//go:build linux && amd64

package linuxcompat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// costClient is a client loop of BenchmarkProgramCost.
type costClient struct {
	name string
	h2   bool
	cmd  func(srv *tlsServer, n int) *exec.Cmd
}

// progCost is one program's run count and run time (kernel bpf_stats).
type progCost struct {
	runs    uint64
	runtime time.Duration
}

// programCosts reads bpf_stats of every loaded program of s.
func programCosts(b *testing.B, s *Source) map[string]progCost {
	b.Helper()
	progs := map[string]*ebpf.Program{
		"on_exec": s.objs.OnExec, "on_exit": s.objs.OnExit, "on_fork": s.objs.OnFork,
		"on_sys_enter": s.objs.OnSysEnter, "on_sys_exit": s.objs.OnSysExit,
		"on_sys_enter_tp1": s.objs.OnSysEnterTp1, "on_sys_enter_tp2": s.objs.OnSysEnterTp2,
		"on_sys_enter_tp3": s.objs.OnSysEnterTp3, "on_sys_enter_tp5": s.objs.OnSysEnterTp5,
		"on_sys_exit_tp": s.objs.OnSysExitTp,
		"tls_enter":      s.objs.TlsEnter, "tls_return": s.objs.TlsReturn,
		"go_write": s.objs.GoWrite, "go_read_enter": s.objs.GoReadEnter, "go_read_ret": s.objs.GoReadRet, "go_read_copy": s.objs.GoReadCopy,
		"tls_enter_multi": s.objs.multi.TlsEnterMulti, "tls_return_multi": s.objs.multi.TlsReturnMulti,
		"go_write_multi": s.objs.multi.GoWriteMulti, "go_read_enter_multi": s.objs.multi.GoReadEnterMulti,
		"go_read_ret_multi": s.objs.multi.GoReadRetMulti, "go_read_copy_multi": s.objs.multi.GoReadCopyMulti,
	}
	out := map[string]progCost{}
	for name, p := range progs {
		if p == nil {
			continue
		}
		st, err := p.Stats()
		if err != nil {
			b.Fatalf("stats of %s: %v", name, err)
		}
		out[name] = progCost{st.RunCount, st.Runtime}
	}
	return out
}

// BenchmarkProgramCost runs n keep-alive requests of 1 KiB through a client
// under capture and reports, per request, how often each BPF program ran
// and the nanoseconds it spent (kernel bpf_stats: deterministic counts,
// not wall-clock ratios), the ring buffer records read, and the client's
// own CPU time (which includes the uprobe traps bpf_stats does not see).
// Programs also run for other processes' syscalls while the loop runs;
// those are part of what the capture costs the machine.
//
//	go test -run '^$' -bench ProgramCost -benchtime 2000x ./linuxcompat
func BenchmarkProgramCost(b *testing.B) {
	if err := availability(); err != nil {
		b.Skipf("eBPF capture unavailable: %v", err)
	}
	statsOn, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skipf("bpf_stats unavailable: %v", err)
	}
	defer statsOn.Close()
	body := strings.Repeat("x", 1024)
	goBin := buildGoClient(b, false)
	var clients []costClient
	for _, h2 := range []bool{false, true} {
		name := "go-h1"
		if h2 {
			name = "go-h2"
		}
		clients = append(clients, costClient{name, h2, func(srv *tlsServer, n int) *exec.Cmd {
			cmd := exec.Command(goBin, srv.URL+"/bench", srv.caFile, body, strconv.Itoa(n))
			cmd.Stdin = strings.NewReader("go\n")
			if h2 {
				cmd.Env = append(os.Environ(), "GOCLIENT_H2=1")
			}
			return cmd
		}})
	}
	curl, err := exec.LookPath("curl")
	for _, h2 := range []bool{false, true} {
		if err != nil {
			break
		}
		name, proto := "curl-h1", "http1.1"
		if h2 {
			name, proto = "curl-h2", "http2"
		}
		clients = append(clients, costClient{name, h2, func(srv *tlsServer, n int) *exec.Cmd {
			var cfg strings.Builder
			bodyFile := filepath.Join(b.TempDir(), "body")
			os.WriteFile(bodyFile, []byte(body), 0o644)
			for i := range n {
				if i > 0 {
					cfg.WriteString("next\n")
				}
				fmt.Fprintf(&cfg, proto+"\nurl = \"%s/bench\"\ncacert = %q\noutput = \"/dev/null\"\ndata-binary = \"@%s\"\n", srv.URL, srv.caFile, bodyFile)
			}
			cfgFile := filepath.Join(b.TempDir(), "curl.cfg")
			if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			return exec.Command(curl, "-sS", "--config", cfgFile)
		}})
	}
	for _, c := range clients {
		b.Run(c.name+"/without_sensor", func(b *testing.B) {
			srv := newTLSServer(b, c.h2)
			cmd := c.cmd(srv, b.N)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v %s", c.name, err, out)
			}
			ps := cmd.ProcessState
			b.ReportMetric(float64((ps.UserTime()+ps.SystemTime()).Microseconds())/float64(b.N), "client-cpu-us/req")
			b.ReportMetric(float64(ps.SystemTime().Microseconds())/float64(b.N), "client-sys-us/req")
		})
		for _, mode := range []struct {
			name string
			raw  bool
		}{{"capture", false}, {"capture_raw_syscalls", true}} {
			c.capture(b, mode.name, mode.raw)
		}
	}
}

// capture runs the client's loop under the sensor, its syscall hooks
// attached per syscall or (raw) through the raw sys_enter/sys_exit
// tracepoints, and reports what the programs cost.
func (c costClient) capture(b *testing.B, mode string, raw bool) {
	b.Run(c.name+"/"+mode, func(b *testing.B) {
		srv := newTLSServer(b, c.h2)
		h := &countingHandler{}
		src, stop := runSensorWith(b, Config{}, h, func(s *Source) { s.noSyscallTracepoints = raw })
		defer stop()
		if got, want := src.SyscallHooks(), map[bool]string{false: SyscallTracepoints, true: SyscallRawTracepoints}[raw]; got != want {
			b.Fatalf("syscall hooks: %q, want %q", got, want)
		}
		// Warm-up: the binary's probes are placed at its first exec.
		if out, err := c.cmd(srv, 2).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v %s", c.name, err, out)
		}
		time.Sleep(200 * time.Millisecond)
		n := b.N
		p0, s0 := programCosts(b, src), src.Stats()
		cmd := c.cmd(srv, n)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v %s", c.name, err, out)
		}
		time.Sleep(100 * time.Millisecond)
		p1, s1 := programCosts(b, src), src.Stats()
		var names []string
		for name := range p1 {
			names = append(names, name)
		}
		sort.Strings(names)
		var totalNS float64
		for _, name := range names {
			runs := p1[name].runs - p0[name].runs
			if runs == 0 {
				continue
			}
			ns := float64(p1[name].runtime - p0[name].runtime)
			totalNS += ns
			b.ReportMetric(float64(runs)/float64(n), name+"-runs/req")
			b.ReportMetric(ns/float64(runs), name+"-ns/run")
		}
		b.ReportMetric(totalNS/float64(n), "bpf-ns/req")
		b.ReportMetric(float64(s1.RecordsRead-s0.RecordsRead)/float64(n), "records/req")
		b.ReportMetric(float64(s1.TLSChunks-s0.TLSChunks)/float64(n), "tls-records/req")
		b.ReportMetric(float64(s1.SystemRecords-s0.SystemRecords)/float64(n), "sys-records/req")
		ps := cmd.ProcessState
		b.ReportMetric(float64((ps.UserTime()+ps.SystemTime()).Microseconds())/float64(n), "client-cpu-us/req")
		b.ReportMetric(float64(ps.SystemTime().Microseconds())/float64(n), "client-sys-us/req")
	})
}
