/* Go crypto/tls: (*Conn).Write and (*Conn).Read under the register-based
 * ABIInternal (amd64 Go 1.17+, arm64 Go 1.18+).
 *
 * No uretprobes: they rewrite the return address on the goroutine stack,
 * which Go copies when it grows. User space puts a uprobe on every return
 * instruction instead, and entry and return are matched by goroutine (the g
 * register), since a goroutine may resume on another thread mid-call.
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
/* jbe is taken when CF or ZF is set */
#define GO_STACK_CHECK_TAKEN(ctx) (((ctx)->flags & ((1 << 0) | (1 << 6))) != 0)
#elif defined(__TARGET_ARCH_arm64)
#define GO_G(ctx) ((ctx)->regs[28])
#define GO_ARG1(ctx) ((ctx)->regs[0])
#define GO_ARG2(ctx) ((ctx)->regs[1])
#define GO_ARG3(ctx) ((ctx)->regs[2])
#define GO_RESULT1(ctx) ((ctx)->regs[0])
/* b.ls is taken when C is clear or Z set (PSTATE bits 29 and 30) */
#define GO_STACK_CHECK_TAKEN(ctx) (!((ctx)->pstate & (1ULL << 29)) || ((ctx)->pstate & (1ULL << 30)))
#endif

/* runtime.g starts with stack{lo, hi}; stable since Go 1.0. */
struct go_stack {
	u64 lo;
	u64 hi;
};
/* tls.Conn.conn (net.Conn interface: itab, data) -> *net.TCPConn, whose first
 * word is conn.fd (*netFD) -> netFD.pfd (poll.FD) -> Sysfd after the 16-byte
 * fdMutex. Stable from Go 1.9 to at least 1.22. */
#define GO_TLS_CONN_NETCONN_DATA 8
#define GO_POLL_FD_SYSFD 16

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

/* *tls.Conn -> its TCP socket, 0 when the net.Conn underneath is not a netFD. */
static __always_inline u64 go_conn_socket(u64 tls_conn)
{
	u64 net_conn = 0, net_fd = 0, fd = 0;
	if (bpf_probe_read_user(&net_conn, sizeof(net_conn),
				(const void *)(tls_conn + GO_TLS_CONN_NETCONN_DATA)) ||
	    bpf_probe_read_user(&net_fd, sizeof(net_fd), (const void *)net_conn) ||
	    bpf_probe_read_user(&fd, sizeof(fd), (const void *)(net_fd + GO_POLL_FD_SYSFD)))
		return 0;
	return socket_of_fd(fd);
}

/* The TCP socket of a *tls.Conn: known from an earlier call, or looked up. */
static __always_inline u64 go_socket(u32 pid, u64 tls_conn)
{
	struct conn_key key = {.pid = pid, .conn_id = tls_conn};
	struct conn_state *known = bpf_map_lookup_elem(&connections, &key);
	return known && known->sock_id ? known->sock_id : go_conn_socket(tls_conn);
}

/* Reports the n bytes at buf a Write sent or a Read received on tls_conn. */
static __always_inline void emit_go(u64 pid_tgid, u64 tls_conn, u8 function, u64 buf, long n)
{
	if (n <= 0 || n > 0x7fffffff)
		return;
	struct plaintext p = {
	    .conn_id = tls_conn,
	    .sock_id = go_socket(pid_tgid >> 32, tls_conn),
	    .buf = buf,
	    .len = (u32)n,
	    .library = TLSTAP_LIB_GO,
	    .function = function,
	    .direction = function == TLSTAP_FN_GO_WRITE ? TLSTAP_DIR_EGRESS : TLSTAP_DIR_INGRESS,
	};
	emit_plaintext(pid_tgid, &p);
}

/* Cookie: TLSTAP_FN_GO_WRITE or TLSTAP_FN_GO_READ, maybe | TLSTAP_GO_SITE_STACK_CHECK. */
SEC("uprobe")
int go_tls_enter(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!process_is_traced(pid_tgid >> 32))
		return 0;
	u64 cookie = bpf_get_attach_cookie(ctx);
	u8 function = cookie & 0xff;
	if (cookie & TLSTAP_GO_SITE_STACK_CHECK) {
		if (GO_STACK_CHECK_TAKEN(ctx))
			return 0; /* the stack grows first, then the call starts again */
		if (function == TLSTAP_FN_GO_WRITE) {
			emit_go(pid_tgid, GO_ARG1(ctx), function, GO_ARG2(ctx), (long)GO_ARG3(ctx));
			return 0;
		}
	}
	struct go_call_key key = {.pid = pid_tgid >> 32, .g = GO_G(ctx)};
	struct go_call call = {
	    .conn = GO_ARG1(ctx),
	    .buf = GO_ARG2(ctx),
	    .function = function,
	};
	bpf_probe_read_user(&call.stack, sizeof(call.stack), (const void *)key.g);
	/* A call that must grow its stack first restarts from the entry: same key, same values. */
	bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY);
	return 0;
}

/* On Read's call to runtime.memmove(to, from, n) (bytes.Reader.Read,
 * inlined): `from` holds the n bytes of plaintext Read returns. An emulated
 * call instead of single-stepped returns. Cookie: TLSTAP_FN_GO_READ. */
SEC("uprobe")
int go_tls_read_copy(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_call_key key = {.pid = pid_tgid >> 32, .g = GO_G(ctx)};
	struct go_call *call = bpf_map_lookup_elem(&go_calls, &key);
	if (!call)
		return 0;
	u64 conn = call->conn;
	bpf_map_delete_elem(&go_calls, &key);
	emit_go(pid_tgid, conn, TLSTAP_FN_GO_READ, GO_ARG2(ctx), (long)GO_ARG3(ctx));
	return 0;
}

/* (*Conn).Close: the connection ends. Cookie: TLSTAP_GO_SITE_STACK_CHECK or 0. */
SEC("uprobe")
int go_tls_close(struct pt_regs *ctx)
{
	if ((bpf_get_attach_cookie(ctx) & TLSTAP_GO_SITE_STACK_CHECK) && GO_STACK_CHECK_TAKEN(ctx))
		return 0;
	forget_connection(bpf_get_current_pid_tgid() >> 32, GO_ARG1(ctx));
	return 0;
}

/* On every return instruction of Write and Read, where the sites above were not found. */
SEC("uprobe")
int go_tls_return(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_call_key key = {.pid = pid_tgid >> 32, .g = GO_G(ctx)};
	struct go_call *call = bpf_map_lookup_elem(&go_calls, &key);
	if (!call)
		return 0;
	u64 conn = call->conn, buf = call->buf;
	u8 function = call->function;
	struct go_stack now = {};
	bpf_probe_read_user(&now, sizeof(now), (const void *)key.g);
	if (now.hi != call->stack.hi && buf >= call->stack.lo && buf < call->stack.hi)
		/* The stack grew during the call and the buffer lived on it: Go
		 * copied it keeping offsets from the stack's top. */
		buf = now.hi - (call->stack.hi - buf);
	bpf_map_delete_elem(&go_calls, &key);
	emit_go(pid_tgid, conn, function, buf, (long)GO_RESULT1(ctx));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
