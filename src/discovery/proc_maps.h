// Parses /proc/PID/maps text into the files a process has mapped executable.
// Pure: the caller reads the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tlstap {

struct MappedFile {
  std::string path;  // as seen inside the process's mount namespace
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  bool deleted = false;  // replaced on disk since it was mapped
  bool operator==(const MappedFile&) const = default;
};

// Each executable file mapping once, in order of first appearance.
std::vector<MappedFile> parse_executable_mappings(std::string_view maps_text);

}  // namespace tlstap
