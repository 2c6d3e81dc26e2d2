/* tls_pingpong.c over GnuTLS: 1 KiB ping-pong over loopback, a forked server
 * echoing what the client writes. Prints the mean round trip in ns; each round
 * trip is four record calls (client send, server recv, server send, client recv).
 *
 *   tls_pp_gnutls CERT KEY ROUND_TRIPS   (PEM files; the client checks nothing) */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMessage = 1024 };

// error: a GnuTLS error code, 0 for none.
static void die(const char* what, int error) {
  fprintf(stderr, "tls_pp_gnutls: %s%s%s\n", what, error ? ": " : "", error ? gnutls_strerror(error) : "");
  exit(1);
}

static int read_full(gnutls_session_t session, char* buf, int len) {
  for (int got = 0; got < len;) {
    ssize_t n = gnutls_record_recv(session, buf + got, len - got);
    if (n <= 0) return -1;
    got += n;
  }
  return 0;
}

// A session on fd, handshake done; cert and key only for the server.
static gnutls_session_t start(int fd, unsigned flags, const char* cert, const char* key) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  gnutls_certificate_credentials_t credentials;
  gnutls_session_t session;
  int r = gnutls_certificate_allocate_credentials(&credentials);
  if (r == 0 && cert) r = gnutls_certificate_set_x509_key_file(credentials, cert, key, GNUTLS_X509_FMT_PEM);
  if (r == 0) r = gnutls_init(&session, flags);
  if (r == 0) r = gnutls_set_default_priority(session);
  if (r == 0) r = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, credentials);
  if (r < 0) die("setup", r);
  gnutls_transport_set_int(session, fd);
  do r = gnutls_handshake(session);
  while (r < 0 && !gnutls_error_is_fatal(r));
  if (r < 0) die("handshake", r);
  return session;
}

static void serve(int listener, const char* cert, const char* key) {
  gnutls_session_t session = start(accept(listener, NULL, NULL), GNUTLS_SERVER, cert, key);
  char buf[kMessage];
  while (read_full(session, buf, kMessage) == 0)
    if (gnutls_record_send(session, buf, kMessage) != kMessage) break;
  exit(0);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: tls_pp_gnutls CERT KEY ROUND_TRIPS\n");
    return 2;
  }
  long rounds = atol(argv[3]);
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(addr);
  if (bind(listener, (struct sockaddr*)&addr, sizeof(addr)) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr*)&addr, &len))
    die("listen", 0);
  pid_t server = fork();
  if (server == 0) serve(listener, argv[1], argv[2]);
  close(listener);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr*)&addr, sizeof(addr))) die("connect", 0);
  gnutls_session_t session = start(fd, GNUTLS_CLIENT, NULL, NULL);

  char buf[kMessage];
  memset(buf, 'x', sizeof(buf));
  struct timespec start_time, end;
  clock_gettime(CLOCK_MONOTONIC, &start_time);
  for (long i = 0; i < rounds; i++)
    if (gnutls_record_send(session, buf, kMessage) != kMessage || read_full(session, buf, kMessage))
      die("ping-pong", 0);
  clock_gettime(CLOCK_MONOTONIC, &end);
  gnutls_bye(session, GNUTLS_SHUT_WR);
  close(fd);
  waitpid(server, NULL, 0);
  double ns = (end.tv_sec - start_time.tv_sec) * 1e9 + (end.tv_nsec - start_time.tv_nsec);
  printf("%.0f\n", ns / rounds);
  return 0;
}
