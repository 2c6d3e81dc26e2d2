// The BoringSSL adapter: BoringSSL keeps OpenSSL's SSL_write / SSL_read API
// but not its internals, so it is told apart by symbols only BoringSSL (and
// its forks) export, and probed on the public functions themselves.
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "tls/probe_plan.h"

namespace tlstap {

// Whether the file implements BoringSSL's libssl (never judged by its name).
bool is_boringssl(const ElfImage& image);

// nullopt when the file is not BoringSSL or has neither SSL_write nor SSL_read.
std::optional<ProbePlan> plan_boringssl_probes(const ElfImage& image, const PlanOptions& options = {});

}  // namespace tlstap
