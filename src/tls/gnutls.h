// The GnuTLS adapter: recognises libgnutls (or a program with GnuTLS linked
// in, symbols kept) by its record-layer API and plans entry and return probes
// on the functions that carry application data.
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "tls/probe_plan.h"

namespace tlstap {

// nullopt when the file has neither gnutls_record_send nor gnutls_record_recv.
std::optional<ProbePlan> plan_gnutls_probes(const ElfImage& image, const PlanOptions& options = {});

}  // namespace tlstap
