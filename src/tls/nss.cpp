#include "tls/nss.h"

#include <array>

#include "tls/nss_methods.h"

namespace tlstap {
namespace {

// Exported by libssl3 (NSS's SSL library) alone.
constexpr std::array<std::string_view, 2> kNssSsl = {"SSL_ImportFD", "NSSSSL_VersionCheck"};

constexpr std::string_view kVersionPrefix = "Version: NSS ";

struct Method {
  const char* name;  // the NSPR call that reaches it
  uint64_t NssLayerMethods::*address;
  UprobeProgram entry;
};

// ssl_Write/ssl_Read(PRFileDesc *, buf, PRInt32) and ssl_Send/ssl_Recv(fd,
// buf, len, flags, timeout) return the bytes moved (< 0 on error) as PRInt32,
// like SSL_write: openssl_call_exit reads that. ssl_Close(fd) ends the
// connection: openssl_free forgets it. The probes go on the entries (the
// functions are reached through the method table, so no call site exists).
constexpr std::array kMethods = {
    Method{"PR_Write", &NssLayerMethods::write, UprobeProgram::nss_write_enter},
    Method{"PR_Read", &NssLayerMethods::read, UprobeProgram::nss_read_enter},
    Method{"PR_Send", &NssLayerMethods::send, UprobeProgram::nss_send_enter},
    Method{"PR_Recv", &NssLayerMethods::recv, UprobeProgram::nss_recv_enter},
};

// The SSL layer's function behind an NSPR call, named after that call (the
// ssl_* functions have no symbol); its size is unknown, and a short window
// is enough to find the first cheap instruction of its entry.
ElfSymbol layer_function(const ElfImage& image, const char* call, uint64_t address) {
  constexpr uint64_t kEntryWindow = 64;
  return {std::string(call) + " (SSL layer)", address, kEntryWindow, image.file_offset(address).value_or(0)};
}

}  // namespace

std::string nss_version(const ElfImage& image) {
  auto banner = image.find_rodata_string(kVersionPrefix);
  if (!banner) return {};
  std::string_view rest = std::string_view(*banner).substr(kVersionPrefix.size());
  return std::string(rest.substr(0, rest.find(' ')));
}

Result<std::optional<ProbePlan>> plan_nss_probes(const ElfImage& image, const PlanOptions& options) {
  if (image.find_functions(kNssSsl).size() != kNssSsl.size()) return std::optional<ProbePlan>{};
  auto methods = find_nss_layer_methods(image);
  if (!methods) return Error{"NSS's libssl3: " + methods.error().message};

  ProbePlan plan;
  std::string version = nss_version(image);
  plan.description = version.empty() ? "nss (version unknown)" : "nss " + version;
  for (const auto& method : kMethods)
    add_cheap_entry_and_return(plan, image, layer_function(image, method.name, (*methods).*method.address),
                               method.entry, UprobeProgram::openssl_call_exit, 2, options);
  add_cheap_entry(plan, image, layer_function(image, "PR_Close", methods->close), UprobeProgram::openssl_free,
                  1, options);
  return std::optional(std::move(plan));
}

}  // namespace tlstap
