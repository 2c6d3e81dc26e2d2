// What the running kernel offers, probed once at start-up and passed to
// whoever needs to choose. Required features missing -> a clear Error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace tlstap {

struct KernelFeatures {
  std::string tracefs_root;        // e.g. /sys/kernel/tracing
  bool socket_length_tracepoints;  // sock:sock_send_length / sock_recv_length (6.3+)
  bool socket_state_tracepoint;    // sock:inet_sock_set_state (4.16+)
  bool cgroup_tracepoints;         // cgroup:cgroup_mkdir / cgroup_attach_task (4.13+)
  // BPF_TRACE_UPROBE_SESSION's value (6.13+; one program at a call's entry
  // and, if it asks, at its return); none: the kernel lacks sessions.
  std::optional<uint32_t> uprobe_session_attach_type;
  std::vector<std::string> warnings;  // optional features missing and what that costs
};

// Checks privileges, BTF, tracefs, ring buffers, bpf_loop, attach cookies and tracepoints.
Result<KernelFeatures> probe_kernel_features();

}  // namespace tlstap
