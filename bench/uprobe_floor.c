/* What this machine charges a traced thread, per event, before tlstap runs any
 * code: a system call, and a uprobe (counting perf event, no BPF, no trace
 * record) on each kind of first instruction tlstap meets. The ratios between
 * machines differ by an order of magnitude (a KVM guest traps an emulated
 * uprobe in ~0.4 us; a paravirtualized guest whose every kernel entry switches
 * page tables through the hypervisor takes several us), so bench/run.py prints
 * these figures beside its table.
 *
 *   uprobe_floor [CALLS]   prints one line per kind: "kind ns_per_call"; the
 *   last, an entry uprobe and a uretprobe on one function starting with push,
 *   is what each TLS call tlstap follows in a C library costs before its BPF
 *   programs run.
 *
 *   uprobe_floor hold CPU FILE OFFSET[r]...   puts counting uprobes
 *   (uretprobes with the r suffix, offsets in hex) on FILE in every process,
 *   prints "ready", and when its standard input closes prints "hits N", the
 *   hits on CPU (where the caller pins the workload, so that other processes'
 *   calls on the other CPUs are not counted), and removes them: the floor
 *   under tlstap at the very sites it chose, in a real program.
 *
 *   uprobe_floor map FILE OFFSET...   what each mapping of FILE (as every
 *   process maps the dynamic loader) costs with a uprobe at each OFFSET (hex),
 *   against one without, alternately: the kernel installs each breakpoint as
 *   the file is mapped, on a private copy of its page. Prints "map_probed ns"
 *   (the difference per mmap).
 *
 * Run as root (perf_event_open on a uprobe). x86-64 only. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Each function starts with the instruction its name says, then returns n+1. */
long first_push(long n);
long first_nop5(long n);
long first_sub_rsp(long n);
__asm__(".text\n"
	".globl first_push\n.type first_push,@function\nfirst_push:\n"
	"  push %rbx\n  lea 1(%rdi),%rax\n  pop %rbx\n  ret\n"
	/* nopl 0x0(%rax,%rax,1), spelled out: assemblers shorten it */
	".globl first_nop5\n.type first_nop5,@function\nfirst_nop5:\n"
	"  .byte 0x0f,0x1f,0x44,0x00,0x00\n  lea 1(%rdi),%rax\n  ret\n"
	".globl first_sub_rsp\n.type first_sub_rsp,@function\nfirst_sub_rsp:\n"
	"  sub $8,%rsp\n  lea 1(%rdi),%rax\n  add $8,%rsp\n  ret\n"
	);

typedef long (*function)(long);

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static double time_calls(function f, long calls)
{
	volatile long sink = 0;
	double start = now_ns();
	for (long i = 0; i < calls; i++)
		sink += f(i);
	return (now_ns() - start) / calls;
}

static long getppid_syscall(long n)
{
	return syscall(SYS_getppid) + n;
}

static int read_sysfs_int(const char *path)
{
	FILE *f = fopen(path, "r");
	int value = -1;
	if (f) {
		if (fscanf(f, "%d", &value) != 1)
			value = -1;
		fclose(f);
	}
	return value;
}

/* The file offset of `f` in this executable: its address minus where the
 * executable's first mapping starts (a position-independent executable's
 * text is at file offset == vaddr - load base). */
static uint64_t file_offset_of(function f)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	char line[512], self[256];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	uint64_t base = 0;
	if (!maps || n < 0)
		return 0;
	self[n] = 0;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long start, end, offset;
		if (sscanf(line, "%lx-%lx %*s %lx", &start, &end, &offset) == 3 && strstr(line, self)) {
			base = start - offset;
			break;
		}
	}
	fclose(maps);
	return (uint64_t)(uintptr_t)f - base;
}

/* A counting uprobe (or uretprobe) at `offset` of `path`, in process `pid`
 * (-1: every process, then on `cpu` only). */
static int open_file_uprobe(const char *path, uint64_t offset, int is_return, pid_t pid, int cpu)
{
	int type = read_sysfs_int("/sys/bus/event_source/devices/uprobe/type");
	if (type < 0)
		return -1;
	struct perf_event_attr attr = {
	    .type = (uint32_t)type,
	    .size = sizeof(attr),
	    .config = is_return ? 1 : 0, /* format/retprobe: config:0 */
	    .config1 = (uint64_t)(uintptr_t)path,
	    .config2 = offset,
	    .disabled = 1,
	};
	return (int)syscall(SYS_perf_event_open, &attr, pid, cpu, -1, 0);
}

/* A counting uprobe (or uretprobe) on `f` in this process. */
static int open_uprobe(function f, int is_return)
{
	static char self[256];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -1;
	self[n] = 0;
	return open_file_uprobe(self, file_offset_of(f), is_return, 0, -1);
}

/* hold mode: argv is CPU FILE OFFSET[r]... */
static int hold(int argc, char **argv)
{
	enum { MAX_FDS = 4096 };
	static int fds[MAX_FDS];
	int count = 0;
	int cpu = atoi(argv[0]);
	for (int i = 2; i < argc; i++) {
		char *end;
		uint64_t offset = strtoull(argv[i], &end, 16);
		int is_return = *end == 'r';
		if (count == MAX_FDS) {
			fprintf(stderr, "uprobe_floor: more than %d probes asked for\n", MAX_FDS);
			return 1;
		}
		int fd = open_file_uprobe(argv[1], offset, is_return, -1, cpu);
		if (fd < 0) {
			fprintf(stderr, "uprobe_floor: uprobe at %s+%s on cpu %d: %s\n", argv[1], argv[i], cpu,
				strerror(errno));
			return 1;
		}
		ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
		fds[count++] = fd;
	}
	printf("ready\n");
	fflush(stdout);
	char buffer[256];
	while (read(0, buffer, sizeof(buffer)) > 0)
		;
	uint64_t total = 0;
	for (int i = 0; i < count; i++) {
		uint64_t hits = 0;
		if (read(fds[i], &hits, sizeof(hits)) == sizeof(hits))
			total += hits;
		close(fds[i]);
	}
	printf("hits %llu\n", (unsigned long long)total);
	return 0;
}

static void report(const char *kind, double ns);

/* ns per mmap of the whole file open as fd, where the kernel installs the
 * breakpoints; not its munmap, whose flush of each page from the first
 * breakpoint's to the last a process's exit does not make (it flushes all at
 * once). */
static double time_mappings(int fd, size_t size, long mappings)
{
	double spent = 0;
	for (long i = 0; i < mappings; i++) {
		double start = now_ns();
		void *p = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
		spent += now_ns() - start;
		if (p == MAP_FAILED)
			return -1;
		munmap(p, size);
	}
	return spent / mappings;
}

/* Counting uprobes at each of offsets on file, in every process (one per
 * CPU), as tlstap's are: installed at each mapping, whoever maps. */
static int open_everywhere(const char *file, int offsets, char **offset, int *fds, int max_fds)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int count = 0;
	for (int i = 0; i < offsets; i++) {
		for (int cpu = 0; cpu < cpus; cpu++) {
			int fd = count < max_fds ? open_file_uprobe(file, strtoull(offset[i], NULL, 16), 0, -1, cpu) : -1;
			if (fd < 0) {
				fprintf(stderr, "uprobe_floor: uprobe at %s+%s: %s\n", file, offset[i],
					count < max_fds ? strerror(errno) : "too many");
				while (count > 0)
					close(fds[--count]);
				return -1;
			}
			ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
			fds[count++] = fd;
		}
	}
	return count;
}

/* map mode: argv is FILE OFFSET... */
static int map_cost(int argc, char **argv)
{
	enum { MAX_FDS = 1024, MAPPINGS = 2000, ROUNDS = 5 };
	static int fds[MAX_FDS];
	int file = open(argv[0], O_RDONLY);
	struct stat st;
	if (file < 0 || fstat(file, &st) != 0) {
		fprintf(stderr, "uprobe_floor: %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	double without = 0, with = 0;
	for (int round = 0; round < ROUNDS; round++) {
		double plain = time_mappings(file, (size_t)st.st_size, MAPPINGS);
		int count = open_everywhere(argv[0], argc - 1, argv + 1, fds, MAX_FDS);
		if (count < 0)
			return 1;
		double probed = time_mappings(file, (size_t)st.st_size, MAPPINGS);
		while (count > 0)
			close(fds[--count]);
		if (plain < 0 || probed < 0) {
			fprintf(stderr, "uprobe_floor: mmap of %s: %s\n", argv[0], strerror(errno));
			return 1;
		}
		without += plain;
		with += probed;
	}
	report("map_probed", (with - without) / ROUNDS);
	return 0;
}

static void report(const char *kind, double ns)
{
	printf("%s %.0f\n", kind, ns);
	fflush(stdout);
}

/* Times `calls` calls of f with an entry uprobe and/or a uretprobe on it:
 * probes & 1 entry, probes & 2 return. */
enum { ENTRY = 1, RETURN = 2 };

static int probe_and_time(const char *kind, function f, int probes, long calls)
{
	int fds[2] = {-1, -1}, failed = 0;
	for (int i = 0; i < 2; i++) {
		if (!(probes & (1 << i)))
			continue;
		fds[i] = open_uprobe(f, i == 1);
		if (fds[i] < 0) {
			fprintf(stderr, "uprobe_floor: perf_event_open(uprobe for %s): %s\n", kind,
				strerror(errno));
			failed = 1;
		} else {
			ioctl(fds[i], PERF_EVENT_IOC_ENABLE, 0);
		}
	}
	double ns = 0;
	if (!failed) {
		time_calls(f, 100); /* the first hit is where the kernel optimizes a nop5 */
		ns = time_calls(f, calls);
	}
	for (int i = 0; i < 2; i++) {
		uint64_t hits = 0;
		if (fds[i] < 0)
			continue;
		if (!failed && (read(fds[i], &hits, sizeof(hits)) != sizeof(hits) || hits < (uint64_t)calls)) {
			fprintf(stderr, "uprobe_floor: a probe for %s fired %llu times for %ld calls\n", kind,
				(unsigned long long)hits, calls);
			failed = 1;
		}
		close(fds[i]);
	}
	if (!failed)
		report(kind, ns);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc > 3 && strcmp(argv[1], "hold") == 0)
		return hold(argc - 2, argv + 2);
	if (argc > 3 && strcmp(argv[1], "map") == 0)
		return map_cost(argc - 2, argv + 2);
	long calls = argc > 1 ? atol(argv[1]) : 20000;
	int failed = 0;
	report("call", time_calls(first_push, calls * 10));
	report("syscall", time_calls(getppid_syscall, calls));
	failed |= probe_and_time("uprobe_push", first_push, ENTRY, calls);
	failed |= probe_and_time("uprobe_nop5", first_nop5, ENTRY, calls);
	failed |= probe_and_time("uprobe_sub_rsp", first_sub_rsp, ENTRY, calls);
	failed |= probe_and_time("uretprobe_push", first_push, RETURN, calls);
	/* what each C library call tlstap follows pays the kernel: both, on an emulated entry */
	failed |= probe_and_time("entry_and_return_push", first_push, ENTRY | RETURN, calls);
	return failed;
}
