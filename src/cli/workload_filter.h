// --container and --pod: the cgroup directories the kernel filter holds.
// Workloads running when tlstap starts are filtered from its first call;
// those that start later (a pod scheduled onto the node after a DaemonSet's
// tlstap started there) are looked for once a second and added when their
// cgroup appears. A runtime makes a pod's cgroup before any of its
// containers, and a container's before its first process runs.
#pragma once

#include <chrono>
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

  // Looks again for the workloads not found yet, at most once a second, and
  // has the tracer filter on those that started.
  void poll(Tracer& tracer);

 private:
  void look(Tracer& tracer);

  std::vector<WorkloadQuery> waiting_;
  std::chrono::steady_clock::time_point last_look_{};
  bool error_reported_ = false;
};

}  // namespace tlstap
