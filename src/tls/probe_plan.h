// What an adapter decided to attach to one file: which library it is, and
// each probe site (symbol, file offset, BPF program).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
};

}  // namespace tlstap
