#include "discovery/dynamic_loader.h"

#include <link.h>

#include <algorithm>
#include <cstddef>

#include "binary/instruction.h"

namespace tlstap {

bool announces_a_load(const BranchTo& call) {
  const auto& store = call.after_store;
  return store && store->displacement == static_cast<int64_t>(offsetof(struct r_debug, r_state)) &&
         store->value == r_debug::RT_ADD;
}

namespace {

// Where the loader calls its hook. The hook is a bare `ret`, which the kernel
// single-steps; a probe on each call instead (an instruction it emulates)
// sees the same state for a fraction of the cost, twice per process start.
// Only a sure list will do, since a call missed would lose its reports: the
// loader's code is decoded whole, every branch of any kind and size to the
// hook counts (a conditional one fires taken or not: only a report more),
// and the decoding must meet each function its call frames start on an
// instruction boundary: in step with the compiler's. Its address may be
// taken only by a `lea` (glibc's one stores it in r_debug.r_brk, for
// debuggers); a `mov` of it could feed an indirect call. nullopt when unsure.
//
// glibc calls the hook twice per change: announcing it (r_state RT_ADD or
// RT_DELETE) and once it is made (RT_CONSISTENT). The probe reports the
// second, and of the first notes only an unload to come (process.bpf.c). A
// call right after a store of RT_ADD to r_state, which no direct branch
// reaches past that store, announces a load: not probed where the probe reads
// the state (`skip_load_announcements`), a probe less to install in every
// process that maps the loader and a trap less per start and per dlopen. (An
// indirect jump landing on the call would not be seen; the report after the
// load would still come.)
std::optional<std::vector<uint64_t>> calls_of(const ElfImage& image, const ElfSymbol& hook,
                                              bool skip_load_announcements) {
  const auto& starts = image.call_frame_entry_starts();
  if (starts.empty()) return std::nullopt;
  std::vector<uint64_t> calls;
  for (const auto& section : image.code_sections()) {
    auto branches = find_branches_to(section.bytes, image.machine(), section.address, hook.address, starts);
    if (section.bytes.empty() || !branches) return std::nullopt;
    for (uint64_t site :
         find_address_references(section.bytes, image.machine(), section.address, hook.address)) {
      auto at = [&](const BranchTo& branch) { return branch.address == site; };
      if (std::any_of(branches->begin(), branches->end(), at)) continue;
      auto insn = decode_instruction(section.bytes.subspan(site - section.address), image.machine(), site);
      if (!insn || !insn->text.starts_with("lea ")) return std::nullopt;
    }
    for (const auto& branch : *branches)
      if (!skip_load_announcements || !announces_a_load(branch)) calls.push_back(branch.address);
  }
  return calls;
}

}  // namespace

std::optional<ProbePlan> plan_loader_probe(const ElfImage& image, const PlanOptions& options) {
  auto soname = image.soname();
  if (!soname || !soname->starts_with("ld-linux")) return std::nullopt;
  auto hook = image.find_function("_dl_debug_state");
  if (!hook) return std::nullopt;
  ProbePlan plan;
  plan.description = "dynamic loader " + *soname;
  auto rendezvous = image.find_object("_r_debug");
  // glibc 2.35 and later (which added __rseq_offset to the loader) chain the
  // rendezvous of every link-map namespace (dlmopen) to the first: only then
  // may the probe walk the link map to spare reports of files known already.
  const uint64_t chains = image.find_object("__rseq_offset") ? TLSTAP_LOADER_CHAINS_NAMESPACES : 0;
  // Where the loader's rendezvous (struct r_debug) lies from the probe, the
  // same in every process, so the probe reads the loader's state: 0 when
  // unknown, and every call is reported.
  auto cookie_at = [&](uint64_t site) -> uint64_t {
    if (!rendezvous || rendezvous->address <= site) return 0;
    return (rendezvous->address - site) | chains;
  };
  auto calls = options.probe_calls
                   ? calls_of(image, *hook, /*skip_load_announcements=*/rendezvous.has_value())
                   : std::nullopt;
  for (uint64_t call : calls.value_or(std::vector<uint64_t>{}))
    if (!add_site_at(plan, image, "call of " + hook->name, call, UprobeProgram::loader_libs_changed, false,
                     cookie_at(call))) {
      plan.sites.clear();  // a call not probed: the hook sees them all
      break;
    }
  if (plan.sites.empty())
    plan.sites.push_back(
        {hook->name, hook->file_offset, UprobeProgram::loader_libs_changed, false, cookie_at(hook->address)});
  return plan;
}

}  // namespace tlstap
