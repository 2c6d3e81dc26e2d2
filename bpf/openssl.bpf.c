/* OpenSSL (and API-compatible builds): SSL_write, SSL_read and their _ex
 * variants. Entry remembers the buffer; one shared return program reports. */
#include "tls_call.bpf.h"

/* BPF_KPROBE/BPF_KRETPROBE only unpack pt_regs: libbpf 1.1 has no BPF_UPROBE. */

SEC("uprobe")
int BPF_KPROBE(openssl_write_enter, void *ssl, const void *buf)
{
	return tls_call_enter(ssl, buf, 0, TLSTAP_LIB_OPENSSL, TLSTAP_FN_SSL_WRITE,
			      TLSTAP_DIR_EGRESS);
}

SEC("uprobe")
int BPF_KPROBE(openssl_read_enter, void *ssl, void *buf)
{
	return tls_call_enter(ssl, buf, 0, TLSTAP_LIB_OPENSSL, TLSTAP_FN_SSL_READ,
			      TLSTAP_DIR_INGRESS);
}

SEC("uprobe")
int BPF_KPROBE(openssl_write_ex_enter, void *ssl, const void *buf, u64 num, u64 *written)
{
	return tls_call_enter(ssl, buf, written, TLSTAP_LIB_OPENSSL, TLSTAP_FN_SSL_WRITE_EX,
			      TLSTAP_DIR_EGRESS);
}

SEC("uprobe")
int BPF_KPROBE(openssl_read_ex_enter, void *ssl, void *buf, u64 num, u64 *readbytes)
{
	return tls_call_enter(ssl, buf, readbytes, TLSTAP_LIB_OPENSSL, TLSTAP_FN_SSL_READ_EX,
			      TLSTAP_DIR_INGRESS);
}

/* int SSL_write/SSL_read: bytes moved, <= 0 on failure.
 * int SSL_write_ex/SSL_read_ex: 1 on success with the count in *len_ptr. */
SEC("uretprobe")
int BPF_KRETPROBE(openssl_call_exit, int ret)
{
	return tls_call_exit(ret, ret == 1);
}

char LICENSE[] SEC("license") = "GPL";
