/* Per library connection (pid, SSL*): its kernel socket, addresses, role
 * and the next stream offset of each direction. Filled from the socket a
 * TLS call uses; for libraries driven through memory BIOs (node, gRPC), whose
 * calls touch no socket, from the socket the same thread uses next. */
#ifndef TLSTAP_CONN_BPF_H
#define TLSTAP_CONN_BPF_H

#include "common.bpf.h"

/* How long after a socket-less TLS call the thread's next socket write may be
 * taken as that connection's socket. */
#define TLSTAP_BIND_WINDOW_NS (1000ULL * 1000 * 1000)

struct conn_key {
	u32 pid;
	u32 pad;
	u64 conn_id;
};

struct conn_state {
	u64 uid; /* unique on the host: tells reused SSL* and sock addresses apart */
	u64 sock_id;
	u64 stream_offset[2]; /* next offset per direction (egress, ingress) */
	struct tlstap_conn_tuple tuple;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} connections SEC(".maps") __weak;

/* A connection whose socket is not known yet, per thread that last used it. */
struct unbound_conn {
	u64 conn_id;
	u64 since_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64); /* pid_tgid */
	__type(value, struct unbound_conn);
} unbound_conns SEC(".maps") __weak;

static __always_inline void read_tuple(struct tlstap_conn_tuple *t, u64 sock_id)
{
	struct sock *sk = (struct sock *)sock_id;
	t->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	t->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (t->family == AF_INET) {
		bpf_core_read(t->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->remote_addr, 4, &sk->__sk_common.skc_daddr);
	} else if (t->family == AF_INET6) {
		bpf_core_read(t->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	u8 *role = bpf_map_lookup_elem(&socket_roles, &sock_id);
	t->role = role ? *role : TLSTAP_ROLE_UNKNOWN;
}

/* Whether sock_id still is the connection the tuple was read from: freed
 * sockets are reallocated at the same address for the next connection. */
static __always_inline bool same_connection(u64 sock_id, const struct tlstap_conn_tuple *t)
{
	struct sock *sk = (struct sock *)sock_id;
	u16 local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	/* A closed socket has given its port back (0) while data it received is
	 * still being read: still the same connection. */
	return local_port == 0 ||
	       (local_port == t->local_port &&
		bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)) == t->remote_port);
}

/* The state of (pid, conn_id) as used with sock_id (0: no socket seen).
 * A different socket under the same SSL*, or the same socket address now
 * holding another connection, means a new connection: offsets restart. */
static __always_inline struct conn_state *resolve_connection(u32 pid, u64 conn_id, u64 sock_id)
{
	struct conn_key key = {.pid = pid, .conn_id = conn_id};
	struct conn_state *state = bpf_map_lookup_elem(&connections, &key);
	if (state && (sock_id == 0 ||
		      (sock_id == state->sock_id && same_connection(sock_id, &state->tuple))))
		return state;
	if (state && state->sock_id == 0) {
		/* first socket seen for a connection whose data we already reported */
		state->sock_id = sock_id;
		read_tuple(&state->tuple, sock_id);
		return state;
	}
	struct conn_state fresh = {
	    .uid = bpf_ktime_get_ns() ^ ((u64)bpf_get_smp_processor_id() << 56),
	    .sock_id = sock_id,
	};
	if (sock_id)
		read_tuple(&fresh.tuple, sock_id);
	/* A first call on two threads at once (a Go server's first Read and Write):
	 * the first state created wins and both use it. A stale one is replaced. */
	bpf_map_update_elem(&connections, &key, &fresh, state ? BPF_ANY : BPF_NOEXIST);
	return bpf_map_lookup_elem(&connections, &key);
}

/* The library freed its connection object: the address will be reused. User
 * space hears of it behind the connection's data, on the same ring. */
static __always_inline void forget_connection(u32 pid, u64 conn_id)
{
	struct conn_key key = {.pid = pid, .conn_id = conn_id};
	struct conn_state *state = bpf_map_lookup_elem(&connections, &key);
	if (!state)
		return;
	struct tlstap_conn_closed_event *e = bpf_ringbuf_reserve(&data_events, sizeof(*e), 0);
	if (e) {
		e->kind = TLSTAP_EVENT_CONN_CLOSED;
		e->pid = pid;
		e->timestamp_ns = bpf_ktime_get_boot_ns();
		e->conn_uid = state->uid;
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	} else {
		count_drop(TLSTAP_DROP_CONTROL_LOST, 0);
	}
	bpf_map_delete_elem(&connections, &key);
}

/* After a TLS call that touched no socket: if its connection has none yet,
 * let the thread's next socket write name it. */
static __always_inline void remember_unbound(u64 pid_tgid, u64 conn_id)
{
	struct conn_key key = {.pid = pid_tgid >> 32, .conn_id = conn_id};
	struct conn_state *state = bpf_map_lookup_elem(&connections, &key);
	if (state && state->sock_id)
		return;
	struct unbound_conn unbound = {.conn_id = conn_id, .since_ns = bpf_ktime_get_ns()};
	bpf_map_update_elem(&unbound_conns, &pid_tgid, &unbound, BPF_ANY);
}

/* A socket write outside any TLS call: the memory-BIO library's ciphertext
 * on its way out, right after the call that produced it. */
static __always_inline void bind_unbound(u64 pid_tgid, u64 sock_id)
{
	struct unbound_conn *unbound = bpf_map_lookup_elem(&unbound_conns, &pid_tgid);
	if (!unbound)
		return;
	if (bpf_ktime_get_ns() - unbound->since_ns < TLSTAP_BIND_WINDOW_NS)
		resolve_connection(pid_tgid >> 32, unbound->conn_id, sock_id);
	bpf_map_delete_elem(&unbound_conns, &pid_tgid);
}

#endif /* TLSTAP_CONN_BPF_H */
