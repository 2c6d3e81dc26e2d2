/* GnuTLS: gnutls_record_send2 (what gnutls_record_send tail-calls),
 * gnutls_record_send, gnutls_record_recv and gnutls_record_recv_seq (or the
 * record layer's receive they jump to, see gnutls.cpp). All take
 * (session, data, size, ...) and return the bytes moved as ssize_t, < 0 on
 * error. The connection is the socket the session's push/pull functions use
 * during the call. */
#include "tls_call.bpf.h"

SEC("uprobe")
int BPF_KPROBE(gnutls_send_enter, void *session, const void *data)
{
	return tls_call_enter(entry_frame(ctx), session, data, 0, TLSTAP_LIB_GNUTLS, TLSTAP_FN_GNUTLS_RECORD_SEND,
			      TLSTAP_DIR_EGRESS);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_recv_enter, void *session, void *data)
{
	return tls_call_enter(entry_frame(ctx), session, data, 0, TLSTAP_LIB_GNUTLS, TLSTAP_FN_GNUTLS_RECORD_RECV,
			      TLSTAP_DIR_INGRESS);
}

#define GNUTLS_APPLICATION_DATA 23

/* The record layer's receive, _gnutls_recv_int(session, type, data, size,
 * ...), which gnutls_record_recv{,_seq} tail-jump to, or gnutls_record_recv's
 * kTLS branch (same arguments). Application data only; another record type
 * read while a TLS call runs (a handshake message) counts as nested in it. */
SEC("uprobe")
int BPF_KPROBE(gnutls_recv_record_enter, void *session, u64 type, void *data)
{
	if ((u32)type == GNUTLS_APPLICATION_DATA) /* an enum: only esi is set */
		return tls_call_enter(entry_frame(ctx), session, data, 0, TLSTAP_LIB_GNUTLS,
				      TLSTAP_FN_GNUTLS_RECORD_RECV, TLSTAP_DIR_INGRESS);
	struct tls_call *outer = current_call();
	if (outer)
		outer->nesting++;
	return 0;
}

/* A uretprobe on a record function: its ssize_t result. */
SEC("uretprobe")
int BPF_KRETPROBE(gnutls_call_exit, long ret)
{
	return tls_call_exit(ret, ret > 0);
}

/* A uprobe right after gnutls_record_recv's kTLS call: an int result, whose
 * register's upper half is not sign-extended yet. */
SEC("uprobe")
int BPF_KPROBE(gnutls_int_result)
{
	int ret = (int)PT_REGS_RC(ctx);
	return tls_call_exit(ret, ret > 0);
}

/* gnutls_deinit(session): the next session may get the same address. */
SEC("uprobe")
int BPF_KPROBE(gnutls_free, void *session)
{
	forget_connection(bpf_get_current_pid_tgid() >> 32, (u64)session);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
