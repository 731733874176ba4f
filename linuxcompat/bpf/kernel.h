/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * kernel.h: the few kernel types the OISP programs read, declared by hand.
 *
 * Every struct carries preserve_access_index, so clang emits CO-RE
 * relocations and libbpf-compatible loaders (cilium/ebpf) fix the field
 * offsets against the running kernel's BTF. Only fields we read are listed;
 * their order and the padding do not matter.
 */
#ifndef OISP_KERNEL_H
#define OISP_KERNEL_H

/* bpf_tracing.h picks the kernel pt_regs field names (di, si, ...) when this
 * is defined, which is what our own struct pt_regs below uses. */
#define __VMLINUX_H__ 1

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed int s32;
typedef signed long long s64;
typedef int pid_t;
typedef unsigned int umode_t_;
typedef _Bool bool;
#define true 1
#define false 0

#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct qstr {
	u32 len;
	const unsigned char *name;
};

struct super_block {
	u32 s_dev;
};

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
	struct super_block *i_sb;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
};

struct vfsmount {
	struct dentry *mnt_root;
};

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

typedef struct {
	s64 counter;
} atomic_long_t;

typedef struct {
	s64 counter;
} atomic64_t;

typedef struct {
	atomic64_t refcnt;
} file_ref_t;

/* Kernels >= 6.13: struct file counts references in f_ref (one ref == 0). */
struct file {
	struct inode *f_inode;
	struct path f_path;
	unsigned int f_mode;
	unsigned int f_flags;
	file_ref_t f_ref;
};

/* Older kernels: f_count (one ref == 1). The ___old suffix is a CO-RE flavor. */
struct file___old {
	atomic_long_t f_count;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path pwd;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

typedef struct {
	u32 val;
} kuid_t;

struct cred {
	kuid_t uid;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	int exit_code;
	u64 start_time;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct mm_struct *mm;
	struct fs_struct *fs;
	struct files_struct *files;
	const struct cred *cred;
};

struct linux_binprm {
	struct file *file;
	const char *filename;
};

#pragma clang attribute pop

/* User-space socket address layouts (uapi, not CO-RE). */
struct oisp_sockaddr_in {
	u16 family;
	u16 port;
	u8 addr[4];
	u8 zero[8];
};

struct oisp_sockaddr_in6 {
	u16 family;
	u16 port;
	u32 flowinfo;
	u8 addr[16];
	u32 scope_id;
};

#endif
