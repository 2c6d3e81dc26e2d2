// --cgroup: from what a user names (a cgroup v2 directory, or a cgroup as
// /proc/PID/cgroup prints it) to the directory whose fd the kernel filter holds.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "discovery/container_identity.h"

namespace tlstap {

// Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo text
// (pure): /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a
// hybrid one; nullopt when it is not mounted.
std::optional<std::string> find_cgroup2_mount(std::string_view mountinfo_text);

// The directories `given` may name, most literal first (pure): the path as
// given, then the same path under the v2 mount (e.g. "/system.slice/x.service",
// as /proc/PID/cgroup prints it, or a container's "kubepods.slice/...").
std::vector<std::string> cgroup_candidates(std::string_view given, const std::optional<std::string>& mount);

// The first candidate that is a cgroup v2 directory, as an absolute path; an
// error that says why none is.
Result<std::string> resolve_cgroup(std::string_view given);

// What --container or --pod names: a container's ID or a prefix of it, a pod's UID.
struct WorkloadQuery {
  Workload kind;
  std::string given;
};
const char* option_name(Workload kind);  // "--container", "--pod"

// Where one query's workload is: its cgroup v2 directory (absolute), nullopt
// while it does not run, or an error saying which containers a short ID
// could mean.
using WorkloadDirectory = Result<std::optional<std::string>>;
// Each query's, in one walk of the hierarchy; an error when no v2 hierarchy
// is mounted.
Result<std::vector<WorkloadDirectory>> resolve_workloads(std::span<const WorkloadQuery> queries);

// Whether the cgroup directory `directory` is `ancestor` or below it (pure;
// absolute paths without a trailing '/'), as the kernel filter decides.
bool cgroup_within(std::string_view directory, std::string_view ancestor);

// The processes in a cgroup v2 directory and below it, from their cgroup.procs.
std::vector<uint32_t> processes_in_cgroup(const std::string& directory);

// Names cgroup v2 directories by their id (their inode number, what
// bpf_get_current_cgroup_id gives): the kernel opens the directory from a file
// handle made of the id, which works after the process that was in it is gone
// (not after the cgroup is removed). Needs CAP_DAC_READ_SEARCH.
class CgroupNames {
 public:
  CgroupNames();  // finds the v2 mount; without one it names nothing
  // The cgroup as /proc/PID/cgroup prints it ("/system.slice/x.service"), "" when unknown.
  std::string path_of(uint64_t cgroup_id) const;
  // Its directory under the v2 mount ("/sys/fs/cgroup/system.slice/x.service"), "" when unknown.
  std::string directory_of(uint64_t cgroup_id) const;

 private:
  std::string mount_;
  UniqueFd mount_fd_;
};

}  // namespace tlstap
