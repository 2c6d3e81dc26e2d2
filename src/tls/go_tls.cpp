#include "tls/go_tls.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "binary/go_binary.h"
#include "binary/instruction.h"

extern "C" {
#include "events.h"
}

namespace tlstap {
namespace {

struct GoTlsFunction {
  std::string_view name;
  tlstap_function id;  // 0 for Close, which moves no data
};

constexpr std::array kFunctions = {
    GoTlsFunction{"crypto/tls.(*Conn).Write", TLSTAP_FN_GO_WRITE},
    GoTlsFunction{"crypto/tls.(*Conn).Read", TLSTAP_FN_GO_READ},
    GoTlsFunction{"crypto/tls.(*Conn).Close", tlstap_function{}},
};

// Symbols when the binary kept them, else the runtime's own function table.
Result<std::vector<GoFunction>> locate_functions(const ElfImage& image) {
  std::array<std::string_view, kFunctions.size()> names;
  for (size_t i = 0; i < kFunctions.size(); ++i) names[i] = kFunctions[i].name;
  std::vector<GoFunction> functions;
  for (const auto& symbol : image.find_functions(names))
    if (symbol.size) functions.push_back({symbol.name, symbol.address, symbol.address + symbol.size});
  if (functions.size() == kFunctions.size()) return functions;
  auto pclntab = image.section(".gopclntab");
  if (!pclntab || pclntab->bytes.empty()) return Error{"no symbols and no .gopclntab section"};
  return find_go_functions(pclntab->bytes, names);
}

// Register-based arguments: amd64 since Go 1.17, arm64 since 1.18.
bool uses_register_abi(const GoVersion& version, ElfMachine machine) {
  int first_minor = machine == ElfMachine::aarch64 ? 18 : 17;
  return version.major > 1 || version.minor >= first_minor;
}

}  // namespace

Result<std::optional<ProbePlan>> plan_go_probes(const ElfImage& image) {
  auto buildinfo = image.section(".go.buildinfo");
  if (!buildinfo) return std::optional<ProbePlan>();
  auto version = parse_go_buildinfo(buildinfo->bytes, [&](uint64_t address, uint64_t size) {
    return image.bytes_at_address(address, size);
  });
  if (!version) return Error{"Go executable: " + version.error().message};
  auto functions = locate_functions(image);
  if (!functions) return Error{fmt::format("{}: {}", version->text, functions.error().message)};
  bool moves_data = std::any_of(functions->begin(), functions->end(),
                                [](const GoFunction& f) { return !f.name.ends_with(".Close"); });
  if (!moves_data) return std::optional<ProbePlan>();  // a Go program that does not use crypto/tls
  if (!uses_register_abi(*version, image.machine()))
    return Error{fmt::format("{} passes arguments on the stack (ABI0), which tlstap does not support yet",
                             version->text)};

  ProbePlan plan;
  plan.description = version->text + " crypto/tls";
  for (const auto& function : *functions) {
    auto known = std::find_if(kFunctions.begin(), kFunctions.end(),
                              [&](const GoTlsFunction& f) { return f.name == function.name; });
    auto code = image.bytes_at_address(function.entry, function.end - function.entry);
    if (known == kFunctions.end() || code.empty())
      return Error{fmt::format("{}: code of {} is not in the file", version->text, function.name)};
    uint64_t entry = cheapest_entry(code, image.machine(), function.entry, CallingConvention::go);
    // On the stack-check branch the entry program knows when the call really
    // starts, and a Write is captured there whole: it needs no return probes.
    bool on_stack_check = is_go_stack_check(code, image.machine(), function.entry, entry);
    uint64_t stack_check_flag = on_stack_check ? TLSTAP_GO_SITE_STACK_CHECK : 0;
    auto site = [&](uint64_t address, UprobeProgram program, std::string name,
                    uint64_t cookie) -> Result<ProbeSite> {
      auto offset = image.file_offset(address);
      if (!offset) return Error{fmt::format("{}: address {:#x} is not in the file", function.name, address)};
      return ProbeSite{std::move(name), *offset, program, false, cookie};
    };
    if (known->id == tlstap_function{}) {  // Close: the entry only
      auto close_site = site(entry, UprobeProgram::go_tls_close, function.name, stack_check_flag);
      if (!close_site) return close_site.error();
      plan.sites.push_back(*close_site);
      continue;
    }
    bool needs_returns = !(on_stack_check && known->id == TLSTAP_FN_GO_WRITE);
    auto returns =
        needs_returns ? find_returns(code, image.machine(), function.entry) : std::vector<uint64_t>{};
    if (needs_returns && returns.empty())
      return Error{fmt::format("{}: no return instruction found in {}", version->text, function.name)};
    uint64_t entry_cookie = known->id | stack_check_flag;
    auto entry_site = site(entry, UprobeProgram::go_tls_enter, function.name, entry_cookie);
    if (!entry_site) return entry_site.error();
    plan.sites.push_back(*entry_site);
    for (uint64_t ret : returns) {
      auto return_site = site(ret, UprobeProgram::go_tls_return, function.name + " return", known->id);
      if (!return_site) return return_site.error();
      plan.sites.push_back(*return_site);
    }
  }
  return std::optional<ProbePlan>(std::move(plan));
}

}  // namespace tlstap
