#include "discovery/target_attacher.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <unordered_set>

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
Result<std::optional<ProbePlan>> ask_adapters(const ElfImage& image, const PlanOptions& options) {
  if (auto plan = plan_boringssl_probes(image, options)) return plan;
  if (auto plan = plan_openssl_probes(image, options)) return plan;
  if (auto plan = plan_gnutls_probes(image, options)) return plan;
  auto nss = plan_nss_probes(image, options);
  if (!nss || *nss) return nss;
  auto go = plan_go_probes(image, options);
  if (!go || *go) return go;
  return plan_loader_probe(image, options);
}

// The inode numbers of every file some process maps executable now. The
// device is left out: maps and stat disagree on it for btrfs subvolumes and,
// before Linux 6.8, for overlayfs; a stranger's equal inode number only
// keeps probes a while longer.
std::unordered_set<uint64_t> mapped_inodes() {
  std::unordered_set<uint64_t> inodes;
  for (uint32_t pid : running_pids())
    for (const auto& file : parse_executable_mappings(read_text_file(fmt::format("/proc/{}/maps", pid))))
      inodes.insert(file.inode);
  return inodes;
}

// A file named like OpenSSL's libssl that we cannot use deserves a word.
bool named_like_libssl(const std::string& path) {
  return fs::path(path).filename().string().starts_with("libssl");
}

// The last word where calls may not be probed: a function whose probe an
// adapter could not move off a call (one that begins with a call, as under
// -pg -mfentry; a uretprobe's breakpoint sits on the first instruction) is
// left out, all its sites, and the plan says so.
void drop_functions_probed_on_calls(ProbePlan& plan, const ElfImage& image) {
  std::set<std::string> on_calls;
  for (const auto& site : plan.sites) {
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), site.file_offset);
    if (insn && insn->text.starts_with("call")) on_calls.insert(site.symbol);
  }
  std::erase_if(plan.sites, [&](const ProbeSite& site) { return on_calls.contains(site.symbol); });
  for (const auto& symbol : on_calls)
    plan.gaps.push_back(fmt::format(
        "{} not probed: it begins with a call, which this kernel would emulate without pushing on the shadow "
        "stack of a process that has one",
        symbol));
}

}  // namespace

Result<std::optional<ProbePlan>> plan_probes(const ElfImage& image, const ShadowStackSupport& shadow_stacks) {
  const bool may_run_with_one = shadow_stacks.cpu_enforces && image.marked_for_shadow_stack();
  const bool probe_calls = !may_run_with_one || shadow_stacks.kernel_pushes_at_emulated_call;
  auto plan = ask_adapters(image, {.probe_calls = probe_calls});
  if (plan && *plan && !probe_calls) drop_functions_probed_on_calls(**plan, image);
  const bool returns_unsafe = may_run_with_one && !shadow_stacks.kernel_updates_at_return_probe;
  if (plan && *plan && returns_unsafe &&
      std::any_of((*plan)->sites.begin(), (*plan)->sites.end(),
                  [](const ProbeSite& s) { return s.is_return; }))
    return Error{fmt::format(
        "{}: marked for shadow stacks (SHSTK), which this CPU enforces, and this kernel's return probes do "
        "not update them (before Linux 6.10): a process running with one would die at a probed return",
        (*plan)->description)};
  return plan;
}

std::optional<TargetAttacher::Look> TargetAttacher::recall(const FileId& id, const struct stat& st) {
  Tracer::UprobeGroup group = 0;
  if (auto probed = probed_.find(id); probed != probed_.end()) {
    group = probed->second;  // its inode is held by its probes: the number cannot have been reused
  } else if (const KnownFile* file = looked_at_.find(id)) {
    if (file->group && !attached_.contains(file->group)) return std::nullopt;
    if (!file->group &&
        (file->ctime.tv_sec != st.st_ctim.tv_sec || file->ctime.tv_nsec != st.st_ctim.tv_nsec))
      return std::nullopt;
    group = file->group;  // another mount's name for a probed file, or 0
  } else {
    return std::nullopt;
  }
  // Told to the kernel again: it keeps the most recently used files only,
  // and a loader's change time may have changed since (a chmod).
  if (group && !attached_.at(group).loader) return Look::tls_library;
  tracer_.remember_file(id, st.st_ctim,
                        group ? Tracer::KnownFileKind::probed_loader : Tracer::KnownFileKind::without_tls);
  return Look::other;
}

TargetAttacher::Look TargetAttacher::consider_file(const std::string& path_in_process, Scope scope,
                                                   uint32_t pid) {
  std::string path = pid ? fmt::format("/proc/{}/root{}", pid, path_in_process) : path_in_process;
  struct stat st {};
  // A file looked at before costs one stat, not an open, a stat and a close.
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return Look::other;
    if (auto look = recall({st.st_dev, st.st_ino}, st)) return *look;
  }
  // Hold the file open and reach it through our own fd from here on: a path
  // under /proc/PID/root vanishes when that process exits mid-attach.
  // Non-blocking: a FIFO put in its place since the stat must not block us.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid() || fstat(fd.get(), &st) != 0) return Look::unopened;
  if (!S_ISREG(st.st_mode)) return Look::other;
  const FileId id{st.st_dev, st.st_ino};
  if (auto look = recall(id, st)) return *look;
  auto real = overlay_real_file(fd.get(), st, pid, path_in_process);
  if (auto look = real ? recall(real->id, real->st) : std::nullopt) {
    auto probed = probed_.find(real->id);
    looked_at_[id] = KnownFile{st.st_ctim, probed == probed_.end() ? 0 : probed->second};
    log::debug("{}: {} in an overlay layer, looked at already through another mount", path, real->path);
    return *look;
  }
  auto group = probe(path, fd.get(), scope);
  if (!group) return Look::other;
  // The kernel is told too (by the ids its mappings show: the layer's file
  // on overlayfs), to spare the loader's reports and the exec's wake-up.
  std::vector<std::pair<FileId, struct timespec>> ids{{id, st.st_ctim}};
  if (real) ids.emplace_back(real->id, real->st.st_ctim);
  if (*group == 0) {
    for (const auto& [file_id, ctime] : ids) {
      looked_at_[file_id] = KnownFile{ctime, 0};
      tracer_.remember_file(file_id, ctime, Tracer::KnownFileKind::without_tls);
    }
    return Look::other;
  }
  AttachedFile& file = attached_[*group];
  for (const auto& [file_id, ctime] : ids) {
    file.ids.push_back(file_id);
    probed_[file_id] = *group;
    if (file.loader) tracer_.remember_file(file_id, ctime, Tracer::KnownFileKind::probed_loader);
  }
  // An fd on a container's overlay file would keep its mount alive after the
  // container is gone: without the layer's file, none is held (and the probes
  // stay).
  if (real)
    file.fd = std::move(real->fd);
  else if (!on_overlayfs(fd.get()))
    file.fd = std::move(fd);
  file.path = path;
  return file.loader ? Look::other : Look::tls_library;
}

std::optional<Tracer::UprobeGroup> TargetAttacher::probe(const std::string& path, int fd, Scope scope) {
  auto image = ElfImage::map(fd);
  if (!image) {
    log::debug("skipped {}: {}", path, image.error().message);
    return 0;
  }
  if (image->machine() != host_elf_machine()) {
    log::debug("skipped {}: built for another architecture", path);
    return 0;
  }
  if (scope == Scope::c_libraries && image->section(".go.buildinfo")) return std::nullopt;
  auto plan = plan_probes(*image, shadow_stacks_);
  if (!plan) {
    log::warn("skipped {}: {}", path, plan.error().message);
  } else if (*plan && (*plan)->sites.empty()) {
    log::warn("skipped {}: {}: {}", path, (*plan)->description, fmt::join((*plan)->gaps, "; "));
  } else if (*plan) {
    Tracer::UprobeGroup group = next_group_++;
    size_t probes = attach_plan(group, path, "/proc/self/fd/" + std::to_string(fd), *image, **plan);
    if (probes == 0) return 0;
    attached_[group].probes = probes;
    attached_[group].loader =
        std::any_of((*plan)->sites.begin(), (*plan)->sites.end(),
                    [](const ProbeSite& site) { return site.program == UprobeProgram::loader_libs_changed; });
    return group;
  } else if (named_like_libssl(path)) {
    log::warn("skipped {}: no SSL_write/SSL_read symbols (stripped or not OpenSSL)", path);
  }
  return 0;
}

size_t TargetAttacher::attach_plan(Tracer::UprobeGroup group, const std::string& path,
                                   const std::string& stable_path, const ElfImage& image,
                                   const ProbePlan& plan) {
  size_t attached = 0, instruction_probes = 0, emulated = 0;
  auto attached_at = [&](const ProbeSite& site, std::string_view kind) {
    ++attached;
    // A uretprobe traps at the function's entry on every call, too: its instruction counts.
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), site.file_offset);
    ++instruction_probes;
    if (insn && insn->kernel_emulates) ++emulated;
    log::debug("  {}{} at file offset {:#x}: {} ({})", site.symbol, kind, site.file_offset,
               insn ? insn->text : insn.error().message,
               insn && insn->kernel_emulates ? "emulated" : "single-stepped");
  };
  // Return probes first: a call entering once its entry probe is in place
  // must find its return probe there too, or its return goes unseen.
  std::vector<ProbeSite> sites = plan.sites;
  std::stable_partition(sites.begin(), sites.end(), [](const ProbeSite& site) { return site.is_return; });
  std::vector<bool> in_session = attach_sessions(group, path, stable_path, sites);
  for (size_t i = 0; i < sites.size(); ++i) {
    const ProbeSite& site = sites[i];
    if (in_session[i]) {
      if (!site.is_return) attached_at(site, " uprobe session");
      continue;
    }
    if (auto r = tracer_.attach_uprobe(group, site.program, stable_path, site.file_offset, site.is_return,
                                       site.cookie);
        !r) {
      log::warn("{}: {}: {}", path, site.symbol, r.error().message);
      continue;
    }
    attached_at(site, site.is_return ? " uretprobe" : "");
  }
  for (const auto& warning : plan.warnings) log::debug("{}: {}", path, warning);
  for (const auto& gap : plan.gaps) log::warn("{}: {}", path, gap);
  if (attached == 0) {
    log::warn("{}: {} found but no probe could be attached", path, plan.description);
    return 0;
  }
  log::info("attached {} probes to {} ({}; {} of {} instruction probes on emulated instructions)", attached,
            path, plan.description, emulated, instruction_probes);
  return attached;
}

std::vector<bool> TargetAttacher::attach_sessions(Tracer::UprobeGroup group, const std::string& path,
                                                  const std::string& stable_path,
                                                  const std::vector<ProbeSite>& sites) {
  std::vector<bool> in_session(sites.size(), false);
  for (size_t exit = 0; exit < sites.size(); ++exit) {
    if (!sites[exit].is_return) continue;
    for (size_t entry = 0; entry < sites.size(); ++entry) {
      const ProbeSite& site = sites[entry];
      if (site.is_return || in_session[entry] || site.file_offset != sites[exit].file_offset) continue;
      if (!tracer_.has_session(site.program, sites[exit].program)) continue;
      if (auto r = tracer_.attach_session(group, site.program, sites[exit].program, stable_path,
                                          site.file_offset, site.cookie);
          !r) {
        log::debug("{}: {}: {}; an entry probe and a uretprobe instead", path, site.symbol,
                   r.error().message);
        break;
      }
      in_session[entry] = in_session[exit] = true;
      break;
    }
  }
  return in_session;
}

TargetAttacher::Mapped TargetAttacher::scan_process(uint32_t pid) {
  ScannedProcess scan;
  auto before = scanned_.find(pid);
  const std::vector<MappingId>* seen = before != scanned_.end() ? &before->second.mappings : nullptr;
  scan.maps_tls_library = before != scanned_.end() && before->second.maps_tls_library;
  // Empty when the process is gone already, or a kernel thread.
  for (const auto& file : parse_executable_mappings(read_text_file(fmt::format("/proc/{}/maps", pid)))) {
    if (seen && std::find(seen->begin(), seen->end(), file.id()) != seen->end()) {
      scan.mappings.push_back(file.id());
    } else if (file.deleted) {
      log::debug("pid {}: {} was replaced on disk since it was mapped; not probed", pid, file.path);
      scan.mappings.push_back(file.id());
    } else if (Look look = consider_file(file.path, Scope::all, pid); look != Look::unopened) {
      scan.mappings.push_back(file.id());
      scan.maps_tls_library |= look == Look::tls_library;
    }
  }
  if (scan.mappings.empty()) {
    scanned_.erase(pid);
    return Mapped::nothing;
  }
  Mapped mapped = scan.maps_tls_library ? Mapped::tls_library : Mapped::no_tls_library;
  scanned_[pid] = std::move(scan);
  return mapped;
}

void TargetAttacher::consider_executable_of_gone(const std::string& path, uint64_t inode) {
  // A relative path was the process's, from its working directory; an
  // absolute one may be a container's, naming another file here or none.
  struct stat st {};
  if (!path.starts_with('/') || ::stat(path.c_str(), &st) != 0 || st.st_ino != inode) return;
  Look look = consider_file(path);
  log::debug("{}: its process was gone before it was looked at; the file looked at: {}", path,
             look == Look::tls_library ? "TLS probes attached" : "nothing to attach");
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

void TargetAttacher::release_deleted_files() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_release_check_) return;
  next_release_check_ = now + std::chrono::seconds(5);
  std::vector<Tracer::UprobeGroup> deleted;
  for (const auto& [group, file] : attached_) {
    struct stat st {};
    if (file.fd.valid() && now >= file.next_check && fstat(file.fd.get(), &st) == 0 && st.st_nlink == 0)
      deleted.push_back(group);
  }
  if (deleted.empty()) return;
  std::unordered_set<uint64_t> mapped = mapped_inodes();
  for (Tracer::UprobeGroup group : deleted) {
    AttachedFile& file = attached_.at(group);
    if (std::any_of(file.ids.begin(), file.ids.end(),
                    [&](const FileId& id) { return mapped.contains(id.inode); })) {
      file.next_check = now + file.check_interval;  // a long-running user: look less often
      file.check_interval = std::min(file.check_interval * 2, std::chrono::seconds(600));
      continue;
    }
    // The kernel forgets a loader first: its exec events must not wait for a hook no longer there.
    for (const FileId& id : file.ids)
      if (file.loader) tracer_.forget_file(id);
    tracer_.detach_uprobes(group);
    log::info("detached {} probes from {}: deleted, and no process maps it any more", file.probes, file.path);
    for (const FileId& id : file.ids) probed_.erase(id);  // other mounts' names for it lapse with the group
    attached_.erase(group);
  }
}

}  // namespace tlstap
