// Instruction-level facts tlstap needs to place probes, from Capstone:
// what a probe lands on and whether the kernel emulates it (cheap, ~0.4 us
// here) or single-steps it out of line (~14 us in a VM; DESIGN.md, "The cost
// of a uprobe here"), where a function returns, and whom it calls.
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

// Whose argument registers matter: C (System V / AAPCS64, first four), Go's
// ABIInternal (first three: receiver, slice data, slice length), or Go's
// ABI0, whose arguments are on the stack: only the stack pointer must keep
// its value.
enum class CallingConvention { c, go, go_stack };

Result<DecodedInstruction> decode_instruction(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address);

// A call or unconditional jump to a fixed address (call rel32 / jmp rel32, bl / b).
struct DirectBranch {
  uint64_t address = 0;  // of the branch instruction
  uint64_t target = 0;
  bool is_call = false;
};

// Every direct call or jump in `code`, which starts at `address`.
std::vector<DirectBranch> find_direct_branches(std::span<const std::byte> code, ElfMachine machine,
                                               uint64_t address);

// Instructions in `code` (at `address`) that refer to `target`: a direct
// call or jump to it, a `lea` of its address, or (position-dependent code) a
// `mov` of it as an immediate (x86-64). They are found by their encoding,
// which ends with the 4-byte operand, and each is confirmed by decoding it;
// but `code` is not decoded from its start, so a caller checks that a hit
// lies in a function it decodes. Empty on other architectures.
std::vector<uint64_t> find_address_references(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address, uint64_t target);

// A constant stored by `mov dword ptr [reg + displacement], imm` (x86-64).
struct ImmediateStore {
  int64_t displacement = 0;
  int64_t value = 0;
  bool operator==(const ImmediateStore&) const = default;
};

struct BranchTo {
  uint64_t address = 0;
  // The store the instruction right before the branch makes, when it is an
  // ImmediateStore and no direct branch in the code lands on the branch
  // itself: every path to it but an indirect jump runs the store first.
  std::optional<ImmediateStore> after_store;
  bool operator==(const BranchTo&) const = default;
};

// Every branch in `code` (at `address`) to `target` (call, jmp or conditional
// jump, of any size; x86-64), by decoding `code` from its start to its end,
// which must meet each of `boundaries` (sorted; function starts) at an
// instruction's start or at a nop's last byte (glibc starts a signal
// trampoline's call frames a byte early, in the padding). nullopt when it does
// not, when part of `code` cannot be decoded, or on other architectures.
std::optional<std::vector<BranchTo>> find_branches_to(std::span<const std::byte> code, ElfMachine machine,
                                                      uint64_t address, uint64_t target,
                                                      std::span<const uint64_t> boundaries);

// Whether decoding `code` (at `address`) instruction by instruction from its
// start reaches an instruction at `site`.
bool decodes_instruction_at(std::span<const std::byte> code, ElfMachine machine, uint64_t address,
                            uint64_t site);

// When the first control transfer in `code` is a direct call or jump and no
// instruction before it writes the first four (C) argument registers, the
// function forwards its arguments to that target: returns it.
std::optional<uint64_t> forwarded_call_target(std::span<const std::byte> code, ElfMachine machine,
                                              uint64_t address);

// Addresses of every return instruction in `code`.
std::vector<uint64_t> find_returns(std::span<const std::byte> code, ElfMachine machine, uint64_t address);

// The first instruction the kernel emulates that is reached, in straight-line
// code from the entry, before any of the first `arguments` argument registers
// of `convention` is written: a probe there sees those arguments for less.
// A `call` counts only where `probe_calls` (see ShadowStackSupport). Falls
// back to `address`.
uint64_t cheapest_entry(std::span<const std::byte> code, ElfMachine machine, uint64_t address,
                        CallingConvention convention, int arguments = 4, bool probe_calls = true);

// How far the stack pointer has moved down when straight-line code from the
// entry at `address` reaches `site`: what a probe there adds to the stack
// pointer to find the entry's (where the return address is, on x86-64).
// nullopt when `site` is not reached that way, or an instruction before it
// moves the stack pointer otherwise than a prologue's push, sub or add of an
// immediate, or (arm64) pre-indexed store does.
std::optional<uint64_t> stack_depth_at(std::span<const std::byte> code, ElfMachine machine, uint64_t address,
                                       uint64_t site);

// x86-64 Go before 1.17 keeps g in thread-local storage and loads it first
// thing in a prologue (`mov rcx, qword ptr fs:[-8]`): the offset from the
// thread pointer, when `code` starts that way.
std::optional<int32_t> go_tls_g_offset(std::span<const std::byte> code, ElfMachine machine, uint64_t address);

// Whether `site` is the conditional branch of a Go prologue's stack check
// (jbe / b.ls) whose target grows the stack and jumps back to `entry`. A probe
// there runs a second time for a call that grows its stack, the first time
// with the branch taken; once the branch falls through the call has begun.
bool is_go_stack_check(std::span<const std::byte> code, ElfMachine machine, uint64_t entry, uint64_t site);

}  // namespace tlstap
