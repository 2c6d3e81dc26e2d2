// Per-process facts the events do not carry (executable, cgroup, container,
// pod, network namespace), read from /proc once and kept until the process
// exits. An exec's are read when first needed: most processes on a host
// never map a TLS library, and many are gone before tlstap could read them.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
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
  // An exec replaced the image: /proc is read for it when first needed (or
  // by read_now). What the kernel put in the event stands in for /proc when
  // the process is gone by then: the path given to execve, the cgroup's id,
  // the network namespace.
  void refresh(const ProcessEvent& exec);
  // Reads what /proc shows of the process's execs not read yet, while it
  // runs: it maps a TLS library, so its data may come after it is gone.
  void read_now(uint32_t pid);
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
  // What an exec event said, kept until /proc is read for its image.
  struct ExecFacts {
    uint64_t cgroup_id = 0;
    uint64_t exe_inode = 0;
    uint32_t netns = 0;
    std::string filename;
  };
  struct Image {
    uint64_t since_ns = 0;  // boot time of the exec or move that started it; 0: the first known
    ProcessIdentity identity;
    std::optional<ExecFacts> unread;  // an exec's image, identity not read yet
  };
  // A process's images, oldest first: the one it had when first read, then
  // one per exec or move handled (at most kImagesKept).
  using Entry = std::deque<Image>;
  // Reads the identity of images[index] if not read yet, and of the images
  // before it (an exec's may stand on the one before); returns it.
  const ProcessIdentity& read_image(uint32_t pid, Entry& images, size_t index);
  // The image of an exec: what /proc shows, unless it shows another image
  // (the process is gone, or has exec'd again).
  ProcessIdentity read_exec(uint32_t pid, const ExecFacts& exec, const ProcessIdentity& before);
  // An image /proc no longer shows: what the kernel's exec event says, and
  // what was known before.
  ProcessIdentity from_exec_event(uint32_t pid, const ExecFacts& exec, const ProcessIdentity& before);
  // Reads a process not known yet into the table; none when it is gone.
  Entry* read_new(uint32_t pid);
  // Sets the cgroup, and the container and pod it names.
  void place(ProcessIdentity& identity, std::string cgroup, uint32_t pid);
  void add_image(Entry& images, uint64_t since_ns, ProcessIdentity identity,
                 std::optional<ExecFacts> unread = std::nullopt);

  std::unordered_map<uint32_t, Entry> processes_;
  const ProcessIdentity unknown_;
  CgroupNames cgroup_names_;
  WorkloadNamer namer_;
};

}  // namespace tlstap
