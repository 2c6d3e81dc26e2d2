// Per-process facts the events do not carry (executable, cgroup, container,
// pod, network namespace), read from /proc once and kept until the process
// exits.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "discovery/cgroup_path.h"
#include "discovery/workload_names.h"
#include "event/event.h"
#include "event/process_identity.h"

namespace tlstap {

class ProcessTable {
 public:
  // What /proc says of pid (an empty identity when it cannot be read: process
  // gone) for an event at boot time `at_ns`: data from before the latest exec,
  // still in the ring when the exec is handled, keeps the image it came from.
  const ProcessIdentity& identity(uint32_t pid, uint64_t at_ns);
  // Re-reads after an exec replaced the image. What the kernel put in the
  // event stands in for /proc when the process is already gone: the path
  // given to execve, the cgroup's id, the network namespace.
  void refresh(const ProcessEvent& exec);
  void forget(uint32_t pid) { processes_.erase(pid); }
  // Reads a running process now, while it exists (start-up).
  void remember(uint32_t pid);

 private:
  struct Entry {
    ProcessIdentity current;
    uint64_t exec_ns = 0;                        // boot time of the latest exec seen; 0: none
    std::optional<ProcessIdentity> before_exec;  // the image that exec replaced, when known
  };
  // A process gone before its exec was handled: what the kernel's event says,
  // and what was known of it before.
  ProcessIdentity gone_at_exec(const ProcessEvent& exec, const ProcessIdentity& before);

  std::unordered_map<uint32_t, Entry> processes_;
  const ProcessIdentity unknown_;
  CgroupNames cgroup_names_;
  WorkloadNamer namer_;
};

}  // namespace tlstap
