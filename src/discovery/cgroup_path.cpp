#include "discovery/cgroup_path.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <charconv>
#include <cstring>
#include <filesystem>

#include "common/proc.h"
#include "discovery/mountinfo.h"

namespace tlstap {
namespace {

// Where this host's cgroup v2 hierarchy is mounted, as tlstap sees it.
std::optional<std::string> host_cgroup2_mount() {
  return find_cgroup2_mount(read_text_file("/proc/self/mountinfo"));
}

bool is_cgroup2_directory(const std::string& path) {
  struct statfs fs {};
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && statfs(path.c_str(), &fs) == 0 &&
         fs.f_type == CGROUP2_SUPER_MAGIC;
}

}  // namespace

std::optional<std::string> find_cgroup2_mount(std::string_view mountinfo_text) {
  std::optional<std::string> found;
  for (const Mount& mount : parse_mountinfo(mountinfo_text)) {
    if (mount.fs_type != "cgroup2") continue;
    // A bind mount of a subtree (a container's own view) holds only part of
    // the hierarchy: the whole of it is preferred.
    if (mount.root == "/") return mount.mount_point;
    if (!found) found = mount.mount_point;
  }
  return found;
}

std::vector<std::string> cgroup_candidates(std::string_view given, const std::optional<std::string>& mount) {
  std::vector<std::string> candidates;
  if (given.starts_with('/')) candidates.emplace_back(given);
  if (mount && given != *mount && !given.starts_with(*mount + "/")) {
    std::string under = *mount;
    if (!given.starts_with('/')) under += '/';
    under += given;
    candidates.push_back(std::move(under));
  }
  return candidates;
}

Result<std::string> resolve_cgroup(std::string_view given) {
  auto mount = host_cgroup2_mount();
  for (const auto& candidate : cgroup_candidates(given, mount)) {
    if (!is_cgroup2_directory(candidate)) continue;
    std::error_code error;
    auto canonical = std::filesystem::canonical(candidate, error);
    return error ? candidate : canonical.string();
  }
  if (!mount)
    return Error{
        fmt::format("--cgroup {}: no cgroup v2 hierarchy is mounted on this host (the filter "
                    "needs one: mount -t cgroup2 none /sys/fs/cgroup/unified)",
                    given)};
  return Error{fmt::format("--cgroup {}: not a cgroup v2 directory, nor one under {}", given, *mount)};
}

namespace {

// The cgroups below `directory` (named from `root`, as /proc/PID/cgroup
// names them); one removed while it is read is left out, its siblings are not.
void list_cgroups(const std::filesystem::path& directory, const std::string& root,
                  std::vector<std::string>& out) {
  std::error_code error;
  std::filesystem::directory_iterator entries(directory, error);
  for (; !error && entries != std::filesystem::directory_iterator(); entries.increment(error)) {
    std::error_code entry_error;
    if (!entries->is_directory(entry_error) || entries->is_symlink(entry_error)) continue;
    out.push_back(entries->path().string().substr(root.size()));
    list_cgroups(entries->path(), root, out);
  }
}

std::vector<std::string> all_cgroups(const std::string& mount) {
  std::vector<std::string> cgroups;
  list_cgroups(mount, mount, cgroups);
  return cgroups;
}

}  // namespace

const char* option_name(Workload kind) {
  return kind == Workload::container ? "--container" : "--pod";
}

Result<std::vector<WorkloadDirectory>> resolve_workloads(std::span<const WorkloadQuery> queries) {
  std::vector<WorkloadDirectory> directories;
  if (queries.empty()) return directories;
  auto mount = host_cgroup2_mount();
  if (!mount)
    return Error{fmt::format("{} {}: no cgroup v2 hierarchy is mounted on this host",
                             option_name(queries.front().kind), queries.front().given)};
  std::vector<std::string> cgroups = all_cgroups(*mount);
  for (const auto& query : queries) {
    std::vector<WorkloadCgroup> found = find_workload_cgroups(cgroups, query.kind, query.given);
    if (found.size() > 1) {
      std::vector<std::string> ids;
      for (const auto& workload : found) ids.push_back(workload.id);
      directories.emplace_back(
          Error{fmt::format("{} {}: the ID is ambiguous, it starts {}", option_name(query.kind), query.given,
                            fmt::join(ids, ", "))});
    } else {
      directories.emplace_back(found.empty() ? std::nullopt : std::optional(*mount + found.front().cgroup));
    }
  }
  return directories;
}

bool cgroup_within(std::string_view directory, std::string_view ancestor) {
  return directory.starts_with(ancestor) &&
         (directory.size() == ancestor.size() || directory[ancestor.size()] == '/');
}

std::vector<uint32_t> processes_in_cgroup(const std::string& directory) {
  std::vector<std::string> cgroups{""};  // the directory itself, then those below it
  list_cgroups(directory, directory, cgroups);
  std::vector<uint32_t> pids;
  for (const auto& cgroup : cgroups) {
    std::string text = read_text_file(directory + cgroup + "/cgroup.procs");
    std::string_view rest = text;
    while (!rest.empty()) {
      std::string_view line = next_line(rest);
      uint32_t pid = 0;
      if (std::from_chars(line.data(), line.data() + line.size(), pid).ec == std::errc{}) pids.push_back(pid);
    }
  }
  return pids;
}

CgroupNames::CgroupNames() {
  auto mount = host_cgroup2_mount();
  if (!mount) return;
  mount_ = *mount;
  mount_fd_.reset(open(mount_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

std::string CgroupNames::path_of(uint64_t cgroup_id) const {
  std::string directory = directory_of(cgroup_id);
  if (directory.empty()) return {};
  if (directory == mount_) return "/";
  if (!directory.starts_with(mount_) || directory[mount_.size()] != '/') return {};
  return directory.substr(mount_.size());
}

std::string CgroupNames::directory_of(uint64_t cgroup_id) const {
  if (!mount_fd_.valid() || cgroup_id == 0) return {};
  constexpr int kFileidKernfs = 0xfe;  // cgroupfs's handles: the 64-bit id itself
  alignas(file_handle) unsigned char buffer[sizeof(file_handle) + sizeof(cgroup_id)];
  auto* handle = reinterpret_cast<file_handle*>(buffer);
  handle->handle_bytes = sizeof(cgroup_id);
  handle->handle_type = kFileidKernfs;
  std::memcpy(handle->f_handle, &cgroup_id, sizeof(cgroup_id));
  UniqueFd directory(open_by_handle_at(mount_fd_.get(), handle, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!directory.valid()) return {};
  char target[PATH_MAX];
  ssize_t n = readlink(fmt::format("/proc/self/fd/{}", directory.get()).c_str(), target, sizeof(target));
  if (n <= 0 || n == sizeof(target)) return {};
  return std::string(target, static_cast<size_t>(n));
}

}  // namespace tlstap
