#include "discovery/container_identity.h"

#include <algorithm>
#include <cctype>

#include "common/proc.h"

namespace tlstap {
namespace {

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), is_hex_digit);
}

// A UID as the API server gives it (8-4-4-4-12), or a static pod's, which is
// the hash of its manifest (32 hex digits).
bool is_pod_uid(std::string_view uid) {
  if (uid.size() == 32) return is_lower_hex(uid);
  if (uid.size() != 36) return false;
  for (size_t i = 0; i < uid.size(); ++i) {
    bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_here != (uid[i] == '-')) return false;
    if (!dash_here && !is_hex_digit(uid[i])) return false;
  }
  return true;
}

std::string_view container_id_in(std::string_view component) {
  if (component.ends_with(".scope")) component.remove_suffix(6);
  // CRI-O's and podman's monitor (crio-conmon-<id>, libpod-conmon-<id>):
  // named after the container it watches, outside it.
  if (component.find("conmon-") != std::string_view::npos) return {};
  size_t dash = component.rfind('-');
  std::string_view id = dash == std::string_view::npos ? component : component.substr(dash + 1);
  return id.size() == 64 && is_lower_hex(id) ? id : std::string_view{};
}

std::string pod_uid_in(std::string_view component, bool under_kubepods) {
  std::string uid;
  if (component.starts_with("kubepods") && component.ends_with(".slice")) {
    size_t at = component.rfind("-pod");
    if (at == std::string_view::npos) return {};
    uid = component.substr(at + 4, component.size() - at - 4 - 6);
    std::replace(uid.begin(), uid.end(), '_', '-');  // systemd reserves '-' for nesting
  } else if (under_kubepods && component.starts_with("pod")) {
    uid = component.substr(3);
  }
  return is_pod_uid(uid) ? uid : std::string{};
}

// Calls visit(is_v2, path) on each "ID:CONTROLLERS:PATH" line until it returns true.
template <class Visit>
void visit_cgroup_lines(std::string_view text, Visit visit) {
  while (!text.empty()) {
    std::string_view line = next_line(text);
    size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first != std::string_view::npos && second != std::string_view::npos &&
        visit(line.starts_with("0::"), line.substr(second + 1)))
      return;
  }
}

bool names_workload(const ContainerIdentity& identity) {
  return !identity.container_id.empty() || !identity.pod_uid.empty();
}

}  // namespace

std::string cgroup_v2_path(std::string_view proc_cgroup_text) {
  std::string path;
  visit_cgroup_lines(proc_cgroup_text, [&](bool is_v2, std::string_view line_path) {
    if (is_v2) path = line_path;
    return is_v2;
  });
  return path;
}

ContainerIdentity container_from_proc_cgroup(std::string_view proc_cgroup_text) {
  ContainerIdentity found = container_from_cgroup(cgroup_v2_path(proc_cgroup_text));
  if (names_workload(found)) return found;
  visit_cgroup_lines(proc_cgroup_text, [&](bool is_v2, std::string_view path) {
    if (!is_v2) found = container_from_cgroup(path);
    return names_workload(found);
  });
  return found;
}

ContainerIdentity container_from_cgroup(std::string_view cgroup_path) {
  ContainerIdentity found;
  bool under_kubepods = false;
  // From the root down, so the innermost container or pod is the one kept.
  while (!cgroup_path.empty()) {
    size_t slash = cgroup_path.find('/');
    std::string_view component = cgroup_path.substr(0, slash);
    if (std::string_view id = container_id_in(component); !id.empty()) found.container_id = id;
    if (std::string uid = pod_uid_in(component, under_kubepods); !uid.empty()) found.pod_uid = uid;
    under_kubepods = under_kubepods || component.starts_with("kubepods");
    if (slash == std::string_view::npos) break;
    cgroup_path.remove_prefix(slash + 1);
  }
  return found;
}

std::vector<WorkloadCgroup> find_workload_cgroups(std::span<const std::string> cgroup_paths, Workload kind,
                                                  std::string_view given) {
  std::string wanted(given);
  std::transform(wanted.begin(), wanted.end(), wanted.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (kind == Workload::pod) std::replace(wanted.begin(), wanted.end(), '_', '-');
  std::vector<WorkloadCgroup> found;
  if (wanted.empty()) return found;
  for (const std::string& path : cgroup_paths) {
    ContainerIdentity named = container_from_cgroup(path);
    const std::string& id = kind == Workload::container ? named.container_id : named.pod_uid;
    if (kind == Workload::container ? !id.starts_with(wanted) : id != wanted) continue;
    auto same = std::find_if(found.begin(), found.end(), [&](const WorkloadCgroup& w) { return w.id == id; });
    if (same == found.end())
      found.push_back({id, path});
    else if (path.size() < same->cgroup.size())
      same->cgroup = path;
  }
  return found;
}

}  // namespace tlstap
