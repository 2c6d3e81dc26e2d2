// Parses /proc/PID/maps text into the files a process has mapped executable.
// Pure: the caller reads the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tlstap {

// A mapped file as /proc/PID/maps names it: its device (which may differ
// from what stat says, on overlayfs and btrfs) and inode number.
struct MappingId {
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  bool operator==(const MappingId&) const = default;
};

struct MappedFile {
  std::string path;  // as seen inside the process's mount namespace
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  bool deleted = false;  // replaced on disk since it was mapped
  bool operator==(const MappedFile&) const = default;
  MappingId id() const { return {dev_major, dev_minor, inode}; }
};

// Each executable file mapping once, in order of first appearance.
std::vector<MappedFile> parse_executable_mappings(std::string_view maps_text);

}  // namespace tlstap
