// Who a process is beyond its pid and comm, as user space reads it from /proc
// when the process is first seen (and again after an exec): its executable,
// and where it runs (cgroup, container, Kubernetes pod, network namespace).
#pragma once

#include <cstdint>
#include <string>

namespace tlstap {

struct ProcessIdentity {
  std::string exe;           // "" when the process was gone before it could be read
  std::string cgroup;        // cgroup v2 path as /proc/PID/cgroup prints it; "" when unknown
  std::string container_id;  // docker, containerd, CRI-O or podman container; "" outside one
  std::string pod_uid;       // Kubernetes pod; "" outside one
  // As the container runtime recorded them (Kubernetes' CRI); "" when not.
  std::string pod_namespace;
  std::string pod_name;
  std::string container_name;
  uint32_t netns = 0;  // network namespace inode number; 0 when unknown
  bool operator==(const ProcessIdentity&) const = default;
};

}  // namespace tlstap
