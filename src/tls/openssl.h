// The OpenSSL adapter: recognises a file that implements OpenSSL's SSL_read /
// SSL_write API (libssl, or an executable with OpenSSL linked in statically
// and its symbols kept) and plans entry and return probes for each function.
#pragma once

#include <optional>

#include "binary/elf_image.h"
#include "tls/probe_plan.h"

namespace tlstap {

// nullopt when the file carries neither SSL_write nor SSL_read.
std::optional<ProbePlan> plan_openssl_probes(const ElfImage& image);

// "3.0.19" from an "OpenSSL 3.0.19 ..." string, else the soname's version, else "".
std::string openssl_version(const ElfImage& image);

}  // namespace tlstap
