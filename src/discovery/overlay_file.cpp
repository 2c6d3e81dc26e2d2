#include "discovery/overlay_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#include <filesystem>

#include "common/proc.h"

namespace tlstap {
namespace {

// The legacy lowerdir= list: ':' separates, a backslash escapes the next character.
void split_lowerdirs(std::string_view list, std::vector<std::string>& out) {
  std::string dir;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] == '\\' && i + 1 < list.size()) {
      dir += list[++i];
    } else if (list[i] == ':') {
      if (!dir.empty()) out.push_back(std::move(dir));
      dir.clear();
    } else {
      dir += list[i];
    }
  }
  if (!dir.empty()) out.push_back(std::move(dir));
}

bool same_contents_by_metadata(const struct stat& a, const struct stat& b) {
  return S_ISREG(b.st_mode) && a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
         a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

// The layers' paths are the mounter's (the container runtime's): the host's.
// tlstap on the host reaches them as they are; in a container of its own
// (with the host's pids) through PID 1's root.
std::string on_host(const std::string& path) {
  static const bool in_host_namespace = [] {
    std::error_code ec;
    auto own = std::filesystem::read_symlink("/proc/self/ns/mnt", ec);
    return ec || own == std::filesystem::read_symlink("/proc/1/ns/mnt", ec) || ec;
  }();
  return in_host_namespace ? path : "/proc/1/root" + path;
}

}  // namespace

bool on_overlayfs(int fd) {
  struct statfs fs {};
  return fstatfs(fd, &fs) == 0 && fs.f_type == OVERLAYFS_SUPER_MAGIC;
}

std::vector<std::string> overlay_layers(std::string_view super_options) {
  std::string upper;
  std::vector<std::string> lowers;
  // Commas inside values are escaped (\054), so a plain split is safe.
  while (!super_options.empty()) {
    size_t comma = super_options.find(',');
    std::string_view option = super_options.substr(0, comma);
    super_options.remove_prefix(comma == std::string_view::npos ? super_options.size() : comma + 1);
    size_t equals = option.find('=');
    if (equals == std::string_view::npos) continue;
    std::string_view key = option.substr(0, equals);
    std::string value = unescape_octal(option.substr(equals + 1));
    if (key == "upperdir") upper = std::move(value);
    if (key == "lowerdir") split_lowerdirs(value, lowers);
    if (key == "lowerdir+") lowers.push_back(std::move(value));  // one layer each (new mount API)
  }
  std::vector<std::string> layers;
  if (!upper.empty()) layers.push_back(std::move(upper));
  for (auto& lower : lowers) layers.push_back(std::move(lower));
  return layers;
}

std::vector<std::string> overlay_candidates(const std::vector<Mount>& mounts, uint32_t major, uint32_t minor,
                                            std::string_view path) {
  // The last mount of that device whose mount point holds the path: a later
  // mount on the same point hides an earlier one.
  const Mount* holder = nullptr;
  for (const Mount& mount : mounts) {
    if (mount.fs_type != "overlay" || mount.major != major || mount.minor != minor) continue;
    std::string_view point = mount.mount_point;
    bool holds = point == "/" || path == point || (path.starts_with(point) && path[point.size()] == '/');
    if (holds && (!holder || point.size() >= holder->mount_point.size())) holder = &mount;
  }
  if (!holder) return {};
  std::string_view relative = holder->mount_point == "/" ? path : path.substr(holder->mount_point.size());
  std::string within = holder->root == "/" ? std::string(relative) : holder->root + std::string(relative);
  std::vector<std::string> candidates;
  for (const auto& layer : overlay_layers(holder->super_options)) candidates.push_back(layer + within);
  return candidates;
}

std::optional<RealFile> overlay_real_file(int fd, const struct stat& st, uint32_t pid,
                                          const std::string& path) {
  if (!on_overlayfs(fd)) return std::nullopt;
  std::string proc = pid ? "/proc/" + std::to_string(pid) : std::string("/proc/self");
  auto mounts = parse_mountinfo(read_text_file(proc + "/mountinfo"));
  for (const auto& candidate : overlay_candidates(mounts, major(st.st_dev), minor(st.st_dev), path)) {
    UniqueFd layer_fd(::open(on_host(candidate).c_str(), O_RDONLY | O_CLOEXEC));
    struct stat real {};
    if (!layer_fd.valid() || fstat(layer_fd.get(), &real) != 0 || !same_contents_by_metadata(st, real))
      continue;
    // A layer on overlayfs itself (a runtime inside a container): one level further down.
    if (auto deeper = overlay_real_file(layer_fd.get(), real, 1, candidate)) return deeper;
    return RealFile{FileId{static_cast<uint64_t>(real.st_dev), static_cast<uint64_t>(real.st_ino)}, candidate,
                    std::move(layer_fd), real};
  }
  return std::nullopt;
}

}  // namespace tlstap
