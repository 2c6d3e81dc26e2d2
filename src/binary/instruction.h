// Decodes the instruction a probe lands on and says whether the kernel
// emulates it (cheap, ~0.4 us here) or must single-step it out of line
// (expensive, ~14 us in a VM): see DESIGN.md, "The cost of a uprobe here".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "binary/elf_image.h"
#include "common/result.h"

namespace tlstap {

struct DecodedInstruction {
  std::string text;  // e.g. "sub rsp, 0x18"
  uint32_t size = 0;
  bool kernel_emulates = false;
};

Result<DecodedInstruction> decode_instruction(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address);

// A call or unconditional jump to a fixed address (call rel32 / jmp rel32, bl / b).
struct DirectBranch {
  uint64_t address = 0;  // of the branch instruction
  uint64_t target = 0;
  bool is_call = false;
};

// When the first control transfer in `code` is a direct call or jump and no
// instruction before it writes the first four argument registers, the
// function forwards its first four arguments to that target: returns it.
std::optional<uint64_t> forwarded_call_target(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address);

// Every direct call or jump in `code`, which starts at `address`.
std::vector<DirectBranch> find_direct_branches(std::span<const std::byte> code, ElfMachine machine,
                                               uint64_t address);

}  // namespace tlstap
