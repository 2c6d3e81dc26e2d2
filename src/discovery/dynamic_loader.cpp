#include "discovery/dynamic_loader.h"

namespace tlstap {

std::optional<ProbePlan> plan_loader_probe(const ElfImage& image) {
  auto soname = image.soname();
  if (!soname || !soname->starts_with("ld-linux")) return std::nullopt;
  auto hook = image.find_function("_dl_debug_state");
  if (!hook) return std::nullopt;
  ProbePlan plan;
  plan.description = "dynamic loader " + *soname;
  // Where the loader's rendezvous (struct r_debug) lies from the hook, the
  // same in every process, so the probe reads the loader's state: 0 when
  // unknown, and every call is reported.
  auto rendezvous = image.find_object("_r_debug");
  uint64_t cookie = rendezvous ? rendezvous->address - hook->address : 0;
  // glibc 2.35 and later (which added __rseq_offset to the loader) chain the
  // rendezvous of every link-map namespace (dlmopen) to the first: only then
  // may the probe walk the link map to spare reports of files known already.
  if (cookie && image.find_object("__rseq_offset")) cookie |= TLSTAP_LOADER_CHAINS_NAMESPACES;
  plan.sites.push_back({hook->name, hook->file_offset, UprobeProgram::loader_libs_changed, false, cookie});
  return plan;
}

}  // namespace tlstap
