/* The 1 KiB TLS ping-pong (pingpong_harness.h) over NSS: PR_Write and PR_Read
 * on NSPR fds with NSS's SSL layer on top of the TCP socket.
 *
 *   tls_pp_nss CERT_DB NICKNAME ROUND_TRIPS
 *     CERT_DB ("sql:DIR") holds the server's certificate and key under
 *     NICKNAME; the client accepts any certificate. NSS is initialised after
 *     the fork, in each process: its PKCS#11 module refuses a forked child. */
#include <nspr.h>
#include <nss.h>
#include <pk11pub.h>
#include <private/pprio.h>
#include <ssl.h>

#include "pingpong_harness.h"

static void die(const char* what) {
  fprintf(stderr, "tls_pp_nss: %s: NSPR error %d\n", what, PR_GetError());
  exit(1);
}

static SECStatus accept_any_certificate(void* arg, PRFileDesc* fd, PRBool check_sig, PRBool is_server) {
  (void)arg, (void)fd, (void)check_sig, (void)is_server;
  return SECSuccess;
}

// NSS's SSL layer over the TCP socket fd.
static PRFileDesc* import(int fd) {
  PRFileDesc* tcp = PR_ImportTCPSocket(fd);
  PRFileDesc* ssl = tcp ? SSL_ImportFD(NULL, tcp) : NULL;
  if (!ssl) die("SSL_ImportFD");
  return ssl;
}

static void* server_session(int fd, char** argv) {
  if (NSS_Init(argv[1]) != SECSuccess || NSS_SetDomesticPolicy() != SECSuccess ||
      SSL_ConfigServerSessionIDCache(1, 0, 0, NULL) != SECSuccess)
    die("server setup");
  CERTCertificate* cert = PK11_FindCertFromNickname(argv[2], NULL);
  SECKEYPrivateKey* key = cert ? PK11_FindKeyByAnyCert(cert, NULL) : NULL;
  if (!key) die("server certificate");
  PRFileDesc* ssl = import(fd);
  if (SSL_ConfigServerCert(ssl, cert, key, NULL, 0) != SECSuccess ||
      SSL_ResetHandshake(ssl, PR_TRUE) != SECSuccess || SSL_ForceHandshake(ssl) != SECSuccess)
    die("accept");
  return ssl;
}

static void* client_session(int fd, char** argv) {
  (void)argv;
  if (NSS_NoDB_Init(NULL) != SECSuccess || NSS_SetDomesticPolicy() != SECSuccess) die("client setup");
  PRFileDesc* ssl = import(fd);
  if (SSL_AuthCertificateHook(ssl, accept_any_certificate, NULL) != SECSuccess ||
      SSL_SetURL(ssl, "localhost") != SECSuccess || SSL_ResetHandshake(ssl, PR_FALSE) != SECSuccess ||
      SSL_ForceHandshake(ssl) != SECSuccess)
    die("handshake");
  return ssl;
}

static int write_nspr(void* ssl, const char* buf, int len) {
  return PR_Write(ssl, buf, len);
}
static int read_nspr(void* ssl, char* buf, int len) {
  return PR_Read(ssl, buf, len);
}
// Closes the fd too: pingpong_main's close of it then fails harmlessly.
static void close_nspr(void* ssl) {
  PR_Close(ssl);
}

int main(int argc, char** argv) {
  const struct pingpong_library nss = {server_session, client_session, write_nspr, read_nspr, close_nspr};
  return pingpong_main(argc, argv, "CERT_DB NICKNAME ROUND_TRIPS", &nss);
}
