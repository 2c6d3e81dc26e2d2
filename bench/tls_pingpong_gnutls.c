/* The 1 KiB TLS ping-pong (pingpong_harness.h) over GnuTLS's record calls.
 *
 *   tls_pp_gnutls CERT KEY ROUND_TRIPS   (PEM files; the client checks nothing) */
#include <gnutls/gnutls.h>

#include "pingpong_harness.h"

// error: a GnuTLS error code, 0 for none.
static void die(const char* what, int error) {
  fprintf(stderr, "tls_pp_gnutls: %s%s%s\n", what, error ? ": " : "", error ? gnutls_strerror(error) : "");
  exit(1);
}

// A session on fd, handshake done; cert and key only for the server.
static gnutls_session_t start(int fd, unsigned flags, const char* cert, const char* key) {
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

static void* server_session(int fd, char** argv) {
  return start(fd, GNUTLS_SERVER, argv[1], argv[2]);
}
static void* client_session(int fd, char** argv) {
  (void)argv;
  return start(fd, GNUTLS_CLIENT, NULL, NULL);
}
static int send_record(void* session, const char* buf, int len) {
  return gnutls_record_send(session, buf, len);
}
static int recv_record(void* session, char* buf, int len) {
  return gnutls_record_recv(session, buf, len);
}
static void bye(void* session) {
  gnutls_bye(session, GNUTLS_SHUT_WR);
}

int main(int argc, char** argv) {
  const struct pingpong_library gnutls = {server_session, client_session, send_record, recv_record, bye};
  return pingpong_main(argc, argv, "CERT KEY ROUND_TRIPS", &gnutls);
}
