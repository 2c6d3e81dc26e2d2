#include "probe/kernel_features.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <string_view>

#include "common/proc.h"

namespace tlstap {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTracefs = "/sys/kernel/tracing";

std::string find_tracefs() {
  for (const char* root : {kTracefs, "/sys/kernel/debug/tracing"})
    if (fs::exists(fs::path(root) / "events")) return root;
  return {};
}

// Minimal hosts and containers often boot without tracefs mounted.
std::string mount_tracefs(std::vector<std::string>& notes) {
  if (mount("nodev", kTracefs, "tracefs", 0, nullptr) != 0) return {};
  notes.push_back(std::string("tracefs was not mounted; mounted it at ") + kTracefs);
  return kTracefs;
}

bool tracepoint_exists(const std::string& tracefs, const char* category, const char* name) {
  return fs::exists(fs::path(tracefs) / "events" / category / name / "id");
}

// The value of `attach_type` in the running kernel's enum bpf_attach_type:
// Debian 12's headers and libbpf predate some attach types it may have.
std::optional<uint32_t> kernel_attach_type(std::string_view attach_type) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return std::nullopt;
  std::optional<uint32_t> value;
  int id = btf__find_by_name_kind(vmlinux, "bpf_attach_type", BTF_KIND_ENUM);
  if (const btf_type* type = id > 0 ? btf__type_by_id(vmlinux, id) : nullptr) {
    const struct btf_enum* values = btf_enum(type);
    for (int i = 0; i < btf_vlen(type) && !value; ++i)
      if (attach_type == btf__name_by_offset(vmlinux, values[i].name_off)) value = values[i].val;
  }
  btf__free(vmlinux);
  return value;
}

}  // namespace

ShadowStackSupport probe_shadow_stack_support() {
  ShadowStackSupport support;
  support.cpu_enforces = read_text_file("/proc/cpuinfo").find(" user_shstk") != std::string::npos;
  if (!support.cpu_enforces) return support;
  std::string symbols = read_text_file("/proc/kallsyms");
  support.kernel_pushes_at_emulated_call = symbols.find(" shstk_push\n") != std::string::npos;
  support.kernel_updates_at_return_probe = symbols.find(" shstk_update_last_frame\n") != std::string::npos;
  return support;
}

Result<KernelFeatures> probe_kernel_features() {
  if (geteuid() != 0)
    return Error{
        "must run as root (loading BPF programs and attaching uprobes needs CAP_BPF, "
        "CAP_PERFMON and CAP_SYS_ADMIN)"};
  if (!fs::exists("/sys/kernel/btf/vmlinux"))
    return Error{
        "kernel has no BTF (/sys/kernel/btf/vmlinux missing): rebuild with "
        "CONFIG_DEBUG_INFO_BTF=y"};
  KernelFeatures features;
  features.tracefs_root = find_tracefs();
  if (features.tracefs_root.empty()) features.tracefs_root = mount_tracefs(features.warnings);
  if (features.tracefs_root.empty())
    return Error::from_errno(
        "tracefs is not mounted and mounting it failed (mount -t tracefs nodev "
        "/sys/kernel/tracing)");
  if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) != 1)
    return Error{"kernel lacks BPF ring buffers (Linux 5.8+ required)"};
  if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_loop, nullptr) != 1)
    return Error{"kernel lacks the bpf_loop helper (Linux 5.17+ required)"};
  if (!tracepoint_exists(features.tracefs_root, "sched", "sched_process_exec") ||
      !tracepoint_exists(features.tracefs_root, "sched", "sched_process_exit"))
    return Error{"kernel lacks the sched:sched_process_exec/exit tracepoints"};

  // Every uprobe program reads its cookie: which call, where in the prologue (Linux 5.15+, so
  // implied by bpf_loop; checked to say so plainly on a kernel with backports).
  if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie, nullptr) != 1)
    return Error{"kernel lacks BPF attach cookies for uprobes (Linux 5.15+ required)"};
  features.uprobe_session_attach_type = kernel_attach_type("BPF_TRACE_UPROBE_SESSION");
  const auto& tracefs = features.tracefs_root;
  features.socket_length_tracepoints = tracepoint_exists(tracefs, "sock", "sock_send_length") &&
                                       tracepoint_exists(tracefs, "sock", "sock_recv_length");
  features.socket_state_tracepoint = tracepoint_exists(tracefs, "sock", "inet_sock_set_state");
  features.cgroup_tracepoints = tracepoint_exists(tracefs, "cgroup", "cgroup_mkdir") &&
                                tracepoint_exists(tracefs, "cgroup", "cgroup_attach_task");
  if (!features.cgroup_tracepoints)
    features.warnings.push_back(
        "kernel lacks cgroup:cgroup_mkdir/cgroup_attach_task: processes moved into another cgroup are "
        "not followed, and --container/--pod look for new workloads once a second");
  if (!features.socket_length_tracepoints)
    features.warnings.push_back(
        "kernel lacks sock:sock_send_length/sock_recv_length (Linux 6.3+): "
        "connections will have no addresses");
  features.shadow_stacks = probe_shadow_stack_support();
  if (features.shadow_stacks.cpu_enforces && !features.shadow_stacks.kernel_updates_at_return_probe)
    features.warnings.push_back(
        "this CPU has user shadow stacks and this kernel's return probes do not update them (before "
        "Linux 6.10): C TLS libraries marked for shadow stacks (SHSTK) are not probed, and in other files "
        "so marked no probe sits on a call (the dynamic loader's hook itself is probed, slower)");
  else if (features.shadow_stacks.cpu_enforces && !features.shadow_stacks.kernel_pushes_at_emulated_call)
    features.warnings.push_back(
        "this CPU has user shadow stacks and this kernel emulates a probed call without pushing on "
        "them (before Linux 6.18): in files marked for shadow stacks (SHSTK) no probe sits on a call, "
        "and some are single-stepped instead (slower)");
  if (!features.socket_state_tracepoint)
    features.warnings.push_back(
        "kernel lacks sock:inet_sock_set_state: roles come from listening ports only");
  return features;
}

}  // namespace tlstap
