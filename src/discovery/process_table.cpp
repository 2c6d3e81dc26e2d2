#include "discovery/process_table.h"

#include <limits.h>
#include <unistd.h>

#include <filesystem>

namespace tlstap {
namespace {

std::string read_exe(uint32_t pid) {
  char target[PATH_MAX];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  return n > 0 ? std::string(target, n) : std::string();
}

}  // namespace

const std::string& ProcessTable::exe(uint32_t pid) {
  auto it = exe_.find(pid);
  if (it == exe_.end()) it = exe_.emplace(pid, read_exe(pid)).first;
  return it->second;
}

void ProcessTable::refresh(uint32_t pid, std::string_view executed) {
  std::string exe = read_exe(pid);
  if (exe.empty() && !executed.empty()) {
    // /proc/PID/exe shows the file behind symlinks; do the same for the path.
    std::error_code ec;
    auto resolved = std::filesystem::weakly_canonical(std::filesystem::path(executed), ec);
    exe = ec ? std::string(executed) : resolved.string();
  }
  exe_[pid] = exe;
}

void ProcessTable::remember(uint32_t pid) {
  if (std::string exe = read_exe(pid); !exe.empty()) exe_[pid] = exe;
}

}  // namespace tlstap
