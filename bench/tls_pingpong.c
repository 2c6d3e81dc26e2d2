/* 1 KiB TLS ping-pong over loopback with libssl (dynamic): a forked server
 * echoes what the client writes. Prints the mean round trip in ns; each round
 * trip is four SSL calls (client write, server read, server write, client read). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMessage = 1024 };

static void die(const char *what)
{
	fprintf(stderr, "tls_pingpong: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static int read_full(SSL *ssl, char *buf, int len)
{
	for (int got = 0; got < len;) {
		int n = SSL_read(ssl, buf + got, len - got);
		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

static void serve(int listener, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		die("server setup");
	int fd = accept(listener, NULL, NULL);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		die("accept");
	char buf[kMessage];
	while (read_full(ssl, buf, kMessage) == 0)
		if (SSL_write(ssl, buf, kMessage) != kMessage)
			break;
	exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: tls_pingpong CERT KEY ROUND_TRIPS\n");
		return 2;
	}
	long rounds = atol(argv[3]);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) || listen(listener, 1) ||
	    getsockname(listener, (struct sockaddr *)&addr, &len))
		die("listen");
	pid_t server = fork();
	if (server == 0)
		serve(listener, argv[1], argv[2]);
	close(listener);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		die("connect");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		die("handshake");

	char buf[kMessage];
	memset(buf, 'x', sizeof(buf));
	struct timespec start, end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 0; i < rounds; i++)
		if (SSL_write(ssl, buf, kMessage) != kMessage || read_full(ssl, buf, kMessage))
			die("ping-pong");
	clock_gettime(CLOCK_MONOTONIC, &end);
	SSL_shutdown(ssl);
	close(fd);
	waitpid(server, NULL, 0);
	double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
	printf("%.0f\n", ns / rounds);
	return 0;
}
