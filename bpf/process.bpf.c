/* Process lifecycle for discovery: new images (exec), libraries mapped by
 * the dynamic loader (its debugger hook, hit at start-up and on every
 * dlopen/dlclose) and exits, so user space attaches to new files in time and
 * forgets dead processes; and new cgroups, where containers start. */
#include "common.bpf.h"

static __always_inline struct tlstap_process_event *reserve_process_event(u32 kind, u64 pid_tgid)
{
	struct tlstap_process_event *e = bpf_ringbuf_reserve(&control_events, sizeof(*e), 0);
	if (!e) {
		count_drop(TLSTAP_DROP_CONTROL_LOST, 0);
		return 0;
	}
	e->kind = kind;
	e->pid = pid_tgid >> 32;
	e->tid = (u32)pid_tgid;
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	/* Where the process runs, for when it is gone before user space reads /proc. */
	e->netns = current_netns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->exe_inode = 0;
	e->look = TLSTAP_EXEC_LOOK_NOW;
	e->reserved = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->filename[0] = 0;
	return e;
}

/* Exits are not urgent (user space forgets a process seconds later): they
 * wait for the next wake-up or poll, which spares every exiting process the
 * wake-up's interrupt. Nor is the exec of a program whose dynamic loader is
 * probed: the loader reports at start-up, moments later, any object user
 * space has not looked at, and that wakes it to look at the process once;
 * nor a static program's that user space found without TLS.
 * Every other event wakes user space outright: the ring's default, a wake-up
 * only when the reader has read everything before the event, would not
 * while an exit waits unread ahead of it. */
static __always_inline void submit_process_event(struct tlstap_process_event *e)
{
	bool urgent = e->kind != TLSTAP_EVENT_EXIT && e->kind != TLSTAP_EVENT_EXIT_IN_CALL &&
		      !(e->kind == TLSTAP_EVENT_EXEC && e->look != TLSTAP_EXEC_LOOK_NOW);
	bpf_ringbuf_submit(e, urgent ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void send_process_event(u32 kind, u64 pid_tgid)
{
	struct tlstap_process_event *e = reserve_process_event(kind, pid_tgid);
	if (e)
		submit_process_event(e);
}

/* Files user space has looked at (events.h); the least recently used go. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TLSTAP_KNOWN_FILES_MAX);
	__type(key, struct tlstap_file_key);
	__type(value, struct tlstap_known_file);
} known_files SEC(".maps");

/* Bits 30 and 31 of an inode's nanoseconds may be flags (multigrain timestamps). */
#define CTIME_NSEC_MASK ((1u << 30) - 1)

static __always_inline void inode_ctime(struct inode *inode, u64 *sec, u32 *nsec)
{
	if (bpf_core_field_exists(struct inode___ctime_fields, i_ctime_sec)) {
		struct inode___ctime_fields *fields = (void *)inode;
		*sec = BPF_CORE_READ(fields, i_ctime_sec);
		*nsec = BPF_CORE_READ(fields, i_ctime_nsec);
	} else if (bpf_core_field_exists(struct inode___ctime_private, __i_ctime)) {
		struct inode___ctime_private *private = (void *)inode;
		*sec = BPF_CORE_READ(private, __i_ctime.tv_sec);
		*nsec = BPF_CORE_READ(private, __i_ctime.tv_nsec);
	} else {
		struct inode___ctime_timespec *timespec = (void *)inode;
		*sec = BPF_CORE_READ(timespec, i_ctime.tv_sec);
		*nsec = BPF_CORE_READ(timespec, i_ctime.tv_nsec);
	}
	*nsec &= CTIME_NSEC_MASK;
}

/* What user space found in a file, if it looked at that file (and it has
 * not changed since): TLSTAP_FILE_*, or 0. */
static __always_inline u32 known_inode_kind(struct inode *inode)
{
	if (!inode)
		return 0;
	struct tlstap_file_key key = {
		.inode = BPF_CORE_READ(inode, i_ino),
		.dev = BPF_CORE_READ(inode, i_sb, s_dev),
	};
	struct tlstap_known_file *known = bpf_map_lookup_elem(&known_files, &key);
	if (!known)
		return 0;
	u64 sec;
	u32 nsec;
	inode_ctime(inode, &sec, &nsec);
	return known->ctime_sec == sec && known->ctime_nsec == nsec ? known->kind : 0;
}

/* The same for the file a mapping shows. */
static __always_inline u32 known_file_kind(struct vm_area_struct *vma)
{
	return known_inode_kind(BPF_CORE_READ(vma, vm_file, f_inode));
}

#define AT_NULL 0
#define AT_BASE 7 /* where the kernel loaded the program's interpreter */
#define AUXV_PAIRS_MAX 32

/* The address of the interpreter the kernel loaded for the current image
 * (its ld.so), from the auxiliary vector; 0 for a program without one. */
static __always_inline u64 interpreter_base(struct task_struct *task)
{
	u64 auxv = (u64)BPF_CORE_READ(task, mm) + bpf_core_field_offset(struct mm_struct, saved_auxv);
	for (int i = 0; i < AUXV_PAIRS_MAX; i++) {
		u64 pair[2];
		if (bpf_probe_read_kernel(pair, sizeof(pair), (const void *)(auxv + i * sizeof(pair))) ||
		    pair[0] == AT_NULL)
			return 0;
		if (pair[0] == AT_BASE)
			return pair[1];
	}
	return 0;
}

static long mapping_is_probed_loader(struct task_struct *task, struct vm_area_struct *vma, bool *probed)
{
	*probed = known_file_kind(vma) == TLSTAP_FILE_PROBED_LOADER;
	return 0;
}

/* When user space must look at the current image (TLSTAP_EXEC_LOOK_*): at
 * once, unless its interpreter is a loader user space probed, which reports
 * at start-up what there is to look at, or it has none and is a file user
 * space found without TLS. At once when unsure (a mapping could not be
 * looked up), which only costs a wake-up. */
static __always_inline u32 exec_look(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	u64 base = interpreter_base(task);
	if (!base)
		return known_inode_kind(BPF_CORE_READ(task, mm, exe_file, f_inode)) == TLSTAP_FILE_WITHOUT_TLS
			   ? TLSTAP_EXEC_LOOK_NEVER
			   : TLSTAP_EXEC_LOOK_NOW;
	bool probed = false;
	bpf_find_vma(task, base, mapping_is_probed_loader, &probed, 0);
	return probed ? TLSTAP_EXEC_LOOK_AT_LOADER_REPORT : TLSTAP_EXEC_LOOK_NOW;
}

SEC("tp/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	/* User space looks at each new image: not a process's the filters leave
	 * out (decided on its new comm). */
	if (!process_is_traced(pid_tgid >> 32))
		return 0;
	struct tlstap_process_event *e = reserve_process_event(TLSTAP_EVENT_EXEC, pid_tgid);
	if (!e)
		return 0;
	/* Kept for when the process is gone before user space reads /proc/PID/exe. */
	u32 offset = ctx->__data_loc_filename & 0xffff;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + offset);
	/* Tells user space whether /proc/PID/exe still shows this image, or a later exec's. */
	e->exe_inode = bpf_get_current_task_btf()->mm->exe_file->f_inode->i_ino;
	e->look = exec_look();
	submit_process_event(e);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int process_exit(struct trace_event_raw_sched_process_template *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	/* a thread that dies inside a TLS call never returns from it */
	struct tls_call *call = current_call();
	if (call) {
		call->active = false;
		send_process_event(TLSTAP_EVENT_EXIT_IN_CALL, pid_tgid);
	}
	/* The process is gone with its last thread, which need not be the main
	 * one (pthread_exit): do_exit counts live threads down before this. */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) == 0)
		send_process_event(TLSTAP_EVENT_EXIT, pid_tgid);
	return 0;
}

/* Attached while user space waits for a --container or --pod to start: it
 * looks for them at each new cgroup v2 directory instead of once a second,
 * before the runtime moves the container's first process in. */
SEC("tp/cgroup/cgroup_mkdir")
int cgroup_made(struct trace_event_raw_cgroup *ctx)
{
	if (ctx->root != 0)
		return 0;
	struct tlstap_process_event *e =
	    reserve_process_event(TLSTAP_EVENT_CGROUP_MADE, bpf_get_current_pid_tgid());
	if (!e)
		return 0;
	e->cgroup_id = ctx->id;
	submit_process_event(e);
	return 0;
}

/* A process moved into another cgroup v2 directory: its data from then on
 * names the new cgroup (and container, pod), and user space looks at it if
 * it moved into a filtered one, since its exec and loader events were left
 * out while it was outside (its own executable and libraries may be attached
 * nowhere yet). A cgroup.procs write moves the whole process and reports its
 * leader once; a thread moved alone (threaded cgroups) is not followed. */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cgroup_joined, struct cgroup *dst, const char *path, struct task_struct *task,
	     bool threadgroup)
{
	if (dst->root->hierarchy_id != 0 || !threadgroup)
		return 0;
	u64 pid_tgid = (u64)task->tgid << 32 | (u32)task->pid;
	struct tlstap_process_event *e =
	    reserve_process_event(TLSTAP_EVENT_CGROUP_JOINED, pid_tgid);
	if (!e)
		return 0;
	/* Filled in from current, the mover (a runtime, a shell): the moved
	 * process's comm instead; its namespace is read from /proc if needed. */
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), task->comm);
	e->netns = 0;
	e->cgroup_id = dst->kn->id;
	submit_process_event(e);
	return 0;
}

/* glibc's struct r_debug on LP64: r_version, r_map, r_brk, r_state,
 * r_ldbase, and from version 2 on r_next (the next link-map namespace's, for
 * dlmopen); its struct link_map: l_addr, l_name, l_ld (the object's dynamic
 * section, in its mapping), l_next. */
#define R_DEBUG_MAP_OFFSET 8
#define R_DEBUG_STATE_OFFSET 24
#define R_DEBUG_NEXT_OFFSET 40
#define LINK_MAP_LD_OFFSET 16
#define RT_CONSISTENT 0
#define RT_DELETE 2
#define LINK_MAP_OBJECTS_MAX 64

/* Processes whose loader announced an unload (dlclose): its end is always
 * reported, so that user space forgets the mappings gone (a file mapped
 * again later may have changed in place). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u8);
} unloads_announced SEC(".maps");

static long mapping_was_looked_at(struct task_struct *task, struct vm_area_struct *vma, bool *looked_at)
{
	/* A mapping without a file: the vDSO. */
	*looked_at = !BPF_CORE_READ(vma, vm_file) || known_file_kind(vma) != 0;
	return 0;
}

struct link_map_walk {
	u64 object; /* the link map entry to look at next; 0 past the last */
	bool unknown; /* an object user space has not looked at, or one that could not be read */
};

static long look_at_object(u64 index, struct link_map_walk *walk)
{
	if (!walk->object)
		return 1;
	u64 dynamic_and_next[2]; /* l_ld, l_next */
	bool looked_at = false;
	if (bpf_probe_read_user(dynamic_and_next, sizeof(dynamic_and_next),
				(const void *)(walk->object + LINK_MAP_LD_OFFSET)) ||
	    bpf_find_vma(bpf_get_current_task_btf(), dynamic_and_next[0], mapping_was_looked_at, &looked_at,
			 0) ||
	    !looked_at) {
		walk->unknown = true;
		return 1;
	}
	walk->object = dynamic_and_next[1];
	return 0;
}

/* Whether user space has looked at every object in the loader's link map
 * (at `rendezvous`) as it is: then it has nothing to learn from the report.
 * Only the first namespace is walked: with others (dlmopen), unsure. */
static __always_inline bool every_object_looked_at(u64 rendezvous)
{
	int version = 0;
	u64 other_namespaces = 0;
	struct link_map_walk walk = {};
	if (bpf_probe_read_user(&version, sizeof(version), (const void *)rendezvous) ||
	    bpf_probe_read_user(&walk.object, sizeof(walk.object),
				(const void *)(rendezvous + R_DEBUG_MAP_OFFSET)))
		return false;
	if (version >= 2 && (bpf_probe_read_user(&other_namespaces, sizeof(other_namespaces),
						 (const void *)(rendezvous + R_DEBUG_NEXT_OFFSET)) ||
			     other_namespaces))
		return false;
	bpf_loop(LINK_MAP_OBJECTS_MAX, look_at_object, &walk, 0);
	return !walk.unknown && !walk.object; /* more objects than walked: unsure */
}

/* _dl_debug_state in ld.so: the r_debug rendezvous breakpoint of debuggers.
 * The loader calls it twice for each change: announcing it (r_state RT_ADD
 * or RT_DELETE), before it maps or unmaps anything, and once the link map is
 * consistent again; only the second is reported, one event per start and
 * per dlopen instead of two; and a load is reported only when an object in
 * the link map is one user space has not looked at (most programs on a host
 * start with files it knows). The probe sits on each call of the hook (an
 * instruction the kernel emulates; the hook's `ret` it single-steps), or on
 * the hook itself when user space could not find them all. Cookie:
 * _r_debug's address less the probe's, and TLSTAP_LOADER_CHAINS_NAMESPACES;
 * 0 (unknown) reports every call, an unreadable state counts as consistent. */
SEC("uprobe")
int loader_libs_changed(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u32 pid = pid_tgid >> 32;
	if (!process_is_traced(pid))
		return 0;
	u64 cookie = bpf_get_attach_cookie(ctx);
	if (!cookie) {
		send_process_event(TLSTAP_EVENT_LIBS_CHANGED, pid_tgid);
		return 0;
	}
	u64 rendezvous = PT_REGS_IP(ctx) + (cookie & ~TLSTAP_LOADER_CHAINS_NAMESPACES);
	int state = RT_CONSISTENT;
	bpf_probe_read_user(&state, sizeof(state), (const void *)(rendezvous + R_DEBUG_STATE_OFFSET));
	if (state == RT_DELETE) {
		u8 yes = 1;
		bpf_map_update_elem(&unloads_announced, &pid, &yes, BPF_ANY);
		return 0;
	}
	if (state != RT_CONSISTENT)
		return 0;
	bool unloaded = bpf_map_delete_elem(&unloads_announced, &pid) == 0;
	if (unloaded || !(cookie & TLSTAP_LOADER_CHAINS_NAMESPACES) || !every_object_looked_at(rendezvous))
		send_process_event(TLSTAP_EVENT_LIBS_CHANGED, pid_tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
