// The Go adapter: crypto/tls is compiled into each Go executable. Finds
// (*Conn).Write and (*Conn).Read through .symtab or, in stripped binaries,
// .gopclntab; probes the cheapest entry instruction and every return
// instruction (uretprobes break Go's movable stacks).
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "common/result.h"
#include "tls/probe_plan.h"

namespace tlstap {

// nullopt: not a Go executable, or one without crypto/tls. Error: a Go
// executable with crypto/tls that tlstap cannot probe, and why.
Result<std::optional<ProbePlan>> plan_go_probes(const ElfImage& image, const PlanOptions& options = {});

}  // namespace tlstap
