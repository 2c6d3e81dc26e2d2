#include "discovery/process_table.h"

#include <limits.h>
#include <unistd.h>

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

void ProcessTable::refresh(uint32_t pid) {
  exe_[pid] = read_exe(pid);
}

}  // namespace tlstap
