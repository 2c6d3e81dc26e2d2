// Finds the files worth probing (libraries and executables implementing a
// TLS API, and the dynamic loader) in running processes and on the host,
// and attaches each file once, whatever path it is reached by: a bind mount,
// /proc/PID/root, or the overlay mounts of containers sharing an image layer.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "binary/elf_image.h"
#include "common/file_id.h"
#include "common/lru_map.h"
#include "common/unique_fd.h"
#include "discovery/proc_maps.h"
#include "probe/kernel_features.h"
#include "probe/tracer.h"
#include "tls/probe_plan.h"

namespace tlstap {

// What the adapters plan for `image` (nullopt: none recognises it; an Error:
// recognised, but it cannot be probed). Only a file marked for shadow stacks
// can run in a process that has one: the dynamic loader turns them on only
// when all of a program's files are marked (unless GLIBC_TUNABLES forces them
// on, which tlstap cannot see). In such a file no probe sits on a call the
// kernel would emulate without pushing on the shadow stack, and none on a
// return the kernel would divert without updating it: a process would die at
// the callee's or the probed function's return.
Result<std::optional<ProbePlan>> plan_probes(const ElfImage& image, const ShadowStackSupport& shadow_stacks);

class TargetAttacher {
 public:
  // shadow_stacks: what decides where probes may go in files marked for them.
  TargetAttacher(Tracer& tracer, ShadowStackSupport shadow_stacks)
      : tracer_(tracer), shadow_stacks_(shadow_stacks) {}

  // What a process's scan found: nothing (it is gone, a kernel thread, or
  // none of its files could be opened), or whether it maps a file with TLS
  // probes (a dynamic loader's aside).
  enum class Mapped { nothing, no_tls_library, tls_library };
  // Every executable file mapped by pid, reached through /proc/PID/root; the
  // files its last scan looked at are not looked at again.
  Mapped scan_process(uint32_t pid);
  // The executable of a process gone before its scan, if `path` (as given to
  // execve) still names it on tlstap's side, by its inode: so that its next
  // start, if it is short-lived too, finds it looked at (attached, or known
  // without TLS).
  void consider_executable_of_gone(const std::string& path, uint64_t inode);
  // The process exec'd or exited: its last scan is forgotten.
  void forget_process(uint32_t pid) { scanned_.erase(pid); }
  // Every process's last scan is forgotten: the next scans look at everything.
  void forget_processes() { scanned_.clear(); }
  // libssl and ld.so in the usual library directories, for processes yet to start.
  void scan_library_directories();
  // Executables with a C TLS library built in (node) in the usual bin
  // directories: attached before they start, so their first call is seen.
  void scan_executable_directories();
  // Which adapters may claim a file: every one, or only the C libraries'
  // (Go programs on disk are many and attached when they run).
  enum class Scope { all, c_libraries };
  // What looking at a file found; unopened: worth another look later.
  enum class Look { unopened, other, tls_library };
  // `path` as process `pid` sees it (0: as tlstap does).
  Look consider_file(const std::string& path, Scope scope = Scope::all, uint32_t pid = 0);

  size_t attached_files() const { return attached_.size(); }

  // Takes the probes off each file deleted (a package upgrade, a container
  // image removed) that no process maps any more: they kept it on disk, and
  // its inode number from reuse. Called between polls; looks every few seconds.
  void release_deleted_files();

 private:
  struct KnownFile {
    struct timespec ctime {};       // a new file on a reused inode number has another
    Tracer::UprobeGroup group = 0;  // another mount's name for the probed file of this group; 0: not probed
  };
  struct AttachedFile {
    std::vector<FileId> ids;  // its own and, on overlayfs, its layer's file's
    UniqueFd fd;              // on the real file, if known: its link count says when it is deleted
    std::string path;         // as first reached, for the log
    size_t probes = 0;
    bool loader = false;  // a dynamic loader's hook: the kernel is told (Tracer::remember_file)
    std::chrono::steady_clock::time_point next_check{};
    std::chrono::seconds check_interval{5};  // doubles while processes still map it
  };

  // What looking at the file found before, if it is still the same file
  // (nullopt: look at it); the kernel is told of it again (Tracer::remember_file).
  std::optional<Look> recall(const FileId& id, const struct stat& st);
  // Attaches what the file implements; 0 when nothing, nullopt when it is left
  // for later (a Go program on disk, attached when it runs).
  std::optional<Tracer::UprobeGroup> probe(const std::string& path, int fd, Scope scope);
  // `path` names the file in logs; `stable_path` reaches it while we attach.
  // Returns how many probes were attached.
  size_t attach_plan(Tracer::UprobeGroup group, const std::string& path, const std::string& stable_path,
                     const ElfImage& image, const ProbePlan& plan);
  // Attaches each entry probe and uretprobe on the same instruction that the
  // tracer can run as one uprobe session; true: that site is attached.
  std::vector<bool> attach_sessions(Tracer::UprobeGroup group, const std::string& path,
                                    const std::string& stable_path, const std::vector<ProbeSite>& sites);

  Tracer& tracer_;
  ShadowStackSupport shadow_stacks_;
  std::unordered_map<FileId, Tracer::UprobeGroup, FileIdHash> probed_;  // the ids of attached_'s files
  // Files looked at and not probed, and other mounts' names for probed ones:
  // bounded, since containers come and go with files of their own; one
  // forgotten is only looked at again.
  LruMap<FileId, KnownFile, FileIdHash> looked_at_{65536};
  std::unordered_map<Tracer::UprobeGroup, AttachedFile> attached_;
  // Per process, the mappings its last scan looked at: each report of its
  // loader (a load of a file not known to the kernel, every unload) rescans
  // the process, and only what is new is looked at. An inode mapped at both
  // scans is taken for the same file (a file unmapped in between, and so
  // perhaps rewritten or its number reused, is gone from the scan its
  // unload's report brings); an exec or exit forgets the process's entry.
  struct ScannedProcess {
    std::vector<MappingId> mappings;
    bool maps_tls_library = false;
  };
  std::unordered_map<uint32_t, ScannedProcess> scanned_;
  Tracer::UprobeGroup next_group_ = 1;
  std::chrono::steady_clock::time_point next_release_check_{};
};

}  // namespace tlstap
