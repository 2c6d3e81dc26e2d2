/* Connection identity from socket tracepoints: which kernel socket a TLS call
 * in progress uses, and whether that socket connected or was accepted. */
#include "conn.bpf.h"

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7

static __always_inline bool is_tcp(struct trace_event_raw_sock_msg_length *ctx)
{
	return ctx->protocol == IPPROTO_TCP && (ctx->family == AF_INET || ctx->family == AF_INET6);
}

/* The socket a TLS call in progress on this thread uses. */
static __always_inline struct tls_call *
note_socket_of_call(struct trace_event_raw_sock_msg_length *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tls_call *call = bpf_map_lookup_elem(&active_calls, &pid_tgid);
	if (call)
		call->sock_id = (u64)ctx->sk;
	return call;
}

SEC("tp/sock/sock_send_length")
int sock_send(struct trace_event_raw_sock_msg_length *ctx)
{
	if (is_tcp(ctx) && !note_socket_of_call(ctx))
		bind_unbound(bpf_get_current_pid_tgid(), (u64)ctx->sk);
	return 0;
}

SEC("tp/sock/sock_recv_length")
int sock_recv(struct trace_event_raw_sock_msg_length *ctx)
{
	if (is_tcp(ctx))
		note_socket_of_call(ctx);
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
