// Decodes the instruction a probe lands on and says whether the kernel
// emulates it (cheap, ~0.4 us here) or must single-step it out of line
// (expensive, ~14 us in a VM): see DESIGN.md, "The cost of a uprobe here".
#pragma once

#include <cstdint>
#include <span>
#include <string>

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

}  // namespace tlstap
