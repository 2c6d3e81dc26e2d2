// Finds the files worth probing (libraries and executables implementing a
// TLS API, and the dynamic loader) in running processes and on the host,
// and attaches each file once, whatever path it is reached by: a bind mount,
// /proc/PID/root, or the overlay mounts of containers sharing an image layer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

#include "binary/elf_image.h"
#include "common/file_id.h"
#include "probe/tracer.h"
#include "tls/openssl.h"
#include "tls/probe_plan.h"

namespace tlstap {

class TargetAttacher {
 public:
  TargetAttacher(Tracer& tracer, OpensslPlanOptions openssl) : tracer_(tracer), openssl_(openssl) {}

  // Every executable file mapped by pid, reached through /proc/PID/root.
  void scan_process(uint32_t pid);
  // libssl and ld.so in the usual library directories, for processes yet to start.
  void scan_library_directories();
  // Executables with a C TLS library built in (node) in the usual bin
  // directories: attached before they start, so their first call is seen.
  void scan_executable_directories();
  // Which adapters may claim a file: every one, or only the C libraries'
  // (Go programs on disk are many and attached when they run).
  enum class Scope { all, c_libraries };
  // `path` as process `pid` sees it (0: as tlstap does).
  void consider_file(const std::string& path, Scope scope = Scope::all, uint32_t pid = 0);

  size_t attached_files() const { return attached_files_; }

 private:
  // `path` names the file in logs; `stable_path` reaches it while we attach.
  void attach_plan(const std::string& path, const std::string& stable_path, const ElfImage& image,
                   const ProbePlan& plan);

  Tracer& tracer_;
  OpensslPlanOptions openssl_;
  std::unordered_set<FileId, FileIdHash> seen_;
  size_t attached_files_ = 0;
};

}  // namespace tlstap
