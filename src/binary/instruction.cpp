#include "binary/instruction.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <unordered_set>

#include "binary/capstone_handle.h"

namespace tlstap {
namespace {

// What to do at an instruction Capstone cannot decode (e.g. ARMv8.1 atomics
// in Capstone 4): stop, or, where instructions have a fixed size (arm64),
// step over it. Walks that must see every instruction's effect stop.
enum class Undecodable { stop, skip_if_fixed_size };

// Decodes `code` instruction by instruction until `visit` returns false or
// the code ends (or an undecodable instruction does, see above).
template <class Visit>
void for_each_instruction(std::span<const std::byte> code, ElfMachine machine, uint64_t address,
                          Undecodable undecodable, Visit&& visit) {
  auto decoder = open_capstone(machine);
  if (!decoder) return;
  CapstoneInsn insn = capstone_insn(*decoder);
  const auto* bytes = reinterpret_cast<const uint8_t*>(code.data());
  size_t size = code.size();
  while (size > 0) {
    if (cs_disasm_iter(**decoder, &bytes, &size, &address, insn.get())) {
      if (!visit(**decoder, *insn)) return;
      continue;
    }
    if (undecodable == Undecodable::stop || machine != ElfMachine::aarch64 || size < 4) return;
    bytes += 4, size -= 4, address += 4;
  }
}

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
  std::string_view ops = insn.op_str;
  return m == "b" || m == "bl" || m.starts_with("b.") || m == "cbz" || m == "cbnz" || m == "tbz" ||
         m == "tbnz" || m == "adr" || m == "adrp" || m == "nop" ||
         (m.starts_with("ldr") && ops.find('#') != std::string_view::npos &&
          ops.find('[') == std::string_view::npos);
}

bool kernel_emulates(const cs_insn& insn, ElfMachine machine) {
  return machine == ElfMachine::x86_64 ? x86_emulated(insn) : arm64_simulated(insn);
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

// The target of Go's stack-check branch: jbe (x86) or b.ls (arm64) to an immediate.
std::optional<uint64_t> stack_check_target(const cs_insn& insn, ElfMachine machine) {
  std::string_view m = insn.mnemonic;
  if (machine == ElfMachine::x86_64) {
    const cs_x86& x86 = insn.detail->x86;
    if (m == "jbe" && x86.op_count == 1 && x86.operands[0].type == X86_OP_IMM)
      return static_cast<uint64_t>(x86.operands[0].imm);
  } else if (machine == ElfMachine::aarch64) {
    const cs_arm64& arm = insn.detail->arm64;
    if (m == "b.ls" && arm.op_count == 1 && arm.operands[0].type == ARM64_OP_IMM)
      return static_cast<uint64_t>(arm.operands[0].imm);
  }
  return std::nullopt;
}

// Registers holding the first `count` arguments, every width of each.
std::vector<uint16_t> argument_registers(ElfMachine machine, CallingConvention convention, int count) {
  using Arg = std::vector<uint16_t>;
  static const std::vector<Arg> kX86C = {{X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL},
                                         {X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL},
                                         {X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH},
                                         {X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH}};
  static const std::vector<Arg> kX86Go = {{X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH},
                                          {X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH},
                                          {X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH}};
  static const std::vector<Arg> kX86Stack = {{X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL}};
  static const std::vector<Arg> kArm64Stack = {{ARM64_REG_SP, ARM64_REG_WSP}};
  static const std::vector<Arg> kArm64 = {{ARM64_REG_X0, ARM64_REG_W0},
                                          {ARM64_REG_X1, ARM64_REG_W1},
                                          {ARM64_REG_X2, ARM64_REG_W2},
                                          {ARM64_REG_X3, ARM64_REG_W3}};
  const bool arm64 = machine == ElfMachine::aarch64;
  if (convention == CallingConvention::go_stack) return arm64 ? kArm64Stack.front() : kX86Stack.front();
  const auto& table = arm64 ? kArm64 : convention == CallingConvention::c ? kX86C : kX86Go;
  std::vector<uint16_t> registers;
  for (int i = 0; i < count && i < static_cast<int>(table.size()); ++i)
    registers.insert(registers.end(), table[i].begin(), table[i].end());
  return registers;
}

bool writes_any(csh handle, const cs_insn& insn, const std::vector<uint16_t>& registers) {
  cs_regs read, written;
  uint8_t read_count = 0, write_count = 0;
  if (cs_regs_access(handle, &insn, read, &read_count, written, &write_count) != CS_ERR_OK) return true;
  return std::any_of(written, written + write_count, [&](uint16_t reg) {
    return std::find(registers.begin(), registers.end(), reg) != registers.end();
  });
}

bool in_group(const cs_insn& insn, std::initializer_list<uint8_t> groups) {
  const cs_detail& d = *insn.detail;
  return std::any_of(d.groups, d.groups + d.groups_count,
                     [&](uint8_t g) { return std::find(groups.begin(), groups.end(), g) != groups.end(); });
}

// By mnemonic: Capstone 4 leaves arm64's bl out of CS_GRP_CALL.
bool is_call(const cs_insn& insn) {
  std::string_view m = insn.mnemonic;
  return m == "call" || m == "bl" || m == "blr";
}

bool transfers_control(const cs_insn& insn) {
  return in_group(insn, {CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_INT});
}

// How far `insn` moves the stack pointer down (negative: up), when it is a
// move a prologue makes: push, sub/add of an immediate (x86-64), sub/add of
// an immediate or a pre-indexed store (arm64). nullopt: it does not write the
// stack pointer; kUntracked: it writes it some other way.
constexpr int64_t kUntracked = std::numeric_limits<int64_t>::min();

std::optional<int64_t> stack_move(csh handle, const cs_insn& insn, ElfMachine machine) {
  std::string_view m = insn.mnemonic;
  if (machine == ElfMachine::x86_64) {
    const cs_x86& x86 = insn.detail->x86;
    if (m == "push") return 8;
    bool rsp_by_immediate = x86.op_count == 2 && x86.operands[0].type == X86_OP_REG &&
                            x86.operands[0].reg == X86_REG_RSP && x86.operands[1].type == X86_OP_IMM;
    if (rsp_by_immediate && (m == "sub" || m == "add"))
      return m == "sub" ? x86.operands[1].imm : -x86.operands[1].imm;
    static const std::vector<uint16_t> kRsp = {X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL};
    return writes_any(handle, insn, kRsp) ? std::optional(kUntracked) : std::nullopt;
  }
  const cs_arm64& arm = insn.detail->arm64;
  bool sp_by_immediate = arm.op_count == 3 && arm.operands[0].type == ARM64_OP_REG &&
                         arm.operands[0].reg == ARM64_REG_SP && arm.operands[1].type == ARM64_OP_REG &&
                         arm.operands[1].reg == ARM64_REG_SP && arm.operands[2].type == ARM64_OP_IMM &&
                         arm.operands[2].shift.type == ARM64_SFT_INVALID;
  if (sp_by_immediate && (m == "sub" || m == "add"))
    return m == "sub" ? arm.operands[2].imm : -arm.operands[2].imm;
  if (arm.writeback) {
    // stp x29, x30, [sp, #-16]!: the memory operand last, its base written back
    if (arm.op_count == 0) return kUntracked;
    const cs_arm64_op& last = arm.operands[arm.op_count - 1];
    if (last.type == ARM64_OP_MEM && last.mem.base == ARM64_REG_SP && last.mem.disp < 0)
      return -last.mem.disp;
    return kUntracked;
  }
  static const std::vector<uint16_t> kSp = {ARM64_REG_SP, ARM64_REG_WSP};
  return writes_any(handle, insn, kSp) ? std::optional(kUntracked) : std::nullopt;
}

}  // namespace

Result<DecodedInstruction> decode_instruction(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address) {
  std::optional<DecodedInstruction> decoded;
  for_each_instruction(code, machine, address, Undecodable::stop, [&](csh, const cs_insn& insn) {
    decoded = DecodedInstruction{std::string(insn.mnemonic) + (insn.op_str[0] ? " " : "") + insn.op_str,
                                 insn.size, kernel_emulates(insn, machine)};
    return false;
  });
  if (!decoded) return Error{"cannot decode instruction"};
  return *decoded;
}

std::vector<DirectBranch> find_direct_branches(std::span<const std::byte> code, ElfMachine machine,
                                               uint64_t address) {
  std::vector<DirectBranch> branches;
  for_each_instruction(code, machine, address, Undecodable::skip_if_fixed_size,
                       [&](csh, const cs_insn& insn) {
                         if (auto target = direct_target(insn, machine))
                           branches.push_back({insn.address, *target, is_call(insn)});
                         return true;
                       });
  return branches;
}

std::vector<uint64_t> find_address_references(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address, uint64_t target) {
  std::vector<uint64_t> found;
  auto decoder = open_capstone(machine);
  if (machine != ElfMachine::x86_64 || !decoder) return found;
  CapstoneInsn insn = capstone_insn(*decoder);
  // Whether the one instruction in [start, end) refers to the target.
  auto refers = [&](size_t start, size_t end) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(code.data()) + start;
    size_t size = end - start;
    uint64_t at = address + start;
    if (!cs_disasm_iter(**decoder, &bytes, &size, &at, insn.get()) || size != 0) return false;
    if (direct_target(*insn, machine) == target) return true;
    std::string_view mnemonic = insn->mnemonic;
    const cs_x86& x86 = insn->detail->x86;
    if (x86.op_count != 2) return false;
    const cs_x86_op& source = x86.operands[1];
    if (mnemonic == "lea")
      return source.type == X86_OP_MEM && source.mem.base == X86_REG_RIP &&
             source.mem.index == X86_REG_INVALID && address + end + source.mem.disp == target;
    return mnemonic == "mov" && source.type == X86_OP_IMM && static_cast<uint64_t>(source.imm) == target;
  };
  // The operand is the instruction's last 4 bytes, after 1 to 3 others: call/jmp
  // rel32 and mov r32, imm32 (opcode); lea and mov with REX (REX, opcode, ModRM).
  constexpr size_t kLongestPrefix = 3;
  const bool absolute = target <= UINT32_MAX;
  for (size_t at = 1; at + 4 <= code.size(); ++at) {
    int32_t operand;
    std::memcpy(&operand, code.data() + at, sizeof(operand));
    bool relative = address + at + 4 + static_cast<int64_t>(operand) == target;
    if (!relative && !(absolute && static_cast<uint32_t>(operand) == target)) continue;
    // Longest first: "8d 15 disp32" alone is a 32-bit lea, inside "48 8d 15 disp32".
    for (size_t prefix = std::min(at, kLongestPrefix); prefix >= 1; --prefix)
      if (refers(at - prefix, at + 4)) {
        found.push_back(address + at - prefix);
        break;
      }
  }
  return found;
}

namespace {

std::optional<ImmediateStore> immediate_store(const cs_insn& insn) {
  const cs_x86& x86 = insn.detail->x86;
  if (std::string_view(insn.mnemonic) != "mov" || x86.op_count != 2 || x86.operands[0].type != X86_OP_MEM ||
      x86.operands[0].size != 4 || x86.operands[1].type != X86_OP_IMM)
    return std::nullopt;
  const x86_op_mem& mem = x86.operands[0].mem;
  if (mem.base == X86_REG_INVALID || mem.base == X86_REG_RIP || mem.index != X86_REG_INVALID ||
      mem.segment != X86_REG_INVALID)
    return std::nullopt;
  return ImmediateStore{mem.disp, x86.operands[1].imm};
}

}  // namespace

std::optional<std::vector<BranchTo>> find_branches_to(std::span<const std::byte> code, ElfMachine machine,
                                                      uint64_t address, uint64_t target,
                                                      std::span<const uint64_t> boundaries) {
  if (machine != ElfMachine::x86_64) return std::nullopt;
  std::vector<BranchTo> branches;
  std::unordered_set<uint64_t> landed_on;  // every direct branch's target
  std::optional<ImmediateStore> previous_store;
  const uint64_t end = address + code.size();
  auto boundary = std::lower_bound(boundaries.begin(), boundaries.end(), address);
  uint64_t decoded_to = address;
  bool in_step = true;
  for_each_instruction(code, machine, address, Undecodable::stop, [&](csh, const cs_insn& insn) {
    const uint64_t next = insn.address + insn.size;
    for (; boundary != boundaries.end() && *boundary < next; ++boundary) {
      in_step &=
          *boundary == insn.address || (*boundary + 1 == next && std::string_view(insn.mnemonic) == "nop");
      if (*boundary == insn.address) previous_store.reset();  // that was another function's
    }
    const cs_x86& x86 = insn.detail->x86;
    if (in_group(insn, {CS_GRP_JUMP, CS_GRP_CALL}) && x86.op_count == 1 &&
        x86.operands[0].type == X86_OP_IMM) {
      const auto to = static_cast<uint64_t>(x86.operands[0].imm);
      landed_on.insert(to);
      if (to == target) branches.push_back({insn.address, previous_store});
    }
    previous_store = immediate_store(insn);
    decoded_to = next;
    return in_step;
  });
  if (!in_step || decoded_to != end) return std::nullopt;
  for (auto& branch : branches)
    if (landed_on.contains(branch.address)) branch.after_store.reset();
  return branches;
}

bool decodes_instruction_at(std::span<const std::byte> code, ElfMachine machine, uint64_t address,
                            uint64_t site) {
  bool reached = false;
  for_each_instruction(code, machine, address, Undecodable::skip_if_fixed_size,
                       [&](csh, const cs_insn& insn) {
                         reached = insn.address == site;
                         return insn.address < site;
                       });
  return reached;
}

std::optional<uint64_t> forwarded_call_target(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address) {
  std::optional<uint64_t> target;
  auto arguments = argument_registers(machine, CallingConvention::c, 4);
  for_each_instruction(code, machine, address, Undecodable::stop, [&](csh handle, const cs_insn& insn) {
    if (transfers_control(insn)) {
      target = direct_target(insn, machine);
      return false;
    }
    return !writes_any(handle, insn, arguments);
  });
  return target;
}

std::vector<uint64_t> find_returns(std::span<const std::byte> code, ElfMachine machine, uint64_t address) {
  std::vector<uint64_t> returns;
  for_each_instruction(code, machine, address, Undecodable::skip_if_fixed_size,
                       [&](csh, const cs_insn& insn) {
                         if (in_group(insn, {CS_GRP_RET})) returns.push_back(insn.address);
                         return true;
                       });
  return returns;
}

uint64_t cheapest_entry(std::span<const std::byte> code, ElfMachine machine, uint64_t address,
                        CallingConvention convention, int arguments, bool probe_calls) {
  uint64_t chosen = address;
  auto registers = argument_registers(machine, convention, arguments);
  for_each_instruction(code, machine, address, Undecodable::stop, [&](csh handle, const cs_insn& insn) {
    if (kernel_emulates(insn, machine) && (probe_calls || !is_call(insn))) {
      chosen = insn.address;
      return false;
    }
    // A branch we do not emulate ends straight-line code; a write clobbers an argument.
    return !transfers_control(insn) && !writes_any(handle, insn, registers);
  });
  return chosen;
}

std::optional<uint64_t> stack_depth_at(std::span<const std::byte> code, ElfMachine machine, uint64_t address,
                                       uint64_t site) {
  std::optional<uint64_t> found;
  int64_t depth = 0;
  for_each_instruction(code, machine, address, Undecodable::stop, [&](csh handle, const cs_insn& insn) {
    if (insn.address == site) {
      if (depth >= 0) found = static_cast<uint64_t>(depth);
      return false;
    }
    auto move = stack_move(handle, insn, machine);
    if (move == kUntracked || transfers_control(insn)) return false;
    depth += move.value_or(0);
    return true;
  });
  return found;
}

std::optional<int32_t> go_tls_g_offset(std::span<const std::byte> code, ElfMachine machine,
                                       uint64_t address) {
  if (machine != ElfMachine::x86_64) return std::nullopt;
  std::optional<int32_t> offset;
  for_each_instruction(code, machine, address, Undecodable::stop, [&](csh, const cs_insn& insn) {
    const cs_x86& x86 = insn.detail->x86;
    if (std::string_view(insn.mnemonic) == "mov" && x86.op_count == 2 && x86.operands[0].type == X86_OP_REG &&
        x86.operands[1].type == X86_OP_MEM) {
      const x86_op_mem& mem = x86.operands[1].mem;
      if (mem.segment == X86_REG_FS && mem.base == X86_REG_INVALID && mem.index == X86_REG_INVALID)
        offset = static_cast<int32_t>(mem.disp);
    }
    return false;  // the load comes first or not at all
  });
  return offset;
}

bool is_go_stack_check(std::span<const std::byte> code, ElfMachine machine, uint64_t entry, uint64_t site) {
  if (site < entry || site - entry >= code.size()) return false;
  std::optional<uint64_t> target;
  for_each_instruction(code.subspan(site - entry), machine, site, Undecodable::stop,
                       [&](csh, const cs_insn& insn) {
                         target = stack_check_target(insn, machine);
                         return false;
                       });
  if (!target || *target <= site || *target - entry >= code.size()) return false;
  // The growing block spills the arguments, calls runtime.morestack*, reloads
  // them and jumps back to the entry, in a few instructions.
  constexpr int kMaxBlockInstructions = 24;
  int seen = 0;
  bool jumps_back = false;
  for_each_instruction(
      code.subspan(*target - entry), machine, *target, Undecodable::stop, [&](csh, const cs_insn& insn) {
        std::string_view m = insn.mnemonic;
        auto to = direct_target(insn, machine);
        jumps_back = (m == "jmp" || m == "b") && to == entry;
        return !jumps_back && !in_group(insn, {CS_GRP_RET}) && ++seen < kMaxBlockInstructions;
      });
  return jumps_back;
}

}  // namespace tlstap
