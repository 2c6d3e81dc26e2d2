// Where a file reached through an overlayfs mount (a container's root, made
// of image layers) really lives. The kernel plants a uprobe on the real file
// (d_real_inode), and every container started from one image shares its
// layers' files: a library seen through ten containers' mounts, each with
// its own st_dev, is one target, to be probed once. Probed once per mount,
// each call would run every copy of the programs and count false drops.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_id.h"
#include "common/unique_fd.h"
#include "discovery/mountinfo.h"

namespace tlstap {

// The directories an overlay mount merges, from its superblock options
// (pure): the upper one first, then the lower ones top-down. Empty when they
// name none.
std::vector<std::string> overlay_layers(std::string_view super_options);

// Where `path`, on the overlay mount with device major:minor among `mounts`
// (all of one mount namespace), may really be: the same relative path in each
// layer, in the order overlayfs looks (pure). Empty when no such mount holds it.
std::vector<std::string> overlay_candidates(const std::vector<Mount>& mounts, uint32_t major, uint32_t minor,
                                            std::string_view path);

struct RealFile {
  FileId id;
  std::string path;  // in the host's mount namespace
  UniqueFd fd;       // open on it
  struct stat st;
};

bool on_overlayfs(int fd);

// The file behind `fd` (fstat'ed as `st`) when it is on overlayfs: `path` is
// where process `pid` (0: tlstap itself) sees it. nullopt when it is not on
// overlayfs, or no layer holds a file of its size and time (a layer out of
// reach, a renamed directory): then its own identity stands.
std::optional<RealFile> overlay_real_file(int fd, const struct stat& st, uint32_t pid,
                                          const std::string& path);

}  // namespace tlstap
