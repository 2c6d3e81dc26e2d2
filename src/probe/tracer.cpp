#include "probe/tracer.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/epoll.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <thread>

#include "common/log.h"
#include "common/unique_fd.h"
#include "probe/uprobe_session_link.h"
#include "tlstap.skel.h"

namespace tlstap {

void SkeletonDeleter::operator()(tlstap_bpf* skeleton) const {
  tlstap_bpf__destroy(skeleton);
}

namespace {

bpf_program* program_of(tlstap_bpf* skel, UprobeProgram program) {
  switch (program) {
    case UprobeProgram::openssl_write_enter:
    case UprobeProgram::openssl_read_enter:
    case UprobeProgram::openssl_write_ex_enter:
    case UprobeProgram::openssl_read_ex_enter:
    case UprobeProgram::gnutls_send_enter:
    case UprobeProgram::gnutls_recv_enter:
    case UprobeProgram::gnutls_recv_record_enter:
    case UprobeProgram::boringssl_write_enter:
    case UprobeProgram::boringssl_read_enter:
    case UprobeProgram::nss_write_enter:
    case UprobeProgram::nss_read_enter:
    case UprobeProgram::nss_send_enter:
    case UprobeProgram::nss_recv_enter:
      return skel->progs.c_call_enter;
    case UprobeProgram::openssl_call_exit:
    case UprobeProgram::gnutls_call_exit:
      return skel->progs.c_call_exit;
    case UprobeProgram::openssl_internal_enter:
      return skel->progs.openssl_internal_enter;
    case UprobeProgram::openssl_internal_exit:
      return skel->progs.openssl_internal_exit;
    case UprobeProgram::gnutls_int_result:
      return skel->progs.gnutls_int_result;
    case UprobeProgram::gnutls_free:
      return skel->progs.gnutls_free;
    case UprobeProgram::go_tls_enter:
      return skel->progs.go_tls_enter;
    case UprobeProgram::go_tls_return:
      return skel->progs.go_tls_return;
    case UprobeProgram::go_tls_read_copy:
      return skel->progs.go_tls_read_copy;
    case UprobeProgram::go_tls_close:
      return skel->progs.go_tls_close;
    case UprobeProgram::openssl_free:
      return skel->progs.openssl_free;
    case UprobeProgram::loader_libs_changed:
      return skel->progs.loader_libs_changed;
  }
  return nullptr;
}

// The kernel's ENOTSUPP (not in user-space errno.h), which BPF returns for
// features it lacks.
constexpr int kKernelNotSupported = 524;

// What c_call.bpf.c's programs learn from the cookie about the call a probe
// is on (events.h); none: not one of them.
std::optional<uint64_t> c_call_cookie(UprobeProgram program) {
  auto call = [](tlstap_library library, tlstap_function function, uint64_t flags = 0) {
    return uint64_t{library} << TLSTAP_C_CALL_LIBRARY_SHIFT |
           uint64_t{function} << TLSTAP_C_CALL_FUNCTION_SHIFT | flags;
  };
  constexpr uint64_t kEgress = TLSTAP_C_CALL_EGRESS;
  switch (program) {
    case UprobeProgram::openssl_write_enter:
      return call(TLSTAP_LIB_OPENSSL, TLSTAP_FN_SSL_WRITE, kEgress);
    case UprobeProgram::openssl_read_enter:
      return call(TLSTAP_LIB_OPENSSL, TLSTAP_FN_SSL_READ);
    case UprobeProgram::openssl_write_ex_enter:
      return call(TLSTAP_LIB_OPENSSL, TLSTAP_FN_SSL_WRITE_EX, kEgress | TLSTAP_C_CALL_COUNT_IN_ARG4);
    case UprobeProgram::openssl_read_ex_enter:
      return call(TLSTAP_LIB_OPENSSL, TLSTAP_FN_SSL_READ_EX, TLSTAP_C_CALL_COUNT_IN_ARG4);
    case UprobeProgram::boringssl_write_enter:
      return call(TLSTAP_LIB_BORINGSSL, TLSTAP_FN_SSL_WRITE, kEgress);
    case UprobeProgram::boringssl_read_enter:
      return call(TLSTAP_LIB_BORINGSSL, TLSTAP_FN_SSL_READ);
    case UprobeProgram::gnutls_send_enter:
      return call(TLSTAP_LIB_GNUTLS, TLSTAP_FN_GNUTLS_RECORD_SEND, kEgress);
    case UprobeProgram::gnutls_recv_enter:
      return call(TLSTAP_LIB_GNUTLS, TLSTAP_FN_GNUTLS_RECORD_RECV);
    case UprobeProgram::gnutls_recv_record_enter:
      return call(TLSTAP_LIB_GNUTLS, TLSTAP_FN_GNUTLS_RECORD_RECV, TLSTAP_C_CALL_TYPED_RECORD);
    case UprobeProgram::nss_write_enter:
      return call(TLSTAP_LIB_NSS, TLSTAP_FN_NSS_PR_WRITE, kEgress);
    case UprobeProgram::nss_read_enter:
      return call(TLSTAP_LIB_NSS, TLSTAP_FN_NSS_PR_READ);
    case UprobeProgram::nss_send_enter:
      return call(TLSTAP_LIB_NSS, TLSTAP_FN_NSS_PR_SEND, kEgress);
    case UprobeProgram::nss_recv_enter:
      return call(TLSTAP_LIB_NSS, TLSTAP_FN_NSS_PR_RECV);
    case UprobeProgram::openssl_call_exit:  // SSL_*, BoringSSL and NSS: int
      return 0;
    case UprobeProgram::gnutls_call_exit:
      return TLSTAP_C_CALL_RETURNS_LONG;
    default:
      return std::nullopt;
  }
}

Result<void> fill_filters(tlstap_bpf* skel, const TracerConfig& config) {
  const uint8_t yes = 1;
  for (uint32_t pid : config.pids)
    if (bpf_map__update_elem(skel->maps.pid_filter, &pid, sizeof(pid), &yes, sizeof(yes), BPF_ANY) != 0)
      return Error::from_errno("pid filter");
  for (const auto& comm : config.comms) {
    char key[TLSTAP_COMM_LEN] = {};
    std::strncpy(key, comm.c_str(), sizeof(key) - 1);  // the kernel keeps 15 characters
    if (bpf_map__update_elem(skel->maps.comm_filter, key, sizeof(key), &yes, sizeof(yes), BPF_ANY) != 0)
      return Error::from_errno("comm filter");
  }
  for (uint32_t netns : config.netns)
    if (bpf_map__update_elem(skel->maps.netns_filter, &netns, sizeof(netns), &yes, sizeof(yes), BPF_ANY) != 0)
      return Error::from_errno("netns filter");
  return {};
}

int dispatch(void* ctx, void* data, size_t size) {
  auto* handler = static_cast<EventHandler*>(ctx);
  (*handler)(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
  return 0;
}

void destroy_in_parallel(std::vector<Tracer::UprobeLink>& links) {
  constexpr size_t kThreads = 32;
  std::vector<std::thread> threads;
  size_t per_thread = (links.size() + kThreads - 1) / kThreads;
  for (size_t first = 0; first < links.size(); first += per_thread) {
    size_t last = std::min(first + per_thread, links.size());
    threads.emplace_back([&links, first, last] {
      for (size_t i = first; i < last; ++i) links[i].reset();
    });
  }
  for (auto& thread : threads) thread.join();
}

}  // namespace

Result<Tracer> Tracer::load(const TracerConfig& config, const KernelFeatures& features) {
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  Tracer tracer;
  tracer.skeleton_.reset(tlstap_bpf__open());
  if (!tracer.skeleton_) return Error::from_errno("opening the BPF object");
  tlstap_bpf* skel = tracer.skeleton_.get();

  skel->rodata->filter_by_pid = !config.pids.empty();
  // --pid alone names every process to trace: probes go into those only. A
  // --comm filter must see processes that do not exist yet: probes go everywhere.
  if (!config.pids.empty() && config.comms.empty())
    tracer.uprobe_pids_.assign(config.pids.begin(), config.pids.end());
  skel->rodata->filter_by_comm = !config.comms.empty();
  skel->rodata->filter_by_cgroup = config.cgroup_filter || !config.cgroups.empty();
  skel->rodata->filter_by_netns = !config.netns.empty();
  // Ring sizes must be a power of two multiple of the page size.
  uint32_t ring = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  while (ring < config.data_ring_bytes) ring <<= 1;
  bpf_map__set_max_entries(skel->maps.data_events, ring);
  bpf_map__set_max_entries(skel->maps.connections, config.max_connections);
  // Every TCP socket of the host has its role there, TLS or not: never fewer than the default.
  bpf_map__set_max_entries(skel->maps.socket_roles, std::max<uint32_t>(config.max_connections, 65536));
  skel->rodata->wakeup_batch_bytes = std::min<uint64_t>(256 << 10, ring / 8);
  bpf_program__set_autoload(skel->progs.sock_send, features.socket_length_tracepoints);
  bpf_program__set_autoload(skel->progs.sock_recv, features.socket_length_tracepoints);
  bpf_program__set_autoload(skel->progs.sock_state, features.socket_state_tracepoint);
  for (bpf_program* session : {skel->progs.openssl_internal_session, skel->progs.c_call_session}) {
    if (auto type = features.uprobe_session_attach_type)
      bpf_program__set_expected_attach_type(session, static_cast<bpf_attach_type>(*type));
    bpf_program__set_autoload(session, features.uprobe_session_attach_type.has_value());
  }
  bpf_program__set_autoload(skel->progs.cgroup_made, features.cgroup_tracepoints);
  bpf_program__set_autoload(skel->progs.cgroup_joined, features.cgroup_tracepoints);

  if (int err = tlstap_bpf__load(skel); err != 0) {
    if (features.uprobe_session_attach_type) {
      // A kernel that names sessions may still refuse their programs (a partial backport).
      log::warn("{}; trying without uprobe sessions",
                Error::from_errno("loading BPF programs with uprobe sessions", -err).message);
      KernelFeatures without = features;
      without.uprobe_session_attach_type.reset();
      tracer.skeleton_.reset();
      return load(config, without);
    }
    return Error::from_errno("loading BPF programs (run with -v for the verifier log)", -err);
  }
  if (auto filled = fill_filters(skel, config); !filled) return filled.error();
  for (const auto& directory : config.cgroups)
    if (auto added = tracer.add_cgroup(directory); !added) return added.error();

  bpf_program* tracepoint_programs[] = {skel->progs.process_exec, skel->progs.process_exit,
                                        skel->progs.sock_send, skel->progs.sock_recv, skel->progs.sock_state};
  for (bpf_program* prog : tracepoint_programs) {
    if (!bpf_program__autoload(prog)) continue;
    BpfLink link(bpf_program__attach(prog));
    if (!link) return Error::from_errno(fmt::format("attaching tracepoint {}", bpf_program__name(prog)));
    tracer.tracepoints_.push_back(std::move(link));
  }
  // Moves between cgroups keep the lines' placement true; capture goes on without them.
  if (bpf_program__autoload(skel->progs.cgroup_joined)) {
    BpfLink link(bpf_program__attach(skel->progs.cgroup_joined));
    if (link)
      tracer.tracepoints_.push_back(std::move(link));
    else
      log::warn("{}: processes moved into another cgroup are not followed",
                Error::from_errno("attaching tracepoint cgroup/cgroup_attach_task").message);
  }
  return tracer;
}

Result<void> Tracer::attach_per_process(UprobeGroup group, const std::string& what, bool all_or_nothing,
                                        const std::function<Result<UprobeLink>(int pid)>& attach) {
  std::vector<UprobeLink> links;
  std::optional<Error> failed;
  for (int pid : uprobe_pids_) {
    auto link = attach(pid);
    if (link) {
      links.push_back(std::move(*link));
      continue;
    }
    failed = Error{
        fmt::format("{}{}: {}", what, pid == -1 ? "" : fmt::format(" in pid {}", pid), link.error().message),
        link.error().errno_value};
    // A process that exited is no reason to give up the others.
    if (pid != -1 && failed->errno_value == ESRCH) {
      log::debug("{}", failed->message);
      continue;
    }
    if (all_or_nothing) return *failed;
    if (pid != -1) log::warn("{}", failed->message);
  }
  if (links.empty() && failed) return *failed;
  auto& kept = uprobes_[group];
  std::move(links.begin(), links.end(), std::back_inserter(kept));
  return {};
}

Result<void> Tracer::attach_uprobe(UprobeGroup group, UprobeProgram program, const std::string& path,
                                   uint64_t file_offset, bool is_return, uint64_t cookie) {
  if (auto call = c_call_cookie(program)) {
    // The low half is the prologue's depth (c_call.bpf.c); the high half says which call.
    if (cookie >> 32)
      return Error{fmt::format("uprobe at {}+{:#x}: prologue depth out of range", path, file_offset)};
    cookie |= *call;
  }
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = is_return);
  bpf_program* prog = program_of(skeleton_.get(), program);
  return attach_per_process(
      group, fmt::format("uprobe at {}+{:#x}", path, file_offset), false, [&](int pid) -> Result<UprobeLink> {
        BpfLink link(bpf_program__attach_uprobe_opts(prog, pid, path.c_str(), file_offset, &opts));
        if (!link) return Error{std::strerror(errno), errno};
        return UprobeLink{.perf_event = std::move(link), .session = {}};
      });
}

std::pair<bpf_program*, uint64_t> Tracer::session_for(UprobeProgram entry, UprobeProgram exit,
                                                      uint64_t cookie) const {
  tlstap_bpf* skel = skeleton_.get();
  bpf_program* session = nullptr;
  if (entry == UprobeProgram::openssl_internal_enter && exit == UprobeProgram::openssl_internal_exit) {
    session = skel->progs.openssl_internal_session;
  } else if (program_of(skel, entry) == skel->progs.c_call_enter &&
             program_of(skel, exit) == skel->progs.c_call_exit) {
    session = skel->progs.c_call_session;
    cookie |= c_call_cookie(entry).value_or(0) | c_call_cookie(exit).value_or(0);
  }
  if (!session || !bpf_program__autoload(session) || sessions_refused_) return {nullptr, 0};
  return {session, cookie};
}

bool Tracer::has_session(UprobeProgram entry, UprobeProgram exit) const {
  return session_for(entry, exit, 0).first != nullptr;
}

Result<void> Tracer::attach_session(UprobeGroup group, UprobeProgram entry, UprobeProgram exit,
                                    const std::string& path, uint64_t file_offset, uint64_t cookie) {
  auto [prog, session_cookie] = session_for(entry, exit, cookie);
  if (!prog) return Error{"no uprobe session program for these probes"};
  uint32_t attach_type = bpf_program__expected_attach_type(prog);
  auto attached = attach_per_process(group, fmt::format("uprobe session at {}+{:#x}", path, file_offset),
                                     true, [&](int pid) -> Result<UprobeLink> {
                                       auto link = create_uprobe_session_link(
                                           bpf_program__fd(prog), attach_type, path, file_offset,
                                           session_cookie, pid == -1 ? 0 : pid);
                                       if (!link) return link.error();
                                       return UprobeLink{.perf_event = {}, .session = std::move(*link)};
                                     });
  // A kernel that refuses session links says so by these; anything else
  // (a process gone, no memory) is this site's, which the caller attaches apart.
  int err = attached ? 0 : attached.error().errno_value;
  if (err == EINVAL || err == EOPNOTSUPP || err == kKernelNotSupported) {
    sessions_refused_ = true;  // said once; later pairs are attached apart without asking
    log::warn("{}; entry probes and uretprobes are attached apart from now on", attached.error().message);
  }
  return attached;
}

Result<void> Tracer::add_cgroup(const std::string& directory) {
  tlstap_bpf* skel = skeleton_.get();
  uint32_t index = skel->bss->cgroup_filter_count;
  if (index >= TLSTAP_CGROUP_FILTER_MAX)
    return Error{fmt::format("{}: the cgroup filter is full ({} directories)", directory, index)};
  UniqueFd opened(open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!opened.valid()) return Error::from_errno(fmt::format("cgroup filter: {}", directory));
  // The map keeps its own reference to the cgroup: the fd is needed only to name it.
  int fd = opened.get();
  if (bpf_map__update_elem(skel->maps.cgroup_filter, &index, sizeof(index), &fd, sizeof(fd), BPF_ANY) != 0)
    return Error::from_errno(fmt::format("cgroup filter: {}", directory));
  // Counted once the entry is in: a program never reads an empty slot.
  __atomic_store_n(&skel->bss->cgroup_filter_count, index + 1, __ATOMIC_RELEASE);
  return {};
}

namespace {

tlstap_file_key kernel_file_key(const FileId& file) {
  tlstap_file_key key{};
  key.inode = file.inode;
  key.dev = static_cast<uint32_t>(major(file.device) << 20 | minor(file.device));
  return key;
}

}  // namespace

void Tracer::remember_file(const FileId& file, const struct timespec& ctime, KnownFileKind kind) {
  if (kind == KnownFileKind::probed_loader && per_process_uprobes()) return;
  tlstap_file_key key = kernel_file_key(file);
  tlstap_known_file known{static_cast<uint64_t>(ctime.tv_sec), static_cast<uint32_t>(ctime.tv_nsec),
                          static_cast<uint32_t>(kind)};
  // A failure costs the kernel's reports and wake-ups, as if it were not known.
  if (bpf_map__update_elem(skeleton_.get()->maps.known_files, &key, sizeof(key), &known, sizeof(known),
                           BPF_ANY) != 0)
    log::debug("known files: {}", std::strerror(errno));
}

void Tracer::forget_file(const FileId& file) {
  tlstap_file_key key = kernel_file_key(file);
  (void)bpf_map__delete_elem(skeleton_.get()->maps.known_files, &key, sizeof(key), 0);
}

Result<void> Tracer::watch_new_cgroups() {
  if (cgroup_watch_) return {};
  if (!bpf_program__autoload(skeleton_->progs.cgroup_made))
    return Error{"kernel lacks the cgroup:cgroup_mkdir tracepoint"};
  cgroup_watch_.reset(bpf_program__attach(skeleton_->progs.cgroup_made));
  if (!cgroup_watch_) return Error::from_errno("attaching tracepoint cgroup/cgroup_mkdir");
  return {};
}

size_t Tracer::uprobe_count() const {
  size_t count = 0;
  for (const auto& [group, links] : uprobes_) count += links.size();
  return count;
}

void Tracer::detach_uprobes(UprobeGroup group) {
  if (auto it = uprobes_.find(group); it != uprobes_.end()) {
    destroy_in_parallel(it->second);
    uprobes_.erase(it);
  }
}

void Tracer::detach_uprobes() {
  std::vector<UprobeLink> all;
  for (auto& [group, links] : uprobes_) std::move(links.begin(), links.end(), std::back_inserter(all));
  destroy_in_parallel(all);
  uprobes_.clear();
}

Result<void> Tracer::open_ring_buffers(EventHandler on_data, EventHandler on_control) {
  handlers_ = std::make_unique<std::array<EventHandler, 2>>();
  (*handlers_)[0] = std::move(on_data);
  (*handlers_)[1] = std::move(on_control);
  control_ring_.reset(
      ring_buffer__new(bpf_map__fd(skeleton_->maps.control_events), dispatch, &(*handlers_)[1], nullptr));
  if (!control_ring_) return Error::from_errno("control ring buffer");
  data_ring_.reset(
      ring_buffer__new(bpf_map__fd(skeleton_->maps.data_events), dispatch, &(*handlers_)[0], nullptr));
  if (!data_ring_) return Error::from_errno("data ring buffer");
  wakeups_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!wakeups_.valid()) return Error::from_errno("epoll for the ring buffers");
  for (ring_buffer* ring : {control_ring_.get(), data_ring_.get()}) {
    epoll_event wakeup{.events = EPOLLIN, .data = {}};
    if (epoll_ctl(wakeups_.get(), EPOLL_CTL_ADD, ring_buffer__epoll_fd(ring), &wakeup) != 0)
      return Error::from_errno("epoll for the ring buffers");
  }
  return {};
}

Result<void> Tracer::consume_control() {
  int n = ring_buffer__consume(control_ring_.get());
  if (n < 0 && n != -EINTR) return Error::from_errno("reading the process event ring buffer", -n);
  return {};
}

Result<void> Tracer::poll(int timeout_ms) {
  // Process events are read before the data they explain by the data
  // handler, and here after it: what they ask for is done between polls.
  // Unread events end the wait at once (exits excepted: they wake no one).
  epoll_event woken[2];
  if (epoll_wait(wakeups_.get(), woken, 2, timeout_ms) < 0 && errno != EINTR)
    return Error::from_errno("waiting for the ring buffers");
  // The kernel side wakes us only per batch: whatever arrived since is read
  // here, on the timer, wake-up or not.
  int n = ring_buffer__consume(data_ring_.get());
  if (n < 0 && n != -EINTR) return Error::from_errno("reading the data ring buffer", -n);
  return consume_control();
}

DropCounters Tracer::drop_counters() const {
  DropCounters totals{};
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return totals;
  std::vector<tlstap_drop_counter> per_cpu(cpus);
  for (uint32_t reason = 0; reason < TLSTAP_DROP_REASON_MAX; ++reason) {
    if (bpf_map__lookup_elem(skeleton_->maps.drop_counters, &reason, sizeof(reason), per_cpu.data(),
                             per_cpu.size() * sizeof(tlstap_drop_counter), 0) != 0)
      continue;
    for (const auto& c : per_cpu) {
      totals[reason].events += c.events;
      totals[reason].bytes += c.bytes;
    }
  }
  return totals;
}

}  // namespace tlstap
