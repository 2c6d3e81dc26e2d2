// The BoringSSL probe plan on Debian's android-libboringssl, and the line
// between the BoringSSL and OpenSSL adapters. Expected sites come from
// binutils (nm, readelf, objdump), not from our own ELF reader.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "binary/instruction.h"
#include "test_support.h"
#include "tls/boringssl.h"
#include "tls/openssl.h"

namespace tlstap {
namespace {

using test::kSystemLibssl;
using test::open_elf;

constexpr const char* kBoringLibssl = "/usr/lib/x86_64-linux-gnu/android/libssl.so.0";

// One line per site, so a mismatch shows which site is wrong and how.
std::string describe(const ProbeSite& site) {
  return fmt::format("{} {:#x} program {} {} cookie={}", site.symbol, site.file_offset,
                     static_cast<int>(site.program), site.is_return ? "return" : "entry", site.cookie);
}

uint64_t entry_offset(const std::string& path, std::string_view function) {
  auto nm = test::nm_function(path, function, true);
  if (!nm) throw std::runtime_error(fmt::format("nm finds no {} in {}", function, path));
  auto offset = test::readelf_file_offset(path, nm->address);
  if (!offset) throw std::runtime_error(fmt::format("readelf maps no segment over {:#x}", nm->address));
  return *offset;
}

bool boringssl_installed() {
  return access(kBoringLibssl, R_OK) == 0;
}

TEST(BoringsslPlan, ProbesSslWriteAndSslReadOnTheirEmulatedEntries) {
  if (!boringssl_installed()) GTEST_SKIP() << kBoringLibssl << " is not installed";
  const std::string path = kBoringLibssl;
  ElfImage image = open_elf(path);
  auto plan = plan_boringssl_probes(image);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->description, "boringssl (unversioned; soname libssl.so.0)");
  EXPECT_EQ(plan->warnings, std::vector<std::string>{});

  // Debian's build begins both with a push: the entry itself is the cheap site.
  const uint64_t write = entry_offset(path, "SSL_write"), read = entry_offset(path, "SSL_read");
  std::vector<std::string> expected = {
      describe({"SSL_write", write, UprobeProgram::boringssl_write_enter, false}),
      describe({"SSL_write", write, UprobeProgram::openssl_call_exit, true}),
      describe({"SSL_read", read, UprobeProgram::boringssl_read_enter, false}),
      describe({"SSL_read", read, UprobeProgram::openssl_call_exit, true}),
  };
  std::vector<std::string> data_sites, free_sites;
  for (const auto& site : plan->sites)
    (site.program == UprobeProgram::openssl_free ? free_sites : data_sites).push_back(describe(site));
  EXPECT_EQ(data_sites, expected);
  ASSERT_EQ(free_sites.size(), 1u);

  // SSL_free's probe: an instruction of SSL_free reached without a branch
  // (so the SSL* is still in its register), one the kernel emulates.
  const ProbeSite& free = *std::find_if(plan->sites.begin(), plan->sites.end(), [](const ProbeSite& s) {
    return s.program == UprobeProgram::openssl_free;
  });
  auto instructions = test::objdump_function(path, "SSL_free");
  auto at = std::find_if(instructions.begin(), instructions.end(), [&](const auto& insn) {
    return test::readelf_file_offset(path, insn.address) == free.file_offset;
  });
  ASSERT_NE(at, instructions.end()) << describe(free) << " is not an instruction of SSL_free";
  for (auto before = instructions.begin(); before != at; ++before)
    EXPECT_FALSE(before->mnemonic.starts_with('j') || before->mnemonic.starts_with("call"))
        << before->mnemonic;
  for (const auto& site : plan->sites) {
    if (site.is_return) continue;
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), 0);
    ASSERT_TRUE(insn) << describe(site);
    EXPECT_TRUE(insn->kernel_emulates) << describe(site) << ": " << insn->text;
  }
}

TEST(BoringsslPlan, BoringsslIsNotOpenssl) {
  if (!boringssl_installed()) GTEST_SKIP() << kBoringLibssl << " is not installed";
  ElfImage image = open_elf(kBoringLibssl);
  EXPECT_TRUE(is_boringssl(image));
  EXPECT_FALSE(plan_openssl_probes(image));
  EXPECT_FALSE(plan_openssl_probes(image, {.call_sites = false}));
}

TEST(BoringsslPlan, OpensslIsNotBoringssl) {
  for (const char* path : {FIXTURE_LIBSSL, FIXTURE_LIBSSL_BASIC}) {
    ElfImage image = open_elf(path);
    EXPECT_FALSE(is_boringssl(image)) << path;
    EXPECT_FALSE(plan_boringssl_probes(image)) << path;
    EXPECT_TRUE(plan_openssl_probes(image)) << path;
  }
  if (access(kSystemLibssl, R_OK) != 0) GTEST_SKIP() << kSystemLibssl << " is not installed";
  ElfImage system = open_elf(kSystemLibssl);
  EXPECT_FALSE(is_boringssl(system));
  EXPECT_FALSE(plan_boringssl_probes(system));
  EXPECT_TRUE(plan_openssl_probes(system));
}

TEST(BoringsslPlan, NoSslFunctionsNoPlan) {
  EXPECT_FALSE(plan_boringssl_probes(open_elf(FIXTURE_LIBSSL_HIDDEN_STRIPPED)));
  EXPECT_FALSE(plan_boringssl_probes(open_elf("/proc/self/exe")));
}

}  // namespace
}  // namespace tlstap
