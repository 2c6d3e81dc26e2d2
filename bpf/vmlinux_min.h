/* Minimal kernel type definitions for CO-RE: only the types and fields tlstap
 * reads. preserve_access_index makes every field access relocatable, so the
 * running kernel's BTF decides the real offsets. Not generated: kept small on
 * purpose and committed. */
#ifndef TLSTAP_VMLINUX_MIN_H
#define TLSTAP_VMLINUX_MIN_H
/* Tells bpf_tracing.h to use the kernel's pt_regs field names. */
#define __VMLINUX_H__

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
typedef int pid_t;
typedef u32 dev_t; /* the kernel's: major << 20 | minor */
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_CGROUP_ARRAY = 8,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_F_NO_PREALLOC = 1,
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_RB_AVAIL_DATA = 0,
	BPF_RB_PROD_POS = 3,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	long unsigned int r15;
	long unsigned int r14;
	long unsigned int r13;
	long unsigned int r12;
	long unsigned int bp;
	long unsigned int bx;
	long unsigned int r11;
	long unsigned int r10;
	long unsigned int r9;
	long unsigned int r8;
	long unsigned int ax;
	long unsigned int cx;
	long unsigned int dx;
	long unsigned int si;
	long unsigned int di;
	long unsigned int orig_ax;
	long unsigned int ip;
	long unsigned int cs;
	long unsigned int flags;
	long unsigned int sp;
	long unsigned int ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
struct pt_regs {
	union {
		struct user_pt_regs user_regs;
		struct {
			u64 regs[31];
			u64 sp;
			u64 pc;
			u64 pstate;
		};
	};
};
#else
#error "tlstap: unsupported target architecture"
#endif

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be16 u6_addr16[8];
		__be32 u6_addr32[4];
	} in6_u;
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	short unsigned int skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
};

/* fd -> struct sock, for libraries whose connection object holds an fd (Go) */
struct file {
	void *private_data;
	struct inode *f_inode;
};

struct super_block {
	dev_t s_dev;
};

struct inode {
	unsigned short i_mode;
	long unsigned int i_ino;
	struct super_block *i_sb;
};

/* An inode's change time, by kernel version (CO-RE picks the one present). */
struct timespec64 {
	s64 tv_sec;
	long int tv_nsec;
};

struct inode___ctime_fields { /* 6.11+ */
	s64 i_ctime_sec;
	u32 i_ctime_nsec;
};

struct inode___ctime_private { /* 6.6-6.10 */
	struct timespec64 __i_ctime;
};

struct inode___ctime_timespec { /* before 6.6 */
	struct timespec64 i_ctime;
};

/* A mapping of a process, as bpf_find_vma hands it to its callback. */
struct vm_area_struct {
	struct file *vm_file;
};

struct socket {
	struct sock *sk;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

#if defined(__TARGET_ARCH_x86)
/* The user thread pointer (FS base): Go before 1.17 keeps g in thread-local storage. */
struct thread_struct {
	long unsigned int fsbase;
};
#endif

/* The uprobes' page of a process: its first slot is the trampoline a
 * uretprobe puts in place of the return address. */
struct xol_area {
	long unsigned int vaddr;
};

struct uprobes_state {
	struct xol_area *xol_area;
};

struct mm_struct {
	struct uprobes_state uprobes_state;
	struct file *exe_file; /* the image of the latest exec */
	/* The auxiliary vector of the latest exec, (type, value) pairs; only its
	 * offset is used, the length is the kernel's. */
	long unsigned int saved_auxv[2];
};

typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
};

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

struct nsproxy {
	struct net *net_ns;
};

struct task_struct {
	pid_t pid; /* the thread's */
	pid_t tgid;
	struct mm_struct *mm;
	struct nsproxy *nsproxy;
	struct signal_struct *signal;
	struct files_struct *files;
	struct task_struct *group_leader;
	char comm[16];
#if defined(__TARGET_ARCH_x86)
	struct thread_struct thread;
#endif
};

struct kernfs_node {
	u64 id;
};

struct cgroup_root {
	int hierarchy_id; /* 0 is cgroup v2's */
};

struct cgroup {
	struct kernfs_node *kn;
	struct cgroup_root *root;
};

struct trace_entry {
	short unsigned int type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

struct trace_event_raw_sock_msg_length {
	struct trace_entry ent;
	void *sk;
	__u16 family;
	__u16 protocol;
	int ret;
	int flags;
};

struct trace_event_raw_inet_sock_set_state {
	struct trace_entry ent;
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
};

struct trace_event_raw_sched_process_exec {
	struct trace_entry ent;
	u32 __data_loc_filename;
	pid_t pid;
	pid_t old_pid;
};

struct trace_event_raw_sched_process_template {
	struct trace_entry ent;
	char comm[16];
	pid_t pid;
	int prio;
};

struct trace_event_raw_cgroup {
	struct trace_entry ent;
	int root; /* the hierarchy's id: 0 is cgroup v2's */
	int level;
	u64 id;
	u32 __data_loc_path;
};

#pragma clang attribute pop

#endif /* TLSTAP_VMLINUX_MIN_H */
