// Per-process facts the events do not carry (executable, cgroup, container,
// pod, network namespace), read from /proc once and kept until the process
// exits.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>

#include "discovery/cgroup_path.h"
#include "discovery/workload_names.h"
#include "event/event.h"
#include "event/process_identity.h"

namespace tlstap {

class ProcessTable {
 public:
  // What /proc says of pid (an empty identity when it cannot be read: process
  // gone) for an event at boot time `at_ns`: data from before an exec, still
  // in the ring when the exec is handled, keeps the image it came from (of
  // the last kImagesKept).
  const ProcessIdentity& identity(uint32_t pid, uint64_t at_ns);
  // Re-reads after an exec replaced the image. What the kernel put in the
  // event stands in for /proc when the process is already gone: the path
  // given to execve, the cgroup's id, the network namespace.
  void refresh(const ProcessEvent& exec);
  // A known process moved into another cgroup: data from then on carries
  // its new cgroup, container and pod (an unknown one is read when first seen).
  void moved(const ProcessEvent& joined);
  void forget(uint32_t pid) { processes_.erase(pid); }
  static constexpr size_t kImagesKept = 4;
  // Reads a running process now, while it exists, unless it is known already.
  void remember(uint32_t pid);
  // Reads a running process again after process events were lost: a known
  // one's exec or move that went untold starts an image at boot time `now_ns`.
  void reread(uint32_t pid, uint64_t now_ns);

 private:
  struct Image {
    uint64_t since_ns = 0;  // boot time of the exec or move that started it; 0: the first known
    ProcessIdentity identity;
  };
  // A process's images, oldest first: the one it had when first read, then
  // one per exec or move handled (at most kImagesKept).
  using Entry = std::deque<Image>;
  // An image /proc no longer shows (the process is gone, or has exec'd
  // again): what the kernel's exec event says, and what was known before.
  ProcessIdentity from_exec_event(const ProcessEvent& exec, const ProcessIdentity& before);
  // Reads a process not known yet into the table; none when it is gone.
  const Entry* read_new(uint32_t pid);
  // Sets the cgroup, and the container and pod it names.
  void place(ProcessIdentity& identity, std::string cgroup, uint32_t pid);
  void add_image(Entry& images, uint64_t since_ns, ProcessIdentity identity);

  std::unordered_map<uint32_t, Entry> processes_;
  const ProcessIdentity unknown_;
  CgroupNames cgroup_names_;
  WorkloadNamer namer_;
};

}  // namespace tlstap
