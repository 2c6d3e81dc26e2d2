// --netns: what a name may mean, and namespace files told from other files.
#include "discovery/netns_path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace tlstap {
namespace {

TEST(NetnsCandidates, NamesPathsAndNumbers) {
  EXPECT_EQ(netns_candidates("cni-1234"), (std::vector<std::string>{"/run/netns/cni-1234", "cni-1234"}));
  EXPECT_EQ(netns_candidates("/proc/42/ns/net"), (std::vector<std::string>{"/proc/42/ns/net"}));
  EXPECT_EQ(netns_candidates("./here"), (std::vector<std::string>{"./here"}));
  EXPECT_TRUE(netns_candidates("4026531840").empty());
  EXPECT_TRUE(netns_candidates("").empty());
}

TEST(ResolveNetns, ANamespaceFileIsItsInode) {
  struct stat own {};
  ASSERT_EQ(stat("/proc/self/ns/net", &own), 0);
  auto inode = resolve_netns("/proc/self/ns/net");
  ASSERT_TRUE(inode) << inode.error().message;
  EXPECT_EQ(*inode, own.st_ino);
}

TEST(ResolveNetns, ANumberIsTakenAsItIs) {
  auto inode = resolve_netns("4026531840");
  ASSERT_TRUE(inode);
  EXPECT_EQ(*inode, 4026531840u);
}

TEST(ResolveNetns, SaysWhyNothingIsNamed) {
  auto missing = resolve_netns("tlstap-no-such-namespace");
  ASSERT_FALSE(missing);
  EXPECT_EQ(
      missing.error().message,
      "--netns tlstap-no-such-namespace: /run/netns/tlstap-no-such-namespace: No such file or directory");
  auto not_a_namespace = resolve_netns("/proc/self/status");
  ASSERT_FALSE(not_a_namespace);
  EXPECT_EQ(not_a_namespace.error().message,
            "--netns /proc/self/status: /proc/self/status is not a namespace file");
  auto other_kind = resolve_netns("/proc/self/ns/uts");
  ASSERT_FALSE(other_kind);
  EXPECT_EQ(other_kind.error().message,
            "--netns /proc/self/ns/uts: /proc/self/ns/uts is a namespace, not a network namespace");
  EXPECT_FALSE(resolve_netns("0"));
  EXPECT_FALSE(resolve_netns(""));
}

}  // namespace
}  // namespace tlstap
