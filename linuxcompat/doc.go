// Package linuxcompat owns the Linux eBPF capture backend: uprobes on TLS
// libraries (OpenSSL, GnuTLS, Go crypto/tls) that recover plaintext at the
// library boundary, and raw tracepoints that report process, connect and
// file-write activity. A Source delivers both as flow.Flow chunks and
// flow.SystemEvent values.
//
// The BPF object is compiled from bpf/oisp.bpf.c by bpf2go and committed
// (oisp_x86_bpfel.go, oisp_x86_bpfel.o), so building needs no clang. The
// loader is linux/amd64 only; on every other platform Available reports false
// and New returns ErrNotSupported.
//
// Lifetimes: every kernel object is owned by the Source's file descriptors.
// Nothing is pinned, so links and maps disappear when Run returns or when the
// process dies (even by SIGKILL).
package linuxcompat
