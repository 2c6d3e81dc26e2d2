// Per-process facts the events do not carry (the executable path), read from
// /proc once and kept until the process exits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tlstap {

class ProcessTable {
 public:
  // The executable of pid, "" when it cannot be read (process gone).
  const std::string& exe(uint32_t pid);
  // Re-reads after an exec replaced the image; `executed` (the path given to
  // execve) stands in when the process is already gone.
  void refresh(uint32_t pid, std::string_view executed);
  void forget(uint32_t pid) { exe_.erase(pid); }
  bool knows(uint32_t pid) const { return exe_.contains(pid); }
  // Reads a running process now, while it exists (start-up).
  void remember(uint32_t pid);

 private:
  std::unordered_map<uint32_t, std::string> exe_;
};

}  // namespace tlstap
