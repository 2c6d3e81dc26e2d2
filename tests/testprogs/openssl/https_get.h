/* One HTTPS GET on a connection of its own, shared by the C test programs:
 * they call set_up_client() and define fail(). */
#ifndef TLSTAP_TESTPROGS_HTTPS_GET_H
#define TLSTAP_TESTPROGS_HTTPS_GET_H

#include <netdb.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static SSL_CTX *ctx;
static const char *host, *port, *path;
static int fail(const char *what);

static int connect_to(void)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found;
	if (getaddrinfo(host, port, &hints, &found) != 0)
		return -1;
	int fd = socket(found->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(found);
	return fd;
}

/* GET path on a real connection; the response goes to stdout. */
static __attribute__((noinline)) int request(void)
{
	int fd = connect_to();
	if (fd < 0)
		fail("cannot connect");
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		fail("handshake failed");
	static char text[512];
	int length = snprintf(text, sizeof(text),
			      "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", path, host, port);
	if (SSL_write(ssl, text, length) != length)
		fail("SSL_write failed");
	static char buffer[16384];
	int n;
	while ((n = SSL_read(ssl, buffer, sizeof(buffer))) > 0)
		fwrite(buffer, 1, n, stdout);
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	return 0;
}

/* Takes HOST PORT CAFILE PATH from argv[1..4] and makes the verifying
 * client context. */
static void set_up_client(char **argv)
{
	host = argv[1], port = argv[2], path = argv[4];
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1)
		fail("cannot set up the TLS context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
}

#endif
