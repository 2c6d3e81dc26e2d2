// Where probes may go in files a process with a shadow stack can run (x86-64
// SHSTK): the files' marks, read from their GNU property notes, and the plans
// made for them under each kernel's rules.
#include <elf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "binary/elf_image.h"
#include "binary/instruction.h"
#include "discovery/dynamic_loader.h"
#include "discovery/target_attacher.h"
#include "test_support.h"
#include "tls/openssl.h"

namespace tlstap {
namespace {

using test::open_elf;

// One NT_GNU_PROPERTY_TYPE_0 note of a 64-bit file holding `properties`
// (type, 4-byte value), each padded to 8 bytes.
std::vector<std::byte> property_note(std::vector<std::pair<uint32_t, uint32_t>> properties,
                                     const char* owner = "GNU") {
  std::vector<uint32_t> words = {4, static_cast<uint32_t>(properties.size() * 16), NT_GNU_PROPERTY_TYPE_0, 0};
  std::memcpy(&words[3], owner, 4);
  for (auto [type, value] : properties) words.insert(words.end(), {type, 4, value, 0});
  std::vector<std::byte> bytes(words.size() * 4);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return bytes;
}

constexpr uint32_t kIsaNeeded = 0xc0008002;  // GNU_PROPERTY_X86_ISA_1_NEEDED

TEST(X86FeatureBits, ReadFromTheGnuPropertyNote) {
  constexpr uint32_t kBoth = GNU_PROPERTY_X86_FEATURE_1_IBT | GNU_PROPERTY_X86_FEATURE_1_SHSTK;
  EXPECT_EQ(x86_feature_bits(property_note({{GNU_PROPERTY_X86_FEATURE_1_AND, kBoth}})), kBoth);
  // After another property; after a note of another kind.
  EXPECT_EQ(x86_feature_bits(property_note({{kIsaNeeded, 1}, {GNU_PROPERTY_X86_FEATURE_1_AND, 2}})), 2u);
  auto two = property_note({{kIsaNeeded, 1}}, "XYZ");
  auto marked = property_note({{GNU_PROPERTY_X86_FEATURE_1_AND, 2}});
  two.insert(two.end(), marked.begin(), marked.end());
  EXPECT_EQ(x86_feature_bits(two), 2u);
  // Not there, not a GNU note, or cut short: nothing claimed.
  EXPECT_EQ(x86_feature_bits(property_note({{kIsaNeeded, 1}})), 0u);
  EXPECT_EQ(x86_feature_bits(property_note({{GNU_PROPERTY_X86_FEATURE_1_AND, 2}}, "XYZ")), 0u);
  for (size_t cut = 0; cut < marked.size(); ++cut)
    EXPECT_EQ(x86_feature_bits(std::span(marked).first(cut)), 0u) << cut << " bytes";
}

#if defined(__x86_64__)

TEST(ShadowStackMark, ReadFromTheFile) {
  // The linker's own word on the fixtures, that they are what the test says.
  EXPECT_NE(test::run_command(fmt::format("readelf -n {}", FIXTURE_LIBSSL_SHSTK)).find("SHSTK"),
            std::string::npos);
  EXPECT_TRUE(open_elf(FIXTURE_LIBSSL_SHSTK).marked_for_shadow_stack());
  EXPECT_FALSE(open_elf(FIXTURE_LIBSSL).marked_for_shadow_stack());
  if (access(test::kSystemLibssl, R_OK) == 0) {  // Debian 12 builds without the mark
    EXPECT_FALSE(open_elf(test::kSystemLibssl).marked_for_shadow_stack());
  }
}

constexpr ShadowStackSupport kNoShadowStacks{};
constexpr ShadowStackSupport kBefore6_10{.cpu_enforces = true};
constexpr ShadowStackSupport kBefore6_18{.cpu_enforces = true, .kernel_updates_at_return_probe = true};
constexpr ShadowStackSupport kSince6_18{true, true, true};

std::vector<uint64_t> offsets(const ProbePlan& plan) {
  std::vector<uint64_t> offsets;
  for (const auto& site : plan.sites) offsets.push_back(site.file_offset);
  return offsets;
}

TEST(ShadowStackRules, ReturnProbesOnlyWhereTheKernelUpdatesTheShadowStack) {
  ElfImage marked = open_elf(FIXTURE_LIBSSL_SHSTK);
  auto as_ever = plan_openssl_probes(marked);
  ASSERT_TRUE(as_ever);
  for (const auto& support : {kNoShadowStacks, kSince6_18}) {
    auto plan = plan_probes(marked, support);
    ASSERT_TRUE(plan && *plan);
    EXPECT_EQ(offsets(**plan), offsets(*as_ever));
  }
  auto refused = plan_probes(marked, kBefore6_10);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("marked for shadow stacks (SHSTK)"), std::string::npos)
      << refused.error().message;
  // A file no process with a shadow stack runs is probed as ever.
  auto unmarked = plan_probes(open_elf(FIXTURE_LIBSSL), kBefore6_10);
  ASSERT_TRUE(unmarked && *unmarked);
  EXPECT_EQ(offsets(**unmarked), offsets(*plan_openssl_probes(open_elf(FIXTURE_LIBSSL))));
}

// The fixture's SSL_free begins with a call (as under -pg -mfentry): no
// instruction before it to move its probe to. Where calls may not be probed,
// it is left out, and the plan says so; the rest stays.
TEST(ShadowStackRules, AFunctionThatBeginsWithACallIsLeftOutWhereCallsMayNotBeProbed) {
  ElfImage marked = open_elf(FIXTURE_LIBSSL_SHSTK);
  auto free = test::nm_function(FIXTURE_LIBSSL_SHSTK, "SSL_free", true);
  ASSERT_TRUE(free);
  auto first =
      decode_instruction(marked.bytes_at_address(free->address, 16), marked.machine(), free->address);
  ASSERT_TRUE(first && first->text.starts_with("call")) << "the fixture's SSL_free must begin with a call";
  auto as_ever = plan_openssl_probes(marked);
  ASSERT_TRUE(as_ever);
  std::vector<uint64_t> without_free;
  for (const auto& site : as_ever->sites)
    if (site.symbol != "SSL_free") without_free.push_back(site.file_offset);
  ASSERT_LT(without_free.size(), as_ever->sites.size());
  auto plan = plan_probes(marked, kBefore6_18);
  ASSERT_TRUE(plan && *plan);
  EXPECT_EQ(offsets(**plan), without_free);
  ASSERT_EQ((*plan)->gaps.size(), 1u);
  EXPECT_TRUE((*plan)->gaps[0].starts_with("SSL_free not probed: it begins with a call")) << (*plan)->gaps[0];
}

// The system loader, and a copy of it marked for shadow stacks (a note
// section added, as a distribution building with -fcf-protection has it).
TEST(ShadowStackRules, TheLoadersCallsOnlyWhereTheKernelPushesOnTheShadowStack) {
  const std::string loader = "/lib64/ld-linux-x86-64.so.2";
  if (open_elf(loader).marked_for_shadow_stack()) GTEST_SKIP() << "this system's loader is marked already";
  test::TempDir dir;
  const std::string notes = dir.path("notes"), copy = dir.path("ld.so");
  auto note = property_note({{GNU_PROPERTY_X86_FEATURE_1_AND, GNU_PROPERTY_X86_FEATURE_1_SHSTK}});
  test::write_text_file(notes, std::string_view(reinterpret_cast<const char*>(note.data()), note.size()));
  test::run_command(fmt::format("objcopy --add-section .note.gnu.property={} {} {}", notes, loader, copy));
  ElfImage marked = open_elf(copy);
  ASSERT_TRUE(marked.marked_for_shadow_stack());

  auto calls = plan_loader_probe(marked);
  auto hook = plan_loader_probe(marked, {.probe_calls = false});
  ASSERT_TRUE(calls && hook);
  ASSERT_NE(offsets(*calls), offsets(*hook));
  auto planned = [&](const ElfImage& image, const ShadowStackSupport& support) {
    auto plan = plan_probes(image, support);
    if (!plan || !*plan) throw std::runtime_error("no loader plan");
    return offsets(**plan);
  };
  EXPECT_EQ(planned(marked, kNoShadowStacks), offsets(*calls));
  EXPECT_EQ(planned(marked, kSince6_18), offsets(*calls));
  EXPECT_EQ(planned(marked, kBefore6_18), offsets(*hook));
  EXPECT_EQ(planned(marked, kBefore6_10), offsets(*hook));  // the loader's probes divert no return
  EXPECT_EQ(planned(open_elf(loader), kBefore6_10), offsets(*calls));
}

#endif

}  // namespace
}  // namespace tlstap
