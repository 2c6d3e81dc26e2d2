/* tls_pingpong.c over NSS: 1 KiB ping-pong over loopback, a forked server
 * echoing what the client writes. Prints the mean round trip in ns; each round
 * trip is four calls (client PR_Write, server PR_Read, server PR_Write, client
 * PR_Read) on NSPR fds with NSS's SSL layer on top of the TCP socket.
 *
 *   tls_pp_nss CERT_DB NICKNAME ROUND_TRIPS
 *     CERT_DB ("sql:DIR") holds the server's certificate and key under
 *     NICKNAME; the client accepts any certificate. NSS is initialised after
 *     the fork, in each process: its PKCS#11 module refuses a forked child. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nspr.h>
#include <nss.h>
#include <pk11pub.h>
#include <private/pprio.h>
#include <ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMessage = 1024 };

static void die(const char* what) {
  fprintf(stderr, "tls_pp_nss: %s: NSPR error %d\n", what, PR_GetError());
  exit(1);
}

static int read_full(PRFileDesc* ssl, char* buf, int len) {
  for (int got = 0; got < len;) {
    PRInt32 n = PR_Read(ssl, buf + got, len - got);
    if (n <= 0) return -1;
    got += n;
  }
  return 0;
}

static SECStatus accept_any_certificate(void* arg, PRFileDesc* fd, PRBool check_sig, PRBool is_server) {
  (void)arg, (void)fd, (void)check_sig, (void)is_server;
  return SECSuccess;
}

// NSS's SSL layer over the TCP socket fd.
static PRFileDesc* import(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  PRFileDesc* tcp = PR_ImportTCPSocket(fd);
  PRFileDesc* ssl = tcp ? SSL_ImportFD(NULL, tcp) : NULL;
  if (!ssl) die("SSL_ImportFD");
  return ssl;
}

static void serve(int listener, const char* db, const char* nickname) {
  if (NSS_Init(db) != SECSuccess || NSS_SetDomesticPolicy() != SECSuccess ||
      SSL_ConfigServerSessionIDCache(1, 0, 0, NULL) != SECSuccess)
    die("server setup");
  CERTCertificate* cert = PK11_FindCertFromNickname(nickname, NULL);
  SECKEYPrivateKey* key = cert ? PK11_FindKeyByAnyCert(cert, NULL) : NULL;
  if (!key) die("server certificate");
  PRFileDesc* ssl = import(accept(listener, NULL, NULL));
  if (SSL_ConfigServerCert(ssl, cert, key, NULL, 0) != SECSuccess ||
      SSL_ResetHandshake(ssl, PR_TRUE) != SECSuccess || SSL_ForceHandshake(ssl) != SECSuccess)
    die("accept");
  char buf[kMessage];
  while (read_full(ssl, buf, kMessage) == 0)
    if (PR_Write(ssl, buf, kMessage) != kMessage) break;
  exit(0);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: tls_pp_nss CERT_DB NICKNAME ROUND_TRIPS\n");
    return 2;
  }
  long rounds = atol(argv[3]);
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(addr);
  if (bind(listener, (struct sockaddr*)&addr, sizeof(addr)) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr*)&addr, &len))
    die("listen");
  pid_t server = fork();
  if (server == 0) serve(listener, argv[1], argv[2]);
  close(listener);

  if (NSS_NoDB_Init(NULL) != SECSuccess || NSS_SetDomesticPolicy() != SECSuccess) die("client setup");
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr*)&addr, sizeof(addr))) die("connect");
  PRFileDesc* ssl = import(fd);
  if (SSL_AuthCertificateHook(ssl, accept_any_certificate, NULL) != SECSuccess ||
      SSL_SetURL(ssl, "localhost") != SECSuccess || SSL_ResetHandshake(ssl, PR_FALSE) != SECSuccess ||
      SSL_ForceHandshake(ssl) != SECSuccess)
    die("handshake");

  char buf[kMessage];
  memset(buf, 'x', sizeof(buf));
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < rounds; i++)
    if (PR_Write(ssl, buf, kMessage) != kMessage || read_full(ssl, buf, kMessage)) die("ping-pong");
  clock_gettime(CLOCK_MONOTONIC, &end);
  PR_Close(ssl);
  waitpid(server, NULL, 0);
  double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
  printf("%.0f\n", ns / rounds);
  return 0;
}
