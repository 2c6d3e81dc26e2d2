/* GnuTLS: its record send and receive calls go to c_call.bpf.c; here are the
 * int result after gnutls_record_recv's kTLS call (gnutls.cpp), and
 * gnutls_deinit. */
#include "tls_call.bpf.h"

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
