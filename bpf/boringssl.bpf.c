/* BoringSSL: int SSL_write(SSL *, const void *buf, int num) and
 * int SSL_read(SSL *, void *buf, int num), probed at their entries; they
 * return the bytes moved (<= 0 on failure) through openssl_call_exit, and
 * SSL_free goes to openssl_free: same API, same programs. */
#include "tls_call.bpf.h"

SEC("uprobe")
int BPF_KPROBE(boringssl_write_enter, void *ssl, const void *buf)
{
	return tls_call_enter(entry_frame(ctx), ssl, buf, 0, TLSTAP_LIB_BORINGSSL, TLSTAP_FN_SSL_WRITE,
			      TLSTAP_DIR_EGRESS);
}

SEC("uprobe")
int BPF_KPROBE(boringssl_read_enter, void *ssl, void *buf)
{
	return tls_call_enter(entry_frame(ctx), ssl, buf, 0, TLSTAP_LIB_BORINGSSL, TLSTAP_FN_SSL_READ,
			      TLSTAP_DIR_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
