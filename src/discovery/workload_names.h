// Kubernetes names of a container: what the container runtime recorded in
// the container's OCI bundle (config.json's annotations; containerd's CRI
// plugin and CRI-O write them), found through the runtime's shim.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/lru_map.h"

namespace tlstap {

struct WorkloadNames {
  std::string pod_namespace;
  std::string pod_name;
  std::string container_name;
  bool operator==(const WorkloadNames&) const = default;
};

// From config.json text (pure): containerd's io.kubernetes.cri.* annotations
// or CRI-O's io.kubernetes.pod.* ones; empty names when there are none or the
// text is not JSON.
WorkloadNames workload_names_from_oci_config(std::string_view config_json);

// The names of the container a process runs in, cached per container.
class WorkloadNamer {
 public:
  // Read while `pid` runs: its nearest ancestor that is containerd's shim
  // (or CRI-O's conmon) works in a bundle directory, beside the bundles of
  // the other containers of the pod when it serves them all.
  WorkloadNames names(uint32_t pid, const std::string& container_id);

 private:
  LruMap<std::string, WorkloadNames> known_{4096};
};

}  // namespace tlstap
