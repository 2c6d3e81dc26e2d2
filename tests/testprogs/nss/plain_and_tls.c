/* An NSS client for the bpf tier that uses NSPR's PR_Write and PR_Read on two
 * sockets: one with NSS's SSL layer pushed on it, one plain. Only the first
 * is TLS and may be reported.
 *
 *   nss_plain_and_tls TLS_PORT PLAIN_PORT REQUEST_FILE
 *     sends REQUEST_FILE's bytes over TLS to 127.0.0.1:TLS_PORT (no
 *     certificate check: a test server) and reads the response to the end;
 *     sends "plain request" to 127.0.0.1:PLAIN_PORT and reads that reply.
 *     Prints "local ADDR:PORT" (the TLS socket), then the TLS response. */
#include <nspr.h>
#include <nss.h>
#include <ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what)
{
	fprintf(stderr, "nss_plain_and_tls: %s: NSPR error %d\n", what, PR_GetError());
	exit(1);
}

static SECStatus accept_any_certificate(void *arg, PRFileDesc *fd, PRBool check_sig, PRBool is_server)
{
	(void)arg, (void)fd, (void)check_sig, (void)is_server;
	return SECSuccess;
}

static PRFileDesc *connect_loopback(int port, PRBool tls)
{
	PRNetAddr addr;
	PRFileDesc *fd = PR_OpenTCPSocket(PR_AF_INET);
	if (!fd || PR_InitializeNetAddr(PR_IpAddrLoopback, (PRUint16)port, &addr) != PR_SUCCESS)
		die("socket");
	if (tls) {
		fd = SSL_ImportFD(NULL, fd);
		if (!fd || SSL_AuthCertificateHook(fd, accept_any_certificate, NULL) != SECSuccess ||
		    SSL_SetURL(fd, "localhost") != SECSuccess || SSL_ResetHandshake(fd, PR_FALSE) != SECSuccess)
			die("SSL_ImportFD");
	}
	if (PR_Connect(fd, &addr, PR_INTERVAL_NO_TIMEOUT) != PR_SUCCESS)
		die("PR_Connect");
	return fd;
}

static void write_all(PRFileDesc *fd, const char *data, PRInt32 len)
{
	while (len > 0) {
		PRInt32 n = PR_Write(fd, data, len);
		if (n <= 0)
			die("PR_Write");
		data += n, len -= n;
	}
}

static char *read_file(const char *path, PRInt32 *len)
{
	FILE *f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0)
		die("request file");
	long size = ftell(f);
	char *data = malloc(size > 0 ? (size_t)size : 1);
	rewind(f);
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
		die("request file");
	fclose(f);
	*len = (PRInt32)size;
	return data;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: nss_plain_and_tls TLS_PORT PLAIN_PORT REQUEST_FILE\n");
		return 2;
	}
	if (NSS_NoDB_Init(NULL) != SECSuccess || NSS_SetDomesticPolicy() != SECSuccess)
		die("NSS init");
	PRInt32 request_len;
	char *request = read_file(argv[3], &request_len);
	char buf[16384];
	PRInt32 n;

	PRFileDesc *tls = connect_loopback(atoi(argv[1]), PR_TRUE);
	write_all(tls, request, request_len);
	PRNetAddr local;
	char host[64];
	if (PR_GetSockName(tls, &local) != PR_SUCCESS || PR_NetAddrToString(&local, host, sizeof(host)) != PR_SUCCESS)
		die("PR_GetSockName");
	printf("local %s:%u\n", host, PR_ntohs(local.inet.port));
	while ((n = PR_Read(tls, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	PR_Close(tls);

	PRFileDesc *plain = connect_loopback(atoi(argv[2]), PR_FALSE);
	write_all(plain, "plain request", 13);
	PR_Shutdown(plain, PR_SHUTDOWN_SEND);
	while (PR_Read(plain, buf, sizeof(buf)) > 0)
		;
	PR_Close(plain);

	free(request);
	fflush(stdout);
	NSS_Shutdown(); /* fails while NSS still caches the session: nothing to report */
	return 0;
}
