// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//go:build ignore

/*
 * oisp.bpf.c: the OISP sensor's kernel side.
 *
 * TLS plaintext: uprobes on OpenSSL (SSL_write/SSL_read and the _ex forms),
 * GnuTLS (gnutls_record_send/recv) and Go crypto/tls ((*Conn).Write at entry,
 * (*Conn).Read at entry plus one uprobe on each RET). Payload is copied in
 * 16 KiB chunks, each its own ring buffer record of exactly the size used.
 *
 * Host activity: raw tracepoints only (sched_process_exec/exit/fork and
 * raw_syscalls sys_enter/sys_exit), because this machine kind has no kprobes
 * and may run without tracefs mounted.
 *
 * Nothing is dropped silently: every ring buffer failure, truncation and
 * failed user-memory read is counted in the per-CPU stats array, and bytes a
 * flow lost are reported on its next chunk (lost_before).
 */
#include <linux/bpf.h>
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define CHUNK 16384
#define MAX_CHUNKS 64 /* hard ceiling: 1 MiB per call */
#define PATH_BUF 4352 /* 4096 + 256: any masked offset plus one name fits */
#define PATH_MAX_DEPTH 40
#define ARGS_MAX 4096
#define COMM_LEN 16

/* Settings written by the loader before load. */
volatile const u32 self_tgid = 0;
volatile const u32 filter_mode = 0;        /* 0: everything, 1: traced/cgroup maps */
volatile const u32 filter_cgroups = 0;     /* target_cgroups holds entries */
volatile const u32 max_call_bytes = 262144; /* per TLS call */
volatile const u32 sys_events = 0xff;      /* bit mask of SYS_* below */
volatile const u32 attach_per_pid = 0;     /* library discovery key includes tgid */
volatile const u64 wake_bytes = 1 << 20;   /* unread ring bytes that wake the reader */

#define SYS_EXEC 1
#define SYS_EXIT 2
#define SYS_CONNECT 4
#define SYS_FILES 8
#define SYS_LIBS 16

enum oisp_event_type {
	OISP_EV_TLS_DATA = 1,
	OISP_EV_SOCK_CLOSE = 2,
	OISP_EV_EXEC = 3,
	OISP_EV_EXIT = 4,
	OISP_EV_CONNECT = 5,
	OISP_EV_FILE_OPEN = 6,
	OISP_EV_FILE_CLOSE = 7,
	OISP_EV_LIB_MAP = 8,
	OISP_EV_FORK = 9,
	OISP_EV_TLS_BIND = 10, /* struct ev_sock_close: conn now known to use fd */
};

enum oisp_tls_fn {
	FN_SSL_WRITE = 1,
	FN_SSL_READ = 2,
	FN_SSL_WRITE_EX = 3,
	FN_SSL_READ_EX = 4,
	FN_GNUTLS_SEND = 5,
	FN_GNUTLS_RECV = 6,
	FN_GO_WRITE = 7,
	FN_GO_READ = 8,
	FN_SSL_FREE = 9,     /* entry only: the connection object dies */
	FN_GNUTLS_DEINIT = 10,
	/* ssl_write_internal / ssl_read_internal, shared by the plain and _ex
	 * forms: (SSL *, buf, size_t num, size_t *done), > 0 on success. */
	FN_SSL_WRITE_INT = 11,
	FN_SSL_READ_INT = 12,
};

enum oisp_lib {
	LIB_OPENSSL = 1,
	LIB_GNUTLS = 2,
	LIB_GO = 3,
};

enum stat_id {
	ST_TLS_CALLS = 0,
	ST_TLS_CHUNKS,
	ST_TLS_BYTES,
	ST_TLS_TRUNC_CALLS,
	ST_TLS_TRUNC_BYTES,
	ST_RB_FAIL_TLS,
	ST_RB_FAIL_TLS_BYTES,
	ST_RB_FAIL_SYS,
	ST_READ_USER_FAIL,
	ST_READ_USER_FAIL_BYTES,
	ST_RET_WITHOUT_ENTRY,
	ST_SYS_EVENTS,
	ST_FILE_WRITE_BYTES,
	ST_TRACKED_FILES_FULL,
	ST_TLS_BINDS,
	ST_MAX,
};

struct ev_hdr {
	u32 type;
	u32 tgid;
	u32 tid;
	u32 pad;
	u64 ts;
};

struct ev_tls_data {
	struct ev_hdr h;
	u64 conn;        /* SSL*, gnutls_session_t or Go *tls.Conn */
	u64 call_len;    /* bytes the call moved (before truncation) */
	u64 offset;      /* offset of data[] within the call */
	u64 lost_before; /* bytes of this conn+direction lost before data[] */
	s32 fd;          /* socket fd, -1 when unknown */
	u32 len;         /* bytes in data[] */
	u8 dir;          /* 0 client->server (write), 1 server->client (read) */
	u8 lib;
	u8 fn;
	u8 pad[5];
	u8 data[CHUNK];
};

struct ev_sock_close {
	struct ev_hdr h;
	u64 conn;
	s32 fd;
	u32 pad;
};

struct ev_exec {
	struct ev_hdr h;
	u32 ppid;
	u32 uid;
	u64 cgroup_id;
	u64 exe_ino;
	u32 exe_dev;
	u32 args_len;
	u32 exe_len;
	u32 cwd_len;
	char comm[COMM_LEN];
	char filename[256];
	char args[ARGS_MAX];
	char exe[PATH_BUF];
	char cwd[PATH_BUF];
};

struct ev_exit {
	struct ev_hdr h;
	s32 exit_code;
	s32 signal;
	u64 start_ns;
};

struct ev_fork {
	struct ev_hdr h;
	u32 child_tgid;
	u32 pad;
};

struct ev_connect {
	struct ev_hdr h;
	s32 fd;
	s32 ret;
	u16 family;
	u16 port; /* host byte order */
	u32 pad;
	u8 addr[16];
	u64 latency_ns;
};

struct ev_file {
	struct ev_hdr h;
	u64 file;
	u64 bytes;
	u64 ino;
	s32 fd;
	u32 flags;
	u32 created;
	u32 path_len;
	char path[PATH_BUF];
};

struct ev_lib_map {
	struct ev_hdr h;
	u64 ino;
	u32 dev;
	u32 path_len;
	char path[PATH_BUF];
};

/* Force BTF for the types bpf2go turns into Go structs. */
const struct ev_tls_data *unused_tls_data __attribute__((unused));
const struct ev_sock_close *unused_sock_close __attribute__((unused));
const struct ev_exec *unused_exec __attribute__((unused));
const struct ev_exit *unused_exit __attribute__((unused));
const struct ev_fork *unused_fork __attribute__((unused));
const struct ev_connect *unused_connect __attribute__((unused));
const struct ev_file *unused_file __attribute__((unused));
const struct ev_lib_map *unused_lib_map __attribute__((unused));
const enum stat_id *unused_stat __attribute__((unused));

/* ---- maps ---- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by the loader */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

/* Per-CPU scratch records: too big for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ev_tls_data);
} tls_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ev_exec);
} exec_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ev_file);
} file_scratch SEC(".maps");

/* Filters (filter_mode 1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, u8);
} traced SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u64);
	__type(value, u8);
} target_cgroups SEC(".maps");

struct inode_key {
	u64 ino;
	u32 dev;
	u32 tgid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct inode_key);
	__type(value, u8);
} target_exes SEC(".maps");

/* Executable mappings already reported (library discovery). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct inode_key);
	__type(value, u8);
} seen_inodes SEC(".maps");

/* An SSL_* / gnutls call in progress on a thread. */
struct tls_call {
	u64 conn;
	u64 buf;
	u64 len_or_out; /* requested length, or size_t* out-param for _ex */
	s32 fd;
	u32 fn;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u32); /* tid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

/* Go (*Conn).Read in progress, keyed by goroutine (R14 = g). */
struct go_key {
	u64 g;
	u32 tgid;
	u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct tls_call);
} go_reads SEC(".maps");

/* Last known socket fd per connection object, for calls without a syscall. */
struct conn_key {
	u64 conn;
	u32 tgid;
	u32 dir;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key); /* dir unused (0) */
	__type(value, s32);
} conn_fds SEC(".maps");

/* Bytes lost per connection and direction, reported on the next chunk. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, u64);
} conn_lost SEC(".maps");

/* Sockets that carried TLS data: close(fd) on them ends the flow. */
struct fd_key {
	u32 tgid;
	s32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fd_key);
	__type(value, u64);
} tls_socks SEC(".maps");

/* Syscalls in flight, keyed by tid. */
struct connect_call {
	u64 ts;
	s32 fd;
	u16 family;
	u16 port;
	u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct connect_call);
} connect_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, u32); /* open flags */
} open_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, u64); /* struct file * being written */
} write_calls SEC(".maps");

/*
 * Memory-BIO TLS users (Node.js) write ciphertext to the socket themselves,
 * right after SSL_write returns, on the same thread. A write without a
 * known fd leaves this note; the thread's next socket write whose size fits
 * the ciphertext of the noted plaintext binds the connection to that fd.
 */
struct bind_wait {
	u64 conn;
	u64 ts;
	u64 plain;  /* plaintext bytes written since the note */
	u32 calls;  /* SSL writes since the note (TLS records to allow for) */
	u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tid */
	__type(value, struct bind_wait);
} bind_waits SEC(".maps");

/* How long after an SSL write its ciphertext may reach the socket. */
#define BIND_WINDOW_NS (20ULL * 1000 * 1000)

/* Regular files opened for writing: bytes written so far. */
struct tracked_file {
	u64 bytes;
	u32 tgid;
	u32 flags;
};

/* LRU: entries of files whose close and opener exit were never seen (lost
 * events) must not fill the map for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64); /* struct file * */
	__type(value, struct tracked_file);
} tracked_files SEC(".maps");

/* ---- helpers ---- */

static __always_inline void stat_add(u32 idx, u64 n)
{
	u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += n;
}

static __always_inline bool want_tgid(u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (!filter_mode)
		return true;
	if (bpf_map_lookup_elem(&traced, &tgid))
		return true;
	/* Untraced processes reach here on every socket and file syscall of
	 * the machine: skip the cgroup id and lookup when no cgroup is named. */
	if (!filter_cgroups)
		return false;
	u64 cg = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&target_cgroups, &cg) != NULL;
}

static __always_inline void fill_hdr(struct ev_hdr *h, u32 type)
{
	u64 id = bpf_get_current_pid_tgid();
	h->type = type;
	h->tgid = id >> 32;
	h->tid = (u32)id;
	h->pad = 0;
	h->ts = bpf_ktime_get_ns();
}

static __always_inline struct file *fd_file(struct task_struct *task, s32 fd)
{
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	u32 max = BPF_CORE_READ(fdt, max_fds);
	if ((u32)fd >= max)
		return NULL;
	struct file **arr = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000

static __always_inline u32 file_mode(struct file *f)
{
	return BPF_CORE_READ(f, f_inode, i_mode);
}

static __always_inline bool fd_is_socket(s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = fd_file(task, fd);
	return f && (file_mode(f) & S_IFMT) == S_IFSOCK;
}

/* One reference left (the descriptor being closed)? */
static __always_inline bool file_last_ref(struct file *f)
{
	if (bpf_core_field_exists(f->f_ref)) {
		s64 r = BPF_CORE_READ(f, f_ref.refcnt.counter);
		return r <= 0;
	}
	struct file___old *o = (void *)f;
	s64 c = BPF_CORE_READ(o, f_count.counter);
	return c <= 1;
}

struct walk_ctx {
	struct dentry *d;
	struct mount *mnt;
	char *buf;
	u32 pos;
};

static long walk_step(u32 i, void *data)
{
	struct walk_ctx *w = data;
	struct dentry *d = w->d;
	struct mount *mnt = w->mnt;
	struct dentry *root = BPF_CORE_READ(mnt, mnt.mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == root || d == parent) {
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (mp == mnt || !mp)
			return 1;
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mp;
		return 0;
	}
	u32 pos = w->pos;
	if (pos >= PATH_BUF - 256)
		return 1;
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(&w->buf[pos & 4095], 256, name);
	if (n <= 0)
		return 1;
	w->pos = pos + n;
	w->d = parent;
	return 0;
}

/*
 * walk_path writes the components of p leaf first, each NUL terminated, into
 * buf (PATH_BUF bytes) and returns the bytes used. User space reverses them.
 * Mount points are crossed, so the result is the path in the initial mount
 * namespace. bpf_loop keeps the verifier from unrolling the walk at every
 * call site.
 */
static __noinline u32 walk_path(struct path *p, char *buf)
{
	struct vfsmount *vmnt = BPF_CORE_READ(p, mnt);
	struct walk_ctx w = {
		.d = BPF_CORE_READ(p, dentry),
		.mnt = container_of(vmnt, struct mount, mnt),
		.buf = buf,
	};
	bpf_loop(PATH_MAX_DEPTH, walk_step, &w, 0);
	return w.pos;
}

/*
 * Wake-ups: a record normally does not wake the reader (BPF_RB_NO_WAKEUP);
 * user space drains the ring on a short timer instead, so a burst of records
 * costs one wake-up, not one per record. The reader is woken at once when
 * the unread data passes wake_bytes (so a fast producer cannot fill the ring
 * between two timer reads) and for records that gate probe placement (exec,
 * executable mappings), where every millisecond is a window in which a new
 * process could speak TLS before its probes are in place. FORCE, not the
 * default adaptive mode: adaptive wakes only when the reader has caught up,
 * which is never the case while earlier unwoken records are unread.
 */
static __always_inline u64 ring_flags(bool urgent)
{
	if (urgent || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline int emit_sys_flags(void *rec, u64 size, bool urgent)
{
	if (bpf_ringbuf_output(&events, rec, size, ring_flags(urgent))) {
		stat_add(ST_RB_FAIL_SYS, 1);
		return -1;
	}
	stat_add(ST_SYS_EVENTS, 1);
	return 0;
}

static __always_inline int emit_sys(void *rec, u64 size)
{
	if (bpf_ringbuf_output(&events, rec, size, ring_flags(false))) {
		stat_add(ST_RB_FAIL_SYS, 1);
		return -1;
	}
	stat_add(ST_SYS_EVENTS, 1);
	return 0;
}

/* ---- TLS payload emission ---- */

struct emit_ctx {
	struct ev_tls_data *rec;
	u64 buf;
	u64 total; /* bytes to copy (after truncation) */
	struct conn_key lost_key;
	bool lost_pending;
};

static __always_inline void lose(struct conn_key *k, u64 n)
{
	u64 *v = bpf_map_lookup_elem(&conn_lost, k);
	if (v) {
		__sync_fetch_and_add(v, n);
		return;
	}
	bpf_map_update_elem(&conn_lost, k, &n, BPF_NOEXIST);
}

static long emit_chunk(u32 i, void *data)
{
	struct emit_ctx *c = data;
	struct ev_tls_data *rec = c->rec;
	u64 off = (u64)i * CHUNK;
	if (off >= c->total)
		return 1;
	u64 n = c->total - off;
	if (n > CHUNK)
		n = CHUNK;
	u32 len = n & (CHUNK * 2 - 1);
	if (len > CHUNK)
		return 1;

	rec->offset = off;
	rec->len = len;
	rec->lost_before = 0;
	if (c->lost_pending) {
		u64 *lost = bpf_map_lookup_elem(&conn_lost, &c->lost_key);
		if (lost && *lost) {
			rec->lost_before = *lost;
		}
	}
	if (bpf_probe_read_user(rec->data, len, (void *)(c->buf + off))) {
		stat_add(ST_READ_USER_FAIL, 1);
		stat_add(ST_READ_USER_FAIL_BYTES, len);
		lose(&c->lost_key, len);
		c->lost_pending = true;
		return 0;
	}
	if (bpf_ringbuf_output(&events, rec, offsetof(struct ev_tls_data, data) + len, ring_flags(false))) {
		stat_add(ST_RB_FAIL_TLS, 1);
		stat_add(ST_RB_FAIL_TLS_BYTES, len);
		lose(&c->lost_key, len);
		c->lost_pending = true;
		return 0;
	}
	if (rec->lost_before) {
		/* Reported: subtract what we told user space about. */
		u64 *lost = bpf_map_lookup_elem(&conn_lost, &c->lost_key);
		if (lost)
			__sync_fetch_and_sub(lost, rec->lost_before);
	}
	c->lost_pending = false;
	stat_add(ST_TLS_CHUNKS, 1);
	stat_add(ST_TLS_BYTES, len);
	return 0;
}

/*
 * remember_fd records that conn uses fd (conn_fds) and that fd carries conn
 * (tls_socks). Both maps are LRU hashes, where an update allocates a new
 * element even for an unchanged value: on a connection that keeps its fd,
 * which is every call after the first, two lookups replace two updates.
 */
static __always_inline void remember_fd(u32 tgid, u64 conn, s32 fd)
{
	struct conn_key ck = { .conn = conn, .tgid = tgid };
	s32 *known = bpf_map_lookup_elem(&conn_fds, &ck);
	if (!known || *known != fd)
		bpf_map_update_elem(&conn_fds, &ck, &fd, BPF_ANY);
	struct fd_key fk = { .tgid = tgid, .fd = fd };
	u64 *owner = bpf_map_lookup_elem(&tls_socks, &fk);
	if (!owner || *owner != conn)
		bpf_map_update_elem(&tls_socks, &fk, &conn, BPF_ANY);
}

static __always_inline void emit_tls(u64 conn, u64 buf, u64 n, s32 fd, u8 dir, u8 lib, u8 fn)
{
	u32 zero = 0;
	struct ev_tls_data *rec = bpf_map_lookup_elem(&tls_scratch, &zero);
	if (!rec)
		return;
	fill_hdr(&rec->h, OISP_EV_TLS_DATA);
	stat_add(ST_TLS_CALLS, 1);

	u64 limit = max_call_bytes;
	if (limit > (u64)MAX_CHUNKS * CHUNK)
		limit = (u64)MAX_CHUNKS * CHUNK;

	struct emit_ctx c = {
		.rec = rec,
		.buf = buf,
		.total = n < limit ? n : limit,
	};
	c.lost_key.conn = conn;
	c.lost_key.tgid = rec->h.tgid;
	c.lost_key.dir = dir;
	c.lost_pending = bpf_map_lookup_elem(&conn_lost, &c.lost_key) != NULL;

	rec->conn = conn;
	rec->call_len = n;
	rec->fd = fd;
	rec->dir = dir;
	rec->lib = lib;
	rec->fn = fn;

	bpf_loop(MAX_CHUNKS, emit_chunk, &c, 0);

	if (n > c.total) {
		stat_add(ST_TLS_TRUNC_CALLS, 1);
		stat_add(ST_TLS_TRUNC_BYTES, n - c.total);
		lose(&c.lost_key, n - c.total);
	}
	if (fd >= 0)
		remember_fd(rec->h.tgid, conn, fd);
}

static __always_inline s32 known_fd(u64 conn, u32 tgid)
{
	struct conn_key ck = { .conn = conn, .tgid = tgid };
	s32 *fd = bpf_map_lookup_elem(&conn_fds, &ck);
	return fd ? *fd : -1;
}

static __always_inline void note_bind_wait(u32 tid, u64 conn, u64 n)
{
	u64 now = bpf_ktime_get_ns();
	struct bind_wait *w = bpf_map_lookup_elem(&bind_waits, &tid);
	if (w && w->conn == conn && now - w->ts < BIND_WINDOW_NS) {
		w->plain += n;
		w->calls++;
		return;
	}
	struct bind_wait nw = { .conn = conn, .ts = now, .plain = n, .calls = 1 };
	bpf_map_update_elem(&bind_waits, &tid, &nw, BPF_ANY);
}

/*
 * store_call saves a call in progress in its thread's (goroutine's) slot.
 * An LRU hash update allocates a new element even when the key exists, and
 * a delete is another round through the LRU lists, so a slot is
 * overwritten in place and released by clearing fn (0: no call) rather
 * than deleted. Only the owning thread touches its slot.
 */
static __always_inline void store_call(void *map, void *key, struct tls_call *c)
{
	struct tls_call *slot = bpf_map_lookup_elem(map, key);
	if (slot) {
		*slot = *c;
		return;
	}
	bpf_map_update_elem(map, key, c, BPF_ANY);
}

/* ---- OpenSSL / GnuTLS (C ABI) ---- */

/* The TLS object is freed: its flow ends even when no fd was ever seen
 * (memory-BIO users like Node), and a reused pointer starts a new flow. */
static __always_inline void tls_freed(u32 tgid, u64 conn)
{
	struct conn_key ck = { .conn = conn, .tgid = tgid };
	s32 *fdp = bpf_map_lookup_elem(&conn_fds, &ck);
	s32 fd = fdp ? *fdp : -1;
	if (fd >= 0) {
		struct fd_key fk = { .tgid = tgid, .fd = fd };
		bpf_map_delete_elem(&tls_socks, &fk);
	}
	bpf_map_delete_elem(&conn_fds, &ck);
	struct ev_sock_close e = {};
	fill_hdr(&e.h, OISP_EV_SOCK_CLOSE);
	e.conn = conn;
	e.fd = fd;
	e.pad = 1; /* freed, not closed through its fd */
	emit_sys(&e, sizeof(e));
}

static __always_inline int do_tls_enter(struct pt_regs *ctx, void *conn, void *buf, u64 len, void *out)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!want_tgid(id >> 32))
		return 0;
	u32 tid = (u32)id;
	u32 fn = (u32)bpf_get_attach_cookie(ctx);
	if (fn == FN_SSL_FREE || fn == FN_GNUTLS_DEINIT) {
		tls_freed(id >> 32, (u64)conn);
		return 0;
	}
	struct tls_call call = {
		.conn = (u64)conn,
		.buf = (u64)buf,
		.len_or_out = len,
		.fd = -1,
		.fn = fn,
	};
	if (call.fn == FN_SSL_WRITE_EX || call.fn == FN_SSL_READ_EX ||
	    call.fn == FN_SSL_WRITE_INT || call.fn == FN_SSL_READ_INT)
		call.len_or_out = (u64)out;
	store_call(&tls_calls, &tid, &call);
	return 0;
}

static __always_inline int do_tls_return(struct pt_regs *ctx, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct tls_call *call = bpf_map_lookup_elem(&tls_calls, &tid);
	if (!call || !call->fn) {
		if (want_tgid(id >> 32))
			stat_add(ST_RET_WITHOUT_ENTRY, 1);
		return 0;
	}
	struct tls_call c = *call;
	call->fn = 0;

	u64 n = 0;
	switch (c.fn) {
	case FN_SSL_WRITE:
	case FN_SSL_READ:
		if ((int)ret > 0)
			n = (u64)(int)ret;
		break;
	case FN_SSL_WRITE_EX:
	case FN_SSL_READ_EX:
		if ((int)ret == 1)
			bpf_probe_read_user(&n, sizeof(n), (void *)c.len_or_out);
		break;
	case FN_SSL_WRITE_INT:
	case FN_SSL_READ_INT:
		if ((int)ret > 0)
			bpf_probe_read_user(&n, sizeof(n), (void *)c.len_or_out);
		break;
	case FN_GNUTLS_SEND:
	case FN_GNUTLS_RECV:
		if (ret > 0)
			n = (u64)ret;
		break;
	default:
		return 0;
	}
	if (!n)
		return 0;
	u8 dir = (c.fn == FN_SSL_READ || c.fn == FN_SSL_READ_EX || c.fn == FN_SSL_READ_INT ||
		  c.fn == FN_GNUTLS_RECV) ? 1 : 0;
	u8 lib = (c.fn == FN_GNUTLS_SEND || c.fn == FN_GNUTLS_RECV) ? LIB_GNUTLS : LIB_OPENSSL;
	s32 fd = c.fd >= 0 ? c.fd : known_fd(c.conn, id >> 32);
	emit_tls(c.conn, c.buf, n, fd, dir, lib, (u8)c.fn);
	if (fd < 0 && dir == 0)
		note_bind_wait(tid, c.conn, n);
	return 0;
}

/* ---- Go crypto/tls (register ABI, amd64) ---- */

/*
 * go_conn_fd follows tls.Conn.conn (an interface: itab, data) to a
 * *net.TCPConn, its *netFD and poll.FD.Sysfd. The result is only trusted
 * when it names a socket of this process.
 */
static __always_inline s32 go_conn_fd(u64 conn)
{
	u64 data = 0, netfd = 0;
	s64 sysfd = -1;
	if (bpf_probe_read_user(&data, sizeof(data), (void *)(conn + 8)) || !data)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)data) || !netfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + 16)))
		return -1;
	if (sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	if (!fd_is_socket((s32)sysfd))
		return -1;
	return (s32)sysfd;
}

static __always_inline int do_go_write(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!want_tgid(id >> 32))
		return 0;
	u64 conn = ctx->ax, buf = ctx->bx, len = ctx->cx;
	if (!len)
		return 0;
	s32 fd = known_fd(conn, id >> 32);
	if (fd < 0)
		fd = go_conn_fd(conn);
	emit_tls(conn, buf, len, fd, 0, LIB_GO, FN_GO_WRITE);
	return 0;
}

static __always_inline int do_go_read_enter(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!want_tgid(id >> 32))
		return 0;
	struct go_key k = { .g = ctx->r14, .tgid = id >> 32 };
	struct tls_call c = {
		.conn = ctx->ax,
		.buf = ctx->bx,
		.len_or_out = ctx->cx,
		.fd = -1,
		.fn = FN_GO_READ,
	};
	store_call(&go_reads, &k, &c);
	return 0;
}

static __always_inline int do_go_read_ret(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct go_key k = { .g = ctx->r14, .tgid = id >> 32 };
	struct tls_call *p = bpf_map_lookup_elem(&go_reads, &k);
	if (!p || !p->fn)
		return 0;
	struct tls_call c = *p;
	p->fn = 0;
	s64 n = (s64)ctx->ax;
	if (n <= 0)
		return 0;
	if ((u64)n > c.len_or_out)
		n = c.len_or_out;
	s32 fd = known_fd(c.conn, id >> 32);
	if (fd < 0)
		fd = go_conn_fd(c.conn);
	emit_tls(c.conn, c.buf, n, fd, 1, LIB_GO, FN_GO_READ);
	return 0;
}

/*
 * do_go_read_copy runs on the CALL runtime.memmove inside (*Conn).Read
 * that copies decrypted plaintext from c.input into the caller's buffer
 * (AX = destination, BX = source, CX = bytes), when the loader found exactly
 * one such call. It replaces the uprobes on every RET: x86 uprobes emulate
 * a CALL (about 1 µs a hit on our VMs) but single-step a RET (6-7 µs). The
 * bytes are the ones Read returns, read from the source before the copy.
 * The destination must lie inside the buffer the entry probe saw, so any
 * other memmove that a future Go version compiles into Read is ignored.
 * A Read copies at most once, so the slot is released here.
 */
static __always_inline int do_go_read_copy(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct go_key k = { .g = ctx->r14, .tgid = id >> 32 };
	struct tls_call *p = bpf_map_lookup_elem(&go_reads, &k);
	if (!p || !p->fn)
		return 0;
	u64 dst = ctx->ax, src = ctx->bx, n = ctx->cx;
	if (!n || dst < p->buf || n > p->len_or_out || dst - p->buf > p->len_or_out - n)
		return 0;
	u64 conn = p->conn;
	p->fn = 0;
	s32 fd = known_fd(conn, id >> 32);
	if (fd < 0)
		fd = go_conn_fd(conn);
	emit_tls(conn, src, n, fd, 1, LIB_GO, FN_GO_READ);
	return 0;
}

/*
 * Every uprobe program exists twice: attached one probe per link ("uprobe")
 * and many probes per link ("uprobe.multi", Linux >= 6.6). Multi links
 * detach in one RCU grace period instead of one per probe, which turns a
 * multi-second shutdown into milliseconds.
 */
SEC("uprobe")
int BPF_KPROBE(tls_enter, void *conn, void *buf, u64 len, void *out)
{
	return do_tls_enter(ctx, conn, buf, len, out);
}

SEC("uprobe.multi")
int BPF_KPROBE(tls_enter_multi, void *conn, void *buf, u64 len, void *out)
{
	return do_tls_enter(ctx, conn, buf, len, out);
}

SEC("uretprobe")
int BPF_KRETPROBE(tls_return, long ret)
{
	return do_tls_return(ctx, ret);
}

SEC("uretprobe.multi")
int BPF_KRETPROBE(tls_return_multi, long ret)
{
	return do_tls_return(ctx, ret);
}

SEC("uprobe")
int go_write(struct pt_regs *ctx) { return do_go_write(ctx); }

SEC("uprobe.multi")
int go_write_multi(struct pt_regs *ctx) { return do_go_write(ctx); }

SEC("uprobe")
int go_read_enter(struct pt_regs *ctx) { return do_go_read_enter(ctx); }

SEC("uprobe.multi")
int go_read_enter_multi(struct pt_regs *ctx) { return do_go_read_enter(ctx); }

SEC("uprobe")
int go_read_copy(struct pt_regs *ctx) { return do_go_read_copy(ctx); }

SEC("uprobe.multi")
int go_read_copy_multi(struct pt_regs *ctx) { return do_go_read_copy(ctx); }

SEC("uprobe")
int go_read_ret(struct pt_regs *ctx) { return do_go_read_ret(ctx); }

SEC("uprobe.multi")
int go_read_ret_multi(struct pt_regs *ctx) { return do_go_read_ret(ctx); }

/* ---- processes ---- */

SEC("raw_tracepoint/sched_process_exec")
int on_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	u32 tgid = BPF_CORE_READ(task, tgid);
	if (tgid == self_tgid)
		return 0;

	struct file *exe = BPF_CORE_READ(bprm, file);
	struct inode_key ik = {
		.ino = BPF_CORE_READ(exe, f_inode, i_ino),
		.dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev),
	};
	if (filter_mode && bpf_map_lookup_elem(&target_exes, &ik)) {
		u8 one = 1;
		bpf_map_update_elem(&traced, &tgid, &one, BPF_ANY);
	}
	if (!want_tgid(tgid))
		return 0;
	if (!(sys_events & (SYS_EXEC | SYS_LIBS)))
		return 0;

	u32 zero = 0;
	struct ev_exec *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return 0;
	fill_hdr(&e->h, OISP_EV_EXEC);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->exe_ino = ik.ino;
	e->exe_dev = ik.dev;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	const char *fname = BPF_CORE_READ(bprm, filename);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), fname);

	unsigned long as = BPF_CORE_READ(task, mm, arg_start);
	unsigned long ae = BPF_CORE_READ(task, mm, arg_end);
	u64 alen = ae > as ? ae - as : 0;
	if (alen > ARGS_MAX - 1)
		alen = ARGS_MAX - 1;
	alen &= ARGS_MAX - 1;
	e->args_len = 0;
	if (alen && !bpf_probe_read_user(e->args, alen, (void *)as))
		e->args_len = alen;

	struct path ep = BPF_CORE_READ(exe, f_path);
	e->exe_len = walk_path(&ep, e->exe);
	struct path cp = BPF_CORE_READ(task, fs, pwd);
	e->cwd_len = walk_path(&cp, e->cwd);

	/* The executable's own inode counts as seen for library discovery. */
	if (sys_events & SYS_LIBS) {
		struct inode_key sk = ik;
		if (attach_per_pid)
			sk.tgid = tgid;
		u8 one = 1;
		bpf_map_update_elem(&seen_inodes, &sk, &one, BPF_ANY);
	}
	emit_sys_flags(e, sizeof(*e), true);
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int on_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	u32 ptgid = BPF_CORE_READ(parent, tgid);
	u32 cpid = BPF_CORE_READ(child, pid);
	u32 ctgid = BPF_CORE_READ(child, tgid);
	if (cpid != ctgid)
		return 0; /* a new thread, not a process */
	/* Children of the sensor are followed when the sensor's pid is in the
	 * traced set (tests do this); the sensor itself is never reported. */
	if (filter_mode && bpf_map_lookup_elem(&traced, &ptgid)) {
		u8 one = 1;
		bpf_map_update_elem(&traced, &ctgid, &one, BPF_ANY);
	}
	if (!want_tgid(ptgid) || !(sys_events & SYS_EXEC))
		return 0;
	struct ev_fork f = {};
	fill_hdr(&f.h, OISP_EV_FORK);
	f.h.tgid = ptgid;
	f.child_tgid = ctgid;
	emit_sys(&f, sizeof(f));
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int on_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	u32 pid = BPF_CORE_READ(task, pid);
	u32 tgid = BPF_CORE_READ(task, tgid);
	if (pid != tgid)
		return 0; /* a thread; the process exits with its leader */
	bool wanted = want_tgid(tgid);
	if (filter_mode)
		bpf_map_delete_elem(&traced, &tgid);
	if (!wanted || !(sys_events & SYS_EXIT))
		return 0;
	struct ev_exit e = {};
	fill_hdr(&e.h, OISP_EV_EXIT);
	int code = BPF_CORE_READ(task, exit_code);
	e.exit_code = (code >> 8) & 0xff;
	e.signal = code & 0x7f;
	e.start_ns = BPF_CORE_READ(task, start_time);
	emit_sys(&e, sizeof(e));
	return 0;
}

/* ---- syscalls ---- */

#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_close 3
#define NR_mmap 9
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_dup2 33
#define NR_connect 42
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_creat 85
#define NR_openat 257
#define NR_dup3 292
#define NR_pwritev 296
#define NR_pwritev2 328

#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000
#define FMODE_CREATED 0x100000
#define PROT_EXEC 4
#define AF_INET 2
#define AF_INET6 10

static __always_inline void note_tls_fd(u32 tid, s32 fd)
{
	struct tls_call *c = bpf_map_lookup_elem(&tls_calls, &tid);
	if (!c || !c->fn || c->fd >= 0)
		return;
	if (fd_is_socket(fd))
		c->fd = fd;
}

#define BIND_MAX_IOV 8

/* iov_bytes sums the lengths of an iovec array (first BIND_MAX_IOV entries;
 * more means "too big to judge" and returns 0). */
static __always_inline u64 iov_bytes(u64 iov, u64 cnt)
{
	if (cnt == 0 || cnt > BIND_MAX_IOV)
		return 0;
	u64 total = 0;
#pragma unroll
	for (int i = 0; i < BIND_MAX_IOV; i++) {
		if (i >= cnt)
			break;
		u64 len = 0;
		if (bpf_probe_read_user(&len, sizeof(len), (void *)(iov + i * 16 + 8)))
			return 0;
		total += len;
	}
	return total;
}

/*
 * try_bind: a socket write on a thread with a pending memory-BIO SSL write
 * binds that connection to the socket when the write's size is what the
 * plaintext becomes once encrypted: never less, and at most a TLS record's
 * overhead per SSL call and per 16 KiB, plus room for a handshake message
 * sent along (Node sends its Finished with the first request).
 */
static __always_inline void try_bind(u32 tid, u32 tgid, s32 fd, long nr, u64 a1, u64 a2)
{
	struct bind_wait *w = bpf_map_lookup_elem(&bind_waits, &tid);
	if (!w)
		return;
	if (bpf_ktime_get_ns() - w->ts >= BIND_WINDOW_NS) {
		bpf_map_delete_elem(&bind_waits, &tid);
		return;
	}
	if (!fd_is_socket(fd))
		return;
	u64 size = 0;
	if (nr == NR_write || nr == NR_sendto) {
		size = a2;
	} else if (nr == NR_writev) {
		size = iov_bytes(a1, a2);
	} else { /* sendmsg: struct msghdr { name, namelen, iov, iovlen, ... } */
		u64 msg = a1, iov = 0, cnt = 0;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(msg + 16)) ||
		    bpf_probe_read_user(&cnt, sizeof(cnt), (void *)(msg + 24)))
			return;
		size = iov_bytes(iov, cnt);
	}
	u64 plain = w->plain;
	u64 slack = 512 + 64 * ((u64)w->calls + plain / 16384 + 1);
	if (size < plain || size > plain + slack)
		return; /* another socket's bytes: keep waiting */
	struct conn_key ck = { .conn = w->conn, .tgid = tgid };
	bpf_map_update_elem(&conn_fds, &ck, &fd, BPF_ANY);
	struct fd_key fk = { .tgid = tgid, .fd = fd };
	bpf_map_update_elem(&tls_socks, &fk, &w->conn, BPF_ANY);
	struct ev_sock_close e = {};
	fill_hdr(&e.h, OISP_EV_TLS_BIND);
	e.conn = w->conn;
	e.fd = fd;
	bpf_map_delete_elem(&bind_waits, &tid);
	emit_sys(&e, sizeof(e));
	stat_add(ST_TLS_BINDS, 1);
}

static __always_inline void on_connect_enter(u32 tid, s32 fd, u64 uaddr)
{
	struct connect_call c = { .ts = bpf_ktime_get_ns(), .fd = fd };
	u16 family = 0;
	if (bpf_probe_read_user(&family, sizeof(family), (void *)uaddr))
		return;
	if (family == AF_INET) {
		struct oisp_sockaddr_in sa;
		if (bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr))
			return;
		c.family = family;
		c.port = __builtin_bswap16(sa.port);
		__builtin_memcpy(c.addr, sa.addr, 4);
	} else if (family == AF_INET6) {
		struct oisp_sockaddr_in6 sa;
		if (bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr))
			return;
		c.family = family;
		c.port = __builtin_bswap16(sa.port);
		__builtin_memcpy(c.addr, sa.addr, 16);
	} else {
		return;
	}
	bpf_map_update_elem(&connect_calls, &tid, &c, BPF_ANY);
}

static __always_inline void emit_file(u32 type, struct file *f, s32 fd, u32 flags, u64 bytes)
{
	u32 zero = 0;
	struct ev_file *e = bpf_map_lookup_elem(&file_scratch, &zero);
	if (!e)
		return;
	fill_hdr(&e->h, type);
	e->file = (u64)f;
	e->bytes = bytes;
	e->fd = fd;
	e->flags = flags;
	e->ino = BPF_CORE_READ(f, f_inode, i_ino);
	e->created = (BPF_CORE_READ(f, f_mode) & FMODE_CREATED) ? 1 : 0;
	struct path p = BPF_CORE_READ(f, f_path);
	e->path_len = walk_path(&p, e->path);
	u64 size = offsetof(struct ev_file, path) + (e->path_len & 8191);
	if (size > sizeof(*e))
		size = sizeof(*e);
	emit_sys(e, size);
}

static __always_inline void on_close_enter(u32 tgid, s32 fd)
{
	struct fd_key fk = { .tgid = tgid, .fd = fd };
	u64 *conn = bpf_map_lookup_elem(&tls_socks, &fk);
	if (conn) {
		struct ev_sock_close e = {};
		fill_hdr(&e.h, OISP_EV_SOCK_CLOSE);
		e.conn = *conn;
		e.fd = fd;
		struct conn_key ck = { .conn = *conn, .tgid = tgid };
		bpf_map_delete_elem(&conn_fds, &ck);
		bpf_map_delete_elem(&tls_socks, &fk);
		emit_sys(&e, sizeof(e));
	}
	if (!(sys_events & SYS_FILES))
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = fd_file(task, fd);
	if (!f)
		return;
	u64 key = (u64)f;
	struct tracked_file *tf = bpf_map_lookup_elem(&tracked_files, &key);
	if (!tf || !file_last_ref(f))
		return;
	u64 bytes = tf->bytes;
	u32 flags = tf->flags;
	bpf_map_delete_elem(&tracked_files, &key);
	emit_file(OISP_EV_FILE_CLOSE, f, fd, flags, bytes);
}

static __always_inline void on_write_enter(u32 tid, s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = fd_file(task, fd);
	if (!f)
		return;
	u64 key = (u64)f;
	if (!bpf_map_lookup_elem(&tracked_files, &key))
		return;
	bpf_map_update_elem(&write_calls, &tid, &key, BPF_ANY);
}

static __always_inline void on_mmap_enter(u32 tgid, u64 prot, s32 fd)
{
	if (!(prot & PROT_EXEC) || fd < 0)
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = fd_file(task, fd);
	if (!f)
		return;
	struct inode_key k = {
		.ino = BPF_CORE_READ(f, f_inode, i_ino),
		.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev),
	};
	if (attach_per_pid)
		k.tgid = tgid;
	if (bpf_map_lookup_elem(&seen_inodes, &k))
		return;
	u8 one = 1;
	bpf_map_update_elem(&seen_inodes, &k, &one, BPF_ANY);

	u32 zero = 0;
	/* The file scratch record is big enough to carry a library path. */
	struct ev_file *scratch = bpf_map_lookup_elem(&file_scratch, &zero);
	if (!scratch)
		return;
	struct ev_lib_map *e = (void *)scratch;
	fill_hdr(&e->h, OISP_EV_LIB_MAP);
	e->ino = k.ino;
	e->dev = k.dev;
	struct path p = BPF_CORE_READ(f, f_path);
	e->path_len = walk_path(&p, e->path);
	u64 size = offsetof(struct ev_lib_map, path) + (e->path_len & 8191);
	if (size > sizeof(*e))
		size = sizeof(*e);
	emit_sys_flags(e, size, true);
}

/*
 * Syscall hooks. The same handlers run two ways. Where tracefs is mounted,
 * per-syscall tracepoints (syscalls/sys_enter_<name>, sys_exit_<name>) are
 * attached for exactly the syscalls below (the loader's list must match), so
 * every other syscall of the machine costs only the kernel's tracing entry
 * path. Without tracefs, the raw sys_enter/sys_exit tracepoints run for
 * every syscall of every process and filter by number here: about 100 ns
 * more per syscall, machine-wide.
 */

/* The record syscall tracepoints hand their programs (the format files
 * under events/syscalls/). */
struct sys_enter_rec {
	u64 common;
	s32 nr;
	u32 pad;
	u64 args[6];
};

struct sys_exit_rec {
	u64 common;
	s32 nr;
	u32 pad;
	s64 ret;
};

static __always_inline bool sys_enter_wanted(long nr)
{
	switch (nr) {
	case NR_read: case NR_write: case NR_open: case NR_close: case NR_mmap:
	case NR_pwrite64: case NR_readv: case NR_writev: case NR_connect:
	case NR_sendto: case NR_recvfrom: case NR_sendmsg: case NR_recvmsg:
	case NR_creat: case NR_openat: case NR_pwritev: case NR_pwritev2:
	case NR_dup2: case NR_dup3:
		return true;
	}
	return false;
}

static __always_inline bool sys_exit_wanted(long nr)
{
	switch (nr) {
	case NR_write: case NR_pwrite64: case NR_writev: case NR_pwritev: case NR_pwritev2:
	case NR_connect: case NR_open: case NR_creat: case NR_openat:
		return true;
	}
	return false;
}

/* sys_enter_common handles a wanted syscall's entry: a0..a4 are its first
 * arguments (a3 is never needed). */
static __always_inline void sys_enter_common(long nr, u64 a0, u64 a1, u64 a2, u64 a4)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	if (!want_tgid(tgid))
		return;
	s32 fd = (s32)a0;

	switch (nr) {
	case NR_read: case NR_readv: case NR_recvfrom: case NR_recvmsg:
		note_tls_fd(tid, fd);
		break;
	case NR_sendto: case NR_sendmsg:
		note_tls_fd(tid, fd);
		try_bind(tid, tgid, fd, nr, a1, a2);
		break;
	case NR_write: case NR_writev: case NR_pwrite64: case NR_pwritev: case NR_pwritev2:
		note_tls_fd(tid, fd);
		if (nr == NR_write || nr == NR_writev)
			try_bind(tid, tgid, fd, nr, a1, a2);
		if (sys_events & SYS_FILES)
			on_write_enter(tid, fd);
		break;
	case NR_close:
		on_close_enter(tgid, fd);
		break;
	case NR_dup2: case NR_dup3: {
		/* dup2(old, new) closes new first; a no-op when old == new. */
		s32 newfd = (s32)a1;
		if (newfd != fd)
			on_close_enter(tgid, newfd);
		break;
	}
	case NR_connect:
		if (sys_events & SYS_CONNECT)
			on_connect_enter(tid, fd, a1);
		break;
	case NR_open: case NR_creat: case NR_openat: {
		if (!(sys_events & SYS_FILES))
			break;
		u32 flags;
		if (nr == NR_openat)
			flags = (u32)a2;
		else if (nr == NR_open)
			flags = (u32)a1;
		else
			flags = 01 | O_CREAT | O_TRUNC; /* creat() */
		if ((flags & O_ACCMODE) == 0)
			break; /* read-only */
		bpf_map_update_elem(&open_calls, &tid, &flags, BPF_ANY);
		break;
	}
	case NR_mmap:
		if (sys_events & SYS_LIBS)
			on_mmap_enter(tgid, a2, (s32)a4);
		break;
	}
}

/* sys_exit_common handles a wanted syscall's return. */
static __always_inline void sys_exit_common(long nr, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;

	switch (nr) {
	case NR_write: case NR_pwrite64: case NR_writev: case NR_pwritev: case NR_pwritev2: {
		u64 *key = bpf_map_lookup_elem(&write_calls, &tid);
		if (!key)
			break;
		u64 k = *key;
		bpf_map_delete_elem(&write_calls, &tid);
		if (ret <= 0)
			break;
		struct tracked_file *tf = bpf_map_lookup_elem(&tracked_files, &k);
		if (tf) {
			__sync_fetch_and_add(&tf->bytes, (u64)ret);
			stat_add(ST_FILE_WRITE_BYTES, ret);
		}
		break;
	}
	case NR_connect: {
		struct connect_call *c = bpf_map_lookup_elem(&connect_calls, &tid);
		if (!c)
			break;
		struct ev_connect e = {};
		fill_hdr(&e.h, OISP_EV_CONNECT);
		e.fd = c->fd;
		e.ret = (s32)ret;
		e.family = c->family;
		e.port = c->port;
		__builtin_memcpy(e.addr, c->addr, 16);
		e.latency_ns = e.h.ts - c->ts;
		bpf_map_delete_elem(&connect_calls, &tid);
		emit_sys(&e, sizeof(e));
		break;
	}
	default: { /* open family */
		u32 *flags = bpf_map_lookup_elem(&open_calls, &tid);
		if (!flags)
			break;
		u32 fl = *flags;
		bpf_map_delete_elem(&open_calls, &tid);
		if (ret < 0)
			break;
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct file *f = fd_file(task, (s32)ret);
		if (!f || (file_mode(f) & S_IFMT) != S_IFREG)
			break;
		u64 key = (u64)f;
		struct tracked_file tf = { .tgid = tgid, .flags = fl };
		if (bpf_map_update_elem(&tracked_files, &key, &tf, BPF_ANY)) {
			stat_add(ST_TRACKED_FILES_FULL, 1);
			break;
		}
		emit_file(OISP_EV_FILE_OPEN, f, (s32)ret, fl, 0);
		break;
	}
	}
}

/* One entry program per number of arguments read: the kernel refuses to
 * attach a program that may read past the end of a tracepoint's record, and
 * each syscall's record holds only its own arguments. Attached only where
 * wanted; the check keeps a wrong attach list from doing harm. */
SEC("tracepoint/syscalls/sys_enter_1")
int on_sys_enter_tp1(struct sys_enter_rec *ctx)
{
	long nr = ctx->nr;
	if (sys_enter_wanted(nr))
		sys_enter_common(nr, ctx->args[0], 0, 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_2")
int on_sys_enter_tp2(struct sys_enter_rec *ctx)
{
	long nr = ctx->nr;
	if (sys_enter_wanted(nr))
		sys_enter_common(nr, ctx->args[0], ctx->args[1], 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_3")
int on_sys_enter_tp3(struct sys_enter_rec *ctx)
{
	long nr = ctx->nr;
	if (sys_enter_wanted(nr))
		sys_enter_common(nr, ctx->args[0], ctx->args[1], ctx->args[2], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_5")
int on_sys_enter_tp5(struct sys_enter_rec *ctx)
{
	long nr = ctx->nr;
	if (sys_enter_wanted(nr))
		sys_enter_common(nr, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[4]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit")
int on_sys_exit_tp(struct sys_exit_rec *ctx)
{
	long nr = ctx->nr;
	if (!sys_exit_wanted(nr))
		return 0;
	sys_exit_common(nr, ctx->ret);
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int on_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	long nr = (long)ctx->args[1];
	if (!sys_enter_wanted(nr))
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	sys_enter_common(nr, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
			 PT_REGS_PARM3_CORE_SYSCALL(regs), PT_REGS_PARM5_CORE_SYSCALL(regs));
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int on_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = BPF_CORE_READ(regs, orig_ax);
	if (!sys_exit_wanted(nr))
		return 0;
	sys_exit_common(nr, (long)ctx->args[1]);
	return 0;
}
