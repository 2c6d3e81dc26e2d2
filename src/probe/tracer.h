// The loaded BPF side: owns the skeleton, the tracepoint links and every
// uprobe link, and exposes the two ring buffers and the drop counters.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/file_id.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "probe/bpf_handles.h"
#include "probe/kernel_features.h"

extern "C" {
#include "events.h"
}

namespace tlstap {

// The uprobe programs user space can attach; tracepoints attach on load.
enum class UprobeProgram {
  openssl_write_enter,
  openssl_read_enter,
  openssl_write_ex_enter,
  openssl_read_ex_enter,
  openssl_call_exit,       // uretprobe
  openssl_internal_enter,  // cookie: the internal function and its callers (openssl.bpf.c)
  openssl_internal_exit,   // uretprobe
  gnutls_send_enter,
  gnutls_recv_enter,
  gnutls_recv_record_enter,  // the record layer's receive: application data only
  gnutls_call_exit,          // uretprobe
  gnutls_int_result,         // after a call returning int
  gnutls_free,               // gnutls_deinit: forget the connection
  go_tls_enter,              // cookie: TLSTAP_FN_GO_WRITE / _READ
  go_tls_return,             // on a return instruction
  go_tls_read_copy,          // on Read's runtime.memmove call
  go_tls_close,              // cookie: TLSTAP_GO_SITE_STACK_CHECK or 0
  openssl_free,              // SSL_free: forget the connection (OpenSSL and BoringSSL)
  boringssl_write_enter,     // SSL_write; returns through openssl_call_exit
  boringssl_read_enter,      // SSL_read; likewise
  nss_write_enter,           // NSS's SSL layer; returns through openssl_call_exit
  nss_read_enter,
  nss_send_enter,
  nss_recv_enter,
  loader_libs_changed,
};

struct TracerConfig {
  std::vector<uint32_t> pids;      // empty: every process
  std::vector<std::string> comms;  // empty: every command name
  // Only processes in these cgroup v2 directories (or below them) are traced
  // when any is given, or when cgroup_filter: more can be added later
  // (add_cgroup), so the filter may start empty and trace nothing yet.
  bool cgroup_filter = false;
  std::vector<std::string> cgroups;
  std::vector<uint32_t> netns;  // network namespaces' inode numbers; empty: every namespace
  uint32_t data_ring_bytes = 32u << 20;
  uint32_t max_connections = 65536;  // the kernel's `connections` LRU map (and `socket_roles`, if larger)
};

using DropCounters = std::array<tlstap_drop_counter, TLSTAP_DROP_REASON_MAX>;
using EventHandler = std::function<void(std::span<const std::byte>)>;

class Tracer {
 public:
  static Result<Tracer> load(const TracerConfig& config, const KernelFeatures& features);

  // Attaches `program` at `file_offset` of the file at `path`, in every
  // process, or with --pid alone in those processes only (the kernel then
  // plants no breakpoint elsewhere: other users of a library do not trap);
  // the program reads `cookie` with bpf_get_attach_cookie(). The probes of
  // one `group` (a file's) are detached together.
  using UprobeGroup = uint64_t;
  Result<void> attach_uprobe(UprobeGroup group, UprobeProgram program, const std::string& path,
                             uint64_t file_offset, bool is_return, uint64_t cookie = 0);
  // Whether `entry` and a uretprobe `exit` on the same function entry can run
  // as one uprobe session program here (Linux 6.13+): a call its entry
  // filters out then takes no return trap.
  bool has_session(UprobeProgram entry, UprobeProgram exit) const;
  // Attaches them so, like attach_uprobe (`cookie`: the entry's); all or
  // nothing, so that the two can be attached apart instead.
  Result<void> attach_session(UprobeGroup group, UprobeProgram entry, UprobeProgram exit,
                              const std::string& path, uint64_t file_offset, uint64_t cookie);
  // Delivers events to the handlers; returns when a timeout passes or a signal arrives.
  Result<void> poll(int timeout_ms);
  // Delivers the process events waiting now. The data handler calls it before
  // each event: that event's process may have an exec waiting.
  Result<void> consume_control();
  // Sets the handlers; must be called once before poll().
  Result<void> open_ring_buffers(EventHandler on_data, EventHandler on_control);
  // Traces the processes in one more cgroup v2 directory (a --pod or
  // --container that started after tlstap), with the cgroup filter on.
  Result<void> add_cgroup(const std::string& directory);
  // While attached, each new cgroup v2 directory sends a CGROUP_MADE process
  // event: tlstap looks for the workloads it waits for at once.
  Result<void> watch_new_cgroups();
  void stop_watching_new_cgroups() { cgroup_watch_.reset(); }
  // Tells the kernel of a file tlstap looked at, as stat showed it (its
  // change time tells another file on a reused inode number): a file
  // without TLS, so that a loader's report of libraries that are all known
  // is not sent; or a dynamic loader whose hook is attached, so that the
  // exec of a program it interprets waits for that report (not with --pid
  // alone, where probes are per process). The kernel keeps the most
  // recently used.
  enum class KnownFileKind {
    without_tls = TLSTAP_FILE_WITHOUT_TLS,
    probed_loader = TLSTAP_FILE_PROBED_LOADER
  };
  void remember_file(const FileId& file, const struct timespec& ctime, KnownFileKind kind);
  void forget_file(const FileId& file);
  DropCounters drop_counters() const;
  size_t uprobe_count() const;
  // Whether uprobes are planted in the --pid processes only.
  bool per_process_uprobes() const { return uprobe_pids_.front() != -1; }
  // Removes the uprobes of `group`, or every uprobe. Each removal waits for
  // an RCU grace period in the kernel; they are done in parallel so that
  // waiting overlaps.
  void detach_uprobes(UprobeGroup group);
  void detach_uprobes();

  // One probe: libbpf's perf-event link, or an uprobe session link (uprobe_session_link.h).
  struct UprobeLink {
    BpfLink perf_event;
    UniqueFd session;
    void reset() {
      perf_event.reset();
      session.reset();
    }
  };

  Tracer(Tracer&&) = default;
  Tracer& operator=(Tracer&&) = default;
  ~Tracer() { detach_uprobes(); }

 private:
  Tracer() = default;
  // Makes a link with `attach` in each --pid process (or one for all); a
  // process that exited is skipped. Otherwise a failure is the result when
  // `all_or_nothing` (nothing kept), or said and skipped.
  Result<void> attach_per_process(UprobeGroup group, const std::string& what, bool all_or_nothing,
                                  const std::function<Result<UprobeLink>(int pid)>& attach);
  // The session program serving `entry` and `exit` and its cookie; null when none is loaded.
  std::pair<bpf_program*, uint64_t> session_for(UprobeProgram entry, UprobeProgram exit,
                                                uint64_t cookie) const;
  Skeleton skeleton_;
  std::vector<int> uprobe_pids_{-1};  // -1: every process
  std::vector<BpfLink> tracepoints_;
  BpfLink cgroup_watch_;
  std::unordered_map<UprobeGroup, std::vector<UprobeLink>> uprobes_;
  bool sessions_refused_ = false;  // the kernel refused a session link: pairs from then on
  // Heap-allocated so the C callbacks keep a stable pointer when Tracer moves.
  std::unique_ptr<std::array<EventHandler, 2>> handlers_;
  // Two managers, so process events can be read on their own, first.
  RingBuffer control_ring_;
  RingBuffer data_ring_;
  // Both managers' epoll fds: a process event (an exit aside) wakes the
  // consumer as data does, so an exec is handled while its process (and
  // container) still runs.
  UniqueFd wakeups_;
};

}  // namespace tlstap
