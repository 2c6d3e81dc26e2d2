/* Connection identity from socket tracepoints: which kernel socket a TLS call
 * in progress uses, and whether that socket connected or was accepted. */
#include "conn.bpf.h"

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7

/* BTF tracepoints: the program gets the tracepoint's own arguments, read
 * directly, where a classic one first has the kernel build a trace record;
 * these fire on every socket send and receive of the host. */
static __always_inline bool is_tcp(const struct sock *sk)
{
	u16 family = sk->__sk_common.skc_family;
	return sk->sk_protocol == IPPROTO_TCP && (family == AF_INET || family == AF_INET6);
}

/* The socket a TLS call in progress on this thread uses. */
static __always_inline struct tls_call *note_socket_of_call(const struct sock *sk)
{
	struct tls_call *call = current_call();
	if (call)
		call->sock_id = (u64)sk;
	return call;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	if (is_tcp(sk) && !note_socket_of_call(sk))
		bind_unbound(bpf_get_current_pid_tgid(), (u64)sk);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	if (is_tcp(sk))
		note_socket_of_call(sk);
	return 0;
}

SEC("tp/sock/inet_sock_set_state")
int sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	u64 sock_id = (u64)ctx->skaddr;
	u8 role;
	if (ctx->newstate == TCP_SYN_SENT)
		role = TLSTAP_ROLE_CLIENT;
	else if (ctx->oldstate == TCP_SYN_RECV && ctx->newstate == TCP_ESTABLISHED)
		role = TLSTAP_ROLE_SERVER;
	else {
		if (ctx->newstate == TCP_CLOSE)
			bpf_map_delete_elem(&socket_roles, &sock_id);
		return 0;
	}
	bpf_map_update_elem(&socket_roles, &sock_id, &role, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
