#include "tls/gnutls.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "binary/instruction.h"

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
void add_call(ProbePlan& plan, const ElfImage& image, const ElfSymbol& symbol, UprobeProgram entry,
              const PlanOptions& options) {
  add_cheap_entry_and_return(plan, image, symbol, entry, UprobeProgram::gnutls_call_exit, 2, options);
}

// The one function `symbol` tail-jumps to (a jmp out of its own code), when it is code of this file.
std::optional<uint64_t> tail_jump_target(const ElfImage& image, const ElfSymbol& symbol) {
  std::optional<uint64_t> target;
  for (const auto& branch :
       find_direct_branches(image.function_bytes(symbol), image.machine(), symbol.address)) {
    if (branch.is_call || (branch.target >= symbol.address && branch.target < symbol.address + symbol.size))
      continue;
    if (target && *target != branch.target) return std::nullopt;
    target = branch.target;
  }
  if (!target || !image.is_own_code(*target)) return std::nullopt;
  return target;
}

// gnutls_record_recv and gnutls_record_recv_seq tail-jump to the record
// layer's receive, _gnutls_recv_int(session, type, data, size, ...), with
// type GNUTLS_APPLICATION_DATA. gnutls_record_recv's own first instruction
// (sub rsp in 3.7) is single-stepped, which its uretprobe pays on every call
// (~12 us here); the record layer's is an emulated push. So when both jump
// there, the receive probes go there (its entry program skips other record
// types), and a kTLS branch of gnutls_record_recv (a call to another function
// of the library, same arguments) gets a probe on the call and on the
// instruction after it. False: not that code; the caller probes the API.
bool plan_record_layer_receive(ProbePlan& plan, const ElfImage& image, const std::vector<ElfSymbol>& symbols,
                               const PlanOptions& options) {
  const ElfSymbol* recv = find_symbol(symbols, "gnutls_record_recv");
  if (!recv) return false;
  auto layer = tail_jump_target(image, *recv);
  if (!layer) return false;
  if (const ElfSymbol* seq = find_symbol(symbols, "gnutls_record_recv_seq");
      seq && tail_jump_target(image, *seq) != layer)
    return false;
  auto first = decode_instruction(image.bytes_at_address(*layer, 16), image.machine(), *layer);
  if (!first || !first->kernel_emulates || (!options.probe_calls && first->text.starts_with("call")))
    return false;
  auto code = image.function_bytes(*recv);
  std::vector<DirectBranch> own_calls;
  for (const auto& branch : find_direct_branches(code, image.machine(), recv->address))
    if (branch.is_call && branch.target != *layer && image.is_own_code(branch.target))
      own_calls.push_back(branch);
  if (!own_calls.empty() && !options.probe_calls) {
    plan.warnings.push_back(
        "gnutls_record_recv's kTLS call may not be probed (a process with a shadow stack could run it, and "
        "this kernel would not push on it): gnutls_record_recv itself is");
    return false;
  }
  constexpr std::string_view kLayer = "gnutls record layer receive (from gnutls_record_recv)";
  if (!add_site_at(plan, image, std::string(kLayer), *layer, UprobeProgram::gnutls_recv_record_enter))
    return false;
  add_site_at(plan, image, std::string(kLayer), *layer, UprobeProgram::gnutls_call_exit, true);
  if (own_calls.size() > 1) {
    plan.warnings.push_back("gnutls_record_recv calls more than one function of the library: no kTLS probes");
    return true;
  }
  for (const auto& branch : own_calls) {
    auto call =
        decode_instruction(code.subspan(branch.address - recv->address), image.machine(), branch.address);
    if (!call) continue;
    // Cookie 0: the call's frame is the stack pointer at the call, inside
    // gnutls_record_recv's own; calls nested in it still run below it.
    add_site_at(plan, image, "gnutls_record_recv kTLS call", branch.address,
                UprobeProgram::gnutls_recv_record_enter);
    add_site_at(plan, image, "gnutls_record_recv kTLS return", branch.address + call->size,
                UprobeProgram::gnutls_int_result);
  }
  return true;
}

}  // namespace

std::optional<ProbePlan> plan_gnutls_probes(const ElfImage& image, const PlanOptions& options) {
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
      add_call(plan, image, *symbol, send.entry, options);
      break;
    }
  }
  if (!plan_record_layer_receive(plan, image, symbols, options)) {
    for (const auto& receive : kReceive)
      if (const ElfSymbol* symbol = find_symbol(symbols, receive.symbol))
        add_call(plan, image, *symbol, receive.entry, options);
  }
  if (const ElfSymbol* deinit = find_symbol(symbols, "gnutls_deinit"))
    plan.sites.push_back({deinit->name, deinit->file_offset, UprobeProgram::gnutls_free, false});
  return plan;
}

}  // namespace tlstap
