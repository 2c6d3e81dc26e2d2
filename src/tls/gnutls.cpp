#include "tls/gnutls.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace tlstap {
namespace {

struct RecordFunction {
  std::string_view symbol;
  UprobeProgram entry;
};

// gnutls_record_send tail-calls gnutls_record_send2 (3.6.3+): probing both
// would see one call twice, so send is probed only where send2 is missing.
constexpr std::array kSend = {RecordFunction{"gnutls_record_send2", UprobeProgram::gnutls_send_enter},
                              RecordFunction{"gnutls_record_send", UprobeProgram::gnutls_send_enter}};
constexpr std::array kReceive = {RecordFunction{"gnutls_record_recv", UprobeProgram::gnutls_recv_enter},
                                 RecordFunction{"gnutls_record_recv_seq", UprobeProgram::gnutls_recv_enter}};

// GnuTLS keeps its version ("3.7.9") as a bare string for gnutls_check_version().
bool is_version(std::string_view s) {
  return s.size() >= 5 && s.size() <= 12 && std::count(s.begin(), s.end(), '.') == 2 &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; });
}

// Entry (on the cheapest instruction that still sees session and data) and return.
void add_call(ProbePlan& plan, const ElfImage& image, const ElfSymbol& symbol, UprobeProgram entry) {
  add_cheap_entry_and_return(plan, image, symbol, entry, UprobeProgram::gnutls_call_exit, 2);
}

}  // namespace

std::optional<ProbePlan> plan_gnutls_probes(const ElfImage& image) {
  constexpr std::array<std::string_view, 5> names = {"gnutls_record_send2", "gnutls_record_send",
                                                     "gnutls_record_recv", "gnutls_record_recv_seq",
                                                     "gnutls_deinit"};
  auto symbols = image.find_functions(names);
  if (!find_symbol(symbols, "gnutls_record_send") && !find_symbol(symbols, "gnutls_record_recv"))
    return std::nullopt;

  ProbePlan plan;
  auto version = image.find_rodata_string("3.", is_version);
  plan.description = "gnutls " + (version ? *version : std::string("(version unknown)"));
  for (const auto& send : kSend) {
    if (const ElfSymbol* symbol = find_symbol(symbols, send.symbol)) {
      add_call(plan, image, *symbol, send.entry);
      break;
    }
  }
  for (const auto& receive : kReceive)
    if (const ElfSymbol* symbol = find_symbol(symbols, receive.symbol))
      add_call(plan, image, *symbol, receive.entry);
  if (const ElfSymbol* deinit = find_symbol(symbols, "gnutls_deinit"))
    plan.sites.push_back({deinit->name, deinit->file_offset, UprobeProgram::gnutls_free, false});
  return plan;
}

}  // namespace tlstap
