/* Go crypto/tls: (*Conn).Write and (*Conn).Read under either calling
 * convention: register-based ABIInternal (amd64 Go 1.17+, arm64 Go 1.18+) or
 * the older stack-based ABI0 (the cookie's TLSTAP_GO_ABI0).
 *
 * No uretprobes: they rewrite the return address on the goroutine stack,
 * which Go copies when it grows. User space puts a uprobe on every return
 * instruction instead, and entry and return are matched by goroutine (its g),
 * since a goroutine may resume on another thread mid-call.
 *
 * A Read's plaintext is captured at its copy out of the record buffer when
 * that is found (go_tls_read_copy), else at its returns.
 *
 * A Write is captured at its start when the entry probe sits on the prologue's
 * stack-check branch (emulated, so cheap): its buffer is whole then, it needs
 * no return probes (each one single-stepped, ~14 us here), the request is in
 * the ring before any answer read on another thread, and a process that exits
 * while the Write is still returning loses nothing. The cost: a Write that
 * fails is reported as if it had been sent. */
#include "tls_call.bpf.h"

#if defined(__TARGET_ARCH_x86)
#define GO_G(ctx) ((ctx)->r14)
#define GO_ARG1(ctx) ((ctx)->ax)
#define GO_ARG2(ctx) ((ctx)->bx)
#define GO_ARG3(ctx) ((ctx)->cx)
#define GO_RESULT1(ctx) ((ctx)->ax)
/* ABI0: at entry the return address is on top of the stack and the arguments
 * above it; at a call instruction the callee's arguments are on top. */
#define GO_ABI0_ENTRY_ARGS 8
#define GO_ABI0_CALL_ARGS 0
/* jbe is taken when CF or ZF is set */
#define GO_STACK_CHECK_TAKEN(ctx) (((ctx)->flags & ((1 << 0) | (1 << 6))) != 0)
#elif defined(__TARGET_ARCH_arm64)
#define GO_G(ctx) ((ctx)->regs[28]) /* under both conventions */
#define GO_ARG1(ctx) ((ctx)->regs[0])
#define GO_ARG2(ctx) ((ctx)->regs[1])
#define GO_ARG3(ctx) ((ctx)->regs[2])
#define GO_RESULT1(ctx) ((ctx)->regs[0])
/* ABI0: 0(RSP) is the link register's slot, at entry and at a call. */
#define GO_ABI0_ENTRY_ARGS 8
#define GO_ABI0_CALL_ARGS 8
/* b.ls is taken when C is clear or Z set (PSTATE bits 29 and 30) */
#define GO_STACK_CHECK_TAKEN(ctx)                                                                  \
	(!((ctx)->pstate & (1ULL << 29)) || ((ctx)->pstate & (1ULL << 30)))
#endif

/* runtime.g starts with stack{lo, hi}; stable since Go 1.0. */
struct go_stack {
	u64 lo;
	u64 hi;
};
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct go_call_key {
	u32 pid;
	u32 pad;
	u64 g;
};

struct go_call {
	u64 conn; /* *tls.Conn */
	u64 buf;
	struct go_stack stack; /* of the goroutine at entry: tells whether it moved */
	u8 function;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_call_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* The kernel socket behind a file descriptor of the current process. */
static __always_inline u64 socket_of_fd(u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *socket = BPF_CORE_READ(file, private_data);
	struct sock *sk = BPF_CORE_READ(socket, sk);
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6 ? (u64)sk : 0;
}

/* *tls.Conn -> its TCP socket, 0 when the net.Conn underneath is not a
 * netFD: tls.Conn.conn's data word -> *net.TCPConn, whose conn.fd -> *netFD,
 * whose pfd.Sysfd is the descriptor. The offsets are in the cookie. */
static __always_inline u64 go_conn_socket(u64 tls_conn, u64 cookie)
{
	u64 net_conn = 0, net_fd = 0, fd = 0;
	if (bpf_probe_read_user(
		&net_conn, sizeof(net_conn),
		(const void *)(tls_conn + ((cookie >> TLSTAP_GO_CONN_DATA_SHIFT) & 0xff))) ||
	    bpf_probe_read_user(
		&net_fd, sizeof(net_fd),
		(const void *)(net_conn + ((cookie >> TLSTAP_GO_TCPCONN_FD_SHIFT) & 0x3f))) ||
	    bpf_probe_read_user(
		&fd, sizeof(fd),
		(const void *)(net_fd + ((cookie >> TLSTAP_GO_SYSFD_SHIFT) & 0xff))))
		return 0;
	u64 family_offset = ((cookie >> TLSTAP_GO_NETFD_FAMILY_SHIFT) & 0xff) * 8;
	if (family_offset) {
		struct {
			s64 family;
			s64 sotype;
		} kind = {};
		if (bpf_probe_read_user(&kind, sizeof(kind),
					(const void *)(net_fd + family_offset)) ||
		    (kind.family != AF_INET && kind.family != AF_INET6) ||
		    kind.sotype != SOCK_STREAM)
			return 0; /* not a TCP netFD: the net.Conn is something else */
	}
	return socket_of_fd(fd);
}

/* The TCP socket of a *tls.Conn: known from an earlier call, or looked up. */
static __always_inline u64 go_socket(u32 pid, u64 tls_conn, u64 cookie)
{
	struct conn_key key = {.pid = pid, .conn_id = tls_conn};
	struct conn_state *known = bpf_map_lookup_elem(&connections, &key);
	return known && known->sock_id ? known->sock_id : go_conn_socket(tls_conn, cookie);
}

/* The running goroutine: in a register, or (ABI0 on amd64) in thread-local
 * storage at the offset the cookie carries. */
static __always_inline u64 go_g(struct pt_regs *ctx, u64 cookie)
{
#if defined(__TARGET_ARCH_x86)
	if (cookie & TLSTAP_GO_ABI0) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		short offset = (short)(cookie >> TLSTAP_GO_TLS_G_SHIFT);
		u64 g = 0;
		bpf_probe_read_user(&g, sizeof(g),
				    (const void *)(BPF_CORE_READ(task, thread.fsbase) + offset));
		return g;
	}
#endif
	return GO_G(ctx);
}

/* The first three word arguments: in registers, or (ABI0) on the stack,
 * `stack_offset` bytes above the stack pointer. */
static __always_inline void go_args(struct pt_regs *ctx, u64 cookie, u64 stack_offset, u64 args[3])
{
	if (cookie & TLSTAP_GO_ABI0) {
		bpf_probe_read_user(args, 3 * sizeof(u64),
				    (const void *)(PT_REGS_SP(ctx) + stack_offset));
		return;
	}
	args[0] = GO_ARG1(ctx);
	args[1] = GO_ARG2(ctx);
	args[2] = GO_ARG3(ctx);
}

/* What Write or Read returns as n, at one of its return instructions: the
 * first result register, or (ABI0) the stack slot after the receiver and the
 * slice (three words). */
static __always_inline long go_result_n(struct pt_regs *ctx, u64 cookie)
{
	if (!(cookie & TLSTAP_GO_ABI0))
		return (long)GO_RESULT1(ctx);
	long n = 0;
	bpf_probe_read_user(&n, sizeof(n),
			    (const void *)(PT_REGS_SP(ctx) + GO_ABI0_ENTRY_ARGS + 4 * sizeof(u64)));
	return n;
}

/* Reports the n bytes at buf a Write sent or a Read received on tls_conn.
 * When the fd path leads to no TCP socket of this process (a net.Conn that
 * is not a *net.TCPConn, or a layout tlstap got wrong), a Write leaves the
 * connection to the socket tracepoints: the thread's next socket write, the
 * Write's own ciphertext, names it (as for memory-BIO libraries). */
static __always_inline void emit_go(u64 pid_tgid, u64 tls_conn, u8 function, u64 buf, long n,
				    u64 cookie)
{
	if (n <= 0 || n > 0x7fffffff)
		return;
	struct plaintext p = {
	    .conn_id = tls_conn,
	    .sock_id = go_socket(pid_tgid >> 32, tls_conn, cookie),
	    .buf = buf,
	    .len = (u32)n,
	    .library = TLSTAP_LIB_GO,
	    .function = function,
	    .direction = function == TLSTAP_FN_GO_WRITE ? TLSTAP_DIR_EGRESS : TLSTAP_DIR_INGRESS,
	};
	emit_plaintext(pid_tgid, &p);
	if (!p.sock_id && function == TLSTAP_FN_GO_WRITE)
		remember_unbound(pid_tgid, tls_conn);
}

/* Cookie: TLSTAP_FN_GO_WRITE or TLSTAP_FN_GO_READ, and flags (events.h). */
SEC("uprobe")
int go_tls_enter(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!process_is_traced(pid_tgid >> 32))
		return 0;
	u64 cookie = bpf_get_attach_cookie(ctx);
	u8 function = cookie & 0xff;
	if ((cookie & TLSTAP_GO_SITE_STACK_CHECK) && GO_STACK_CHECK_TAKEN(ctx))
		return 0; /* the stack grows first, then the call starts again */
	u64 args[3] = {}; /* receiver, b's data, b's length */
	go_args(ctx, cookie, GO_ABI0_ENTRY_ARGS, args);
	if ((cookie & TLSTAP_GO_SITE_STACK_CHECK) && function == TLSTAP_FN_GO_WRITE) {
		emit_go(pid_tgid, args[0], function, args[1], (long)args[2], cookie);
		return 0;
	}
	struct go_call_key key = {.pid = pid_tgid >> 32, .g = go_g(ctx, cookie)};
	if (!key.g)
		return 0; /* g unreadable: no key that keeps goroutines apart */
	struct go_call call = {
	    .conn = args[0],
	    .buf = args[1],
	    .function = function,
	};
	bpf_probe_read_user(&call.stack, sizeof(call.stack), (const void *)key.g);
	/* A call that must grow its stack first restarts from the entry: same key, same values. */
	bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY);
	return 0;
}

/* The call this goroutine entered, taken out of go_calls; false: none. */
static __always_inline bool take_go_call(u64 pid_tgid, u64 g, struct go_call *out)
{
	struct go_call_key key = {.pid = pid_tgid >> 32, .g = g};
	struct go_call *call = bpf_map_lookup_elem(&go_calls, &key);
	if (!call)
		return false;
	*out = *call;
	bpf_map_delete_elem(&go_calls, &key);
	return true;
}

/* On Read's call to runtime.memmove(to, from, n) (bytes.Reader.Read,
 * inlined): `from` holds the n bytes of plaintext Read returns. An emulated
 * call instead of single-stepped returns. Cookie: TLSTAP_FN_GO_READ and flags. */
SEC("uprobe")
int go_tls_read_copy(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u64 cookie = bpf_get_attach_cookie(ctx);
	struct go_call call;
	if (!take_go_call(pid_tgid, go_g(ctx, cookie), &call))
		return 0;
	u64 args[3] = {}; /* to, from, n */
	go_args(ctx, cookie, GO_ABI0_CALL_ARGS, args);
	emit_go(pid_tgid, call.conn, TLSTAP_FN_GO_READ, args[1], (long)args[2], cookie);
	return 0;
}

/* (*Conn).Close: the connection ends. Cookie: flags only. */
SEC("uprobe")
int go_tls_close(struct pt_regs *ctx)
{
	u64 cookie = bpf_get_attach_cookie(ctx);
	if ((cookie & TLSTAP_GO_SITE_STACK_CHECK) && GO_STACK_CHECK_TAKEN(ctx))
		return 0;
	u64 args[3] = {};
	go_args(ctx, cookie, GO_ABI0_ENTRY_ARGS, args);
	forget_connection(bpf_get_current_pid_tgid() >> 32, args[0]);
	return 0;
}

/* On every return instruction of Write and Read, where the sites above were
 * not found. Cookie: the function and flags. */
SEC("uprobe")
int go_tls_return(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u64 cookie = bpf_get_attach_cookie(ctx);
	u64 g = go_g(ctx, cookie);
	struct go_call call;
	if (!take_go_call(pid_tgid, g, &call))
		return 0;
	u64 buf = call.buf;
	struct go_stack now = {};
	bpf_probe_read_user(&now, sizeof(now), (const void *)g);
	if (now.hi != call.stack.hi && buf >= call.stack.lo && buf < call.stack.hi)
		/* The stack grew during the call and the buffer lived on it: Go
		 * copied it keeping offsets from the stack's top. */
		buf = now.hi - (call.stack.hi - buf);
	emit_go(pid_tgid, call.conn, call.function, buf, go_result_n(ctx, cookie), cookie);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
