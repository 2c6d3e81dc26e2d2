// Per-process facts the events do not carry (executable, cgroup, container,
// pod, network namespace), read from /proc once and kept until the process
// exits.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "discovery/cgroup_path.h"
#include "event/event.h"
#include "event/process_identity.h"

namespace tlstap {

class ProcessTable {
 public:
  // What /proc says of pid; an empty identity when it cannot be read (process gone).
  const ProcessIdentity& identity(uint32_t pid);
  // Re-reads after an exec replaced the image. What the kernel put in the
  // event stands in for /proc when the process is already gone: the path
  // given to execve, the cgroup's id, the network namespace.
  void refresh(const ProcessEvent& exec);
  void forget(uint32_t pid) { processes_.erase(pid); }
  bool knows(uint32_t pid) const { return processes_.contains(pid); }
  // Reads a running process now, while it exists (start-up).
  void remember(uint32_t pid);

 private:
  std::unordered_map<uint32_t, ProcessIdentity> processes_;
  CgroupNames cgroup_names_;
};

}  // namespace tlstap
