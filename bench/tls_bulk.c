/* Bulk transfer through one TLS connection over loopback with libssl (dynamic).
 *
 *   tls_bulk send CERT KEY BYTES WRITE_SIZE [staged]
 *     generates BYTES of deterministic pseudo-random data, listens on 127.0.0.1,
 *     prints "port P sha256 HEX" (flushed), accepts one connection and writes
 *     the data with SSL_write calls of WRITE_SIZE bytes; staged: each from one
 *     buffer the chunk is first copied to, as a file server reads a file into
 *     its buffer, rather than from wherever it lies in the data.
 *   tls_bulk recv PORT BYTES
 *     connects, reads BYTES and prints the ns from the end of the handshake to
 *     the last byte read.
 *   tls_bulk gen BYTES
 *     writes the data `send` sends to stdout: the reference for a capture.
 *
 * Two processes so that a capture can be limited to the sender's pid. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kReadSize = 16384 };

static void die(const char* what) {
  fprintf(stderr, "tls_bulk: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

// xorshift64*: cheap, deterministic, and no period within 256 MiB.
static unsigned char* make_data(size_t size) {
  unsigned char* data = malloc(size + sizeof(uint64_t));
  if (!data) die("out of memory");
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < size; i += sizeof(uint64_t)) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t word = state * 0x2545f4914f6cdd1dull;
    memcpy(data + i, &word, sizeof(word));
  }
  return data;
}

static void print_sha256(const unsigned char* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(data, size, digest, &digest_len, EVP_sha256(), NULL) != 1) die("sha256");
  for (unsigned int i = 0; i < digest_len; i++) printf("%02x", digest[i]);
}

static int send_data(const char* cert, const char* key, size_t size, size_t write_size, int staged) {
  unsigned char* data = make_data(size);
  unsigned char* stage = staged ? malloc(write_size) : NULL;
  if (staged && !stage) die("out of memory");
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
    die("server setup");
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(addr);
  if (bind(listener, (struct sockaddr*)&addr, sizeof(addr)) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr*)&addr, &len))
    die("listen");
  printf("port %d sha256 ", ntohs(addr.sin_port));
  print_sha256(data, size);
  printf("\n");
  fflush(stdout);

  int fd = accept(listener, NULL, NULL);
  if (fd < 0) die("accept");
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) die("handshake");
  for (size_t sent = 0; sent < size;) {
    size_t chunk = size - sent < write_size ? size - sent : write_size;
    const unsigned char* from = data + sent;
    if (stage) from = memcpy(stage, from, chunk);
    int n = SSL_write(ssl, from, (int)chunk);
    if (n <= 0) die("write");
    sent += (size_t)n;
  }
  SSL_shutdown(ssl);
  close(fd);
  return 0;
}

static int receive_data(int port, size_t size) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {
      .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons((uint16_t)port)};
  if (connect(fd, (struct sockaddr*)&addr, sizeof(addr))) die("connect");
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) die("handshake");

  static char buf[kReadSize];
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (size_t got = 0; got < size;) {
    int n = SSL_read(ssl, buf, sizeof(buf));
    if (n <= 0) die("read: connection ended early");
    got += (size_t)n;
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  close(fd);
  printf("%.0f\n", (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec));
  return 0;
}

static int write_data(size_t size) {
  unsigned char* data = make_data(size);
  return fwrite(data, 1, size, stdout) == size && fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "gen") == 0) return write_data(strtoull(argv[2], NULL, 10));
  int staged = argc == 7 && strcmp(argv[6], "staged") == 0;
  if ((argc == 6 || staged) && strcmp(argv[1], "send") == 0)
    return send_data(argv[2], argv[3], strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10), staged);
  if (argc == 4 && strcmp(argv[1], "recv") == 0)
    return receive_data(atoi(argv[2]), strtoull(argv[3], NULL, 10));
  fprintf(stderr, "usage: tls_bulk send CERT KEY BYTES WRITE_SIZE [staged] | recv PORT BYTES | gen BYTES\n");
  return 2;
}
