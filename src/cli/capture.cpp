#include "cli/capture.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "cli/pipeline.h"
#include "cli/terminal.h"
#include "cli/top_view.h"
#include "cli/workload_filter.h"
#include "common/log.h"
#include "common/proc.h"
#include "conn/connection_table.h"
#include "conn/listening_ports.h"
#include "discovery/cgroup_path.h"
#include "discovery/netns_path.h"
#include "discovery/process_table.h"
#include "discovery/target_attacher.h"
#include "event/event.h"
#include "probe/kernel_features.h"
#include "probe/tracer.h"

namespace tlstap {
namespace {

volatile sig_atomic_t g_stop_requested = 0;

void request_stop(int) {
  g_stop_requested = 1;
}

// Every uprobe is a perf event, an open file: a host with many TLS libraries,
// or --pid with many processes, needs more than the usual soft limit of 1024.
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = request_stop;  // no SA_RESTART: interrupt the poll at once
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

constexpr const char* kDropReasonNames[TLSTAP_DROP_REASON_MAX] = {"ring_buffer_full", "unreadable_memory",
                                                                  "control_event_lost", "return_unseen"};

std::string describe_drops(const DropCounters& drops) {
  std::string text;
  for (int reason = 0; reason < TLSTAP_DROP_REASON_MAX; ++reason) {
    if (!text.empty()) text += ", ";
    text += fmt::format("{} {} events/{} bytes", kDropReasonNames[reason], drops[reason].events,
                        drops[reason].bytes);
  }
  return text;
}

bool drops_grew(const DropCounters& now, const DropCounters& before) {
  for (int reason = 0; reason < TLSTAP_DROP_REASON_MAX; ++reason)
    if (now[reason].events != before[reason].events) return true;
  return false;
}

// The filters, with --cgroup's directories and --netns's namespaces checked
// before anything is opened.
Result<TracerConfig> tracer_config(const Options& options) {
  TracerConfig config{.pids = options.pids,
                      .comms = options.comms,
                      .data_ring_bytes = options.buffer_mib << 20,
                      .max_connections = options.max_connections};
  for (const auto& name : options.cgroups) {
    auto directory = resolve_cgroup(name);
    if (!directory) return directory.error();
    log::info("--cgroup {}: capturing processes in {} and below", name, *directory);
    config.cgroups.push_back(std::move(*directory));
  }
  for (const auto& name : options.netns) {
    auto inode = resolve_netns(name);
    if (!inode) return inode.error();
    log::info("--netns {}: capturing processes in network namespace {}", name, *inode);
    config.netns.push_back(*inode);
  }
  return config;
}

// A new image's file, for when its process is gone before it is looked at.
struct Executable {
  std::string path;  // as given to execve
  uint64_t inode = 0;
};

struct DueScan {
  uint32_t pid = 0;
  Executable exec;  // for an exec
};

// Everything the event handlers need, alive for the whole capture.
class CaptureSession {
 public:
  CaptureSession(Pipeline& pipeline, Tracer& tracer, const KernelFeatures& features, size_t max_connections,
                 WorkloadFilter workloads)
      : pipeline_(pipeline),
        tracer_(tracer),
        workloads_(std::move(workloads)),
        attacher_(tracer, features.shadow_stacks),
        // Twice the kernel's: a connection the kernel forgot is still known here when it comes back.
        connections_(
            [this](uint32_t pid, const Endpoint& local) { return listening_.is_listening(pid, local); },
            2 * max_connections),
        boot_to_unix_ns_(clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME)) {}

  TargetAttacher& attacher() { return attacher_; }

  // A running process tlstap has not followed from its start: its files are
  // looked at (attached if they hold a TLS library) and its identity read.
  void adopt(uint32_t pid) {
    attacher_.scan_process(pid);
    processes_.remember(pid);
  }

  // A --container or --pod that started: its processes are left out of the
  // exec and loader events until now, so each is adopted.
  void poll_workloads() {
    for (const auto& directory : workloads_.poll(tracer_))
      for (uint32_t pid : processes_in_cgroup(directory))
        if (!g_stop_requested) adopt(pid);
  }

  void on_data(std::span<const std::byte> bytes) {
    if (is_connection_closed_event(bytes)) return on_connection_closed(bytes);
    auto event = decode_data_event(bytes);
    if (!event) {
      if (malformed_events_++ == 0) log::warn("malformed data event: {}", event.error().message);
      return;
    }
    // The process's exec may be waiting in the other ring: a new process's,
    // or one's that tlstap knew as the image before (a container's entry
    // script that execs its server). Checking an empty ring costs two loads.
    (void)tracer_.consume_control();
    run_due_scans();
    ConnectionView view = connections_.observe(*event);
    if (connections_.resumed() > 0 && !table_full_reported_) {
      table_full_reported_ = true;
      log::warn(
          "the kernel's connection table is full (--max-connections): connections it forgets are "
          "followed on under their first conn_uid");
    }
    event->conn_uid = view.conn_uid;
    event->stream_offset = view.stream_offset;
    // The identity is the process table's: nothing the pipeline does forgets a process.
    DataRecord record{*event,
                      event->boot_time_ns + boot_to_unix_ns_,
                      processes_.identity(event->pid, event->boot_time_ns),
                      view.role,
                      view.gap_before,
                      view.opened_before_capture};
    pipeline_.write(record);
    ++events_;
    bytes_ += event->payload.size();
  }

  // Behind the connection's last data on the same ring: it ends now.
  void on_connection_closed(std::span<const std::byte> bytes) {
    auto event = decode_connection_closed_event(bytes);
    if (!event) {
      if (malformed_events_++ == 0) log::warn("malformed close event: {}", event.error().message);
      return;
    }
    ConnectionKey reported = connections_.close({event->pid, event->conn_uid});
    pipeline_.end_connection({reported.pid, reported.conn_uid, event->boot_time_ns + boot_to_unix_ns_});
    ++closed_connections_;
  }

  void on_control(std::span<const std::byte> bytes) {
    auto event = decode_process_event(bytes);
    if (!event) {
      if (malformed_events_++ == 0) log::warn("malformed process event: {}", event.error().message);
      return;
    }
    switch (event->kind) {
      case ProcessEventKind::exec:
        processes_.refresh(*event);
        attacher_.forget_process(event->pid);  // a new image: every mapping is looked at
        switch (event->look) {
          case ExecLook::now:
            log::debug("{}[{}] exec'd {}", event->comm, event->pid, event->filename);
            scan_soon(event->pid, {std::string(event->filename), event->exe_inode});
            break;
          case ExecLook::at_loader_report:
            log::debug("{}[{}] exec'd {}; its loader reports files not looked at yet", event->comm,
                       event->pid, event->filename);
            break;
          case ExecLook::never:
            log::debug("{}[{}] exec'd {}, a static program looked at already, without TLS", event->comm,
                       event->pid, event->filename);
            break;
        }
        break;
      case ProcessEventKind::libs_changed:
        log::debug("{}[{}] loaded or unloaded libraries", event->comm, event->pid);
        scan_soon(event->pid);
        break;
      case ProcessEventKind::cgroup_made:
        workloads_.cgroup_made();
        break;
      case ProcessEventKind::cgroup_joined:
        processes_.moved(*event);
        // Its exec and loader events were left out while it was outside.
        if (workloads_.covers(event->cgroup_id)) {
          log::debug("{}[{}] moved into a filtered cgroup", event->comm, event->pid);
          adopt(event->pid);
        }
        break;
      case ProcessEventKind::exit_in_call:
        log::info("{}[{}/{}] exited inside a TLS call; that call moved no data we could see", event->comm,
                  event->pid, event->tid);
        break;
      case ProcessEventKind::exit: {
        // Threads ending together may each see the process's last one go.
        bool known =
            std::any_of(exited_.begin(), exited_.end(), [&](const auto& e) { return e.first == event->pid; });
        if (known) break;
        log::debug("{}[{}] exited", event->comm, event->pid);
        // Data of the process may still sit in the other ring: forget it later.
        exited_.push_back({event->pid, std::chrono::steady_clock::now()});
        break;
      }
    }
  }

  // Events for one process read together (an exec and its loader's report,
  // loads in a row) make one scan of it, once the events at hand are read.
  void scan_soon(uint32_t pid, Executable exec = {}) {
    auto due =
        std::find_if(scans_due_.begin(), scans_due_.end(), [&](const DueScan& d) { return d.pid == pid; });
    if (due == scans_due_.end())
      scans_due_.push_back({pid, std::move(exec)});
    else if (!exec.path.empty())
      due->exec = std::move(exec);
  }

  // A process that maps a TLS library may send data, perhaps only after it
  // is gone: what /proc shows of it is read now. Others are read if ever
  // needed. A program gone already is looked at through its path.
  void run_due_scans() {
    for (const DueScan& due : scans_due_) {
      auto mapped = attacher_.scan_process(due.pid);
      if (mapped == TargetAttacher::Mapped::tls_library)
        processes_.read_now(due.pid);
      else if (mapped == TargetAttacher::Mapped::nothing && !due.exec.path.empty())
        attacher_.consider_executable_of_gone(due.exec.path, due.exec.inode);
    }
    scans_due_.clear();
  }

  // Process events were lost (the control ring was full): the execs, library
  // loads and moves they told of are looked for again, in every running
  // process as at start, and the waited-for workloads in the cgroup tree.
  void recover_lost_process_events(const DropCounters& drops) {
    uint64_t lost = drops[TLSTAP_DROP_CONTROL_LOST].events;
    if (lost == control_events_lost_) return;
    control_events_lost_ = lost;
    log::warn("process events were lost: looking at every running process again");
    uint64_t now_ns = clock_ns(CLOCK_BOOTTIME);
    attacher_.forget_processes();  // lost execs and exits among them
    for (uint32_t pid : running_pids()) {
      if (g_stop_requested) break;
      attacher_.scan_process(pid);
      processes_.reread(pid, now_ns);  // an exec or move lost with the events
    }
    workloads_.cgroup_made();
  }

  void report_new_drops(const DropCounters& drops) {
    if (drops_grew(drops, reported_drops_)) log::warn("data lost so far: {}", describe_drops(drops));
    reported_drops_ = drops;
  }

  // Called between polls: scans processes, flushes output, forgets processes that exited,
  // takes probes off deleted files no longer in use.
  void housekeeping() {
    run_due_scans();
    pipeline_.flush();
    attacher_.release_deleted_files();
    auto now = std::chrono::steady_clock::now();
    while (!exited_.empty() && now - exited_.front().second > std::chrono::seconds(2)) {
      uint32_t pid = exited_.front().first;
      processes_.forget(pid);
      attacher_.forget_process(pid);  // not at the exit: a scan due then would make an entry again
      connections_.forget_process(pid);
      listening_.forget(pid);
      pipeline_.forget_process(pid);
      exited_.erase(exited_.begin());
    }
  }

  void print_summary(const DropCounters& drops) const {
    fmt::print(stderr, "tlstap: summary: {} events, {} bytes captured; dropped: {}", events_, bytes_,
               describe_drops(drops));
    if (malformed_events_) fmt::print(stderr, "; {} malformed events", malformed_events_);
    const ExchangeTrackerStats& x = pipeline_.exchange_stats();
    fmt::print(stderr, "; {} HTTP exchanges", x.exchanges);
    if (x.websocket_messages || x.websocket_streams_lost)
      fmt::print(stderr, ", {} WebSocket messages ({} directions not followed to the end)",
                 x.websocket_messages, x.websocket_streams_lost);
    if (x.evicted_connections)
      fmt::print(stderr, ", {} connections evicted (memory cap)", x.evicted_connections);
    if (x.responses_unseen_connections)
      fmt::print(stderr, ", {} connections with too many requests unanswered (later ones reported alone)",
                 x.responses_unseen_connections);
    if (connections_.resumed())
      fmt::print(stderr, "; {} times the kernel's full table forgot a connection, followed on",
                 connections_.resumed());
    if (connections_.evicted())
      fmt::print(stderr, "; {} connection states evicted (table full)", connections_.evicted());
    fmt::print(stderr, "; {} connections closed\n", closed_connections_);
  }

 private:
  Pipeline& pipeline_;
  Tracer& tracer_;
  WorkloadFilter workloads_;
  TargetAttacher attacher_;
  ProcessTable processes_;
  ListeningPorts listening_;
  ConnectionTable connections_;
  uint64_t boot_to_unix_ns_;
  uint64_t events_ = 0;
  uint64_t bytes_ = 0;
  uint64_t malformed_events_ = 0;
  uint64_t closed_connections_ = 0;
  bool table_full_reported_ = false;
  uint64_t control_events_lost_ = 0;
  DropCounters reported_drops_{};
  std::vector<std::pair<uint32_t, std::chrono::steady_clock::time_point>> exited_;
  std::vector<DueScan> scans_due_;
};

}  // namespace

int run_capture(const Options& options) {
  log::level = options.verbose ? log::Level::verbose : options.quiet ? log::Level::quiet : log::Level::normal;
  auto config = tracer_config(options);
  auto workloads = config ? WorkloadFilter::start(options, *config) : Result<WorkloadFilter>(config.error());
  if (!workloads) {
    fmt::print(stderr, "tlstap: error: {}\n", workloads.error().message);
    return kExitUsage;
  }
  auto features = probe_kernel_features();
  if (!features) {
    fmt::print(stderr, "tlstap: error: cannot start: {}\n", features.error().message);
    return geteuid() != 0 ? kExitNoPrivilege : kExitUnsupported;
  }
  for (const auto& warning : features->warnings) log::warn("{}", warning);
  if (!options.uprobe_sessions) features->uprobe_session_attach_type.reset();

  TopStats top_stats;
  std::vector<std::unique_ptr<Sink>> views;
  if (options.command == Command::top) views.push_back(std::make_unique<TopSink>(top_stats));
  auto pipeline = Pipeline::open(options, std::move(views));
  if (!pipeline) {
    fmt::print(stderr, "tlstap: error: {}\n", pipeline.error().message);
    return kExitRuntimeError;
  }
  if (!options.verbose)  // verbose keeps libbpf's own printer: verifier logs
    libbpf_set_print([](libbpf_print_level, const char*, va_list) { return 0; });

  auto tracer = Tracer::load(*config, *features);
  if (!tracer) {
    fmt::print(stderr, "tlstap: error: {}\n", tracer.error().message);
    return kExitUnsupported;
  }

  workloads->watch(*tracer);
  CaptureSession session(**pipeline, *tracer, *features, config->max_connections, std::move(*workloads));
  auto opened = tracer->open_ring_buffers([&](auto bytes) { session.on_data(bytes); },
                                          [&](auto bytes) { session.on_control(bytes); });
  if (!opened) {
    fmt::print(stderr, "tlstap: error: {}\n", opened.error().message);
    return kExitUnsupported;
  }
  install_signal_handlers();
  raise_open_file_limit();
  session.attacher().scan_library_directories();
  session.attacher().scan_executable_directories();
  for (uint32_t pid : running_pids()) {
    if (g_stop_requested) break;  // Ctrl-C while a crowded host is scanned: stop now, not after it
    session.adopt(pid);
  }
  if (session.attacher().attached_files() == 0)
    log::warn("no OpenSSL found yet; waiting for processes that load it");
  fmt::print(stderr, "tlstap: ready: {} probes on {} files\n", tracer->uprobe_count(),
             session.attacher().attached_files());
  if (tracer->per_process_uprobes())
    log::info("probes are planted in the --pid processes only: other users of these files do not trap");

  int exit_code = kExitOk;
  auto last_drop_check = std::chrono::steady_clock::now();
  std::optional<Terminal> terminal;
  if (options.command == Command::top) {
    terminal.emplace();
    log::level = log::Level::silent;  // the screen is the view's now; it shows the drops
  }
  while (!g_stop_requested && !(terminal && terminal->quit_requested())) {
    // The kernel wakes us only per batch of events; the timeout bounds the
    // delay of a lone event.
    if (auto polled = tracer->poll(50); !polled) {
      fmt::print(stderr, "tlstap: error: {}\n", polled.error().message);
      exit_code = kExitRuntimeError;
      break;
    }
    session.housekeeping();
    session.poll_workloads();
    if (auto now = std::chrono::steady_clock::now(); now - last_drop_check >= std::chrono::seconds(1)) {
      last_drop_check = now;
      DropCounters drops = tracer->drop_counters();
      session.report_new_drops(drops);
      session.recover_lost_process_events(drops);
      if (terminal)
        terminal->draw(render_top(top_stats.rows(clock_ns(CLOCK_REALTIME)),
                                  {top_stats.exchanges(), top_stats.websocket_messages(), top_stats.bytes(),
                                   describe_drops(tracer->drop_counters())},
                                  terminal->width(), terminal->height()));
    }
    if ((*pipeline)->failed()) {
      fmt::print(stderr, "tlstap: error: writing output failed\n");
      exit_code = kExitRuntimeError;
      break;
    }
  }
  terminal.reset();
  // Drain what the kernel already produced, then detach.
  (void)tracer->poll(0);
  DropCounters drops = tracer->drop_counters();
  tracer = Error{"detached"};
  (*pipeline)->finish();
  session.print_summary(drops);
  return exit_code;
}

}  // namespace tlstap
