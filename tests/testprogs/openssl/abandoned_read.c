/* A TLS client that leaves one SSL_read with longjmp, out of a BIO callback
 * (as an error handler of some runtimes does), and then makes a plain HTTPS
 * request on the same thread. The abandoned call never returns, so tlstap
 * never sees its return: the request and response that follow must still be
 * captured, and the abandoned call counted.
 *
 *   abandoned_read HOST PORT CAFILE PATH MODE    writes the response to stdout
 *
 * MODE says which of the two runs 8 KiB deeper in the stack (their own frames
 * are small: buffers are static):
 *   abandon-deeper   the abandoned SSL_read (the request's calls are shallower)
 *   request-deeper   the request (its calls run below the abandoned call, over
 *                    stack memory the 8 KiB step has zeroed) */
#include <openssl/err.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "https_get.h"

static jmp_buf escape;

static int fail(const char *what)
{
	fprintf(stderr, "abandoned_read: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static long leave_before_reading(BIO *bio, int oper, const char *argp, size_t len, int argi, long argl,
				 int ret, size_t *processed)
{
	(void)bio, (void)argp, (void)len, (void)argi, (void)argl, (void)processed;
	if (oper == BIO_CB_READ)
		longjmp(escape, 1);
	return ret;
}

/* An SSL_read that starts a handshake over memory BIOs and is left by
 * longjmp when it reads. */
static __attribute__((noinline)) int abandon_read(void)
{
	SSL *ssl = SSL_new(ctx);
	BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
	BIO_set_callback_ex(in, leave_before_reading);
	SSL_set_bio(ssl, in, out);
	SSL_set_connect_state(ssl);
	static char buffer[256];
	if (setjmp(escape) == 0) {
		SSL_read(ssl, buffer, sizeof(buffer));
		fail("SSL_read returned instead of being left");
	}
	return 0;
}

/* Runs `step` 8 KiB further down the stack. */
static __attribute__((noinline)) int deeper(int (*step)(void))
{
	volatile char pad[8192];
	memset((char *)pad, 0, sizeof(pad));
	return step() + pad[0]; /* used after the call: no tail call */
}

int main(int argc, char **argv)
{
	if (argc != 6)
		fail("usage: abandoned_read HOST PORT CAFILE PATH abandon-deeper|request-deeper");
	set_up_client(argv);
	if (strcmp(argv[5], "abandon-deeper") == 0)
		return deeper(abandon_read) + request();
	if (strcmp(argv[5], "request-deeper") == 0)
		return abandon_read() + deeper(request);
	fail("unknown mode");
}
