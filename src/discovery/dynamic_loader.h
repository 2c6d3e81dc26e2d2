// The dynamic loader (ld.so) calls _dl_debug_state after it maps or unmaps
// libraries, at start-up and on every dlopen/dlclose: probing its calls (or
// it, when they cannot all be found) tells us when to look at a process's
// mappings again.
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "tls/probe_plan.h"

namespace tlstap {

// The probes sit on the hook's calls where options.probe_calls allows it.
std::optional<ProbePlan> plan_loader_probe(const ElfImage& image, const PlanOptions& options = {});

}  // namespace tlstap
