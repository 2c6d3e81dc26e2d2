/* A process whose main thread leaves with pthread_exit while another thread
 * goes on: the process lives until that thread ends. The worker makes one
 * HTTPS request, then waits for a line on stdin, then makes another: both
 * must be captured as this process's, the second after the main thread has
 * long gone.
 *
 *   leader_exits HOST PORT CAFILE PATH    writes both responses to stdout
 *
 * Prints "leader gone" to stderr once the main thread has exited. */
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "https_get.h"

static int fail(const char *what)
{
	fprintf(stderr, "leader_exits: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* Until the thread group's leader is a zombie: /proc/PID/stat says 'Z'. */
static void wait_for_leader_exit(void)
{
	char name[64], stat[256];
	snprintf(name, sizeof(name), "/proc/%d/stat", getpid());
	for (;;) {
		FILE *f = fopen(name, "r");
		size_t n = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
		if (f)
			fclose(f);
		stat[n] = 0;
		char *state = strrchr(stat, ')');
		if (state && state[1] == ' ' && state[2] == 'Z')
			return;
		usleep(10000);
	}
}

static void *worker(void *unused)
{
	(void)unused;
	wait_for_leader_exit();
	fprintf(stderr, "leader gone\n");
	request();
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		fail("stdin closed before the second request");
	request();
	fflush(stdout);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		fail("usage: leader_exits HOST PORT CAFILE PATH");
	set_up_client(argv);
	pthread_t thread;
	if (pthread_create(&thread, NULL, worker, NULL) != 0)
		fail("cannot start the worker");
	pthread_exit(NULL);
}
