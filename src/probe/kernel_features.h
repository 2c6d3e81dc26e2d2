// What the running kernel offers, probed once at start-up and passed to
// whoever needs to choose. Required features missing -> a clear Error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace tlstap {

// User shadow stacks (x86 CET): a process running with one dies where a
// return address it pushed differs from the copy on its shadow stack. Two
// things a uprobe does write return addresses: an emulated `call` (the kernel
// pushes on the shadow stack too only from Linux 6.18, shstk_push) and a
// return probe, which swaps the return address for its trampoline's (only
// from Linux 6.10, shstk_update_last_frame, does the shadow stack follow).
struct ShadowStackSupport {
  bool cpu_enforces = false;                    // /proc/cpuinfo flag user_shstk
  bool kernel_pushes_at_emulated_call = false;  // shstk_push
  bool kernel_updates_at_return_probe = false;  // shstk_update_last_frame
};

// From /proc/cpuinfo and /proc/kallsyms.
ShadowStackSupport probe_shadow_stack_support();

struct KernelFeatures {
  std::string tracefs_root;        // e.g. /sys/kernel/tracing
  bool socket_length_tracepoints;  // sock:sock_send_length / sock_recv_length (6.3+)
  bool socket_state_tracepoint;    // sock:inet_sock_set_state (4.16+)
  bool cgroup_tracepoints;         // cgroup:cgroup_mkdir / cgroup_attach_task (4.13+)
  // BPF_TRACE_UPROBE_SESSION's value (6.13+; one program at a call's entry
  // and, if it asks, at its return); none: the kernel lacks sessions.
  std::optional<uint32_t> uprobe_session_attach_type;
  ShadowStackSupport shadow_stacks;
  std::vector<std::string> warnings;  // optional features missing and what that costs
};

// Checks privileges, BTF, tracefs, ring buffers, bpf_loop, attach cookies and tracepoints.
Result<KernelFeatures> probe_kernel_features();

}  // namespace tlstap
