#include "discovery/cgroup_path.h"

#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <filesystem>

#include "common/proc.h"

namespace tlstap {
namespace {

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string unescape_octal(std::string_view field) {
  auto octal = [&](size_t k) { return field[k] >= '0' && field[k] <= '7'; };
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

bool is_cgroup2_directory(const std::string& path) {
  struct statfs fs {};
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && statfs(path.c_str(), &fs) == 0 &&
         fs.f_type == CGROUP2_SUPER_MAGIC;
}

}  // namespace

std::optional<std::string> find_cgroup2_mount(std::string_view mountinfo_text) {
  // "36 25 0:31 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw": the root
  // within the hierarchy is field 4, the mount point field 5, the filesystem
  // type the first field after " - ".
  std::optional<std::string> found;
  size_t start = 0;
  while (start < mountinfo_text.size()) {
    size_t end = mountinfo_text.find('\n', start);
    if (end == std::string_view::npos) end = mountinfo_text.size();
    std::string_view line = mountinfo_text.substr(start, end - start);
    start = end + 1;
    size_t separator = line.find(" - ");
    if (separator == std::string_view::npos) continue;
    std::string_view type = line.substr(separator + 3);
    if (type.substr(0, type.find(' ')) != "cgroup2") continue;
    std::string_view fields = line.substr(0, separator);
    for (int skip = 0; skip < 3; ++skip) next_field(fields);  // ids, major:minor
    std::string_view root = next_field(fields);
    std::string_view mount_point = next_field(fields);
    if (mount_point.empty()) continue;
    // A bind mount of a subtree (a container's own view) holds only part of
    // the hierarchy: the whole of it is preferred.
    if (root == "/") return unescape_octal(mount_point);
    if (!found) found = unescape_octal(mount_point);
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
  auto mount = find_cgroup2_mount(read_text_file("/proc/self/mountinfo"));
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

}  // namespace tlstap
