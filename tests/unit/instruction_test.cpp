// Instruction facts behind probe placement (DESIGN.md, "The cost of a uprobe
// here"), on hand-assembled x86-64 and arm64 code placed at kBase.
#include "binary/instruction.h"

#include <gtest/gtest.h>

#include <initializer_list>

namespace tlstap {
namespace {

constexpr uint64_t kBase = 0x1000;

std::vector<std::byte> code(std::initializer_list<std::initializer_list<uint8_t>> instructions) {
  std::vector<std::byte> bytes;
  for (const auto& instruction : instructions)
    for (uint8_t b : instruction) bytes.push_back(std::byte{b});
  return bytes;
}

// x86-64 encodings used below.
constexpr std::initializer_list<uint8_t> kEndbr64 = {0xf3, 0x0f, 0x1e, 0xfa};
constexpr std::initializer_list<uint8_t> kSubRsp18 = {0x48, 0x83, 0xec, 0x18};
constexpr std::initializer_list<uint8_t> kPushR14 = {0x41, 0x56};
constexpr std::initializer_list<uint8_t> kPushRbp = {0x55};
constexpr std::initializer_list<uint8_t> kRet = {0xc3};
constexpr std::initializer_list<uint8_t> kCallPlus100 = {0xe8, 0x00, 0x01, 0x00, 0x00};  // next + 0x100
constexpr std::initializer_list<uint8_t> kJmpPlus100 = {0xe9, 0x00, 0x01, 0x00, 0x00};
constexpr std::initializer_list<uint8_t> kJePlus2 = {0x74, 0x02};
constexpr std::initializer_list<uint8_t> kCallRax = {0xff, 0xd0};
constexpr std::initializer_list<uint8_t> kJmpRax = {0xff, 0xe0};
constexpr std::initializer_list<uint8_t> kMovEdi1 = {0xbf, 0x01, 0x00, 0x00, 0x00};  // C argument 1
constexpr std::initializer_list<uint8_t> kMovEax1 = {0xb8, 0x01, 0x00, 0x00, 0x00};  // Go argument 1
constexpr std::initializer_list<uint8_t> kMovRbxRdi = {0x48, 0x89, 0xfb};            // reads rdi only
constexpr std::initializer_list<uint8_t> kLeaRcx = {0x48, 0x8d, 0x4c, 0x24, 0x08};   // C argument 4

// arm64 encodings (little-endian words).
constexpr std::initializer_list<uint8_t> kStpFrame = {0xfd, 0x7b, 0xbf, 0xa9};  // stp x29, x30, [sp, #-16]!
constexpr std::initializer_list<uint8_t> kMovX29Sp = {0xfd, 0x03, 0x00, 0x91};
constexpr std::initializer_list<uint8_t> kMovX0_1 = {0x20, 0x00, 0x80, 0xd2};
constexpr std::initializer_list<uint8_t> kBlPlus100 = {0x40, 0x00, 0x00, 0x94};  // bl here + 0x100
constexpr std::initializer_list<uint8_t> kArmRet = {0xc0, 0x03, 0x5f, 0xd6};
constexpr std::initializer_list<uint8_t> kArmNop = {0x1f, 0x20, 0x03, 0xd5};
constexpr std::initializer_list<uint8_t> kSubSp32 = {0xff, 0x83, 0x00, 0xd1};  // sub sp, sp, #0x20
constexpr std::initializer_list<uint8_t> kMovSpX0 = {0x1f, 0x00, 0x00, 0x91};  // mov sp, x0

struct DecodeCase {
  std::vector<std::byte> bytes;
  ElfMachine machine;
  const char* text;
  uint32_t size;
  bool emulated;
};

TEST(DecodeInstruction, KnowsWhatTheKernelEmulates) {
  const DecodeCase cases[] = {
      {code({kPushR14}), ElfMachine::x86_64, "push r14", 2, true},
      {code({kPushRbp}), ElfMachine::x86_64, "push rbp", 1, true},
      {code({{0x90}}), ElfMachine::x86_64, "nop", 1, true},
      {code({kCallPlus100}), ElfMachine::x86_64, "call 0x1105", 5, true},
      {code({kJePlus2}), ElfMachine::x86_64, "je 0x1004", 2, true},
      {code({kSubRsp18}), ElfMachine::x86_64, "sub rsp, 0x18", 4, false},
      {code({kRet}), ElfMachine::x86_64, "ret", 1, false},
      {code({kCallRax}), ElfMachine::x86_64, "call rax", 2, false},
      {code({{0xff, 0x35, 0x00, 0x00, 0x00, 0x00}}), ElfMachine::x86_64, "push qword ptr [rip]", 6, false},
      {code({kBlPlus100}), ElfMachine::aarch64, "bl #0x1100", 4, true},
      {code({kArmNop}), ElfMachine::aarch64, "nop", 4, true},
      {code({kStpFrame}), ElfMachine::aarch64, "stp x29, x30, [sp, #-0x10]!", 4, false},
      {code({kArmRet}), ElfMachine::aarch64, "ret", 4, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto insn = decode_instruction(c.bytes, c.machine, kBase);
    ASSERT_TRUE(insn) << insn.error().message;
    EXPECT_EQ(insn->text, c.text);
    EXPECT_EQ(insn->size, c.size);
    EXPECT_EQ(insn->kernel_emulates, c.emulated);
  }
  // endbr64 starts most CET-enabled functions and is single-stepped.
  auto endbr = decode_instruction(code({kEndbr64}), ElfMachine::x86_64, kBase);
  ASSERT_TRUE(endbr);
  EXPECT_FALSE(endbr->kernel_emulates) << endbr->text;
}

TEST(DecodeInstruction, NothingToDecodeIsAnError) {
  EXPECT_FALSE(decode_instruction({}, ElfMachine::x86_64, kBase));
  EXPECT_FALSE(decode_instruction(code({{0x0f}}), ElfMachine::x86_64, kBase));  // truncated opcode
  EXPECT_FALSE(decode_instruction(code({kPushR14}), ElfMachine::other, kBase));
}

TEST(FindDirectBranches, CallsAndJumpsWithFixedTargets) {
  // call; je; jmp; jmp rax; ret — only the call and the jmp have fixed targets.
  auto branches = find_direct_branches(code({kCallPlus100, kJePlus2, kJmpPlus100, kJmpRax, kRet}),
                                       ElfMachine::x86_64, kBase);
  ASSERT_EQ(branches.size(), 2u);
  EXPECT_EQ(branches[0].address, 0x1000u);
  EXPECT_EQ(branches[0].target, 0x1105u);
  EXPECT_TRUE(branches[0].is_call);
  EXPECT_EQ(branches[1].address, 0x1007u);
  EXPECT_EQ(branches[1].target, 0x110cu);
  EXPECT_FALSE(branches[1].is_call);
}

TEST(FindDirectBranches, Arm64) {
  // stp; bl; b — a call and a jump.
  auto arm = find_direct_branches(code({kStpFrame, kBlPlus100, {0x40, 0x00, 0x00, 0x14}}),
                                  ElfMachine::aarch64, kBase);
  ASSERT_EQ(arm.size(), 2u);
  EXPECT_EQ(arm[0].address, 0x1004u);
  EXPECT_EQ(arm[0].target, 0x1104u);
  EXPECT_EQ(arm[1].address, 0x1008u);
  EXPECT_EQ(arm[1].target, 0x1108u);
  EXPECT_FALSE(arm[1].is_call);
  EXPECT_TRUE(arm[0].is_call);
}

TEST(FindAddressReferences, LeaCallAndAbsoluteMovButNotLookalikes) {
  constexpr uint64_t kTarget = 0x2000;
  auto bytes = code({
      {0x48, 0x8d, 0x15, 0xf9, 0x0f, 0x00, 0x00},  // 0x1000 lea rdx, [rip + 0xff9]: 0x1007 + 0xff9
      {0xe8, 0xf4, 0x0f, 0x00, 0x00},              // 0x1007 call 0x2000
      {0xba, 0x00, 0x20, 0x00, 0x00},              // 0x100c mov edx, 0x2000 (position-dependent code)
      {0x05, 0xea, 0x0f, 0x00, 0x00},              // 0x1011 add eax, 0xfea: 0x1016 + 0xfea, not an address
      {0xb8, 0x00, 0x30, 0x00, 0x00},              // 0x1016 mov eax, 0x3000
  });
  EXPECT_EQ(find_address_references(bytes, ElfMachine::x86_64, kBase, kTarget),
            (std::vector<uint64_t>{0x1000, 0x1007, 0x100c}));
  EXPECT_EQ(find_address_references(bytes, ElfMachine::x86_64, kBase, 0x3000), std::vector<uint64_t>{0x1016});
  EXPECT_EQ(find_address_references(bytes, ElfMachine::x86_64, kBase, 0x2001), std::vector<uint64_t>{});
  EXPECT_EQ(find_address_references(bytes, ElfMachine::aarch64, kBase, kTarget), std::vector<uint64_t>{});
}

TEST(DecodesInstructionAt, OnlyWhereDecodingFromTheStartLands) {
  auto bytes = code({kSubRsp18, kCallPlus100, kRet});
  EXPECT_TRUE(decodes_instruction_at(bytes, ElfMachine::x86_64, kBase, kBase));
  EXPECT_TRUE(decodes_instruction_at(bytes, ElfMachine::x86_64, kBase, kBase + 4));
  EXPECT_TRUE(decodes_instruction_at(bytes, ElfMachine::x86_64, kBase, kBase + 9));
  EXPECT_FALSE(decodes_instruction_at(bytes, ElfMachine::x86_64, kBase, kBase + 5));   // inside the call
  EXPECT_FALSE(decodes_instruction_at(bytes, ElfMachine::x86_64, kBase, kBase + 10));  // past the end
}

TEST(FindBranchesTo, EveryKindAndSizeDecodedInStepWithTheBoundaries) {
  constexpr uint64_t kTarget = 0x1040;
  auto bytes = code({{0xe8, 0x3b, 0x00, 0x00, 0x00},        // 0x1000 call rel32
                     {0xe9, 0x36, 0x00, 0x00, 0x00},        // 0x1005 jmp rel32
                     {0x0f, 0x85, 0x30, 0x00, 0x00, 0x00},  // 0x100a jne rel32
                     {0x74, 0x2e},                          // 0x1010 je rel8
                     {0xeb, 0x2c},                          // 0x1012 jmp rel8
                     kCallPlus100,                          // 0x1014 elsewhere
                     {0x0f, 0x1f, 0x40, 0x00},              // 0x1019 nopl 0x0(%rax)
                     kRet});                                // 0x101d
  const std::vector<BranchTo> branches = {{0x1000}, {0x1005}, {0x100a}, {0x1010}, {0x1012}};
  const std::vector<uint64_t> in_step = {0x1000, 0x1014, 0x101c /* the nop's last byte */, 0x101d, 0x5000};
  EXPECT_EQ(find_branches_to(bytes, ElfMachine::x86_64, kBase, kTarget, in_step), branches);
  EXPECT_EQ(find_branches_to(bytes, ElfMachine::x86_64, kBase, 0x2000, in_step), std::vector<BranchTo>{});
  const std::vector<uint64_t> inside_a_call = {0x1000, 0x1016};
  EXPECT_FALSE(find_branches_to(bytes, ElfMachine::x86_64, kBase, kTarget, inside_a_call));
  const std::vector<uint64_t> early_in_a_nop = {0x1000, 0x101b};
  EXPECT_FALSE(find_branches_to(bytes, ElfMachine::x86_64, kBase, kTarget, early_in_a_nop));
  auto cut = bytes;
  cut.resize(cut.size() - 3);  // ends inside the nop
  EXPECT_FALSE(find_branches_to(cut, ElfMachine::x86_64, kBase, kTarget, {}));
  EXPECT_FALSE(find_branches_to(bytes, ElfMachine::aarch64, kBase, kTarget, {}));
}

TEST(FindBranchesTo, TheConstantStoredRightBefore) {
  constexpr uint64_t kTarget = 0x1100;
  auto bytes =
      code({{0xc7, 0x40, 0x18, 0x01, 0x00, 0x00, 0x00},        // 0x1000 mov dword ptr [rax + 0x18], 1
            {0xe8, 0xf4, 0x00, 0x00, 0x00},                    // 0x1007 call 0x1100
            {0xc7, 0x40, 0x18, 0x00, 0x00, 0x00, 0x00},        // 0x100c mov dword ptr [rax + 0x18], 0
            {0xe8, 0xe8, 0x00, 0x00, 0x00},                    // 0x1013 call 0x1100
            {0xc7, 0x43, 0x08, 0x02, 0x00, 0x00, 0x00},        // 0x1018 mov dword ptr [rbx + 8], 2
            {0xe8, 0xdc, 0x00, 0x00, 0x00},                    // 0x101f call 0x1100
            {0x48, 0xc7, 0x40, 0x18, 0x01, 0x00, 0x00, 0x00},  // 0x1024 mov qword ptr [rax + 0x18], 1
            {0xe8, 0xcf, 0x00, 0x00, 0x00},                    // 0x102c call 0x1100
            {0x89, 0x58, 0x18},                                // 0x1031 mov dword ptr [rax + 0x18], ebx
            {0xe8, 0xc7, 0x00, 0x00, 0x00},                    // 0x1034 call 0x1100
            {0x74, 0xdb},                                      // 0x1039 je 0x1016: not a branch's start
            kRet});
  const std::vector<BranchTo> expected = {{0x1007, ImmediateStore{0x18, 1}},
                                          {0x1013, ImmediateStore{0x18, 0}},
                                          {0x101f, ImmediateStore{8, 2}},
                                          {0x102c, std::nullopt},   // 8 bytes wide
                                          {0x1034, std::nullopt}};  // not a constant
  EXPECT_EQ(find_branches_to(bytes, ElfMachine::x86_64, kBase, kTarget, {}), expected);
  // A call that starts a function follows no store of its own.
  auto first_in_a_function = expected;
  first_in_a_function[0].after_store.reset();
  const std::vector<uint64_t> starts = {0x1000, 0x1007};
  EXPECT_EQ(find_branches_to(bytes, ElfMachine::x86_64, kBase, kTarget, starts), first_in_a_function);
  // A jump that lands on a call skips the store before it.
  bytes.back() = std::byte{0x90};
  bytes.push_back(std::byte{0xeb});  // 0x103c jmp 0x1007
  bytes.push_back(std::byte{0xc9});
  auto landed = expected;
  landed[0].after_store.reset();
  EXPECT_EQ(find_branches_to(bytes, ElfMachine::x86_64, kBase, kTarget, {}), landed);
}

TEST(FindReturns, EveryRet) {
  EXPECT_EQ(find_returns(code({kPushRbp, kRet, kJePlus2, {0xc2, 0x08, 0x00}}), ElfMachine::x86_64, kBase),
            (std::vector<uint64_t>{0x1001, 0x1004}));
  EXPECT_EQ(find_returns(code({kArmNop, kArmRet}), ElfMachine::aarch64, kBase),
            (std::vector<uint64_t>{0x1004}));
  EXPECT_TRUE(find_returns({}, ElfMachine::x86_64, kBase).empty());
}

TEST(ForwardedCallTarget, ArgumentsUntouchedBeforeTheFirstBranch) {
  // OpenSSL's SSL_write_ex: sub rsp, 8; call ssl_write_internal.
  EXPECT_EQ(forwarded_call_target(code({kSubRsp18, kCallPlus100}), ElfMachine::x86_64, kBase), 0x1109u);
  EXPECT_EQ(forwarded_call_target(code({kMovRbxRdi, kCallPlus100}), ElfMachine::x86_64, kBase), 0x1108u);
  EXPECT_EQ(forwarded_call_target(code({kJmpPlus100}), ElfMachine::x86_64, kBase), 0x1105u);  // tail call
}

TEST(ForwardedCallTarget, NotForwardedWhenArgumentsChangeOrControlBranchesFirst) {
  EXPECT_EQ(forwarded_call_target(code({kMovEdi1, kCallPlus100}), ElfMachine::x86_64, kBase), std::nullopt);
  EXPECT_EQ(forwarded_call_target(code({kLeaRcx, kCallPlus100}), ElfMachine::x86_64, kBase), std::nullopt);
  EXPECT_EQ(forwarded_call_target(code({kJePlus2, kCallPlus100}), ElfMachine::x86_64, kBase), std::nullopt);
  EXPECT_EQ(forwarded_call_target(code({kCallRax}), ElfMachine::x86_64, kBase), std::nullopt);
  EXPECT_EQ(forwarded_call_target(code({kSubRsp18}), ElfMachine::x86_64, kBase), std::nullopt);
  EXPECT_EQ(forwarded_call_target({}, ElfMachine::x86_64, kBase), std::nullopt);
}

TEST(ForwardedCallTarget, Arm64) {
  EXPECT_EQ(forwarded_call_target(code({kStpFrame, kMovX29Sp, kBlPlus100}), ElfMachine::aarch64, kBase),
            0x1108u);
  EXPECT_EQ(forwarded_call_target(code({kMovX0_1, kBlPlus100}), ElfMachine::aarch64, kBase), std::nullopt);
}

TEST(CheapestEntry, FirstEmulatedInstructionWhileArgumentsAreIntact) {
  const auto c = CallingConvention::c;
  // Debian's libssl shape: endbr64; sub rsp; then a push the kernel emulates.
  EXPECT_EQ(cheapest_entry(code({kEndbr64, kSubRsp18, kPushR14}), ElfMachine::x86_64, kBase, c), 0x1008u);
  EXPECT_EQ(cheapest_entry(code({kPushR14, kSubRsp18}), ElfMachine::x86_64, kBase, c), 0x1000u);
  EXPECT_EQ(cheapest_entry(code({kSubRsp18, kJePlus2}), ElfMachine::x86_64, kBase, c), 0x1004u);
  // An argument written, or straight-line code ending, before anything emulated: the entry itself.
  EXPECT_EQ(cheapest_entry(code({kSubRsp18, kMovEdi1, kPushR14}), ElfMachine::x86_64, kBase, c), kBase);
  EXPECT_EQ(cheapest_entry(code({kSubRsp18, kCallRax, kPushRbp}), ElfMachine::x86_64, kBase, c), kBase);
  EXPECT_EQ(cheapest_entry(code({kSubRsp18, kRet, kPushRbp}), ElfMachine::x86_64, kBase, c), kBase);
  EXPECT_EQ(cheapest_entry({}, ElfMachine::x86_64, kBase, c), kBase);
}

TEST(CheapestEntry, ACallOnlyWhereCallsMayBeProbed) {
  const auto c = CallingConvention::c;
  auto bytes = code({kSubRsp18, kCallPlus100, kPushRbp});
  EXPECT_EQ(cheapest_entry(bytes, ElfMachine::x86_64, kBase, c), 0x1004u);
  // Not on the call, and not past it (another function runs there): the entry.
  EXPECT_EQ(cheapest_entry(bytes, ElfMachine::x86_64, kBase, c, 4, /*probe_calls=*/false), kBase);
  EXPECT_EQ(cheapest_entry(code({kSubRsp18, kPushRbp, kCallPlus100}), ElfMachine::x86_64, kBase, c, 4, false),
            0x1004u);
}

TEST(StackDepthAt, PrologueMovesBeforeTheSite) {
  const auto x86 = ElfMachine::x86_64;
  EXPECT_EQ(stack_depth_at(code({kEndbr64, kSubRsp18, kPushR14}), x86, kBase, 0x1008), 0x18u);
  EXPECT_EQ(stack_depth_at(code({kPushRbp, kPushR14, kSubRsp18, kJePlus2}), x86, kBase, 0x1007), 0x28u);
  EXPECT_EQ(stack_depth_at(code({kPushR14}), x86, kBase, kBase), 0u);  // the entry itself
  // add rsp undoes sub rsp; lea rsp, [rsp + 8] moves it a way not followed.
  EXPECT_EQ(stack_depth_at(code({kSubRsp18, {0x48, 0x83, 0xc4, 0x08}, kPushRbp}), x86, kBase, 0x1008), 0x10u);
  EXPECT_EQ(stack_depth_at(code({{0x48, 0x8d, 0x64, 0x24, 0x08}, kPushRbp}), x86, kBase, 0x1005),
            std::nullopt);
  // A site beyond a branch, between instructions, or past the end is not reached.
  EXPECT_EQ(stack_depth_at(code({kCallRax, kPushRbp}), x86, kBase, 0x1002), std::nullopt);
  EXPECT_EQ(stack_depth_at(code({kSubRsp18, kPushRbp}), x86, kBase, 0x1002), std::nullopt);
  EXPECT_EQ(stack_depth_at(code({kSubRsp18}), x86, kBase, 0x1010), std::nullopt);

  const auto arm64 = ElfMachine::aarch64;
  EXPECT_EQ(stack_depth_at(code({kStpFrame, kMovX29Sp, kBlPlus100}), arm64, kBase, 0x1008), 16u);
  EXPECT_EQ(stack_depth_at(code({kSubSp32, kStpFrame, kArmNop}), arm64, kBase, 0x1008), 48u);
  EXPECT_EQ(stack_depth_at(code({kMovSpX0, kArmNop}), arm64, kBase, 0x1004), std::nullopt);
}

TEST(CheapestEntry, ArgumentRegistersFollowTheConvention) {
  // mov eax, 1 clobbers Go's first argument, not C's.
  auto bytes = code({kSubRsp18, kMovEax1, kPushRbp});
  EXPECT_EQ(cheapest_entry(bytes, ElfMachine::x86_64, kBase, CallingConvention::c), 0x1009u);
  EXPECT_EQ(cheapest_entry(bytes, ElfMachine::x86_64, kBase, CallingConvention::go), kBase);
}

TEST(CheapestEntry, GoStackCheckPrologueProbesTheJbe) {
  // (*Conn).Write: LEAQ -0x10(SP), R12; CMPQ R12, 16(R14); JBE morestack
  auto bytes = code({{0x4c, 0x8d, 0x64, 0x24, 0xf0}, {0x4d, 0x3b, 0x66, 0x10}, {0x76, 0x10}});
  EXPECT_EQ(cheapest_entry(bytes, ElfMachine::x86_64, kBase, CallingConvention::go), 0x1009u);
}

// Go 1.15 (ABI0): MOVQ FS:-8, CX; CMPQ 16(CX), SP; JBE morestack. Arguments are on the stack:
// every register may change before the probe, the stack pointer may not.
constexpr std::initializer_list<uint8_t> kMovRcxFsMinus8 = {0x64, 0x48, 0x8b, 0x0c, 0x25,
                                                            0xf8, 0xff, 0xff, 0xff};
constexpr std::initializer_list<uint8_t> kCmpRspRcx16 = {0x48, 0x3b, 0x61, 0x10};

TEST(CheapestEntry, GoStackAbiKeepsOnlyTheStackPointer) {
  auto prologue = code({kMovRcxFsMinus8, kCmpRspRcx16, {0x76, 0x10}});
  EXPECT_EQ(cheapest_entry(prologue, ElfMachine::x86_64, kBase, CallingConvention::go_stack), 0x100du);
  auto frame_first = code({kSubRsp18, kPushRbp});
  EXPECT_EQ(cheapest_entry(frame_first, ElfMachine::x86_64, kBase, CallingConvention::go_stack), kBase);
}

TEST(GoTlsGOffset, TheLoadFromFsThatBeginsAPrologue) {
  EXPECT_EQ(go_tls_g_offset(code({kMovRcxFsMinus8, kCmpRspRcx16}), ElfMachine::x86_64, kBase), -8);
  // mov rcx, [rip + x]: position-independent code reaches g another way; and not first.
  EXPECT_EQ(go_tls_g_offset(code({{0x48, 0x8b, 0x0d, 0x10, 0x00, 0x00, 0x00}}), ElfMachine::x86_64, kBase),
            std::nullopt);
  EXPECT_EQ(go_tls_g_offset(code({kPushRbp, kMovRcxFsMinus8}), ElfMachine::x86_64, kBase), std::nullopt);
  EXPECT_EQ(go_tls_g_offset(code({kMovX0_1}), ElfMachine::aarch64, kBase), std::nullopt);
}

// LEAQ; CMPQ; JBE grow (or JNE); RET; grow: CALL morestack; JMP `back_to`.
std::vector<std::byte> go_prologue(uint8_t jcc, uint8_t jmp_back_rel8) {
  return code({{0x4c, 0x8d, 0x64, 0x24, 0xf0},
               {0x4d, 0x3b, 0x66, 0x10},
               {jcc, 0x01},
               {0xc3},
               {0xe8, 0x00, 0x00, 0x00, 0x00},
               {0xeb, jmp_back_rel8}});
}

TEST(GoStackCheck, BranchToABlockThatRestartsTheFunction) {
  constexpr uint8_t kJbe = 0x76, kJne = 0x75, kToEntry = 0xed, kToCmp = 0xf2;
  EXPECT_TRUE(is_go_stack_check(go_prologue(kJbe, kToEntry), ElfMachine::x86_64, kBase, 0x1009));
  // Not the branch, another condition, or a block that does not restart the function.
  EXPECT_FALSE(is_go_stack_check(go_prologue(kJbe, kToEntry), ElfMachine::x86_64, kBase, 0x1000));
  EXPECT_FALSE(is_go_stack_check(go_prologue(kJne, kToEntry), ElfMachine::x86_64, kBase, 0x1009));
  EXPECT_FALSE(is_go_stack_check(go_prologue(kJbe, kToCmp), ElfMachine::x86_64, kBase, 0x1009));
  // A site outside the code.
  EXPECT_FALSE(is_go_stack_check(go_prologue(kJbe, kToEntry), ElfMachine::x86_64, kBase, 0x2000));
}

TEST(CheapestEntry, Arm64) {
  EXPECT_EQ(cheapest_entry(code({kStpFrame, kMovX29Sp, kBlPlus100}), ElfMachine::aarch64, kBase,
                           CallingConvention::c),
            0x1008u);
  EXPECT_EQ(cheapest_entry(code({kMovX0_1, kArmNop}), ElfMachine::aarch64, kBase, CallingConvention::c),
            kBase);
}

}  // namespace
}  // namespace tlstap
