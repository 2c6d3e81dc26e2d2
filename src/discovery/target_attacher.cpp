#include "discovery/target_attacher.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "binary/elf_image.h"
#include "binary/instruction.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/unique_fd.h"
#include "discovery/dynamic_loader.h"
#include "discovery/overlay_file.h"
#include "discovery/proc_maps.h"
#include "tls/boringssl.h"
#include "tls/gnutls.h"
#include "tls/go_tls.h"
#include "tls/nss.h"
#include "tls/openssl.h"

namespace tlstap {
namespace {

namespace fs = std::filesystem;

// Asks each adapter in turn; an Error means "recognised, but cannot probe".
Result<std::optional<ProbePlan>> plan_for(const ElfImage& image, OpensslPlanOptions openssl) {
  if (auto plan = plan_boringssl_probes(image)) return plan;
  if (auto plan = plan_openssl_probes(image, openssl)) return plan;
  if (auto plan = plan_gnutls_probes(image)) return plan;
  auto nss = plan_nss_probes(image);
  if (!nss || *nss) return nss;
  auto go = plan_go_probes(image);
  if (!go || *go) return go;
  return plan_loader_probe(image);
}

// A file named like OpenSSL's libssl that we cannot use deserves a word.
bool named_like_libssl(const std::string& path) {
  return fs::path(path).filename().string().starts_with("libssl");
}

}  // namespace

void TargetAttacher::consider_file(const std::string& path_in_process, Scope scope, uint32_t pid) {
  std::string path = pid ? fmt::format("/proc/{}/root{}", pid, path_in_process) : path_in_process;
  // Hold the file open and reach it through our own fd from here on: a path
  // under /proc/PID/root vanishes when that process exits mid-attach.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  std::vector<FileId> ids{FileId{st.st_dev, st.st_ino}};
  if (!seen_.insert(ids[0]).second) return;
  if (auto real = overlay_real_file(fd.get(), st, pid, path_in_process)) {
    ids.push_back(real->id);
    if (!seen_.insert(real->id).second) {
      log::debug("{}: {} in an overlay layer, attached already through another mount", path, real->path);
      return;
    }
  }
  std::string stable_path = "/proc/self/fd/" + std::to_string(fd.get());

  auto image = ElfImage::map(fd.get());
  if (!image) {
    log::debug("skipped {}: {}", path, image.error().message);
    return;
  }
  if (image->machine() != host_elf_machine()) {
    log::debug("skipped {}: built for another architecture", path);
    return;
  }
  if (scope == Scope::c_libraries && image->section(".go.buildinfo")) {
    for (const FileId& id : ids) seen_.erase(id);  // left for when it runs
    return;
  }
  auto plan = plan_for(*image, openssl_);
  if (!plan) {
    log::warn("skipped {}: {}", path, plan.error().message);
  } else if (*plan && (*plan)->sites.empty()) {
    log::warn("skipped {}: {}: {}", path, (*plan)->description, fmt::join((*plan)->gaps, "; "));
  } else if (*plan) {
    attach_plan(path, stable_path, *image, **plan);
  } else if (named_like_libssl(path)) {
    log::warn("skipped {}: no SSL_write/SSL_read symbols (stripped or not OpenSSL)", path);
  }
}

void TargetAttacher::attach_plan(const std::string& path, const std::string& stable_path,
                                 const ElfImage& image, const ProbePlan& plan) {
  size_t attached = 0, instruction_probes = 0, emulated = 0;
  // Return probes first: a call entering once its entry probe is in place
  // must find its return probe there too, or its return goes unseen.
  std::vector<ProbeSite> sites = plan.sites;
  std::stable_partition(sites.begin(), sites.end(), [](const ProbeSite& site) { return site.is_return; });
  for (const auto& site : sites) {
    if (auto r =
            tracer_.attach_uprobe(site.program, stable_path, site.file_offset, site.is_return, site.cookie);
        !r) {
      log::warn("{}: {}: {}", path, site.symbol, r.error().message);
      continue;
    }
    ++attached;
    // A uretprobe traps at the function's entry on every call, too: its instruction counts.
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), site.file_offset);
    ++instruction_probes;
    if (insn && insn->kernel_emulates) ++emulated;
    log::debug("  {}{} at file offset {:#x}: {} ({})", site.symbol, site.is_return ? " uretprobe" : "",
               site.file_offset, insn ? insn->text : insn.error().message,
               insn && insn->kernel_emulates ? "emulated" : "single-stepped");
  }
  for (const auto& warning : plan.warnings) log::debug("{}: {}", path, warning);
  for (const auto& gap : plan.gaps) log::warn("{}: {}", path, gap);
  if (attached == 0) {
    log::warn("{}: {} found but no probe could be attached", path, plan.description);
    return;
  }
  ++attached_files_;
  log::info("attached {} probes to {} ({}; {} of {} instruction probes on emulated instructions)", attached,
            path, plan.description, emulated, instruction_probes);
}

void TargetAttacher::scan_process(uint32_t pid) {
  std::string proc = "/proc/" + std::to_string(pid);
  // Empty when the process is gone already, or a kernel thread.
  for (const auto& file : parse_executable_mappings(read_text_file(proc + "/maps"))) {
    if (file.deleted) {
      log::debug("pid {}: {} was replaced on disk since it was mapped; not probed", pid, file.path);
      continue;
    }
    consider_file(file.path, Scope::all, pid);
  }
}

void TargetAttacher::scan_executable_directories() {
  for (const char* dir : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec))
      if (entry.is_regular_file(ec) &&
          (entry.status(ec).permissions() & fs::perms::owner_exec) != fs::perms::none)
        consider_file(entry.path(), Scope::c_libraries);
  }
}

void TargetAttacher::scan_library_directories() {
  for (const char* dir : {"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"}) {
    std::error_code ec;
    auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it.depth() > 1) it.disable_recursion_pending();  // multiarch dirs, not whole trees
      const std::string name = it->path().filename();
      bool wanted = name.starts_with("libssl.so") || name.starts_with("libssl3.so") ||
                    name.starts_with("libgnutls.so") || name.starts_with("ld-linux");
      if (wanted && it->is_regular_file(ec)) consider_file(it->path());
    }
  }
}

}  // namespace tlstap
