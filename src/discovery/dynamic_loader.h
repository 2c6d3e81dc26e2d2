// The dynamic loader (ld.so) calls _dl_debug_state after it maps or unmaps
// libraries, at start-up and on every dlopen/dlclose: probing its calls (or
// it, when they cannot all be found) tells us when to look at a process's
// mappings again.
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "binary/instruction.h"
#include "tls/probe_plan.h"

namespace tlstap {

// Whether a call of the hook comes right after a store of RT_ADD to r_state
// (x86-64 glibc's struct r_debug), with no branch landing past it: the
// announcement of a load, which the probe would not report. An unload's
// announcement (RT_DELETE) it notes, for the report once it is done.
bool announces_a_load(const BranchTo& call);

// The probes sit on the hook's calls where options.probe_calls allows it,
// but for those that announce a load.
std::optional<ProbePlan> plan_loader_probe(const ElfImage& image, const PlanOptions& options = {});

}  // namespace tlstap
