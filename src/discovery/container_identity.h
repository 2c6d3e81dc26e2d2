// What a process's cgroup path says about the container and Kubernetes pod it
// runs in (pure functions). Container runtimes name a container's cgroup after
// its 64-hex ID (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope,
// libpod-<id>.scope with the systemd driver; <id> with cgroupfs), the kubelet
// names a pod's after its UID (kubepods-burstable-pod<uid>.slice with '_' for
// '-', or kubepods/burstable/pod<uid>).
#pragma once

#include <string>
#include <string_view>

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

}  // namespace tlstap
