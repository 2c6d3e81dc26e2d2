// What an adapter decided to attach to one file: which library it is, and
// each probe site (symbol, file offset, BPF program).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "binary/elf_image.h"
#include "probe/tracer.h"

namespace tlstap {

struct ProbeSite {
  std::string symbol;
  uint64_t file_offset = 0;
  UprobeProgram program;
  bool is_return = false;
  uint64_t cookie = 0;  // passed to the program (bpf_get_attach_cookie)
};

struct ProbePlan {
  std::string description;  // e.g. "openssl 3.0.x (soname libssl.so.3)"
  std::vector<ProbeSite> sites;
  std::vector<std::string> warnings;  // functions we expected and did not find
  // Calls of the library this plan will not see (logged as warnings, not only with -v).
  std::vector<std::string> gaps;
};

// What the host lets every adapter do, decided per file.
struct PlanOptions {
  // OpenSSL: probe the internal function both public ones call, telling its
  // program where each call returns to in a cookie (tlstap requires cookies;
  // tests turn it off to plan the public functions' entries).
  bool call_sites = true;
  // Whether a probe may sit on a `call` the kernel emulates: not in a file a
  // process with a shadow stack may run, where the kernel's emulation would
  // not push on it (ShadowStackSupport; target_attacher.cpp decides).
  bool probe_calls = true;
};

// `program` on the instruction at virtual `address`; false, nothing added,
// when no loaded segment of the file holds that address.
bool add_site_at(ProbePlan& plan, const ElfImage& image, std::string symbol, uint64_t address,
                 UprobeProgram program, bool is_return = false, uint64_t cookie = 0);

// Where the adapters place a C function's probes (DESIGN.md, "The cost of a
// uprobe here"): the entry program on the first instruction the kernel
// emulates that still sees the first `arguments` arguments (the entry itself
// otherwise). Its cookie is how far the prologue has moved the stack pointer
// there, which the program adds back to find the call's frame (tls_call.bpf.h).
void add_cheap_entry(ProbePlan& plan, const ElfImage& image, const ElfSymbol& symbol, UprobeProgram entry,
                     int arguments, const PlanOptions& options);
// The same, plus `exit` as a uretprobe on the function.
void add_cheap_entry_and_return(ProbePlan& plan, const ElfImage& image, const ElfSymbol& symbol,
                                UprobeProgram entry, UprobeProgram exit, int arguments,
                                const PlanOptions& options);

}  // namespace tlstap
