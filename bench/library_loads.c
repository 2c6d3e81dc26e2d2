/* Loads and unloads a library (dlopen, dlclose) `turns` times and prints the
 * turns per second: each turn makes the dynamic loader call its debugger hook
 * four times, where tlstap's loader probes sit (bench/run.py library-loads).
 *
 *     library_loads LIBRARY TURNS
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s LIBRARY TURNS\n", argv[0]);
		return 2;
	}
	long turns = atol(argv[2]);
	double start = seconds();
	for (long i = 0; i < turns; i++) {
		void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		if (!library || dlclose(library) != 0) {
			fprintf(stderr, "%s: %s\n", argv[1], dlerror());
			return 1;
		}
	}
	printf("%.1f\n", turns / (seconds() - start));
	return 0;
}
