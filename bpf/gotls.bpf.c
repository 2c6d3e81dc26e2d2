/* Go crypto/tls: (*Conn).Write and (*Conn).Read under the register-based
 * ABIInternal (amd64 Go 1.17+, arm64 Go 1.18+).
 *
 * No uretprobes: they rewrite the return address on the goroutine stack,
 * which Go copies when it grows. User space puts a uprobe on every return
 * instruction instead, and entry and return are matched by goroutine (the g
 * register), since a goroutine may resume on another thread mid-call. */
#include "tls_call.bpf.h"

#if defined(__TARGET_ARCH_x86)
#define GO_G(ctx) ((ctx)->r14)
#define GO_ARG1(ctx) ((ctx)->ax)
#define GO_ARG2(ctx) ((ctx)->bx)
#define GO_RESULT1(ctx) ((ctx)->ax)
#elif defined(__TARGET_ARCH_arm64)
#define GO_G(ctx) ((ctx)->regs[28])
#define GO_ARG1(ctx) ((ctx)->regs[0])
#define GO_ARG2(ctx) ((ctx)->regs[1])
#define GO_RESULT1(ctx) ((ctx)->regs[0])
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

/* Cookie: TLSTAP_FN_GO_WRITE or TLSTAP_FN_GO_READ. */
SEC("uprobe")
int go_tls_enter(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!process_is_traced(pid_tgid >> 32))
		return 0;
	struct go_call_key key = {.pid = pid_tgid >> 32, .g = GO_G(ctx)};
	struct go_call call = {
	    .conn = GO_ARG1(ctx),
	    .buf = GO_ARG2(ctx),
	    .function = bpf_get_attach_cookie(ctx),
	};
	bpf_probe_read_user(&call.stack, sizeof(call.stack), (const void *)key.g);
	/* A call that must grow its stack first restarts from the entry: same key, same values. */
	bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY);
	return 0;
}

/* On every return instruction of the two functions. */
SEC("uprobe")
int go_tls_return(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_call_key key = {.pid = pid_tgid >> 32, .g = GO_G(ctx)};
	struct go_call *call = bpf_map_lookup_elem(&go_calls, &key);
	if (!call)
		return 0;
	long n = (long)GO_RESULT1(ctx);
	struct plaintext p = {
	    .conn_id = call->conn,
	    .buf = call->buf,
	    .len = (u32)n,
	    .library = TLSTAP_LIB_GO,
	    .function = call->function,
	    .direction =
		call->function == TLSTAP_FN_GO_WRITE ? TLSTAP_DIR_EGRESS : TLSTAP_DIR_INGRESS,
	};
	struct go_stack now = {};
	bpf_probe_read_user(&now, sizeof(now), (const void *)key.g);
	if (now.hi != call->stack.hi && p.buf >= call->stack.lo && p.buf < call->stack.hi)
		/* The stack grew during the call and the buffer lived on it: Go
		 * copied it keeping offsets from the stack's top. */
		p.buf = now.hi - (call->stack.hi - p.buf);
	bpf_map_delete_elem(&go_calls, &key);
	if (n <= 0 || n > 0x7fffffff)
		return 0;

	struct conn_key ck = {.pid = key.pid, .conn_id = p.conn_id};
	struct conn_state *known = bpf_map_lookup_elem(&connections, &ck);
	p.sock_id = known && known->sock_id ? known->sock_id : go_conn_socket(p.conn_id);
	emit_plaintext(pid_tgid, &p);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
