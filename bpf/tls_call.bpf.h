/* The library-independent half of a TLS probe: remember a call at its entry,
 * and at its return copy the plaintext it moved into the ring buffer, whole,
 * in chunks, tied to the connection the call used. The C libraries'
 * programs (c_call.bpf.c, openssl.bpf.c, gnutls.bpf.c) only extract arguments
 * and call these; Go's (gotls.bpf.c) use the copy. */
#ifndef TLSTAP_TLS_CALL_BPF_H
#define TLSTAP_TLS_CALL_BPF_H

#include "conn.bpf.h"

/* The stack pointer at the entry of the probed function, where x86-64 keeps
 * its return address: a probe placed further into the prologue has the
 * distance the prologue moved the stack pointer in the low half of its
 * cookie (add_cheap_entry). */
static __always_inline u64 entry_frame(struct pt_regs *ctx, u64 cookie)
{
	return PT_REGS_SP(ctx) + (u32)cookie;
}

/* Whether a call entering at `frame` is made from inside `call`, in progress:
 * report the outer call only (e.g. a library whose SSL_write calls
 * SSL_write_ex). It is not when `call` ended without its return seen (the
 * thread left it by longjmp or an exception): a call entered no deeper than
 * it, or, on x86-64, once its return address, which the kernel replaced by
 * the uretprobe trampoline, is gone from its frame. */
static __always_inline bool inside_call(const struct tls_call *call, u64 frame)
{
	if (frame >= call->frame)
		return false;
#if defined(__TARGET_ARCH_x86)
	/* a kernel without these fields would reject the reads: then depth alone decides */
	if (!bpf_core_field_exists(struct mm_struct, uprobes_state) ||
	    !bpf_core_field_exists(struct xol_area, vaddr))
		return true;
	struct task_struct *task = bpf_get_current_task_btf();
	u64 trampoline = BPF_CORE_READ(task, mm, uprobes_state.xol_area, vaddr);
	u64 return_address = 0;
	if (trampoline &&
	    !bpf_probe_read_user(&return_address, sizeof(return_address), (const void *)call->frame))
		return return_address == trampoline;
#endif
	return true;
}

/* What tls_call_start says of a call. In an uprobe session (entry and return
 * one program, Linux 6.13+) the entry half returns it: TLS_CALL_UNFOLLOWED
 * spares the call its return, a trap. A perf-event uprobe's program must
 * return 0 whatever it says, or the kernel goes on to write a perf sample. */
#define TLS_CALL_FOLLOWED 0
#define TLS_CALL_UNFOLLOWED 1

/* `frame`: the stack pointer at the entry of the probed function (entry_frame).
 * `in_session`: the return runs only when asked for (TLS_CALL_FOLLOWED). */
static __always_inline int tls_call_start(u64 frame, const void *conn_id, const void *buf,
					  const void *len_ptr, u8 library, u8 function, u8 direction,
					  bool in_session)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct tls_call *call = bpf_task_storage_get(&thread_calls, task, 0, 0);
	if (call && call->active) {
		if (inside_call(call, frame)) {
			if (in_session)
				return TLS_CALL_UNFOLLOWED;
			call->nesting++; /* its return runs, and must be told from the outer one's */
			return TLS_CALL_FOLLOWED;
		}
		count_drop(TLSTAP_DROP_RETURN_UNSEEN, 0);
		call->active = false;
	}
	if (!process_is_traced(bpf_get_current_pid_tgid() >> 32))
		return TLS_CALL_UNFOLLOWED;
	if (!call) /* the thread's first traced call */
		call = bpf_task_storage_get(&thread_calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!call)
		return TLS_CALL_UNFOLLOWED; /* out of memory: the call goes unseen */
	*call = (struct tls_call){
	    .conn_id = (u64)conn_id,
	    .buf = (u64)buf,
	    .len_ptr = (u64)len_ptr,
	    /* a write's bytes change hands when it starts; a read's are stamped at its return */
	    .start_ns = direction == TLSTAP_DIR_EGRESS ? bpf_ktime_get_boot_ns() : 0,
	    .frame = frame,
	    .library = library,
	    .function = function,
	    .direction = direction,
	    .active = true,
	};
	return TLS_CALL_FOLLOWED;
}

/* In an uprobe session: whether this run is the return's. The kernel runs the
 * return half with the instruction pointer at the return address, while
 * bpf_get_func_ip() names the probed function in both halves. (The
 * bpf_session_is_return kfunc says the same, but an unresolved kfunc would
 * stop Debian 12's libbpf from loading the object on older kernels.) */
static __always_inline bool session_returning(struct pt_regs *ctx)
{
	return PT_REGS_IP(ctx) != bpf_get_func_ip(ctx);
}

struct emit_ctx {
	struct tlstap_data_event header;
	u64 buf;
	u32 total;
};

/* Waking the consumer costs the traced thread an IPI or a context switch:
 * wake it once per batch of bytes, when the ring's producer position crosses
 * a multiple of the batch (it also polls on a timer). The producer position
 * is this CPU's own recent write; the consumer position, which the consumer
 * rewrites after each record, would cost a cache miss per event. Two CPUs
 * reserving at once may both miss a crossing: the next crossing, or the
 * timer, wakes the consumer then. */
static __always_inline u64 wakeup_flags(u64 record_bytes)
{
	u64 produced = bpf_ringbuf_query(&data_events, BPF_RB_PROD_POS);
	return (produced & (wakeup_batch_bytes - 1)) < record_bytes ? BPF_RB_FORCE_WAKEUP
								    : BPF_RB_NO_WAKEUP;
}

/* One reservation sized to the chunk (rounded up to a size class): the
 * verifier needs a constant size, and a fixed 16 KiB slot per event would
 * waste the ring on small messages. */
static __always_inline long emit_sized(struct emit_ctx *ctx, u32 offset, u32 len,
				       const u32 capacity)
{
	struct tlstap_data_event *e = bpf_ringbuf_reserve(&data_events, sizeof(*e) + capacity, 0);
	if (!e) {
		count_drop(TLSTAP_DROP_RINGBUF_FULL, len);
		return 0;
	}
	__builtin_memcpy(e, &ctx->header, sizeof(*e));
	e->chunk_offset = offset;
	e->stream_offset = ctx->header.stream_offset + offset;
	e->len = len;
	/* len is in [1, capacity] and capacity a power of two: this is len, in a
	 * form whose bounds the verifier can see. */
	u32 read_len = ((len - 1) & (capacity - 1)) + 1;
	if (bpf_probe_read_user((u8 *)(e + 1), read_len, (const void *)(ctx->buf + offset))) {
		count_drop(TLSTAP_DROP_READ_FAILED, len);
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	/* what the reservation took of the ring: an 8-byte header, rounded up to 8 */
	bpf_ringbuf_submit(e, wakeup_flags((sizeof(*e) + capacity + 8 + 7) & ~7ULL));
	return 0;
}

static long emit_chunk(u32 index, void *data)
{
	struct emit_ctx *ctx = data;
	u32 offset = index * TLSTAP_CHUNK_MAX;
	if (offset >= ctx->total)
		return 1;
	u32 len = ctx->total - offset;
	if (len > TLSTAP_CHUNK_MAX)
		len = TLSTAP_CHUNK_MAX;
	if (len <= 256)
		return emit_sized(ctx, offset, len, 256);
	if (len <= 1024)
		return emit_sized(ctx, offset, len, 1024);
	if (len <= 4096)
		return emit_sized(ctx, offset, len, 4096);
	return emit_sized(ctx, offset, len, TLSTAP_CHUNK_MAX);
}

/* What one completed TLS call moved, ready to be reported. */
struct plaintext {
	u64 conn_id;
	u64 sock_id; /* 0 when the call touched no socket */
	u64 buf;
	u32 len;
	u8 library;
	u8 function;
	u8 direction;
	u64 timestamp_ns; /* when the bytes changed hands; 0: now */
};

/* Copies the plaintext into the ring buffer, in chunks, tied to its
 * connection; offsets advance even for chunks that cannot be delivered, so
 * user space sees the gap. */
static __always_inline void emit_plaintext(u64 pid_tgid, const struct plaintext *p)
{
	u32 pid = pid_tgid >> 32;
	struct conn_state *conn = resolve_connection(pid, p->conn_id, p->sock_id);
	struct emit_ctx ctx = {};
	ctx.buf = p->buf;
	ctx.total = p->len;
	ctx.header.kind = TLSTAP_EVENT_DATA;
	ctx.header.pid = pid;
	ctx.header.tid = (u32)pid_tgid;
	ctx.header.library = p->library;
	ctx.header.function = p->function;
	ctx.header.direction = p->direction;
	ctx.header.timestamp_ns = p->timestamp_ns ? p->timestamp_ns : bpf_ktime_get_boot_ns();
	ctx.header.conn_id = p->conn_id;
	ctx.header.call_len = ctx.total;
	get_process_comm(ctx.header.comm);
	if (conn) {
		u32 dir = p->direction == TLSTAP_DIR_EGRESS ? 0 : 1;
		ctx.header.sock_id = conn->sock_id;
		ctx.header.conn_uid = conn->uid;
		ctx.header.stream_offset =
		    __sync_fetch_and_add(&conn->stream_offset[dir], ctx.total);
		ctx.header.conn = conn->tuple;
	}
	if (ctx.total <= TLSTAP_CHUNK_MAX) {
		emit_chunk(0, &ctx); /* the common case, without bpf_loop's indirect calls */
		return;
	}
	u32 chunks = (ctx.total + TLSTAP_CHUNK_MAX - 1) / TLSTAP_CHUNK_MAX;
	bpf_loop(chunks, emit_chunk, &ctx, 0);
}

/* Called at the return of a C library's TLS call: `transferred` is what it
 * moved, 0 on failure. */
static __always_inline int tls_call_exit(long transferred, bool ex_success)
{
	struct tls_call *call = current_call();
	if (!call)
		return 0;
	if (call->nesting) {
		call->nesting--;
		return 0;
	}
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!call->sock_id)
		remember_unbound(pid_tgid, call->conn_id);
	if (call->len_ptr) {
		/* SSL_*_ex: 1 on success, the count is in *len_ptr */
		u64 count = 0;
		if (ex_success &&
		    !bpf_probe_read_user(&count, sizeof(count), (const void *)call->len_ptr))
			transferred = (long)count;
		else
			transferred = 0;
	}
	if (transferred > 0 && transferred <= 0x7fffffff) {
		struct plaintext p = {
		    .conn_id = call->conn_id,
		    .sock_id = call->sock_id,
		    .buf = call->buf,
		    .len = (u32)transferred,
		    .library = call->library,
		    .function = call->function,
		    .direction = call->direction,
		    .timestamp_ns = call->start_ns,
		};
		call->active = false;
		emit_plaintext(pid_tgid, &p);
		return 0;
	}
	call->active = false;
	return 0;
}

#endif /* TLSTAP_TLS_CALL_BPF_H */
