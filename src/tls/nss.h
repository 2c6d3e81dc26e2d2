// The NSS adapter: recognises NSS's libssl3 and probes its SSL layer's I/O
// functions (see nss_methods.h), which only TLS sockets reach: plain NSPR
// sockets in the same process are never reported.
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "common/result.h"
#include "tls/probe_plan.h"

namespace tlstap {

// nullopt when the file is not NSS's libssl3; an Error when it is, but its
// SSL layer's functions cannot be located.
Result<std::optional<ProbePlan>> plan_nss_probes(const ElfImage& image, const PlanOptions& options = {});

// "3.87.1" from libssl3's "Version: NSS 3.87.1" string, else "".
std::string nss_version(const ElfImage& image);

}  // namespace tlstap
