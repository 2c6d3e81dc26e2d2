/* Maps and helpers shared by every tlstap BPF object. The objects are linked
 * into one by `bpftool gen object`; definitions here are __weak so each file
 * can include them and the linker keeps a single copy. */
#ifndef TLSTAP_COMMON_BPF_H
#define TLSTAP_COMMON_BPF_H

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "events.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/* Filters, set by user space before load. */
const volatile bool filter_by_pid __weak = false;
const volatile bool filter_by_comm __weak = false;
const volatile bool filter_by_cgroup __weak = false;
const volatile bool filter_by_netns __weak = false;
/* Entries of cgroup_filter in use. Not read-only: user space adds a --pod or
 * --container cgroup once the workload starts, then counts it here. */
volatile __u32 cgroup_filter_count __weak = 0;
/* Bytes produced between wake-ups of the consumer, a power of two (it also polls on a timer). */
const volatile __u64 wakeup_batch_bytes __weak = 256 << 10;

/* Plaintext chunks; sized by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} data_events SEC(".maps") __weak;

/* Process and library events: separate so a data flood cannot hide an exec. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} control_events SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TLSTAP_DROP_REASON_MAX);
	__type(key, u32);
	__type(value, struct tlstap_drop_counter);
} drop_counters SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, u8);
} pid_filter SEC(".maps") __weak;

/* --cgroup: cgroup v2 directories (their fds, held by the map); a process in
 * one of them or below is traced. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, TLSTAP_CGROUP_FILTER_MAX);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} cgroup_filter SEC(".maps") __weak;

/* --netns: network namespaces by inode number; a process in one of them is traced. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TLSTAP_NETNS_FILTER_MAX);
	__type(key, u32);
	__type(value, u8);
} netns_filter SEC(".maps") __weak;

struct comm_key {
	char comm[TLSTAP_COMM_LEN];
} __attribute__((aligned(8))); /* get_process_comm stores 8 bytes at a time */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct comm_key);
	__type(value, u8);
} comm_filter SEC(".maps") __weak;

/* A TLS call between its entry and its return, per thread. */
struct tls_call {
	u64 conn_id;  /* SSL* */
	u64 buf;      /* user buffer */
	u64 len_ptr;  /* size_t* result of the _ex variants, 0 otherwise */
	u64 sock_id;  /* struct sock* seen by the socket tracepoints during the call */
	u64 start_ns; /* a write's boot time at entry, when its bytes changed hands; reads: 0 */
	u64 frame;    /* the stack pointer at the probed function's entry (see entry_frame) */
	u8 library;
	u8 function;
	u8 direction;
	u8 nesting;  /* calls of traced functions made from inside this one */
	bool active; /* between entry and return; the slot outlives the call */
};

/* Task-local rather than a hash keyed by thread: found through the task
 * itself, and reused from call to call instead of inserted and deleted (an
 * LRU hash update and delete cost more than the rest of a probe). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tls_call);
} thread_calls SEC(".maps") __weak;

/* The TLS call the current thread is in, or 0. */
static __always_inline struct tls_call *current_call(void)
{
	struct tls_call *call =
	    bpf_task_storage_get(&thread_calls, bpf_get_current_task_btf(), 0, 0);
	return call && call->active ? call : 0;
}

/* Role of a TCP socket, learned when it connected or was accepted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);  /* struct sock* */
	__type(value, u8); /* enum tlstap_role */
} socket_roles SEC(".maps") __weak;

static __always_inline void count_drop(u32 reason, u64 bytes)
{
	struct tlstap_drop_counter *c = bpf_map_lookup_elem(&drop_counters, &reason);
	if (c) {
		c->events += 1;
		c->bytes += bytes;
	}
}

/* The process's command name: its main thread's. Other threads often name
 * themselves ("default-executo" in gRPC), and users filter and read by process. */
/* comm: 8-byte aligned */
static __always_inline void get_process_comm(char comm[TLSTAP_COMM_LEN])
{
	/* loads through the task's BTF pointer: no helper call */
	const u64 *name = (const u64 *)bpf_get_current_task_btf()->group_leader->comm;
	((u64 *)comm)[0] = name[0];
	((u64 *)comm)[1] = name[1];
}

/* The inode number of the current task's network namespace (0 for a task
 * past exit_task_namespaces, whose nsproxy is NULL: the loads fault to 0). */
static __always_inline u32 current_netns(void)
{
	return bpf_get_current_task_btf()->nsproxy->net_ns->ns.inum;
}

static __always_inline bool in_filtered_cgroup(void)
{
	for (u32 i = 0; i < TLSTAP_CGROUP_FILTER_MAX && i < cgroup_filter_count; i++)
		if (bpf_current_task_under_cgroup(&cgroup_filter, i) == 1)
			return true;
	return false;
}

static __always_inline bool in_filtered_netns(void)
{
	u32 netns = current_netns();
	return bpf_map_lookup_elem(&netns_filter, &netns) != 0;
}

/* --cgroup and --netns confine every other filter to those cgroups and
 * namespaces; --pid and --comm each add the processes they name. */
static __always_inline bool process_is_traced(u32 pid)
{
	if (filter_by_cgroup && !in_filtered_cgroup())
		return false;
	if (filter_by_netns && !in_filtered_netns())
		return false;
	if (filter_by_pid && bpf_map_lookup_elem(&pid_filter, &pid))
		return true;
	if (filter_by_comm) {
		struct comm_key key = {};
		get_process_comm(key.comm);
		if (bpf_map_lookup_elem(&comm_filter, &key))
			return true;
	}
	return !filter_by_pid && !filter_by_comm;
}

#endif /* TLSTAP_COMMON_BPF_H */
