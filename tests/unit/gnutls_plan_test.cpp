// The GnuTLS probe plan on Debian's libgnutls: the receive probes sit on the
// record layer's receive that gnutls_record_recv tail-jumps to, and on its
// kTLS call, as objdump's disassembly of gnutls_record_recv shows them.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "binary/instruction.h"
#include "test_support.h"
#include "tls/gnutls.h"

namespace tlstap {
namespace {

using test::open_elf;

constexpr const char* kLibgnutls = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30";

TEST(GnutlsPlan, ReceiveProbesOnTheRecordLayerAndTheKtlsCall) {
  if (access(kLibgnutls, R_OK) != 0) GTEST_SKIP() << kLibgnutls << " is not installed";
  const std::string real = kLibgnutls;
  auto recv = test::nm_function(real, "gnutls_record_recv", true);
  ASSERT_TRUE(recv);
  const auto instructions = test::objdump_function(real, "gnutls_record_recv");
  const auto branches = test::objdump_branches(real, "gnutls_record_recv");
  std::vector<uint64_t> tail_jumps;
  for (const auto& b : branches)
    if (!b.is_call && (b.target < recv->address || b.target >= recv->address + recv->size))
      tail_jumps.push_back(b.target);
  ASSERT_EQ(tail_jumps.size(), 1u) << "gnutls_record_recv does not tail-jump once";
  const uint64_t layer = tail_jumps.front();
  auto after = [&](uint64_t address) {
    auto it = std::find_if(instructions.begin(), instructions.end(),
                           [&](const auto& insn) { return insn.address > address; });
    return it == instructions.end() ? 0 : it->address;
  };

  ElfImage image = open_elf(real);
  auto plan = plan_gnutls_probes(image);
  ASSERT_TRUE(plan);
  std::vector<std::tuple<uint64_t, UprobeProgram, bool>> receive_sites;
  for (const auto& site : plan->sites)
    if (site.program == UprobeProgram::gnutls_recv_record_enter ||
        (site.program == UprobeProgram::gnutls_call_exit &&
         site.symbol.find("receive") != std::string::npos) ||
        site.program == UprobeProgram::gnutls_int_result)
      receive_sites.emplace_back(site.file_offset, site.program, site.is_return);
  std::vector<std::tuple<uint64_t, UprobeProgram, bool>> expected = {
      {layer, UprobeProgram::gnutls_recv_record_enter, false},
      {layer, UprobeProgram::gnutls_call_exit, true}};
  for (const auto& call : branches) {
    if (!call.is_call || call.target == layer || !image.is_own_code(call.target)) continue;  // PLT: logging
    expected.emplace_back(call.address, UprobeProgram::gnutls_recv_record_enter, false);
    expected.emplace_back(after(call.address), UprobeProgram::gnutls_int_result, false);
  }
  EXPECT_EQ(receive_sites, expected);
  // No probe on gnutls_record_recv's own entry: its first instruction is single-stepped.
  for (const auto& site : plan->sites) EXPECT_NE(site.file_offset, recv->address) << site.symbol;
  // The record layer starts with an instruction the kernel emulates.
  auto first = decode_instruction(image.file_bytes(layer, 16), image.machine(), layer);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->kernel_emulates) << first->text;
}

// Where no probe may sit on a call (shadow stacks), the kTLS call is not
// probed, and neither is the record layer without it: gnutls_record_recv's
// own entry and return see both ways of receiving.
TEST(GnutlsPlan, TheApiWhereTheKtlsCallMayNotBeProbed) {
  if (access(kLibgnutls, R_OK) != 0) GTEST_SKIP() << kLibgnutls << " is not installed";
  ElfImage image = open_elf(kLibgnutls);
  auto plan = plan_gnutls_probes(image, {.probe_calls = false});
  ASSERT_TRUE(plan);
  auto recv = test::nm_function(kLibgnutls, "gnutls_record_recv", true);
  ASSERT_TRUE(recv);
  const uint64_t entry = test::readelf_file_offset(kLibgnutls, recv->address).value_or(0);
  size_t on_recv = 0;
  for (const auto& site : plan->sites) {
    EXPECT_EQ(site.program == UprobeProgram::gnutls_int_result, false) << site.symbol;
    EXPECT_EQ(site.symbol.find("record layer"), std::string::npos) << site.symbol;
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), 0);
    ASSERT_TRUE(insn);
    EXPECT_FALSE(insn->text.starts_with("call")) << site.symbol;
    if (site.symbol != "gnutls_record_recv") continue;
    ++on_recv;
    if (site.is_return) {
      EXPECT_EQ(site.file_offset, entry);
    }
  }
  EXPECT_EQ(on_recv, 2u);  // its entry and its return
  EXPECT_NE(std::find_if(plan->warnings.begin(), plan->warnings.end(),
                         [](const std::string& w) {
                           return w.find("kTLS call may not be probed") != std::string::npos;
                         }),
            plan->warnings.end());
}

}  // namespace
}  // namespace tlstap
