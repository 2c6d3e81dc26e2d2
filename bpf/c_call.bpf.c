/* The C libraries' TLS calls: OpenSSL's public functions (where its internal
 * ones are not located, openssl.bpf.c), BoringSSL's SSL_write/SSL_read,
 * GnuTLS's record send and receive, NSS's SSL layer I/O. Each takes
 * (connection, buffer, ...) and returns what it moved, so one entry program,
 * one return program and one session program serve them all: the attach
 * cookie says which call a probe is on (TLSTAP_C_CALL_* in events.h), and
 * user space sets it from the probe plan (tracer.cpp). The connection is the
 * first argument: the SSL*, the gnutls_session_t, NSS's SSL-layer PRFileDesc. */
#include "tls_call.bpf.h"

#define GNUTLS_APPLICATION_DATA 23

static __always_inline u8 cookie_byte(u64 cookie, int shift)
{
	return (cookie >> shift) & 0xff;
}

static __always_inline int c_call_start(struct pt_regs *ctx, bool in_session)
{
	u64 cookie = bpf_get_attach_cookie(ctx);
	/* Read up front: a register chosen by the cookie would have clang select
	 * a pointer into ctx, which the verifier refuses. */
	u64 arg1 = PT_REGS_PARM1(ctx), arg2 = PT_REGS_PARM2(ctx), arg3 = PT_REGS_PARM3(ctx),
	    arg4 = PT_REGS_PARM4(ctx);
	barrier_var(arg2);
	barrier_var(arg3);
	barrier_var(arg4);
	u64 buf = arg2;
	if (cookie & TLSTAP_C_CALL_TYPED_RECORD) {
		/* An enum: only esi is set. Another record type read while a TLS
		 * call runs (a handshake message) counts as nested in it. */
		if ((u32)arg2 != GNUTLS_APPLICATION_DATA) {
			struct tls_call *outer = current_call();
			if (!outer || in_session)
				return TLS_CALL_UNFOLLOWED;
			outer->nesting++;
			return TLS_CALL_FOLLOWED;
		}
		buf = arg3;
	}
	u64 count = cookie & TLSTAP_C_CALL_COUNT_IN_ARG4 ? arg4 : 0;
	return tls_call_start(entry_frame(ctx, cookie), (const void *)arg1, (const void *)buf, (const void *)count,
			      cookie_byte(cookie, TLSTAP_C_CALL_LIBRARY_SHIFT),
			      cookie_byte(cookie, TLSTAP_C_CALL_FUNCTION_SHIFT),
			      cookie & TLSTAP_C_CALL_EGRESS ? TLSTAP_DIR_EGRESS : TLSTAP_DIR_INGRESS, in_session);
}

static __always_inline int c_call_return(struct pt_regs *ctx)
{
	/* an int result's register is not sign-extended in its upper half */
	long ret = bpf_get_attach_cookie(ctx) & TLSTAP_C_CALL_RETURNS_LONG ? (long)PT_REGS_RC(ctx)
									   : (int)PT_REGS_RC(ctx);
	/* SSL_*_ex: 1 on success, with the count in *arg4 */
	return tls_call_exit(ret, ret == 1);
}

SEC("uprobe")
int c_call_enter(struct pt_regs *ctx)
{
	c_call_start(ctx, false);
	return 0; /* see TLS_CALL_FOLLOWED */
}

SEC("uretprobe")
int c_call_exit(struct pt_regs *ctx)
{
	return c_call_return(ctx);
}

/* Both as one uprobe session (Linux 6.13+), loaded with that attach type when
 * the kernel has it: a call filtered out at its entry costs no return trap. */
SEC("uprobe")
int c_call_session(struct pt_regs *ctx)
{
	if (session_returning(ctx))
		return c_call_return(ctx);
	return c_call_start(ctx, true);
}

char LICENSE[] SEC("license") = "GPL";
