// The NSS probe plan on Debian's libssl3: the SSL layer's I/O functions,
// located from libssl3's own code. binutils cannot name them (they are static
// and the library is stripped), so the checks are what binutils can witness:
// each is a function entry in the unwind tables (readelf), and each entry
// probe lands on an instruction the kernel emulates.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <sstream>

#include "binary/instruction.h"
#include "test_support.h"
#include "tls/boringssl.h"
#include "tls/nss.h"
#include "tls/openssl.h"

namespace tlstap {
namespace {

using test::open_elf;

constexpr const char* kLibssl3 = "/usr/lib/x86_64-linux-gnu/libssl3.so";

// Start addresses of every function with unwind information (.eh_frame
// FDEs: "... FDE cie=00000000 pc=0000000000034170..00000000000341fc").
std::set<uint64_t> unwind_starts(const std::string& path) {
  std::set<uint64_t> starts;
  std::istringstream frames(test::run_command(fmt::format("{} --debug-dump=frames {}", TOOL_READELF, path)));
  for (std::string line; std::getline(frames, line);) {
    auto pc = line.find(" pc=");
    if (line.find(" FDE ") != std::string::npos && pc != std::string::npos)
      starts.insert(std::stoull(line.substr(pc + 4), nullptr, 16));
  }
  return starts;
}

// The version in libssl3's "Version: NSS x.y.z" string, as `strings` finds it.
std::string version_from_strings(const std::string& path) {
  std::string line = test::run_command(fmt::format("strings -a {} | grep -m1 '^Version: NSS '", path));
  constexpr std::string_view prefix = "Version: NSS ";
  if (!line.starts_with(prefix)) return {};
  line = line.substr(prefix.size());
  return line.substr(0, line.find_first_not_of("0123456789."));
}

TEST(NssPlan, ProbesTheSslLayersFunctions) {
  if (access(kLibssl3, R_OK) != 0) GTEST_SKIP() << kLibssl3 << " is not installed";
  ElfImage image = open_elf(kLibssl3);
  auto plan = plan_nss_probes(image);
  ASSERT_TRUE(plan) << plan.error().message;
  ASSERT_TRUE(*plan);
  const ProbePlan& p = **plan;
  const std::string version = version_from_strings(kLibssl3);
  ASSERT_FALSE(version.empty());
  EXPECT_EQ(p.description, "nss " + version);
  EXPECT_EQ(nss_version(image), version);

  // Four data functions, entry and return each, then PR_Close's entry.
  std::vector<std::pair<std::string, UprobeProgram>> expected = {
      {"PR_Write (SSL layer)", UprobeProgram::nss_write_enter},
      {"PR_Write (SSL layer)", UprobeProgram::openssl_call_exit},
      {"PR_Read (SSL layer)", UprobeProgram::nss_read_enter},
      {"PR_Read (SSL layer)", UprobeProgram::openssl_call_exit},
      {"PR_Send (SSL layer)", UprobeProgram::nss_send_enter},
      {"PR_Send (SSL layer)", UprobeProgram::openssl_call_exit},
      {"PR_Recv (SSL layer)", UprobeProgram::nss_recv_enter},
      {"PR_Recv (SSL layer)", UprobeProgram::openssl_call_exit},
      {"PR_Close (SSL layer)", UprobeProgram::openssl_free},
  };
  std::vector<std::pair<std::string, UprobeProgram>> actual;
  for (const auto& site : p.sites) actual.emplace_back(site.symbol, site.program);
  EXPECT_EQ(actual, expected);

  const auto starts = unwind_starts(kLibssl3);
  ASSERT_FALSE(starts.empty());
  std::set<uint64_t> entries;
  for (const auto& site : p.sites) {
    // Sites are file offsets, FDEs addresses: in libssl3's text they coincide (readelf witnesses it).
    ASSERT_EQ(test::readelf_file_offset(kLibssl3, site.file_offset), site.file_offset);
    EXPECT_TRUE(starts.count(site.file_offset))
        << site.symbol << " at " << site.file_offset << " is not a function entry";
    if (site.is_return) continue;
    entries.insert(site.file_offset);
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), 0);
    ASSERT_TRUE(insn);
    EXPECT_TRUE(insn->kernel_emulates) << site.symbol << ": " << insn->text;
  }
  EXPECT_EQ(entries.size(), 5u) << "five distinct functions";
}

TEST(NssPlan, OtherLibrariesAreNotNss) {
  for (const char* path : {test::kSystemLibssl, "/usr/lib/x86_64-linux-gnu/android/libssl.so.0"}) {
    if (access(path, R_OK) != 0) continue;
    auto plan = plan_nss_probes(open_elf(path));
    ASSERT_TRUE(plan) << path;
    EXPECT_FALSE(*plan) << path;
  }
  auto fixture = plan_nss_probes(open_elf(FIXTURE_LIBSSL));
  ASSERT_TRUE(fixture);
  EXPECT_FALSE(*fixture);
  if (access(kLibssl3, R_OK) != 0) GTEST_SKIP() << kLibssl3 << " is not installed";
  ElfImage nss = open_elf(kLibssl3);
  EXPECT_FALSE(plan_openssl_probes(nss));
  EXPECT_FALSE(plan_boringssl_probes(nss));
}

}  // namespace
}  // namespace tlstap
