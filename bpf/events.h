/* The only definitions shared by the kernel side and the user side.
 * Plain C with fixed-width types so both compilers lay them out identically. */
#ifndef TLSTAP_EVENTS_H
#define TLSTAP_EVENTS_H

#ifdef __BPF__
typedef __u8 tt_u8;
typedef __u16 tt_u16;
typedef __u32 tt_u32;
typedef __u64 tt_u64;
#else
#include <stdint.h>
typedef uint8_t tt_u8;
typedef uint16_t tt_u16;
typedef uint32_t tt_u32;
typedef uint64_t tt_u64;
#endif

#define TLSTAP_COMM_LEN 16
/* Cgroups a --cgroup filter can name. */
#define TLSTAP_CGROUP_FILTER_MAX 16
/* Network namespaces a --netns filter can name. */
#define TLSTAP_NETNS_FILTER_MAX 64
/* Largest payload carried by one data event; bigger calls are split into
 * consecutive chunks. A power of two so the verifier can bound reads. */
#define TLSTAP_CHUNK_MAX 16384

enum tlstap_event_kind {
	TLSTAP_EVENT_DATA = 1,
	TLSTAP_EVENT_EXEC = 2,	       /* a process executed a new image */
	TLSTAP_EVENT_EXIT = 3,	       /* a process (thread group) ended */
	TLSTAP_EVENT_LIBS_CHANGED = 4, /* the dynamic loader mapped or unmapped libraries */
	TLSTAP_EVENT_EXIT_IN_CALL = 5, /* a thread ended inside a TLS call */
	TLSTAP_EVENT_CONN_CLOSED = 6,  /* the library freed a connection (data ring) */
	TLSTAP_EVENT_CGROUP_MADE = 7,  /* a cgroup v2 directory was made (cgroup_id: its id) */
	TLSTAP_EVENT_CGROUP_JOINED = 8, /* a process moved into a cgroup v2 directory (cgroup_id) */
};

enum tlstap_library {
	TLSTAP_LIB_UNKNOWN = 0,
	TLSTAP_LIB_OPENSSL = 1,
	TLSTAP_LIB_GO = 2, /* Go's crypto/tls */
	TLSTAP_LIB_GNUTLS = 3,
	TLSTAP_LIB_BORINGSSL = 4,
	TLSTAP_LIB_NSS = 5,
	TLSTAP_LIB_MAX = TLSTAP_LIB_NSS,
};

enum tlstap_function {
	TLSTAP_FN_SSL_WRITE = 1,
	TLSTAP_FN_SSL_READ = 2,
	TLSTAP_FN_SSL_WRITE_EX = 3,
	TLSTAP_FN_SSL_READ_EX = 4,
	/* OpenSSL's internal write/read that every public function funnels
	 * into, called directly by its SSL BIO (BIO_f_ssl) */
	TLSTAP_FN_SSL_WRITE_INTERNAL = 5,
	TLSTAP_FN_SSL_READ_INTERNAL = 6,
	TLSTAP_FN_GO_WRITE = 7, /* crypto/tls.(*Conn).Write */
	TLSTAP_FN_GO_READ = 8,	/* crypto/tls.(*Conn).Read */
	TLSTAP_FN_GNUTLS_RECORD_SEND = 9,
	TLSTAP_FN_GNUTLS_RECORD_RECV = 10,
	/* NSPR calls that reached NSS's SSL layer */
	TLSTAP_FN_NSS_PR_WRITE = 11,
	TLSTAP_FN_NSS_PR_READ = 12,
	TLSTAP_FN_NSS_PR_SEND = 13,
	TLSTAP_FN_NSS_PR_RECV = 14,
	TLSTAP_FN_MAX = TLSTAP_FN_NSS_PR_RECV,
};

/* Cookie of a Go probe: its enum tlstap_function in the low byte, and flags.
 * STACK_CHECK: the probe sits on the prologue's stack-check branch, where a
 * Write is captured whole before it starts (see gotls.bpf.c).
 * ABI0: the binary passes arguments and results on the stack (Go before 1.17
 * on amd64, 1.18 on arm64); on amd64 g is then in thread-local storage, at
 * a signed 16-bit offset from the thread pointer (bits 32-47). */
#define TLSTAP_GO_SITE_STACK_CHECK 0x100
#define TLSTAP_GO_ABI0 0x200
#define TLSTAP_GO_TLS_G_SHIFT 32
/* And the byte offsets on the way from a *tls.Conn to its socket's fd (the
 * binary's DWARF or tlstap's table; go_binary.h, GoConnLayout): tls.Conn.conn's
 * data word (8 bits), net.conn.fd in TCPConn (6 bits), Sysfd in netFD (8
 * bits), and netFD.family in 8-byte words (8 bits; 0: not checked), which
 * with sotype after it tells a real netFD from whatever a wrapper holds. */
#define TLSTAP_GO_TCPCONN_FD_SHIFT 10
#define TLSTAP_GO_CONN_DATA_SHIFT 16
#define TLSTAP_GO_SYSFD_SHIFT 24
#define TLSTAP_GO_NETFD_FAMILY_SHIFT 48

/* Cookie of a C library's call (c_call.bpf.c): the low 32 bits are how far
 * the prologue had moved the stack pointer where the entry probe sits (0 on
 * the entry itself), then its enum tlstap_library and enum tlstap_function,
 * and flags. EGRESS: the call writes. COUNT_IN_ARG4: SSL_*_ex, returning 1
 * with the count in *arg4. TYPED_RECORD: GnuTLS's record layer, (session,
 * type, data, ...), application data only. RETURNS_LONG: an ssize_t result
 * (else an int). */
#define TLSTAP_C_CALL_LIBRARY_SHIFT 32
#define TLSTAP_C_CALL_FUNCTION_SHIFT 40
#define TLSTAP_C_CALL_EGRESS (1ULL << 48)
#define TLSTAP_C_CALL_COUNT_IN_ARG4 (1ULL << 49)
#define TLSTAP_C_CALL_TYPED_RECORD (1ULL << 50)
#define TLSTAP_C_CALL_RETURNS_LONG (1ULL << 51)

enum tlstap_direction {
	TLSTAP_DIR_EGRESS = 1,	/* plaintext the process sends */
	TLSTAP_DIR_INGRESS = 2, /* plaintext the process received */
};

enum tlstap_role {
	TLSTAP_ROLE_UNKNOWN = 0,
	TLSTAP_ROLE_CLIENT = 1,
	TLSTAP_ROLE_SERVER = 2,
};

/* Why data could not be delivered; each has an event and a byte counter. */
enum tlstap_drop_reason {
	TLSTAP_DROP_RINGBUF_FULL = 0, /* consumer too slow: ring buffer had no room */
	TLSTAP_DROP_READ_FAILED = 1,  /* user memory unreadable (paged out, unmapped) */
	TLSTAP_DROP_CONTROL_LOST = 2, /* exec/exit/library/close event lost (its ring full) */
	/* a TLS call left without its return seen (longjmp, an exception): what it moved is unknown */
	TLSTAP_DROP_RETURN_UNSEEN = 3,
	TLSTAP_DROP_REASON_MAX = 4,
};

struct tlstap_drop_counter {
	tt_u64 events;
	tt_u64 bytes;
};

/* One TCP endpoint pair as seen by the traced process. Addresses in network
 * byte order, IPv4 in the first 4 bytes; ports in host byte order. */
struct tlstap_conn_tuple {
	tt_u16 family; /* AF_INET, AF_INET6, 0 when unknown */
	tt_u16 local_port;
	tt_u16 remote_port;
	tt_u8 role; /* enum tlstap_role */
	tt_u8 pad;
	tt_u8 local_addr[16];
	tt_u8 remote_addr[16];
};

struct tlstap_data_event {
	tt_u32 kind; /* TLSTAP_EVENT_DATA */
	tt_u32 pid;  /* thread group id */
	tt_u32 tid;
	tt_u8 library;	 /* enum tlstap_library */
	tt_u8 function;	 /* enum tlstap_function */
	tt_u8 direction; /* enum tlstap_direction */
	tt_u8 pad;
	tt_u64 timestamp_ns;  /* CLOCK_BOOTTIME when the bytes changed hands: a write's start, a read's end */
	tt_u64 conn_id;	      /* library connection object (SSL*), reused after it is freed */
	tt_u64 conn_uid;      /* this connection, unique on the host */
	tt_u64 sock_id;	      /* kernel socket of the connection, 0 when not seen yet */
	tt_u64 stream_offset; /* offset of data[0] in this direction's plaintext stream */
	tt_u32 call_len;      /* bytes the whole call transferred */
	tt_u32 chunk_offset;  /* offset of data[0] within the call */
	tt_u32 len;	      /* valid bytes in data[] */
	tt_u32 pad2;
	char comm[TLSTAP_COMM_LEN]; /* 8-byte aligned */
	struct tlstap_conn_tuple conn;
	/* followed by len bytes of payload, then slack the reader ignores */
};

/* On the data ring, behind the connection's last data: nothing follows it. */
struct tlstap_conn_closed_event {
	tt_u32 kind; /* TLSTAP_EVENT_CONN_CLOSED */
	tt_u32 pid;
	tt_u64 timestamp_ns;
	tt_u64 conn_uid;
};

#define TLSTAP_PATH_MAX 256

/* When user space must look at a new image's mappings. */
enum tlstap_exec_look {
	TLSTAP_EXEC_LOOK_NOW = 0,
	/* Its interpreter is a dynamic loader tlstap has probed, which reports
	 * at start-up, the libraries mapped, any file tlstap has not looked at. */
	TLSTAP_EXEC_LOOK_AT_LOADER_REPORT = 1,
	/* A program without an interpreter (static) that tlstap has looked at and
	 * found without TLS: it maps nothing else to look at. */
	TLSTAP_EXEC_LOOK_NEVER = 2,
};

struct tlstap_process_event {
	tt_u32 kind; /* EXEC, EXIT, LIBS_CHANGED, EXIT_IN_CALL, CGROUP_MADE or CGROUP_JOINED */
	tt_u32 pid;
	tt_u32 tid;
	tt_u32 netns; /* the network namespace's inode number */
	tt_u64 timestamp_ns;
	tt_u64 cgroup_id; /* the cgroup v2 directory's inode number (CGROUP_*: the new or joined one's) */
	tt_u64 exe_inode; /* EXEC: the new image's inode number; 0 otherwise */
	tt_u32 look; /* EXEC: TLSTAP_EXEC_LOOK_* */
	tt_u32 reserved;
	char comm[TLSTAP_COMM_LEN];
	char filename[TLSTAP_PATH_MAX]; /* EXEC: the path executed, as given to execve */
};

/* Files user space has looked at, by the device and inode a process maps:
 * a dynamic loader whose hook it probed (the exec of a program it interprets
 * need not wake user space), or a file without TLS (a loader's report of
 * libraries all looked at already need not be sent). */
#define TLSTAP_KNOWN_FILES_MAX 16384
/* In the loader probe's cookie, beside the hook's distance to _r_debug: the
 * loader chains every link-map namespace's rendezvous to it (glibc 2.35+). */
#define TLSTAP_LOADER_CHAINS_NAMESPACES 0x8000000000000000ULL
enum tlstap_known_file_kind {
	TLSTAP_FILE_WITHOUT_TLS = 1,
	TLSTAP_FILE_PROBED_LOADER = 2,
};
struct tlstap_file_key {
	tt_u64 inode;
	tt_u32 dev; /* the kernel's dev_t: major << 20 | minor */
	tt_u32 pad;
};
struct tlstap_known_file {
	tt_u64 ctime_sec; /* as user space saw it: another file on a reused inode number has another */
	tt_u32 ctime_nsec;
	tt_u32 kind; /* TLSTAP_FILE_* */
};

#endif /* TLSTAP_EVENTS_H */
