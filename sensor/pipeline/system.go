package pipeline

import (
	"net/netip"

	"github.com/oisp/oisp-sensor/sensor/flow"
	"github.com/oisp/oisp-sensor/sensor/oisp"
	"github.com/oisp/oisp-sensor/sensor/secret"
)

// System turns host activity from a source into an OISP event.
func (p *Pipeline) System(se flow.SystemEvent) {
	method := string(se.Method)
	if method == "" {
		method = string(flow.CaptureEBPFTracepoint)
	}
	var data any
	conf := oisp.Confidence{Level: oisp.LevelHigh, Completeness: oisp.CompleteFull, ProcessAttribution: "direct", ContentSource: "none"}
	point := ""
	switch se.Kind {
	case flow.SysExec:
		data = &oisp.ProcessExec{Exe: se.Exe, Args: secret.RedactArgs(se.Args), Cwd: se.Cwd}
		point = "sched_process_exec"
	case flow.SysExit:
		d := &oisp.ProcessExit{ExitCode: se.ExitCode, Signal: se.Signal, TerminationType: "normal"}
		if se.Signal != 0 {
			d.TerminationType = "signaled"
		}
		if se.Runtime > 0 {
			d.RuntimeMS = oisp.Ptr(se.Runtime.Milliseconds())
		}
		data = d
		point = "sched_process_exit"
	case flow.SysFork:
		data = &oisp.ProcessFork{ChildPID: se.ChildPID}
		point = "sched_process_fork"
	case flow.SysConnect:
		d := &oisp.NetworkConnect{Dest: endpoint(se.Remote), Protocol: se.Protocol, Success: oisp.Ptr(se.Success), Error: se.Error}
		if d.Protocol == "" {
			d.Protocol = "tcp"
		}
		if se.Latency > 0 {
			d.LatencyMS = oisp.Ptr(float64(se.Latency.Microseconds()) / 1000)
		}
		data = d
		conf.Completeness = oisp.CompleteMetadata
		point = "connect"
	case flow.SysFileOpen:
		flags := se.Flags
		if flags == nil {
			flags = []string{}
		}
		data = &oisp.FileOpen{Path: se.Path, Flags: flags}
		conf.Completeness = oisp.CompleteMetadata
		point = "openat"
	case flow.SysFileWrite:
		d := &oisp.FileWrite{Path: se.Path, BytesWritten: oisp.Ptr(se.BytesWritten)}
		if se.Created {
			d.Created = oisp.Ptr(true)
		}
		if se.Truncated {
			d.Truncated = oisp.Ptr(true)
		}
		data = d
		conf.Completeness = oisp.CompleteMetadata
		point = "write"
	default:
		p.stats.Count("system.unknown_kind", 1)
		return
	}
	blk := new(systemEvent)
	ev := &blk.event
	p.cfg.Builder.Init(ev, string(se.Kind), se.At, method, data)
	ev.Source.CapturePoint = point
	info := &flow.Info{Process: se.Process, Method: se.Method}
	ev.Process = processOf(info)
	if se.Process.UID >= 0 && se.Process.PID != 0 {
		ev.Actor = &oisp.Actor{UID: oisp.Ptr(se.Process.UID)}
	}
	blk.confidence = conf
	ev.Confidence = &blk.confidence
	p.stats.Count("events."+ev.EventType, 1)
	p.cfg.Out.Record(ev)
}

// systemEvent is a host activity event and its confidence, allocated
// together.
type systemEvent struct {
	event      oisp.Event
	confidence oisp.Confidence
}

func endpoint(ap netip.AddrPort) oisp.Endpoint {
	e := oisp.Endpoint{}
	if ap.IsValid() {
		e.IP = ap.Addr().Unmap().String()
		e.Port = oisp.Ptr(int(ap.Port()))
		priv := ap.Addr().IsPrivate() || ap.Addr().IsLoopback()
		e.IsPrivate = &priv
	}
	return e
}
