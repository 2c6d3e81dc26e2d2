#include "binary/instruction.h"

#include <capstone/capstone.h>

#include <memory>
#include <string_view>

namespace tlstap {
namespace {

struct HandleCloser {
  void operator()(csh* handle) const {
    cs_close(handle);
    delete handle;
  }
};
struct InsnFree {
  void operator()(cs_insn* insn) const { cs_free(insn, 1); }
};

// x86 uprobes emulate nop, push of a register, and relative jmp/jcc/call
// (arch/x86/kernel/uprobes.c); everything else is single-stepped.
bool x86_emulated(const cs_insn& insn) {
  std::string_view mnemonic = insn.mnemonic;
  const cs_x86& x86 = insn.detail->x86;
  if (mnemonic == "nop") return true;
  if (mnemonic == "push") return x86.op_count == 1 && x86.operands[0].type == X86_OP_REG;
  bool relative_branch = x86.op_count == 1 && x86.operands[0].type == X86_OP_IMM;
  if (mnemonic == "call" || mnemonic == "jmp") return relative_branch;
  return mnemonic.starts_with("j") && relative_branch;  // jcc
}

// arm64 uprobes simulate PC-relative branches and address/literal loads.
bool arm64_simulated(const cs_insn& insn) {
  std::string_view m = insn.mnemonic;
  return m == "b" || m == "bl" || m.starts_with("b.") || m == "cbz" || m == "cbnz" || m == "tbz" ||
         m == "tbnz" || m == "adr" || m == "adrp" || m == "nop" ||
         (m.starts_with("ldr") && std::string_view(insn.op_str).find('#') != std::string_view::npos &&
          std::string_view(insn.op_str).find('[') == std::string_view::npos);
}

}  // namespace

Result<DecodedInstruction> decode_instruction(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address) {
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
  std::unique_ptr<csh, HandleCloser> handle(new csh{});
  if (cs_open(arch, mode, handle.get()) != CS_ERR_OK) {
    delete handle.release();
    return Error{"capstone: cannot open decoder"};
  }
  cs_option(*handle, CS_OPT_DETAIL, CS_OPT_ON);
  cs_insn* raw = nullptr;
  size_t count =
      cs_disasm(*handle, reinterpret_cast<const uint8_t*>(code.data()), code.size(), address, 1, &raw);
  if (count == 0) return Error{"cannot decode instruction"};
  std::unique_ptr<cs_insn, InsnFree> insn(raw);
  DecodedInstruction decoded;
  decoded.text = std::string(insn->mnemonic) + (insn->op_str[0] ? " " : "") + insn->op_str;
  decoded.size = insn->size;
  decoded.kernel_emulates = machine == ElfMachine::x86_64 ? x86_emulated(*insn) : arm64_simulated(*insn);
  return decoded;
}

}  // namespace tlstap
