#include "discovery/workload_names.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/proc.h"
#include "discovery/container_identity.h"

namespace tlstap {
namespace {

// The first of `keys` the annotations hold as a string.
std::string annotation(const nlohmann::json& annotations, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    auto it = annotations.find(key);
    if (it != annotations.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

struct ParentAndName {
  uint32_t ppid = 0;
  std::string comm;
};

// From /proc/PID/stat: "PID (COMM) STATE PPID ...", COMM being anything.
ParentAndName parent_and_name(uint32_t pid) {
  std::string stat = read_text_file("/proc/" + std::to_string(pid) + "/stat");
  size_t open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  std::string_view rest = std::string_view(stat).substr(close + 1);
  next_field(rest);  // state
  std::string_view ppid = next_field(rest);
  ParentAndName found;
  auto [end, error] = std::from_chars(ppid.data(), ppid.data() + ppid.size(), found.ppid);
  if (error != std::errc{} || end != ppid.data() + ppid.size()) return {};
  found.comm = stat.substr(open + 1, close - open - 1);
  return found;
}

// A runtime's shim runs outside the containers it serves: a process of the
// container that calls itself one (its comm is its own to choose) is not taken.
bool is_runtime_shim(uint32_t pid, std::string_view comm, const std::string& container_id) {
  if (!comm.starts_with("containerd-shim") && comm != "conmon") return false;
  std::string cgroups = read_text_file("/proc/" + std::to_string(pid) + "/cgroup");
  return !cgroups.empty() && container_from_proc_cgroup(cgroups).container_id != container_id;
}

// Empty names when the bundle has none or no shim is among the ancestors (a
// runtime without one); nullopt when the process went before it was read.
std::optional<WorkloadNames> read_names(uint32_t pid, const std::string& container_id) {
  constexpr int kMaxDepth = 32;  // nesting of processes inside one container
  for (int depth = 0; depth < kMaxDepth && pid > 1; ++depth) {
    ParentAndName process = parent_and_name(pid);
    if (process.comm.empty()) return std::nullopt;
    if (is_runtime_shim(pid, process.comm, container_id)) {
      std::string bundle = "/proc/" + std::to_string(pid) + "/cwd";
      for (const std::string& config :
           {bundle + "/../" + container_id + "/config.json", bundle + "/config.json"}) {
        WorkloadNames names = workload_names_from_oci_config(read_text_file(config));
        if (names != WorkloadNames{}) return names;
      }
      return WorkloadNames{};
    }
    pid = process.ppid;
  }
  return WorkloadNames{};
}

}  // namespace

WorkloadNames workload_names_from_oci_config(std::string_view config_json) {
  auto config = nlohmann::json::parse(config_json, nullptr, false);
  if (!config.is_object()) return {};
  auto annotations = config.find("annotations");
  if (annotations == config.end() || !annotations->is_object()) return {};
  return {annotation(*annotations, {"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"}),
          annotation(*annotations, {"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"}),
          annotation(*annotations, {"io.kubernetes.cri.container-name", "io.kubernetes.container.name"})};
}

WorkloadNames WorkloadNamer::names(uint32_t pid, const std::string& container_id) {
  if (WorkloadNames* known = known_.find(container_id)) return *known;
  std::optional<WorkloadNames> found = read_names(pid, container_id);
  if (!found) return {};  // the container's next process is asked
  return known_[container_id] = std::move(*found);
}

}  // namespace tlstap
