#include "tls/nss_methods.h"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "binary/capstone_handle.h"

namespace tlstap {
namespace {

constexpr std::string_view kAnchor = "PR_GetDefaultIOMethods";
// Offsets in NSPR's PRIOMethods (prio.h): a PRDescType, then function pointers.
constexpr uint64_t kClose = 0x08, kRead = 0x10, kWrite = 0x18, kRecv = 0x88, kSend = 0x90;
// ssl_SetupIOMethods is short; a walk this long has left it.
constexpr int kMaxWalk = 400;

template <class T>
std::optional<T> read_struct(std::span<const std::byte> bytes, uint64_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

std::string_view string_at(std::span<const std::byte> table, uint64_t offset) {
  if (offset >= table.size()) return {};
  const char* start = reinterpret_cast<const char*>(table.data()) + offset;
  return {start, strnlen(start, table.size() - offset)};
}

// GOT slots the dynamic linker fills with the address of the imported `symbol`.
std::vector<uint64_t> import_slots(const ElfImage& image, std::string_view symbol) {
  std::vector<uint64_t> slots;
  auto dynsym = image.section(".dynsym");
  auto dynstr = image.section(".dynstr");
  if (!dynsym || !dynstr) return slots;
  for (const char* name : {".rela.plt", ".rela.dyn"}) {
    auto rela = image.section(name);
    if (!rela) continue;
    for (uint64_t at = 0; auto r = read_struct<Elf64_Rela>(rela->bytes, at); at += sizeof(Elf64_Rela)) {
      auto sym = read_struct<Elf64_Sym>(dynsym->bytes, ELF64_R_SYM(r->r_info) * sizeof(Elf64_Sym));
      if (sym && ELF64_R_SYM(r->r_info) != 0 && string_at(dynstr->bytes, sym->st_name) == symbol)
        slots.push_back(r->r_offset);
    }
  }
  return slots;
}

class Decoder {
 public:
  static Result<Decoder> open() {
    auto handle = open_capstone(ElfMachine::x86_64);
    if (!handle) return handle.error();
    Decoder d;
    d.insn_ = capstone_insn(*handle);
    d.handle_ = std::move(*handle);
    return d;
  }
  // Decodes from `address` in `section` until visit returns false; skips undecodable bytes.
  template <class Visit>
  void walk(const ElfImage::Section& section, uint64_t address, Visit&& visit) {
    if (address < section.address || address >= section.address + section.bytes.size()) return;
    uint64_t offset = address - section.address;
    const auto* bytes = reinterpret_cast<const uint8_t*>(section.bytes.data()) + offset;
    size_t size = section.bytes.size() - offset;
    while (size > 0) {
      if (!cs_disasm_iter(*handle_, &bytes, &size, &address, insn_.get())) {
        ++bytes, --size, ++address;
        continue;
      }
      if (!visit(*insn_)) return;
    }
  }
  csh handle() const { return *handle_; }

 private:
  Decoder() = default;
  CapstoneHandle handle_;
  CapstoneInsn insn_;
};

// The address a rip-relative memory operand names, if it is one.
std::optional<uint64_t> rip_target(const cs_insn& insn, const cs_x86_op& op) {
  if (op.type != X86_OP_MEM || op.mem.base != X86_REG_RIP || op.mem.index != X86_REG_INVALID)
    return std::nullopt;
  return insn.address + insn.size + op.mem.disp;
}

// Addresses a call lands on to reach the import: its PLT stubs (one 16-byte
// entry each, with or without IBT's .plt.sec).
std::vector<uint64_t> plt_stubs(const ElfImage& image, Decoder& decoder, const std::vector<uint64_t>& slots) {
  std::vector<uint64_t> stubs;
  for (const char* name : {".plt.sec", ".plt"}) {
    auto plt = image.section(name);
    if (!plt) continue;
    decoder.walk(*plt, plt->address, [&](const cs_insn& insn) {
      const cs_x86& x86 = insn.detail->x86;
      if (insn.id == X86_INS_JMP && x86.op_count == 1)
        if (auto slot = rip_target(insn, x86.operands[0]);
            slot && std::count(slots.begin(), slots.end(), *slot))
          stubs.push_back(plt->address + (insn.address - plt->address) / 16 * 16);
      return true;
    });
  }
  return stubs;
}

// Where .text calls the import, directly through a stub or through its GOT slot.
std::vector<uint64_t> calls_to(const ElfImage::Section& text, Decoder& decoder,
                               const std::vector<uint64_t>& stubs, const std::vector<uint64_t>& slots) {
  std::vector<uint64_t> calls;
  decoder.walk(text, text.address, [&](const cs_insn& insn) {
    const cs_x86& x86 = insn.detail->x86;
    if (insn.id != X86_INS_CALL || x86.op_count != 1) return true;
    const cs_x86_op& op = x86.operands[0];
    auto slot = rip_target(insn, op);
    if ((op.type == X86_OP_IMM && std::count(stubs.begin(), stubs.end(), static_cast<uint64_t>(op.imm))) ||
        (slot && std::count(slots.begin(), slots.end(), *slot)))
      calls.push_back(insn.address + insn.size);
    return true;
  });
  return calls;
}

// The 64-bit register a general-purpose register is part of, or 0.
unsigned gpr_family(unsigned reg) {
  static const std::array<std::array<unsigned, 5>, 16> families = {{
      {X86_REG_RAX, X86_REG_EAX, X86_REG_AX, X86_REG_AL, X86_REG_AH},
      {X86_REG_RBX, X86_REG_EBX, X86_REG_BX, X86_REG_BL, X86_REG_BH},
      {X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH},
      {X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH},
      {X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL},
      {X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL},
      {X86_REG_RBP, X86_REG_EBP, X86_REG_BP, X86_REG_BPL},
      {X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL},
      {X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B},
      {X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B},
      {X86_REG_R10, X86_REG_R10D, X86_REG_R10W, X86_REG_R10B},
      {X86_REG_R11, X86_REG_R11D, X86_REG_R11W, X86_REG_R11B},
      {X86_REG_R12, X86_REG_R12D, X86_REG_R12W, X86_REG_R12B},
      {X86_REG_R13, X86_REG_R13D, X86_REG_R13W, X86_REG_R13B},
      {X86_REG_R14, X86_REG_R14D, X86_REG_R14W, X86_REG_R14B},
      {X86_REG_R15, X86_REG_R15D, X86_REG_R15W, X86_REG_R15B},
  }};
  for (const auto& family : families)
    if (std::count(family.begin(), family.end(), reg) && reg != 0) return family[0];
  return 0;
}

// The xmm register behind an xmm or ymm register, or 0.
unsigned vector_register(unsigned reg) {
  if (reg >= X86_REG_XMM0 && reg <= X86_REG_XMM31) return reg;
  if (reg >= X86_REG_YMM0 && reg <= X86_REG_YMM31) return X86_REG_XMM0 + (reg - X86_REG_YMM0);
  return 0;
}

bool is_vector_store(unsigned id) {
  return id == X86_INS_MOVUPS || id == X86_INS_MOVAPS || id == X86_INS_MOVDQA || id == X86_INS_MOVDQU;
}

// Known register contents and stores along straight-line code: addresses
// loaded with `lea`, moved into vector registers, paired and stored.
class StoreTracker {
 public:
  // Returns false where straight-line code ends.
  bool step(csh handle, const cs_insn& insn) {
    const cs_x86& x86 = insn.detail->x86;
    const cs_x86_op* op = x86.operands;
    auto reg_op = [&](int i) { return x86.op_count > i && op[i].type == X86_OP_REG; };
    switch (insn.id) {
      case X86_INS_RET:
      case X86_INS_JMP:
        return false;
      case X86_INS_CALL:
        if (!base_ && gpr(X86_REG_RDI)) base_ = gpr(X86_REG_RDI);  // memcpy(table, defaults, size)
        gpr_.clear(), vector_.clear();
        return true;
      case X86_INS_MOVSQ:
        if (x86.prefix[0] == X86_PREFIX_REP && !base_) base_ = gpr(X86_REG_RDI);  // the struct copy
        break;
      case X86_INS_LEA:
        if (reg_op(0) && gpr_family(op[0].reg) == op[0].reg) {
          set_gpr(op[0].reg, rip_target(insn, op[1]));
          return true;
        }
        break;
      case X86_INS_MOV:
        if (x86.op_count == 2 && reg_op(1) && gpr_family(op[1].reg) == op[1].reg) {
          if (auto at = rip_target(insn, op[0])) return store(*at, gpr(op[1].reg)), true;
          if (reg_op(0) && gpr_family(op[0].reg) == op[0].reg)
            return set_gpr(op[0].reg, gpr(op[1].reg)), true;
        }
        break;
      case X86_INS_MOVQ:
        if (reg_op(0) && vector_register(op[0].reg) && reg_op(1) && gpr_family(op[1].reg) == op[1].reg) {
          vector_[op[0].reg] = {gpr(op[1].reg), 0};
          return true;
        }
        if (x86.op_count == 2 && reg_op(1) && vector_register(op[1].reg))
          if (auto at = rip_target(insn, op[0])) return store(*at, low(op[1].reg)), true;
        break;
      case X86_INS_PUNPCKLQDQ:
        if (reg_op(0) && reg_op(1)) {
          vector_[op[0].reg] = {low(op[0].reg), low(op[1].reg)};
          return true;
        }
        break;
      case X86_INS_MOVHPS:
        if (reg_op(0)) {
          vector_[op[0].reg] = {low(op[0].reg), std::nullopt};
          return true;
        }
        break;
      default:
        if (cs_insn_group(handle, &insn, CS_GRP_JUMP)) return false;  // a conditional branch
        if (is_vector_store(insn.id) && x86.op_count == 2 && reg_op(1))
          if (auto at = rip_target(insn, op[0])) {
            auto it = vector_.find(op[1].reg);
            store(*at, it == vector_.end() ? std::nullopt : it->second.first);
            store(*at + 8, it == vector_.end() ? std::nullopt : it->second.second);
            return true;
          }
        break;
    }
    forget_written(handle, insn);
    return true;
  }

  std::optional<uint64_t> base() const { return base_; }
  std::optional<uint64_t> stored(uint64_t address) const {
    auto it = memory_.find(address);
    return it == memory_.end() ? std::nullopt : std::optional(it->second);
  }

 private:
  std::optional<uint64_t> gpr(unsigned reg) const {
    auto it = gpr_.find(reg);
    return it == gpr_.end() ? std::nullopt : std::optional(it->second);
  }
  std::optional<uint64_t> low(unsigned reg) const {
    auto it = vector_.find(reg);
    return it == vector_.end() ? std::nullopt : it->second.first;
  }
  void set_gpr(unsigned reg, std::optional<uint64_t> value) {
    if (value)
      gpr_[reg] = *value;
    else
      gpr_.erase(reg);
  }
  void store(uint64_t address, std::optional<uint64_t> value) {
    if (value)
      memory_[address] = *value;
    else
      memory_.erase(address);
  }
  void forget_written(csh handle, const cs_insn& insn) {
    cs_regs read, written;
    uint8_t read_count = 0, write_count = 0;
    if (cs_regs_access(handle, &insn, read, &read_count, written, &write_count) != CS_ERR_OK) {
      gpr_.clear(), vector_.clear();
      return;
    }
    for (uint8_t i = 0; i < write_count; ++i) {
      if (unsigned family = gpr_family(written[i])) gpr_.erase(family);
      if (unsigned vector = vector_register(written[i])) vector_.erase(vector);
    }
  }

  std::map<unsigned, uint64_t> gpr_;
  std::map<unsigned, std::pair<std::optional<uint64_t>, std::optional<uint64_t>>> vector_;
  std::map<uint64_t, uint64_t> memory_;
  std::optional<uint64_t> base_;
};

}  // namespace

Result<NssLayerMethods> find_nss_layer_methods(const ElfImage& image) {
  if (image.machine() != ElfMachine::x86_64) return Error{"the SSL layer is located on x86-64 only"};
  auto decoder = Decoder::open();
  if (!decoder) return decoder.error();
  auto text = image.section(".text");
  auto slots = import_slots(image, kAnchor);
  if (!text || slots.empty()) return Error{fmt::format("no import of {}", kAnchor)};
  auto calls = calls_to(*text, *decoder, plt_stubs(image, *decoder, slots), slots);
  if (calls.size() != 1) return Error{fmt::format("{} calls of {}, expected one", calls.size(), kAnchor)};

  StoreTracker tracker;
  int steps = 0;
  decoder->walk(*text, calls[0], [&](const cs_insn& insn) {
    return ++steps < kMaxWalk && tracker.step(decoder->handle(), insn);
  });
  auto base = tracker.base();
  if (!base) return Error{"the SSL layer's method table was not found"};
  NssLayerMethods methods;
  for (auto [offset, field] : {std::pair{kClose, &methods.close},
                               {kRead, &methods.read},
                               {kWrite, &methods.write},
                               {kRecv, &methods.recv},
                               {kSend, &methods.send}}) {
    auto function = tracker.stored(*base + offset);
    if (!function || !image.is_own_code(*function))
      return Error{fmt::format("the SSL layer's method at table offset {:#x} was not found", offset)};
    *field = *function;
  }
  return methods;
}

}  // namespace tlstap
