// --cgroup, --container and --pod: the cgroup directories the kernel filter
// holds, and whether a cgroup is one of them or below one.
// Workloads running when tlstap starts are filtered from its first call;
// those that start later (a pod scheduled onto the node after a DaemonSet's
// tlstap started there) are looked for at each new cgroup v2 directory the
// kernel reports, and every 10 s in case a report was lost (once a second
// where the kernel cannot report them), and added when their cgroup appears.
// A runtime makes a pod's cgroup before any of its containers, and a
// container's before its first process runs.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cli/options.h"
#include "common/result.h"
#include "discovery/cgroup_path.h"
#include "probe/tracer.h"

namespace tlstap {

class WorkloadFilter {
 public:
  // Adds the directories of the workloads running now to `config` (and turns
  // its cgroup filter on when any is asked for). Errors: no cgroup v2
  // hierarchy, a short ID that names several containers.
  static Result<WorkloadFilter> start(const Options& options, TracerConfig& config);

  // Has the tracer report new cgroups while workloads are waited for.
  void watch(Tracer& tracer);
  // The kernel reported a new cgroup (or reports were lost): the next poll looks.
  void cgroup_made() { look_pending_ = !waiting_.empty(); }
  // Whether the kernel filter holds this cgroup (by its id), or one above it.
  bool covers(uint64_t cgroup_id) const;

  // Looks again for the workloads not found yet, when a cgroup was made or
  // the fallback interval passed, and has the tracer filter on those that
  // started. Returns their directories: the processes already in them were
  // left out until now, so the caller must look at them (their executables
  // and libraries) as at new ones.
  std::vector<std::string> poll(Tracer& tracer);

 private:
  struct Waiting {
    WorkloadQuery query;
    std::string last_problem;  // said once, until another one comes
  };
  std::vector<std::string> look(Tracer& tracer);

  std::vector<Waiting> waiting_;
  std::vector<std::string> filtered_;  // every directory in the kernel filter
  CgroupNames names_;
  bool watching_ = false;
  bool look_pending_ = false;
  std::chrono::steady_clock::time_point last_look_{};
};

}  // namespace tlstap
