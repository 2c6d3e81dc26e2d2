#include "tls/openssl.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace tlstap {
namespace {

struct FunctionProbe {
  std::string_view symbol;
  UprobeProgram entry;
};

constexpr std::array kFunctions = {
    FunctionProbe{"SSL_write", UprobeProgram::openssl_write_enter},
    FunctionProbe{"SSL_read", UprobeProgram::openssl_read_enter},
    FunctionProbe{"SSL_write_ex", UprobeProgram::openssl_write_ex_enter},
    FunctionProbe{"SSL_read_ex", UprobeProgram::openssl_read_ex_enter},
};

// The banner OpenSSL_version() returns: "OpenSSL 3.0.19 27 Jan 2026".
constexpr std::string_view kBannerPrefix = "OpenSSL ";

bool is_version_banner(std::string_view s) {
  return s.size() > kBannerPrefix.size() && std::isdigit(static_cast<unsigned char>(s[kBannerPrefix.size()]));
}

}  // namespace

std::string openssl_version(const ElfImage& image) {
  if (auto banner = image.find_rodata_string(kBannerPrefix, is_version_banner)) {
    std::string_view rest = std::string_view(*banner).substr(kBannerPrefix.size());
    return std::string(rest.substr(0, rest.find(' ')));
  }
  if (auto soname = image.soname()) {
    constexpr std::string_view prefix = "libssl.so.";
    if (soname->starts_with(prefix)) return soname->substr(prefix.size()) + ".x";
  }
  return {};
}

std::optional<ProbePlan> plan_openssl_probes(const ElfImage& image) {
  std::array<std::string_view, kFunctions.size()> names;
  for (size_t i = 0; i < kFunctions.size(); ++i) names[i] = kFunctions[i].symbol;
  auto symbols = image.find_functions(names);
  auto has = [&](std::string_view name) {
    return std::any_of(symbols.begin(), symbols.end(), [&](const ElfSymbol& s) { return s.name == name; });
  };
  if (!has("SSL_write") && !has("SSL_read")) return std::nullopt;

  ProbePlan plan;
  std::string version = openssl_version(image);
  plan.description = version.empty() ? "openssl (version unknown)" : "openssl " + version;
  for (const auto& function : kFunctions) {
    auto symbol = std::find_if(symbols.begin(), symbols.end(),
                               [&](const ElfSymbol& s) { return s.name == function.symbol; });
    if (symbol == symbols.end()) {
      // SSL_*_ex exist since OpenSSL 1.1.1; older builds only lack coverage, not correctness.
      plan.warnings.push_back(fmt::format("{} not found", function.symbol));
      continue;
    }
    plan.sites.push_back({symbol->name, symbol->file_offset, function.entry, false});
    plan.sites.push_back({symbol->name, symbol->file_offset, UprobeProgram::openssl_call_exit, true});
  }
  return plan;
}

}  // namespace tlstap
