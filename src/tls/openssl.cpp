#include "tls/openssl.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "binary/instruction.h"
#include "tls/boringssl.h"
#include "tls/openssl_locator.h"

namespace tlstap {
namespace {

// A public function and its _ex twin, which share one internal callee.
struct FunctionPair {
  std::string_view plain, ex;
  tlstap_function plain_id, ex_id, internal_id;
  UprobeProgram plain_entry, ex_entry;
  std::string_view internal_name;
};

constexpr std::array kPairs = {
    FunctionPair{"SSL_write", "SSL_write_ex", TLSTAP_FN_SSL_WRITE, TLSTAP_FN_SSL_WRITE_EX,
                 TLSTAP_FN_SSL_WRITE_INTERNAL, UprobeProgram::openssl_write_enter,
                 UprobeProgram::openssl_write_ex_enter, "ssl_write_internal"},
    FunctionPair{"SSL_read", "SSL_read_ex", TLSTAP_FN_SSL_READ, TLSTAP_FN_SSL_READ_EX,
                 TLSTAP_FN_SSL_READ_INTERNAL, UprobeProgram::openssl_read_enter,
                 UprobeProgram::openssl_read_ex_enter, "ssl_read_internal"},
};

struct InternalRoute {
  uint64_t callee = 0;  // file offset of the callee's entry
  // Return address of each public function's call, as an offset from the callee's entry.
  int64_t plain_return = 0, ex_return = 0;
};

// Where `branch` returns to, relative to its target; 0 for a tail jump, whose
// return goes to the public function's own caller.
std::optional<int64_t> return_offset(const ElfImage& image, const DirectBranch& branch) {
  if (!branch.is_call) return 0;
  auto decoded =
      decode_instruction(image.bytes_at_address(branch.address, 16), image.machine(), branch.address);
  if (!decoded) return std::nullopt;
  return static_cast<int64_t>(branch.address + decoded->size - branch.target);
}

// The internal entry's cookie (openssl.bpf.c): the function in bits 0-7, the
// return offsets as signed 28-bit fields in bits 8-35 and 36-63 (0: unknown).
std::optional<uint64_t> internal_cookie(tlstap_function internal, int64_t plain_return, int64_t ex_return) {
  constexpr int64_t kLimit = int64_t{1} << 27;
  for (int64_t offset : {plain_return, ex_return})
    if (offset < -kLimit || offset >= kLimit) return std::nullopt;
  constexpr uint64_t kField = (uint64_t{1} << 28) - 1;
  return static_cast<uint64_t>(internal) | (static_cast<uint64_t>(plain_return) & kField) << 8 |
         (static_cast<uint64_t>(ex_return) & kField) << 36;
}

// The callee is trusted only when the _ex function hands its own four
// arguments (ssl, buf, num, processed) to it unchanged, so the callee's
// signature is known; the plain function must call it as well.
std::optional<InternalRoute> find_internal_route(const ElfImage& image, const ElfSymbol& plain,
                                                 const ElfSymbol& ex) {
  auto callee = forwarded_call_target(image.function_bytes(ex), image.machine(), ex.address);
  if (!callee || !image.is_own_code(*callee) || (*callee >= ex.address && *callee < ex.address + ex.size))
    return std::nullopt;
  auto ex_branch = find_direct_branches(image.function_bytes(ex), image.machine(), ex.address);
  auto plain_branch = find_direct_branches(image.function_bytes(plain), image.machine(), plain.address);
  auto to_callee = [&](const DirectBranch& b) { return b.target == *callee; };
  auto ex_call = std::find_if(ex_branch.begin(), ex_branch.end(), to_callee);
  auto plain_call = std::find_if(plain_branch.begin(), plain_branch.end(), to_callee);
  if (ex_call == ex_branch.end() || plain_call == plain_branch.end()) return std::nullopt;
  if (std::count_if(plain_branch.begin(), plain_branch.end(), to_callee) != 1) return std::nullopt;
  auto callee_offset = image.file_offset(*callee);
  auto plain_return = return_offset(image, *plain_call);
  auto ex_return = return_offset(image, *ex_call);
  if (!callee_offset || !plain_return || !ex_return) return std::nullopt;
  return InternalRoute{*callee_offset, *plain_return, *ex_return};
}

void add_entry_and_return(ProbePlan& plan, const ElfSymbol& symbol, UprobeProgram entry) {
  plan.sites.push_back({symbol.name, symbol.file_offset, entry, false});
  plan.sites.push_back({symbol.name, symbol.file_offset, UprobeProgram::openssl_call_exit, true});
}

// False when the calls are too far from the callee for the cookie.
bool add_internal_route(ProbePlan& plan, const FunctionPair& pair, const InternalRoute& route) {
  auto cookie = internal_cookie(pair.internal_id, route.plain_return, route.ex_return);
  if (!cookie) return false;
  std::string callee(pair.internal_name);
  plan.sites.push_back({callee, route.callee, UprobeProgram::openssl_internal_enter, false, *cookie});
  plan.sites.push_back({callee, route.callee, UprobeProgram::openssl_internal_exit, true, pair.internal_id});
  return true;
}

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

std::optional<ProbePlan> plan_openssl_probes(const ElfImage& image, const PlanOptions& options) {
  constexpr std::array<std::string_view, 5> names = {"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex",
                                                     "SSL_free"};
  auto symbols = image.find_functions(names);
  ProbePlan plan;
  const bool without_symbols = !find_symbol(symbols, "SSL_write") && !find_symbol(symbols, "SSL_read");
  if (without_symbols) {
    auto located = locate_openssl_functions(image);
    if (!located.found_names) return std::nullopt;
    symbols = std::move(located.functions);
    plan.gaps = std::move(located.gaps);
  } else if (is_boringssl(image)) {
    return std::nullopt;  // same API, its own adapter
  }
  std::string version = openssl_version(image);
  plan.description = version.empty() ? "openssl (version unknown)" : "openssl " + version;
  if (without_symbols) plan.description += "; no symbols: functions located by their error records";
  for (const auto& pair : kPairs) {
    const ElfSymbol* plain = find_symbol(symbols, pair.plain);
    const ElfSymbol* ex = find_symbol(symbols, pair.ex);
    if (options.call_sites && plain && ex) {
      if (auto route = find_internal_route(image, *plain, *ex);
          route && add_internal_route(plan, pair, *route))
        continue;
      plan.warnings.push_back(
          fmt::format("no single internal callee of {} and {}: probing their entries", pair.plain, pair.ex));
    }
    if (plain) add_entry_and_return(plan, *plain, pair.plain_entry);
    if (ex) add_entry_and_return(plan, *ex, pair.ex_entry);
    if (without_symbols) continue;  // the locator has said why
    // SSL_*_ex exist since OpenSSL 1.1.1; older builds only lack coverage, not correctness.
    if (!plain) plan.warnings.push_back(fmt::format("{} not found", pair.plain));
    if (!ex) plan.warnings.push_back(fmt::format("{} not found", pair.ex));
  }
  // Without it a freed SSL* reused for a new connection on the same socket
  // address goes unnoticed only if the ports match too; with it, never.
  if (const ElfSymbol* free = find_symbol(symbols, "SSL_free"))
    add_cheap_entry(plan, image, *free, UprobeProgram::openssl_free, 1, options);
  return plan;
}

}  // namespace tlstap
