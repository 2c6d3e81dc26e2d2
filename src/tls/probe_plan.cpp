#include "tls/probe_plan.h"

#include "binary/instruction.h"

namespace tlstap {

bool add_site_at(ProbePlan& plan, const ElfImage& image, std::string symbol, uint64_t address,
                 UprobeProgram program, bool is_return, uint64_t cookie) {
  auto offset = image.file_offset(address);
  if (!offset) return false;
  plan.sites.push_back({std::move(symbol), *offset, program, is_return, cookie});
  return true;
}

void add_cheap_entry(ProbePlan& plan, const ElfImage& image, const ElfSymbol& symbol, UprobeProgram entry,
                     int arguments, const PlanOptions& options) {
  auto code = image.function_bytes(symbol);
  uint64_t at = cheapest_entry(code, image.machine(), symbol.address, CallingConvention::c, arguments,
                               options.probe_calls);
  auto depth = stack_depth_at(code, image.machine(), symbol.address, at);
  auto offset = image.file_offset(at);
  if (!depth || !offset) {  // the frame would be unknown there
    plan.sites.push_back({symbol.name, symbol.file_offset, entry, false});
    return;
  }
  plan.sites.push_back({symbol.name, *offset, entry, false, *depth});
}

void add_cheap_entry_and_return(ProbePlan& plan, const ElfImage& image, const ElfSymbol& symbol,
                                UprobeProgram entry, UprobeProgram exit, int arguments,
                                const PlanOptions& options) {
  add_cheap_entry(plan, image, symbol, entry, arguments, options);
  plan.sites.push_back({symbol.name, symbol.file_offset, exit, true});
}

}  // namespace tlstap
