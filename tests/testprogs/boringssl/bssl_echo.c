/* A TLS server and client over BoringSSL (Debian's android-libboringssl), one
 * binary, for the bpf tier. Each side also uses one plain TCP socket, whose
 * bytes must not be reported as TLS.
 *
 *   bssl_echo server CERT KEY REQUEST_LEN RESPONSE_FILE
 *     prints "TLS_PORT PLAIN_PORT", serves one TLS connection (reads exactly
 *     REQUEST_LEN bytes, answers RESPONSE_FILE's bytes in one SSL_write, closes),
 *     then one plain connection (reads to EOF, answers "plain reply"), and
 *     prints the TLS peer's address.
 *   bssl_echo client TLS_PORT PLAIN_PORT REQUEST_FILE
 *     sends REQUEST_FILE's bytes in one SSL_write, reads the response to the
 *     end, then sends "plain request" on a plain connection and reads its
 *     reply; prints its TLS local address and the response length.
 *
 * test_static_openssl.py builds it against OpenSSL 3 too, where -DECHO_EX_CALLS
 * makes it move its bytes with SSL_write_ex/SSL_read_ex instead. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "bssl_echo: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* SSL_write/SSL_read's contract (bytes moved, <= 0 on failure) either way. */
static int echo_write(SSL *ssl, const void *buf, int num)
{
#ifdef ECHO_EX_CALLS
	size_t written = 0;
	return SSL_write_ex(ssl, buf, (size_t)num, &written) == 1 ? (int)written : -1;
#else
	return SSL_write(ssl, buf, num);
#endif
}

static int echo_read(SSL *ssl, void *buf, int num)
{
#ifdef ECHO_EX_CALLS
	size_t got = 0;
	return SSL_read_ex(ssl, buf, (size_t)num, &got) == 1 ? (int)got : -1;
#else
	return SSL_read(ssl, buf, num);
#endif
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0)
		die("cannot open input file");
	long size = ftell(f);
	unsigned char *data = malloc(size > 0 ? (size_t)size : 1);
	rewind(f);
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
		die("cannot read input file");
	fclose(f);
	*len = (size_t)size;
	return data;
}

static int listen_loopback(unsigned short *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 4) != 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
		die("cannot listen");
	*port = ntohs(addr.sin_port);
	return fd;
}

static int connect_loopback(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((unsigned short)port)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		die("cannot connect");
	return fd;
}

static void print_address(const char *label, const struct sockaddr_in *addr)
{
	char host[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &addr->sin_addr, host, sizeof(host));
	printf("%s %s:%u\n", label, host, ntohs(addr->sin_port));
}

/* Plain TCP: writes `request`, half-closes, answers to EOF: never TLS. */
static void plain_exchange(int fd, const char *request)
{
	char buf[256];
	if (request && (write(fd, request, strlen(request)) < 0 || shutdown(fd, SHUT_WR) != 0))
		die("plain write failed");
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (!request && write(fd, "plain reply", 11) != 11)
		die("plain reply failed");
	close(fd);
}

static int server(const char *cert, const char *key, size_t request_len, const char *response_file)
{
	size_t response_len;
	unsigned char *response = read_file(response_file, &response_len);
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		die("cannot load the certificate");
	unsigned short tls_port, plain_port;
	int tls_listener = listen_loopback(&tls_port), plain_listener = listen_loopback(&plain_port);
	printf("%u %u\n", tls_port, plain_port);
	fflush(stdout);

	struct sockaddr_in peer;
	socklen_t peer_len = sizeof(peer);
	int fd = accept(tls_listener, (struct sockaddr *)&peer, &peer_len);
	SSL *ssl = SSL_new(ctx);
	if (fd < 0 || !ssl || !SSL_set_fd(ssl, fd) || SSL_accept(ssl) != 1)
		die("TLS accept failed");
	unsigned char buf[16384];
	size_t got = 0;
	while (got < request_len) {
		size_t want = request_len - got < sizeof(buf) ? request_len - got : sizeof(buf);
		int n = echo_read(ssl, buf, (int)want);
		if (n <= 0)
			die("SSL_read failed");
		got += (size_t)n;
	}
	if (echo_write(ssl, response, (int)response_len) != (int)response_len)
		die("SSL_write failed");
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	print_address("peer", &peer);
	fflush(stdout);

	plain_exchange(accept(plain_listener, NULL, NULL), NULL);
	SSL_CTX_free(ctx);
	free(response);
	return 0;
}

static int client(int tls_port, int plain_port, const char *request_file)
{
	size_t request_len;
	unsigned char *request = read_file(request_file, &request_len);
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	int fd = connect_loopback(tls_port);
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	if (!ssl || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1)
		die("TLS connect failed");
	if (echo_write(ssl, request, (int)request_len) != (int)request_len)
		die("SSL_write failed");
	unsigned char buf[16384];
	size_t response_len = 0;
	int n;
	while ((n = echo_read(ssl, buf, sizeof(buf))) > 0)
		response_len += (size_t)n;
	struct sockaddr_in local;
	socklen_t local_len = sizeof(local);
	getsockname(fd, (struct sockaddr *)&local, &local_len);
	SSL_free(ssl);
	close(fd);

	plain_exchange(connect_loopback(plain_port), "plain request");
	print_address("local", &local);
	printf("response_len %zu\n", response_len);
	SSL_CTX_free(ctx);
	free(request);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "server") == 0)
		return server(argv[2], argv[3], strtoul(argv[4], NULL, 10), argv[5]);
	if (argc == 5 && strcmp(argv[1], "client") == 0)
		return client(atoi(argv[2]), atoi(argv[3]), argv[4]);
	fprintf(stderr, "usage: bssl_echo server CERT KEY REQUEST_LEN RESPONSE_FILE | "
			"client TLS_PORT PLAIN_PORT REQUEST_FILE\n");
	return 2;
}
