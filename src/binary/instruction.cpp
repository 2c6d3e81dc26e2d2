#include "binary/instruction.h"

#include <capstone/capstone.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <optional>
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

using Decoder = std::unique_ptr<csh, HandleCloser>;

Result<Decoder> open_decoder(ElfMachine machine) {
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
  return Decoder(handle.release());
}

// The target of a call/jmp/bl/b with an immediate operand.
std::optional<uint64_t> direct_target(const cs_insn& insn, ElfMachine machine) {
  std::string_view m = insn.mnemonic;
  if (machine == ElfMachine::x86_64) {
    const cs_x86& x86 = insn.detail->x86;
    if ((m == "call" || m == "jmp") && x86.op_count == 1 && x86.operands[0].type == X86_OP_IMM)
      return static_cast<uint64_t>(x86.operands[0].imm);
  } else if (machine == ElfMachine::aarch64) {
    const cs_arm64& arm = insn.detail->arm64;
    if ((m == "bl" || m == "b") && arm.op_count == 1 && arm.operands[0].type == ARM64_OP_IMM)
      return static_cast<uint64_t>(arm.operands[0].imm);
  }
  return std::nullopt;
}

bool writes_argument_register(csh handle, const cs_insn& insn, ElfMachine machine) {
  static constexpr x86_reg kX86[] = {X86_REG_RDI, X86_REG_EDI, X86_REG_DI,  X86_REG_DIL, X86_REG_RSI,
                                     X86_REG_ESI, X86_REG_SI,  X86_REG_SIL, X86_REG_RDX, X86_REG_EDX,
                                     X86_REG_DX,  X86_REG_DL,  X86_REG_DH,  X86_REG_RCX, X86_REG_ECX,
                                     X86_REG_CX,  X86_REG_CL,  X86_REG_CH};
  static constexpr arm64_reg kArm64[] = {ARM64_REG_X0, ARM64_REG_X1, ARM64_REG_X2, ARM64_REG_X3,
                                         ARM64_REG_W0, ARM64_REG_W1, ARM64_REG_W2, ARM64_REG_W3};
  cs_regs read, written;
  uint8_t read_count = 0, write_count = 0;
  if (cs_regs_access(handle, &insn, read, &read_count, written, &write_count) != CS_ERR_OK) return true;
  for (uint8_t i = 0; i < write_count; ++i) {
    if (machine == ElfMachine::x86_64 &&
        std::find(std::begin(kX86), std::end(kX86), written[i]) != std::end(kX86))
      return true;
    if (machine == ElfMachine::aarch64 &&
        std::find(std::begin(kArm64), std::end(kArm64), written[i]) != std::end(kArm64))
      return true;
  }
  return false;
}

bool transfers_control(const cs_insn& insn) {
  for (uint8_t i = 0; i < insn.detail->groups_count; ++i) {
    uint8_t group = insn.detail->groups[i];
    if (group == CS_GRP_JUMP || group == CS_GRP_CALL || group == CS_GRP_RET || group == CS_GRP_INT)
      return true;
  }
  return false;
}

}  // namespace

std::optional<uint64_t> forwarded_call_target(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address) {
  auto decoder = open_decoder(machine);
  if (!decoder) return std::nullopt;
  std::unique_ptr<cs_insn, InsnFree> insn(cs_malloc(**decoder));
  const auto* bytes = reinterpret_cast<const uint8_t*>(code.data());
  size_t size = code.size();
  uint64_t at = address;
  while (cs_disasm_iter(**decoder, &bytes, &size, &at, insn.get())) {
    if (transfers_control(*insn)) return direct_target(*insn, machine);
    if (writes_argument_register(**decoder, *insn, machine)) return std::nullopt;
  }
  return std::nullopt;
}

Result<DecodedInstruction> decode_instruction(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address) {
  auto decoder = open_decoder(machine);
  if (!decoder) return decoder.error();
  cs_insn* raw = nullptr;
  size_t count =
      cs_disasm(**decoder, reinterpret_cast<const uint8_t*>(code.data()), code.size(), address, 1, &raw);
  if (count == 0) return Error{"cannot decode instruction"};
  std::unique_ptr<cs_insn, InsnFree> insn(raw);
  DecodedInstruction decoded;
  decoded.text = std::string(insn->mnemonic) + (insn->op_str[0] ? " " : "") + insn->op_str;
  decoded.size = insn->size;
  decoded.kernel_emulates = machine == ElfMachine::x86_64 ? x86_emulated(*insn) : arm64_simulated(*insn);
  return decoded;
}

std::vector<DirectBranch> find_direct_branches(std::span<const std::byte> code, ElfMachine machine,
                                               uint64_t address) {
  std::vector<DirectBranch> branches;
  auto decoder = open_decoder(machine);
  if (!decoder) return branches;
  std::unique_ptr<cs_insn, InsnFree> insn(cs_malloc(**decoder));
  const auto* bytes = reinterpret_cast<const uint8_t*>(code.data());
  size_t size = code.size();
  uint64_t at = address;
  // cs_disasm_iter stops at the first undecodable byte: enough for code.
  while (cs_disasm_iter(**decoder, &bytes, &size, &at, insn.get())) {
    if (auto target = direct_target(*insn, machine))
      branches.push_back(
          {insn->address, *target,
           std::string_view(insn->mnemonic) != "jmp" && std::string_view(insn->mnemonic) != "b"});
  }
  return branches;
}

}  // namespace tlstap
