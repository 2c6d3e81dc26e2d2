// Capstone decoder handles and instruction buffers owned RAII-style, with
// instruction details on (operands, register access) for every user.
#pragma once

#include <capstone/capstone.h>

#include <memory>

#include "binary/elf_image.h"
#include "common/result.h"

namespace tlstap {

struct CapstoneCloser {
  void operator()(csh* handle) const {
    cs_close(handle);
    delete handle;
  }
};
struct CapstoneInsnFree {
  void operator()(cs_insn* insn) const { cs_free(insn, 1); }
};
using CapstoneHandle = std::unique_ptr<csh, CapstoneCloser>;
using CapstoneInsn = std::unique_ptr<cs_insn, CapstoneInsnFree>;

inline Result<CapstoneHandle> open_capstone(ElfMachine machine) {
  cs_arch arch;
  cs_mode mode;
  switch (machine) {
    case ElfMachine::x86_64:
      arch = CS_ARCH_X86, mode = CS_MODE_64;
      break;
    case ElfMachine::aarch64:
      arch = CS_ARCH_ARM64, mode = CS_MODE_ARM;
      break;
    default:
      return Error{"no decoder for this architecture"};
  }
  auto handle = std::make_unique<csh>();
  if (cs_open(arch, mode, handle.get()) != CS_ERR_OK) return Error{"capstone: cannot open decoder"};
  cs_option(*handle, CS_OPT_DETAIL, CS_OPT_ON);
  return CapstoneHandle(handle.release());
}

// A buffer cs_disasm_iter decodes into.
inline CapstoneInsn capstone_insn(const CapstoneHandle& handle) {
  return CapstoneInsn(cs_malloc(*handle));
}

}  // namespace tlstap
