// The stripped-OpenSSL locator against binutils: on files whose symbols say
// where each function is (an unstripped build, Debian's libssl, node), the
// locator, which never reads symbols, must land on exactly those functions.
#include "tls/openssl_locator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "test_support.h"

namespace tlstap {
namespace {

using test::kSystemLibssl;
using test::open_elf;

// "NAME ADDRESS SIZE" per function, for readable mismatches.
std::vector<std::string> describe(const std::vector<ElfSymbol>& functions) {
  std::vector<std::string> lines;
  for (const auto& f : functions)
    lines.push_back(f.name + " " + std::to_string(f.address) + " " + std::to_string(f.size));
  return lines;
}

// The same lines from nm, for `names` in that order.
std::vector<std::string> from_nm(const std::string& path, std::vector<std::string> names, bool dynamic) {
  std::vector<ElfSymbol> functions;
  for (const auto& name : names) {
    auto nm = test::nm_function(path, name, dynamic);
    if (!nm) throw std::runtime_error("nm finds no " + name + " in " + path);
    functions.push_back({name, nm->address, nm->size, 0});
  }
  return describe(functions);
}

const std::vector<std::string> kAllFour = {"SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex"};

#if defined(FIXTURE_STATIC_OPENSSL_STRIPPED)
TEST(OpensslLocator, FindsTheFourFunctionsOfAStrippedStaticExecutable) {
  ASSERT_FALSE(test::nm_function(FIXTURE_STATIC_OPENSSL_STRIPPED, "SSL_read", false)) << "not stripped";
  auto located = locate_openssl_functions(open_elf(FIXTURE_STATIC_OPENSSL_STRIPPED));
  EXPECT_TRUE(located.found_names);
  EXPECT_EQ(located.gaps, std::vector<std::string>{});
  // Stripping moves no code: the unstripped build's symbols say where each is.
  EXPECT_EQ(describe(located.functions), from_nm(FIXTURE_STATIC_OPENSSL, kAllFour, false));
}
#endif

TEST(OpensslLocator, FindsWhatDebiansLibsslExports) {
  if (access(kSystemLibssl, R_OK) != 0) GTEST_SKIP() << kSystemLibssl << " is not installed";
  auto located = locate_openssl_functions(open_elf(kSystemLibssl));
  EXPECT_EQ(located.gaps, std::vector<std::string>{});
  EXPECT_EQ(describe(located.functions), from_nm(kSystemLibssl, kAllFour, true));
}

TEST(OpensslLocator, InlinedInternalFunctionsLeaveTheExTwinsOut) {
  // NodeSource's node: OpenSSL built into a position-dependent executable
  // (addresses loaded as immediates), ssl_*_internal inlined into both
  // public functions, symbols kept (the witness).
  const std::string node = "/usr/bin/node";
  if (access(node.c_str(), R_OK) != 0) GTEST_SKIP() << node << " is not installed";
  if (!test::nm_function(node, "SSL_read", false)) GTEST_SKIP() << node << " has no symbols to check against";
  auto located = locate_openssl_functions(open_elf(node));
  EXPECT_EQ(describe(located.functions), from_nm(node, {"SSL_write", "SSL_read"}, false));
  EXPECT_EQ(located.gaps,
            (std::vector<std::string>{"SSL_write_ex not located: ssl_write_internal is inlined",
                                      "SSL_read_ex not located: ssl_read_internal is inlined"}));
}

TEST(OpensslLocator, NamesAloneAreNotOpenssl) {
  // This test program holds "ssl_read_internal", "SSL_read" and "ssl/ssl_lib.c"
  // (tlstap's own tables and these tests), but no function loads a name and
  // the file name together, as an OpenSSL error does.
  auto located = locate_openssl_functions(open_elf("/proc/self/exe"));
  EXPECT_FALSE(located.found_names);
  EXPECT_TRUE(located.functions.empty());
  EXPECT_EQ(located.gaps, std::vector<std::string>{});
  EXPECT_FALSE(locate_openssl_functions(open_elf(FIXTURE_LIBSSL_HIDDEN_STRIPPED)).found_names);
}

}  // namespace
}  // namespace tlstap
