/* NSS: the SSL layer's own I/O functions in libssl3 (ssl_Write, ssl_Read,
 * ssl_Send, ssl_Recv), which NSPR's PR_Write/PR_Read/PR_Send/PR_Recv reach
 * through the socket's layer stack only when it holds NSS's SSL layer: plain
 * NSPR sockets never get here (user space finds the functions in libssl3's
 * method table; src/tls/nss_methods.h). All take (PRFileDesc *fd, buf, len,
 * ...) and return the bytes moved as PRInt32, < 0 on error, through
 * openssl_call_exit; ssl_Close goes to openssl_free. The SSL layer's
 * PRFileDesc is the connection. */
#include "tls_call.bpf.h"

SEC("uprobe")
int BPF_KPROBE(nss_write_enter, void *fd, const void *buf)
{
	return tls_call_enter(entry_frame(ctx), fd, buf, 0, TLSTAP_LIB_NSS, TLSTAP_FN_NSS_PR_WRITE, TLSTAP_DIR_EGRESS);
}

SEC("uprobe")
int BPF_KPROBE(nss_read_enter, void *fd, void *buf)
{
	return tls_call_enter(entry_frame(ctx), fd, buf, 0, TLSTAP_LIB_NSS, TLSTAP_FN_NSS_PR_READ, TLSTAP_DIR_INGRESS);
}

SEC("uprobe")
int BPF_KPROBE(nss_send_enter, void *fd, const void *buf)
{
	return tls_call_enter(entry_frame(ctx), fd, buf, 0, TLSTAP_LIB_NSS, TLSTAP_FN_NSS_PR_SEND, TLSTAP_DIR_EGRESS);
}

SEC("uprobe")
int BPF_KPROBE(nss_recv_enter, void *fd, void *buf)
{
	return tls_call_enter(entry_frame(ctx), fd, buf, 0, TLSTAP_LIB_NSS, TLSTAP_FN_NSS_PR_RECV, TLSTAP_DIR_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
