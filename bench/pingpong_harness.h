/* What every 1 KiB ping-pong program shares, whatever its TLS library: a
 * loopback listener, a forked server echoing each message, and the client's
 * timed loop. Prints the mean round trip in ns; each round trip is four TLS
 * calls (client write, server read, server write, client read). A program
 * supplies its library's five calls and calls pingpong_main. */
#ifndef TLSTAP_BENCH_PINGPONG_HARNESS_H
#define TLSTAP_BENCH_PINGPONG_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kPingpongMessage = 1024 };

struct pingpong_library {
  /* A TLS session over the connected fd, handshake done: the server's in the
   * forked child, the client's in the parent. argv is the program's. */
  void* (*server_session)(int fd, char** argv);
  void* (*client_session)(int fd, char** argv);
  int (*write)(void* session, const char* buf, int len); /* bytes written */
  int (*read)(void* session, char* buf, int len);        /* bytes read, <= 0 at the end */
  void (*close)(void* session);
};

static void pingpong_fail(const char* program, const char* what) {
  fprintf(stderr, "%s: %s\n", program, what);
  exit(1);
}

static int pingpong_read_full(const struct pingpong_library* lib, void* session, char* buf, int len) {
  for (int got = 0; got < len;) {
    int n = lib->read(session, buf + got, len - got);
    if (n <= 0) return -1;
    got += n;
  }
  return 0;
}

static void pingpong_no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void pingpong_serve(const struct pingpong_library* lib, int listener, char** argv) {
  int fd = accept(listener, NULL, NULL);
  pingpong_no_delay(fd);
  void* session = lib->server_session(fd, argv);
  char buf[kPingpongMessage];
  while (pingpong_read_full(lib, session, buf, kPingpongMessage) == 0)
    if (lib->write(session, buf, kPingpongMessage) != kPingpongMessage) break;
  exit(0);
}

/* usage: PROGRAM ARG1 ARG2 ROUND_TRIPS (what ARG1 and ARG2 are is the library's). */
static int pingpong_main(int argc, char** argv, const char* usage, const struct pingpong_library* lib) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    return 2;
  }
  long rounds = atol(argv[3]);
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(addr);
  if (bind(listener, (struct sockaddr*)&addr, sizeof(addr)) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr*)&addr, &len))
    pingpong_fail(argv[0], "listen");
  pid_t server = fork();
  if (server == 0) pingpong_serve(lib, listener, argv);
  close(listener);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  pingpong_no_delay(fd);
  if (connect(fd, (struct sockaddr*)&addr, sizeof(addr))) pingpong_fail(argv[0], "connect");
  void* session = lib->client_session(fd, argv);
  char buf[kPingpongMessage];
  memset(buf, 'x', sizeof(buf));
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < rounds; i++)
    if (lib->write(session, buf, kPingpongMessage) != kPingpongMessage ||
        pingpong_read_full(lib, session, buf, kPingpongMessage))
      pingpong_fail(argv[0], "ping-pong");
  clock_gettime(CLOCK_MONOTONIC, &end);
  lib->close(session);
  close(fd);
  waitpid(server, NULL, 0);
  double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
  printf("%.0f\n", ns / rounds);
  return 0;
}

#endif
