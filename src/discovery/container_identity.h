// What a process's cgroup path says about the container and Kubernetes pod it
// runs in (pure functions). Container runtimes name a container's cgroup after
// its 64-hex ID (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope,
// libpod-<id>.scope with the systemd driver; <id> with cgroupfs), the kubelet
// names a pod's after its UID (kubepods-burstable-pod<uid>.slice with '_' for
// '-', or kubepods/burstable/pod<uid>).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tlstap {

struct ContainerIdentity {
  std::string container_id;  // "" when no component of the path names one
  std::string pod_uid;
  bool operator==(const ContainerIdentity&) const = default;
};

// The cgroup v2 path in /proc/PID/cgroup text: its "0::" line; "" when the
// process is in cgroup v1 hierarchies only.
std::string cgroup_v2_path(std::string_view proc_cgroup_text);

// The innermost container and pod the path names (a container in a container
// is reported as the inner one).
ContainerIdentity container_from_cgroup(std::string_view cgroup_path);

// The container and pod /proc/PID/cgroup text names: by its v2 path, else by
// the first v1 hierarchy's path that names one (on cgroup v1 and hybrid hosts
// a runtime's cgroupfs driver may leave the v2 path at the parent's).
ContainerIdentity container_from_proc_cgroup(std::string_view proc_cgroup_text);

// --container and --pod: what a user names them by.
enum class Workload { container, pod };

struct WorkloadCgroup {
  std::string id;      // the container's whole ID, or the pod's UID
  std::string cgroup;  // its outermost cgroup among those given
  bool operator==(const WorkloadCgroup&) const = default;
};

// The containers whose ID starts with `given` (docker's short IDs), or the
// pod whose UID is `given` ('_' taken for '-'), each with the outermost of
// `cgroup_paths` that names it, in the order they first appear.
std::vector<WorkloadCgroup> find_workload_cgroups(std::span<const std::string> cgroup_paths, Workload kind,
                                                  std::string_view given);

}  // namespace tlstap
