// The OpenSSL adapter: recognises a file that implements OpenSSL's SSL_read /
// SSL_write API (libssl, or an executable with OpenSSL linked in statically,
// its symbols kept or, for OpenSSL 3, stripped: openssl_locator.h) and plans
// where to probe.
//
// Preferred sites (DESIGN.md, "The cost of a uprobe here"): SSL_write and
// SSL_write_ex both call one internal function (ssl_write_internal), likewise
// for read. When the code shows exactly one such common callee, we probe only
// the callee's entry (an emulated push, typically) and return, and tell the
// BPF program where each public function's call returns to, so it still names
// the public function; otherwise, the public functions' entries and returns.
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "tls/probe_plan.h"

namespace tlstap {

// nullopt when the file carries neither SSL_write nor SSL_read, or is BoringSSL.
// A plan without sites: OpenSSL 3 without symbols, its functions not located
// (the plan's gaps say why).
std::optional<ProbePlan> plan_openssl_probes(const ElfImage& image, const PlanOptions& options = {});

// "3.0.19" from an "OpenSSL 3.0.19 ..." string, else the soname's version, else "".
std::string openssl_version(const ElfImage& image);

}  // namespace tlstap
