//go:build linux && amd64

package linuxcompat

import (
	"errors"

	"github.com/cilium/ebpf"
)

// corePrograms are loaded on every kernel.
type corePrograms struct {
	OnExec     *ebpf.Program `ebpf:"on_exec"`
	OnExit     *ebpf.Program `ebpf:"on_exit"`
	OnFork     *ebpf.Program `ebpf:"on_fork"`
	OnSysEnter *ebpf.Program `ebpf:"on_sys_enter"`
	OnSysExit  *ebpf.Program `ebpf:"on_sys_exit"`
	// The per-syscall tracepoint twins of OnSysEnter/OnSysExit.
	// (per number of arguments the entry program reads).
	OnSysEnterTp1 *ebpf.Program `ebpf:"on_sys_enter_tp1"`
	OnSysEnterTp2 *ebpf.Program `ebpf:"on_sys_enter_tp2"`
	OnSysEnterTp3 *ebpf.Program `ebpf:"on_sys_enter_tp3"`
	OnSysEnterTp5 *ebpf.Program `ebpf:"on_sys_enter_tp5"`
	OnSysExitTp   *ebpf.Program `ebpf:"on_sys_exit_tp"`
	TlsEnter      *ebpf.Program `ebpf:"tls_enter"`
	TlsReturn     *ebpf.Program `ebpf:"tls_return"`
	GoWrite       *ebpf.Program `ebpf:"go_write"`
	GoReadEnter   *ebpf.Program `ebpf:"go_read_enter"`
	GoReadRet     *ebpf.Program `ebpf:"go_read_ret"`
	GoReadCopy    *ebpf.Program `ebpf:"go_read_copy"`
}

// multiPrograms are the uprobe_multi twins, loaded when the kernel has
// uprobe_multi links (Linux >= 6.6).
type multiPrograms struct {
	TlsEnterMulti    *ebpf.Program `ebpf:"tls_enter_multi"`
	TlsReturnMulti   *ebpf.Program `ebpf:"tls_return_multi"`
	GoWriteMulti     *ebpf.Program `ebpf:"go_write_multi"`
	GoReadEnterMulti *ebpf.Program `ebpf:"go_read_enter_multi"`
	GoReadRetMulti   *ebpf.Program `ebpf:"go_read_ret_multi"`
	GoReadCopyMulti  *ebpf.Program `ebpf:"go_read_copy_multi"`
}

// bpfObjects is everything the Source loaded. Programs it did not load are nil.
type bpfObjects struct {
	oispMaps
	corePrograms
	multi multiPrograms
}

func (o *bpfObjects) load(spec *ebpf.CollectionSpec, withMulti bool) error {
	if !withMulti {
		return spec.LoadAndAssign(&struct {
			*oispMaps
			*corePrograms
		}{&o.oispMaps, &o.corePrograms}, nil)
	}
	return spec.LoadAndAssign(&struct {
		*oispMaps
		*corePrograms
		*multiPrograms
	}{&o.oispMaps, &o.corePrograms, &o.multi}, nil)
}

// Close releases every loaded program and map.
func (o *bpfObjects) Close() error {
	var errs []error
	for _, p := range []*ebpf.Program{
		o.OnExec, o.OnExit, o.OnFork, o.OnSysEnter, o.OnSysExit, o.OnSysEnterTp1, o.OnSysEnterTp2, o.OnSysEnterTp3, o.OnSysEnterTp5, o.OnSysExitTp,
		o.TlsEnter, o.TlsReturn, o.GoWrite, o.GoReadEnter, o.GoReadRet, o.GoReadCopy,
		o.multi.TlsEnterMulti, o.multi.TlsReturnMulti, o.multi.GoWriteMulti,
		o.multi.GoReadEnterMulti, o.multi.GoReadRetMulti, o.multi.GoReadCopyMulti,
	} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	errs = append(errs, o.oispMaps.Close())
	return errors.Join(errs...)
}
