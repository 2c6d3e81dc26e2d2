/* The 1 KiB TLS ping-pong (pingpong_harness.h) over libssl, dynamic; built a
 * second time against BoringSSL, whose API is OpenSSL's here.
 *
 *   tls_pingpong CERT KEY ROUND_TRIPS   (PEM files; the client checks nothing) */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "pingpong_harness.h"

static void die(const char* what) {
  fprintf(stderr, "tls_pingpong: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

static void* server_session(int fd, char** argv) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1)
    die("server setup");
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) die("accept");
  return ssl;
}

static void* client_session(int fd, char** argv) {
  (void)argv;
  SSL* ssl = SSL_new(SSL_CTX_new(TLS_client_method()));
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) die("handshake");
  return ssl;
}

static int write_ssl(void* ssl, const char* buf, int len) {
  return SSL_write(ssl, buf, len);
}
static int read_ssl(void* ssl, char* buf, int len) {
  return SSL_read(ssl, buf, len);
}
static void close_ssl(void* ssl) {
  SSL_shutdown(ssl);
}

int main(int argc, char** argv) {
  const struct pingpong_library openssl = {server_session, client_session, write_ssl, read_ssl, close_ssl};
  return pingpong_main(argc, argv, "CERT KEY ROUND_TRIPS", &openssl);
}
