#include "discovery/dynamic_loader.h"

namespace tlstap {

std::optional<ProbePlan> plan_loader_probe(const ElfImage& image) {
  auto soname = image.soname();
  if (!soname || !soname->starts_with("ld-linux")) return std::nullopt;
  auto hook = image.find_function("_dl_debug_state");
  if (!hook) return std::nullopt;
  ProbePlan plan;
  plan.description = "dynamic loader " + *soname;
  plan.sites.push_back({hook->name, hook->file_offset, UprobeProgram::loader_libs_changed, false});
  return plan;
}

}  // namespace tlstap
