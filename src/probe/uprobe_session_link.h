// An uprobe session link (Linux 6.13+: one program at a function's entry
// and, when its entry half returns 0, at its return), made with
// BPF_LINK_CREATE directly: Debian 12's libbpf and headers predate
// uprobe_multi links.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tlstap {

// `program_fd` was loaded with the kernel's BPF_TRACE_UPROBE_SESSION value
// as expected attach type, `attach_type`; `pid` 0: every process. Closing
// the fd detaches it.
Result<UniqueFd> create_uprobe_session_link(int program_fd, uint32_t attach_type, const std::string& path,
                                            uint64_t file_offset, uint64_t cookie, int pid);

}  // namespace tlstap
