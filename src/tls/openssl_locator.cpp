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
  // ssl_lib.c holds SSL_read, SSL_write and their internal functions.
  explicit Locator(const ElfImage& image)
      : image_(image),
        code_(image.code_sections()),
        source_files_(image.rodata_strings_ending_with("ssl/ssl_lib.c", ElfImage::StringAddress::of_string)) {
  }

  void locate(const Names& names, LocatedFunctions& out) const {
    if (source_files_.empty()) return;
    auto plains = functions_raising(names.plain);
    auto internals = functions_raising(names.internal);
    if (internals.empty()) return;
    out.found_names = true;
    if (plains.size() != 1) {
      out.gaps.push_back(fmt::format("{} not located: {} functions raise errors under its name", names.plain,
                                     plains.size()));
      return;
    }
    const ElfSymbol& plain = plains.front();
    if (at_address(internals, plain.address)) {
      out.functions.push_back(plain);
      out.gaps.push_back(fmt::format("{} not located: {} is inlined", names.ex, names.internal));
      return;
    }
    const ElfSymbol* internal = called_by(plain, internals);
    if (!internal) {
      // A part split off a function, or not OpenSSL's SSL_read at all.
      out.gaps.push_back(
          fmt::format("{} not located: the function raising its errors neither calls nor is {}", names.plain,
                      names.internal));
      return;
    }
    out.functions.push_back(plain);
    auto callers = functions_referring_to({internal->address}, names.ex);
    std::erase_if(callers, [&](const ElfSymbol& caller) {
      return caller.address == plain.address ||
             forwarded_call_target(image_.function_bytes(caller), image_.machine(), caller.address) !=
                 internal->address;
    });
    if (callers.size() == 1)
      out.functions.push_back(callers.front());
    else
      out.gaps.push_back(fmt::format("{} not located: {} functions hand their arguments to {}", names.ex,
                                     callers.size(), names.internal));
  }

 private:
  // The functions that raise an OpenSSL error naming `function`: they load
  // the name and the source file's (ERR_set_debug's arguments).
  std::vector<ElfSymbol> functions_raising(std::string_view function) const {
    auto functions = functions_referring_to(
        image_.rodata_strings_ending_with(function, ElfImage::StringAddress::of_text), function);
    std::erase_if(functions, [&](const ElfSymbol& f) {
      return std::none_of(source_files_.begin(), source_files_.end(), [&](uint64_t file) {
        return !find_address_references(image_.function_bytes(f), image_.machine(), f.address, file).empty();
      });
    });
    return functions;
  }

  // The distinct functions with an instruction that refers to one of
  // `targets`, each named `name`.
  std::vector<ElfSymbol> functions_referring_to(const std::vector<uint64_t>& targets,
                                                std::string_view name) const {
    std::vector<ElfSymbol> functions;
    for (uint64_t target : targets)
      for (const auto& section : code_)
        for (uint64_t site :
             find_address_references(section.bytes, image_.machine(), section.address, target)) {
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
  std::vector<uint64_t> source_files_;  // where __FILE__ strings naming ssl_lib.c start
};

}  // namespace

LocatedFunctions locate_openssl_functions(const ElfImage& image) {
  LocatedFunctions located;
  Locator locator(image);
  for (const auto& names : kNames) locator.locate(names, located);
  return located;
}

}  // namespace tlstap
