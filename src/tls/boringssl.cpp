#include "tls/boringssl.h"

#include <fmt/format.h>

#include <array>

namespace tlstap {
namespace {

// Exported by BoringSSL's libssl (and its fork AWS-LC) and by no OpenSSL
// release or fork (quictls shares BoringSSL's QUIC API, so not that): its own
// certificate-verification hook and GREASE switch.
constexpr std::array<std::string_view, 2> kBoringOnly = {"SSL_CTX_set_custom_verify",
                                                         "SSL_CTX_set_grease_enabled"};

// BoringSSL has no releases: what names the build is its soname.
std::string describe(const ElfImage& image) {
  auto soname = image.soname();
  return soname ? fmt::format("boringssl (unversioned; soname {})", *soname) : "boringssl (unversioned)";
}

}  // namespace

bool is_boringssl(const ElfImage& image) {
  return !image.find_functions(kBoringOnly).empty();
}

// SSL_write and SSL_read do not forward their arguments to one internal
// function (SSL_write loops over the method's write_app_data; SSL_read passes
// only the SSL* on), so their entries (in Debian's build an emulated push) and
// returns are probed. SSL_write_ex / SSL_read_ex, where a build has them, are
// wrappers of these two and are seen through them; SSL_peek does not consume
// data and is not reported.
std::optional<ProbePlan> plan_boringssl_probes(const ElfImage& image, const PlanOptions& options) {
  constexpr std::array<std::string_view, 3> names = {"SSL_write", "SSL_read", "SSL_free"};
  auto symbols = image.find_functions(names);
  const ElfSymbol* write = find_symbol(symbols, "SSL_write");
  const ElfSymbol* read = find_symbol(symbols, "SSL_read");
  if ((!write && !read) || !is_boringssl(image)) return std::nullopt;

  ProbePlan plan;
  plan.description = describe(image);
  // The entry programs need (ssl, buf); the count comes from the return value.
  if (write)
    add_cheap_entry_and_return(plan, image, *write, UprobeProgram::boringssl_write_enter,
                               UprobeProgram::openssl_call_exit, 2, options);
  else
    plan.warnings.push_back("SSL_write not found");
  if (read)
    add_cheap_entry_and_return(plan, image, *read, UprobeProgram::boringssl_read_enter,
                               UprobeProgram::openssl_call_exit, 2, options);
  else
    plan.warnings.push_back("SSL_read not found");
  // The next SSL_new may return a freed SSL*'s address: same program as OpenSSL's.
  if (const ElfSymbol* free = find_symbol(symbols, "SSL_free"))
    add_cheap_entry(plan, image, *free, UprobeProgram::openssl_free, 1, options);
  return plan;
}

}  // namespace tlstap
