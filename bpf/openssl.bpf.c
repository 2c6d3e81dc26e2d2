/* OpenSSL's internal write and read functions, which SSL_write, SSL_read and
 * their _ex twins call (the public functions themselves, where these are not
 * located, go to c_call.bpf.c), and SSL_free. */
#include "tls_call.bpf.h"

/* Cheaper sites, used when the public functions can be traced to the internal
 * write/read they call (see DESIGN.md): entry and return probes on the
 * internal function only (its entry is typically an emulated push), which
 * also see the SSL BIO's direct calls. Internal signature:
 * int ssl_{write,read}_internal(SSL *, void *buf, size_t num, size_t *processed),
 * returning > 0 on success.
 *
 * Cookie: the internal function (enum tlstap_function) in bits 0-7, and where
 * the public function and its _ex twin call it from: the return address of
 * each call as an offset from the internal entry, which the load address does
 * not change, signed 28-bit in bits 8-35 (plain) and 36-63 (_ex); 0: none. */
static __always_inline u8 caller_of_internal(struct pt_regs *ctx, u64 cookie)
{
	u64 return_address = 0;
#if defined(__TARGET_ARCH_x86)
	/* the probe is on the entry instruction: the return address is on top of the stack */
	bpf_probe_read_user(&return_address, sizeof(return_address), (const void *)PT_REGS_SP(ctx));
#elif defined(__TARGET_ARCH_arm64)
	return_address = ctx->regs[30];
#endif
	s64 offset = (s64)(return_address - PT_REGS_IP(ctx));
	s64 plain = (s64)(cookie << 28) >> 36;
	s64 ex = (s64)cookie >> 36;
	u8 internal = cookie & 0xff;
	bool writes = internal == TLSTAP_FN_SSL_WRITE_INTERNAL;
	if (plain && offset == plain)
		return writes ? TLSTAP_FN_SSL_WRITE : TLSTAP_FN_SSL_READ;
	if (ex && offset == ex)
		return writes ? TLSTAP_FN_SSL_WRITE_EX : TLSTAP_FN_SSL_READ_EX;
	return internal;
}

static __always_inline u8 direction_of(u8 function)
{
	return function == TLSTAP_FN_SSL_WRITE || function == TLSTAP_FN_SSL_WRITE_EX ||
		       function == TLSTAP_FN_SSL_WRITE_INTERNAL
		   ? TLSTAP_DIR_EGRESS
		   : TLSTAP_DIR_INGRESS;
}

static __always_inline int internal_start(struct pt_regs *ctx, bool in_session)
{
	u8 function = caller_of_internal(ctx, bpf_get_attach_cookie(ctx));
	/* on the entry instruction, and the cookie means the caller */
	return tls_call_start(PT_REGS_SP(ctx), (void *)PT_REGS_PARM1(ctx), (void *)PT_REGS_PARM2(ctx),
			      (void *)PT_REGS_PARM4(ctx), TLSTAP_LIB_OPENSSL, function,
			      direction_of(function), in_session);
}

SEC("uprobe")
int openssl_internal_enter(struct pt_regs *ctx)
{
	internal_start(ctx, false);
	return 0; /* see TLS_CALL_FOLLOWED */
}

SEC("uretprobe")
int BPF_KRETPROBE(openssl_internal_exit, int ret)
{
	return tls_call_exit(ret, ret > 0);
}

/* Both of the above as one uprobe session (Linux 6.13+), loaded with that
 * attach type when the kernel has it: a call filtered out at its entry then
 * costs its thread no return trap. */
SEC("uprobe")
int openssl_internal_session(struct pt_regs *ctx)
{
	if (!session_returning(ctx))
		return internal_start(ctx, true);
	int ret = (int)PT_REGS_RC(ctx);
	return tls_call_exit(ret, ret > 0);
}

/* SSL_free(ssl): the next SSL_new may return the same address. */
SEC("uprobe")
int BPF_KPROBE(openssl_free, void *ssl)
{
	forget_connection(bpf_get_current_pid_tgid() >> 32, (u64)ssl);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
