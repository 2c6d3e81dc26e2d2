#include "probe/uprobe_session_link.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace tlstap {
namespace {

// BPF_LINK_CREATE's attributes for an uprobe_multi link, as the kernel's UAPI
// lays out union bpf_attr's link_create (Linux 6.6+).
struct UprobeMultiLinkAttr {
  uint32_t prog_fd = 0;
  uint32_t target_fd = 0;
  uint32_t attach_type = 0;
  uint32_t link_flags = 0;
  uint64_t path = 0;
  uint64_t offsets = 0;
  uint64_t ref_ctr_offsets = 0;
  uint64_t cookies = 0;
  uint32_t count = 0;
  uint32_t flags = 0;
  uint32_t pid = 0;
  uint32_t unused = 0;  // the kernel refuses attributes whose bytes past its own are not zero
};
static_assert(offsetof(UprobeMultiLinkAttr, path) == 16 && offsetof(UprobeMultiLinkAttr, count) == 48 &&
              offsetof(UprobeMultiLinkAttr, pid) == 56 && sizeof(UprobeMultiLinkAttr) == 64);

}  // namespace

Result<UniqueFd> create_uprobe_session_link(int program_fd, uint32_t attach_type, const std::string& path,
                                            uint64_t file_offset, uint64_t cookie, int pid) {
  UprobeMultiLinkAttr attr;
  attr.prog_fd = static_cast<uint32_t>(program_fd);
  attr.attach_type = attach_type;
  attr.path = reinterpret_cast<uintptr_t>(path.c_str());
  attr.offsets = reinterpret_cast<uintptr_t>(&file_offset);
  attr.cookies = reinterpret_cast<uintptr_t>(&cookie);
  attr.count = 1;
  attr.pid = static_cast<uint32_t>(pid);
  UniqueFd link(static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr))));
  if (!link.valid()) return Error::from_errno("creating an uprobe session link");
  return link;
}

}  // namespace tlstap
