// Probe plans for OpenSSL builds and for the dynamic loader. Expected sites
// come from binutils (nm, readelf, objdump), not from our own ELF reader.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>

#include "binary/instruction.h"
#include "discovery/dynamic_loader.h"
#include "test_support.h"
#include "tls/openssl.h"

namespace tlstap {
namespace {

using test::kSystemLibssl;
using test::open_elf;

// Names for the programs these tests expect; any other shows as its number.
std::string program_name(UprobeProgram program) {
  switch (program) {
    case UprobeProgram::openssl_write_enter:
      return "openssl_write_enter";
    case UprobeProgram::openssl_read_enter:
      return "openssl_read_enter";
    case UprobeProgram::openssl_write_ex_enter:
      return "openssl_write_ex_enter";
    case UprobeProgram::openssl_read_ex_enter:
      return "openssl_read_ex_enter";
    case UprobeProgram::openssl_call_exit:
      return "openssl_call_exit";
    case UprobeProgram::openssl_internal_enter:
      return "openssl_internal_enter";
    case UprobeProgram::openssl_internal_exit:
      return "openssl_internal_exit";
    case UprobeProgram::openssl_free:
      return "openssl_free";
    case UprobeProgram::loader_libs_changed:
      return "loader_libs_changed";
    default:
      return fmt::format("program {}", static_cast<int>(program));
  }
}

// One line per site, so a mismatch shows which site is wrong and how.
std::string describe(const ProbeSite& site) {
  return fmt::format("{} {:#x} {} {} cookie={}", site.symbol, site.file_offset, program_name(site.program),
                     site.is_return ? "return" : "entry", site.cookie);
}

uint64_t offset_of(const std::string& path, uint64_t address) {
  auto offset = test::readelf_file_offset(path, address);
  if (!offset) throw std::runtime_error(fmt::format("readelf maps no segment over {:#x}", address));
  return *offset;
}

uint64_t function_address(const std::string& path, std::string_view symbol, bool dynamic = true) {
  auto nm = test::nm_function(path, symbol, dynamic);
  if (!nm) throw std::runtime_error(fmt::format("nm finds no {} in {}", symbol, path));
  return nm->address;
}

// The one direct call from `function` to `callee`, as objdump disassembles it.
uint64_t call_site(const std::string& path, std::string_view function, uint64_t callee) {
  std::vector<uint64_t> calls;
  for (const auto& branch : test::objdump_branches(path, function))
    if (branch.target == callee) calls.push_back(branch.address);
  if (calls.size() != 1)
    throw std::runtime_error(fmt::format("{} calls {:#x} {} times", function, callee, calls.size()));
  return calls[0];
}

struct Pair {
  const char* plain;
  const char* ex;
  const char* internal;
  UprobeProgram plain_entry, ex_entry;
  tlstap_function plain_id, ex_id, internal_id;
};

constexpr Pair kWrite = {"SSL_write",
                         "SSL_write_ex",
                         "ssl_write_internal",
                         UprobeProgram::openssl_write_enter,
                         UprobeProgram::openssl_write_ex_enter,
                         TLSTAP_FN_SSL_WRITE,
                         TLSTAP_FN_SSL_WRITE_EX,
                         TLSTAP_FN_SSL_WRITE_INTERNAL};
constexpr Pair kRead = {"SSL_read",
                        "SSL_read_ex",
                        "ssl_read_internal",
                        UprobeProgram::openssl_read_enter,
                        UprobeProgram::openssl_read_ex_enter,
                        TLSTAP_FN_SSL_READ,
                        TLSTAP_FN_SSL_READ_EX,
                        TLSTAP_FN_SSL_READ_INTERNAL};

// Preferred plan: the internal function's entry and return; the entry's cookie
// names it and says where the public functions' calls return to (x86-64: a call
// is 5 bytes), as offsets from its entry in signed 28-bit fields.
std::vector<std::string> internal_route(const std::string& path, const Pair& pair, uint64_t callee) {
  const uint64_t callee_offset = offset_of(path, callee);
  auto field = [&](const char* function) {
    auto offset = static_cast<int64_t>(call_site(path, function, callee) + 5 - callee);
    return static_cast<uint64_t>(offset) & ((uint64_t{1} << 28) - 1);
  };
  const uint64_t cookie = pair.internal_id | field(pair.plain) << 8 | field(pair.ex) << 36;
  return {
      describe({pair.internal, callee_offset, UprobeProgram::openssl_internal_enter, false, cookie}),
      describe({pair.internal, callee_offset, UprobeProgram::openssl_internal_exit, true, pair.internal_id}),
  };
}

// Fallback plan: entry and return of a public function.
std::vector<std::string> entry_and_return(const std::string& path, const char* symbol, UprobeProgram entry,
                                          bool dynamic = true) {
  const uint64_t offset = offset_of(path, function_address(path, symbol, dynamic));
  return {describe({symbol, offset, entry, false}),
          describe({symbol, offset, UprobeProgram::openssl_call_exit, true})};
}

std::vector<std::string> concat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> all;
  for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

// Both routes of a fake libssl. Its internal functions are local symbols,
// so their addresses come from `symbols`, an unstripped build of the same code.
std::vector<std::string> fixture_routes(const std::string& path, const std::string& symbols) {
  return concat({internal_route(path, kWrite, function_address(symbols, "ssl_write_internal", false)),
                 internal_route(path, kRead, function_address(symbols, "ssl_read_internal", false))});
}

// Entry and return of the four public functions, in plan order.
std::vector<std::string> public_entries(const std::string& path) {
  return concat({entry_and_return(path, "SSL_write", kWrite.plain_entry),
                 entry_and_return(path, "SSL_write_ex", kWrite.ex_entry),
                 entry_and_return(path, "SSL_read", kRead.plain_entry),
                 entry_and_return(path, "SSL_read_ex", kRead.ex_entry)});
}

std::vector<std::string> describe_all(const std::vector<ProbeSite>& sites) {
  std::vector<std::string> lines;
  std::transform(sites.begin(), sites.end(), std::back_inserter(lines), describe);
  return lines;
}

// The plan's sites but SSL_free's, in order.
std::vector<std::string> data_sites(const ProbePlan& plan) {
  std::vector<std::string> lines;
  for (const auto& site : plan.sites)
    if (site.program != UprobeProgram::openssl_free) lines.push_back(describe(site));
  return lines;
}

// SSL_free's probe goes on its first cheap instruction; binutils cannot name
// it without re-implementing that choice, so check what the choice promises:
// an instruction of SSL_free, reached without a branch, that is the entry or
// one the kernel emulates.
void expect_free_probe(const std::string& path, const ElfImage& image, const ProbePlan& plan) {
  std::vector<ProbeSite> frees;
  std::copy_if(plan.sites.begin(), plan.sites.end(), std::back_inserter(frees),
               [](const ProbeSite& s) { return s.program == UprobeProgram::openssl_free; });
  ASSERT_EQ(frees.size(), 1u);
  const ProbeSite& site = frees[0];
  EXPECT_EQ(site.symbol, "SSL_free");
  EXPECT_FALSE(site.is_return);
  auto instructions = test::objdump_function(path, "SSL_free");
  auto at = std::find_if(instructions.begin(), instructions.end(),
                         [&](const auto& insn) { return offset_of(path, insn.address) == site.file_offset; });
  ASSERT_NE(at, instructions.end()) << describe(site) << " is not an instruction of SSL_free";
  for (auto before = instructions.begin(); before != at; ++before) {
    const std::string& m = before->mnemonic;
    EXPECT_FALSE(m.starts_with('j') || m.starts_with("call") || m.starts_with("ret"))
        << m << " before the probe";
  }
  if (at == instructions.begin()) return;
  auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), 0);
  ASSERT_TRUE(insn);
  EXPECT_TRUE(insn->kernel_emulates) << insn->text;
}

// The plan's data sites are exactly `expected`, and its SSL_free probe is sound.
void expect_sites(const std::string& path, const std::vector<std::string>& expected,
                  PlanOptions options = {}) {
  ElfImage image = open_elf(path);
  auto plan = plan_openssl_probes(image, options);
  ASSERT_TRUE(plan);
  EXPECT_EQ(data_sites(*plan), expected);
  expect_free_probe(path, image, *plan);
}

// The loader's path (the ABI's PT_INTERP) and its soname.
std::pair<std::string, std::string> system_loader() {
#if defined(__x86_64__)
  return {"/lib64/ld-linux-x86-64.so.2", "ld-linux-x86-64.so.2"};
#elif defined(__aarch64__)
  return {"/lib/ld-linux-aarch64.so.1", "ld-linux-aarch64.so.1"};
#else
  return {};
#endif
}

TEST(OpensslPlan, ProbesInternalFunctionsKnowingTheirCallers) {
  expect_sites(FIXTURE_LIBSSL, fixture_routes(FIXTURE_LIBSSL, FIXTURE_LIBSSL));
  auto plan = plan_openssl_probes(open_elf(FIXTURE_LIBSSL));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->description, "openssl 3.9.9");
  EXPECT_EQ(plan->warnings, std::vector<std::string>{});
}

TEST(OpensslPlan, StrippedLibraryKeepsItsPlan) {
  // The internal functions have no symbol left: the plan follows the code.
  expect_sites(FIXTURE_LIBSSL_STRIPPED, fixture_routes(FIXTURE_LIBSSL_STRIPPED, FIXTURE_LIBSSL));
}

TEST(OpensslPlan, StaticallyLinkedFunctionsFoundInSymtab) {
  expect_sites(FIXTURE_LIBSSL_HIDDEN, fixture_routes(FIXTURE_LIBSSL_HIDDEN, FIXTURE_LIBSSL_HIDDEN));
}

TEST(OpensslPlan, WithoutAttachCookiesProbesPublicEntries) {
  expect_sites(FIXTURE_LIBSSL, public_entries(FIXTURE_LIBSSL), {.call_sites = false});
  auto plan = plan_openssl_probes(open_elf(FIXTURE_LIBSSL), {.call_sites = false});
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->warnings, std::vector<std::string>{});
}

TEST(OpensslPlan, NoSharedCalleeFallsBackToPublicEntries) {
  expect_sites(FIXTURE_LIBSSL_FLAT, public_entries(FIXTURE_LIBSSL_FLAT));
  auto plan = plan_openssl_probes(open_elf(FIXTURE_LIBSSL_FLAT));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->warnings,
            (std::vector<std::string>{
                "no single internal callee of SSL_write and SSL_write_ex: probing their entries",
                "no single internal callee of SSL_read and SSL_read_ex: probing their entries"}));
}

TEST(OpensslPlan, OldApiGetsFourSitesAndWarnings) {
  const std::string path = FIXTURE_LIBSSL_BASIC;
  expect_sites(path, concat({entry_and_return(path, "SSL_write", kWrite.plain_entry),
                             entry_and_return(path, "SSL_read", kRead.plain_entry)}));
  auto plan = plan_openssl_probes(open_elf(path));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->warnings, (std::vector<std::string>{"SSL_write_ex not found", "SSL_read_ex not found"}));
  // No banner: the version comes from the soname.
  EXPECT_EQ(plan->description, "openssl 1.1.x");
}

#if defined(FIXTURE_STATIC_OPENSSL_STRIPPED)
TEST(OpensslPlan, StaticExecutableWithSymbols) {
  const std::string path = FIXTURE_STATIC_OPENSSL;
  expect_sites(path, fixture_routes(path, path));
}

TEST(OpensslPlan, StrippedStaticExecutableGetsThePlanOfItsUnstrippedBuild) {
  // Found without symbols (tls/openssl_locator.h); binutils reads the unstripped build.
  const std::string symbols = FIXTURE_STATIC_OPENSSL;
  auto plan = plan_openssl_probes(open_elf(FIXTURE_STATIC_OPENSSL_STRIPPED));
  ASSERT_TRUE(plan);
  EXPECT_EQ(describe_all(plan->sites), fixture_routes(symbols, symbols));  // and no SSL_free: not located
  EXPECT_EQ(plan->warnings, std::vector<std::string>{});
  EXPECT_EQ(plan->gaps, std::vector<std::string>{});
  EXPECT_EQ(plan->description,
            "openssl (version unknown); no symbols: functions located by their error records");
}
#endif

TEST(OpensslPlan, NoSslFunctionsNoPlan) {
  EXPECT_FALSE(plan_openssl_probes(open_elf(FIXTURE_LIBSSL_HIDDEN_STRIPPED)));
  EXPECT_FALSE(plan_openssl_probes(open_elf("/proc/self/exe")));
}

TEST(OpensslVersion, BannerThenSoname) {
  // The fixture's rodata holds "OpenSSL default" before the banner.
  EXPECT_EQ(openssl_version(open_elf(FIXTURE_LIBSSL)), "3.9.9");
  EXPECT_EQ(openssl_version(open_elf(FIXTURE_LIBSSL_STRIPPED)), "3.9.9");
  EXPECT_EQ(openssl_version(open_elf(FIXTURE_LIBSSL_BASIC)), "1.1.x");
  // Neither banner nor libssl soname (this test binary holds the fixture's banner text).
  EXPECT_EQ(openssl_version(open_elf(system_loader().first)), "");
}

TEST(OpensslPlan, SystemLibssl) {
  if (access(kSystemLibssl, R_OK) != 0) GTEST_SKIP() << kSystemLibssl << " is not installed";
  const std::string path = kSystemLibssl;
  // The internal functions are not exported: take what SSL_*_ex call first.
  auto first_call = [&](const char* function) {
    auto branches = test::objdump_branches(path, function);
    if (branches.empty()) throw std::runtime_error(std::string(function) + " has no direct branch");
    return branches.front().target;
  };
  expect_sites(path, concat({internal_route(path, kWrite, first_call("SSL_write_ex")),
                             internal_route(path, kRead, first_call("SSL_read_ex"))}));
  ElfImage image = open_elf(path);
  auto plan = plan_openssl_probes(image);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->warnings, std::vector<std::string>{});
  EXPECT_TRUE(plan->description.starts_with("openssl 3.")) << plan->description;
  // The point of this plan: every entry probe lands on an instruction the kernel emulates.
  for (const auto& site : plan->sites) {
    if (site.is_return) continue;
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), 0);
    ASSERT_TRUE(insn) << describe(site);
    EXPECT_TRUE(insn->kernel_emulates) << describe(site) << ": " << insn->text;
  }
}

TEST(LoaderPlan, ProbesEveryCallOfDlDebugStateInTheSystemLoader) {
  const auto [path, soname] = system_loader();
  if (path.empty() || access(path.c_str(), R_OK) != 0) GTEST_SKIP() << "no known dynamic loader here";
  ElfImage image = open_elf(path);
  auto plan = plan_loader_probe(image);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->description, "dynamic loader " + soname);
  // The cookie leads the probe to the loader's r_debug, whose state it reads.
  const uint64_t hook = function_address(path, "_dl_debug_state");
  auto rendezvous = test::nm_symbol(path, "_r_debug", true);
  ASSERT_TRUE(rendezvous);
  // glibc 2.35+ (its loader exports __rseq_offset) chains every namespace's rendezvous to it.
  const uint64_t chains = test::nm_symbol(path, "__rseq_offset", true) ? TLSTAP_LOADER_CHAINS_NAMESPACES : 0;
  // Not the calls that announce a load (r_state set to RT_ADD right before,
  // and nothing jumping past the store): the probe reports only the calls once
  // it is made. An unload's announcement it notes: probed.
  const auto instructions = test::objdump_instructions(path);
  auto announces = [&](uint64_t call) {
    auto at = std::find_if(instructions.begin(), instructions.end(),
                           [&](const test::ToolInstruction& insn) { return insn.address == call; });
    if (at == instructions.begin() || at == instructions.end()) return false;
    const auto& before = *std::prev(at);
    const bool stores_add = before.mnemonic == "movl" && before.operands.size() == 1 &&
                            before.operands[0].starts_with("$0x1,0x18(%r");
    const std::string target = fmt::format("{:x}", call);
    const bool landed_on = std::any_of(instructions.begin(), instructions.end(), [&](const auto& insn) {
      return (insn.mnemonic.starts_with('j') || insn.mnemonic == "call") && !insn.operands.empty() &&
             insn.operands[0] == target;
    });
    return stores_add && !landed_on;
  };
  std::vector<std::string> expected;
  size_t announcements = 0;
  for (const auto& branch : test::objdump_branches_to(path, hook)) {
    if (announces(branch.address)) {
      ++announcements;
      continue;
    }
    expected.push_back(describe({"call of _dl_debug_state", offset_of(path, branch.address),
                                 UprobeProgram::loader_libs_changed, false,
                                 (rendezvous->address - branch.address) | chains}));
  }
#if defined(__x86_64__)
  // glibc's loader calls the hook at start-up, on dlopen and on dlclose, each
  // announced first.
  ASSERT_GE(expected.size(), 3u);
  EXPECT_GT(announcements, 0u);
#endif
  if (expected.empty())  // the hook itself, where its calls are not found
    expected.push_back(describe({"_dl_debug_state", offset_of(path, hook), UprobeProgram::loader_libs_changed,
                                 false, (rendezvous->address - hook) | chains}));
  std::vector<std::string> planned;
  for (const auto& site : plan->sites) planned.push_back(describe(site));
  EXPECT_EQ(planned, expected);
#if defined(__x86_64__)
  // The point of probing the calls: the kernel emulates them, and single-steps the hook's `ret`.
  for (const auto& site : plan->sites) {
    auto insn = decode_instruction(image.file_bytes(site.file_offset, 16), image.machine(), 0);
    ASSERT_TRUE(insn) << describe(site);
    EXPECT_TRUE(insn->kernel_emulates) << describe(site) << ": " << insn->text;
  }
#endif
}

TEST(LoaderPlan, TheHookItselfWhereCallsMustNotBeProbed) {
  const auto [path, soname] = system_loader();
  if (path.empty() || access(path.c_str(), R_OK) != 0) GTEST_SKIP() << "no known dynamic loader here";
  auto plan = plan_loader_probe(open_elf(path), {.probe_calls = false});
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->sites.size(), 1u);
  EXPECT_EQ(plan->sites[0].symbol, "_dl_debug_state");
  EXPECT_EQ(plan->sites[0].file_offset, offset_of(path, function_address(path, "_dl_debug_state")));
}

TEST(LoaderPlan, OnlyALoadsAnnouncementGoesUnprobed) {
  constexpr int64_t kState = 0x18;                                      // r_debug.r_state on x86-64
  EXPECT_TRUE(announces_a_load({0x1000, ImmediateStore{kState, 1}}));   // RT_ADD
  EXPECT_FALSE(announces_a_load({0x1000, ImmediateStore{kState, 2}}));  // RT_DELETE: noted by the probe
  EXPECT_FALSE(announces_a_load({0x1000, ImmediateStore{kState, 0}}));  // RT_CONSISTENT: reported
  EXPECT_FALSE(announces_a_load({0x1000, ImmediateStore{8, 1}}));       // another field
  EXPECT_FALSE(announces_a_load({0x1000, std::nullopt}));               // no store, or one jumped past
}

TEST(LoaderPlan, OtherLibrariesAreNotTheLoader) {
  EXPECT_FALSE(plan_loader_probe(open_elf(FIXTURE_LIBSSL)));
  EXPECT_FALSE(plan_loader_probe(open_elf("/proc/self/exe")));
}

}  // namespace
}  // namespace tlstap
