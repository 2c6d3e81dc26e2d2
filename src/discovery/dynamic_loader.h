// The dynamic loader (ld.so) calls _dl_debug_state after it maps or unmaps
// libraries, at start-up and on every dlopen/dlclose: probing its calls (or
// it, when they cannot all be found) tells us when to look at a process's
// mappings again.
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "tls/probe_plan.h"

namespace tlstap {

// probe_calls: whether the probes may sit on the hook's calls (not where the
// kernel's emulation of a call would leave a shadow stack behind).
std::optional<ProbePlan> plan_loader_probe(const ElfImage& image, bool probe_calls = true);

}  // namespace tlstap
