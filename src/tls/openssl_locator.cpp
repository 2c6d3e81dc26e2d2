#include "tls/openssl_locator.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "binary/instruction.h"

namespace tlstap {
namespace {

struct Names {
  std::string_view plain, ex, internal;
};

constexpr std::array kNames = {Names{"SSL_write", "SSL_write_ex", "ssl_write_internal"},
                               Names{"SSL_read", "SSL_read_ex", "ssl_read_internal"}};

const ElfSymbol* at_address(const std::vector<ElfSymbol>& functions, uint64_t address) {
  auto it = std::find_if(functions.begin(), functions.end(),
                         [&](const ElfSymbol& f) { return f.address == address; });
  return it == functions.end() ? nullptr : &*it;
}

class Locator {
 public:
  explicit Locator(const ElfImage& image) : image_(image), code_(image.code_sections()) {}

  void locate(const Names& names, LocatedFunctions& out) const {
    auto plain_strings = image_.rodata_string_addresses(names.plain);
    auto internal_strings = image_.rodata_string_addresses(names.internal);
    if (internal_strings.empty()) return;
    out.found_names = true;
    auto plains = functions_referring_to(plain_strings, names.plain);
    auto internals = functions_referring_to(internal_strings, names.internal);
    if (plains.size() != 1) {
      out.warnings.push_back(
          fmt::format("{} not located: {} functions load its name", names.plain, plains.size()));
      return;
    }
    const ElfSymbol& plain = plains.front();
    if (at_address(internals, plain.address)) {
      out.functions.push_back(plain);
      out.warnings.push_back(fmt::format("{} not located: {} is inlined", names.ex, names.internal));
      return;
    }
    const ElfSymbol* internal = called_by(plain, internals);
    if (!internal) {
      // A part split off a function, or not OpenSSL's SSL_read at all.
      out.warnings.push_back(
          fmt::format("{} not located: the function loading its name neither calls nor is {}", names.plain,
                      names.internal));
      return;
    }
    out.functions.push_back(plain);
    auto callers = functions_referring_to(std::vector<uint64_t>{internal->address}, names.ex);
    std::erase_if(callers, [&](const ElfSymbol& caller) {
      return caller.address == plain.address ||
             forwarded_call_target(image_.function_bytes(caller), image_.machine(), caller.address) !=
                 internal->address;
    });
    if (callers.size() == 1)
      out.functions.push_back(callers.front());
    else
      out.warnings.push_back(fmt::format("{} not located: {} functions hand their arguments to {}", names.ex,
                                         callers.size(), names.internal));
  }

 private:
  // The distinct functions with an instruction that refers to one of
  // `targets`, each named `name`.
  std::vector<ElfSymbol> functions_referring_to(const std::vector<uint64_t>& targets,
                                                std::string_view name) const {
    std::vector<ElfSymbol> functions;
    for (uint64_t target : targets)
      for (const auto& section : code_)
        for (uint64_t site :
             find_pc_relative_references(section.bytes, image_.machine(), section.address, target)) {
          auto function = image_.function_from_call_frames(site, std::string(name));
          if (!function || at_address(functions, function->address)) continue;
          // Found by its encoding: it must also be one of the function's instructions.
          if (decodes_instruction_at(image_.function_bytes(*function), image_.machine(), function->address,
                                     site))
            functions.push_back(std::move(*function));
        }
    return functions;
  }

  // The one function among `candidates` that `caller` calls or jumps to.
  const ElfSymbol* called_by(const ElfSymbol& caller, const std::vector<ElfSymbol>& candidates) const {
    const ElfSymbol* callee = nullptr;
    for (const auto& branch :
         find_direct_branches(image_.function_bytes(caller), image_.machine(), caller.address))
      if (const ElfSymbol* candidate = at_address(candidates, branch.target)) {
        if (callee && callee != candidate) return nullptr;
        callee = candidate;
      }
    return callee;
  }

  const ElfImage& image_;
  std::vector<ElfImage::Section> code_;
};

}  // namespace

LocatedFunctions locate_openssl_functions(const ElfImage& image) {
  LocatedFunctions located;
  Locator locator(image);
  for (const auto& names : kNames) locator.locate(names, located);
  // Other programs hold these names too (tlstap does): with nothing located,
  // only a file that also names OpenSSL's source file is worth a warning.
  if (located.functions.empty() && image.rodata_string_addresses("ssl/ssl_lib.c").empty()) return {};
  return located;
}

}  // namespace tlstap
