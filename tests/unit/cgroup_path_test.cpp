// --cgroup: the cgroup v2 mount from mountinfo text, and what a name may mean.
#include "discovery/cgroup_path.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/proc.h"
#include "discovery/container_identity.h"

namespace tlstap {
namespace {

// A hybrid host (v1 controllers, v2 beside them), as this project's CI machines are.
constexpr std::string_view kHybrid =
    "25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 "
    "rw,nsdelegate\n"
    "35 33 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup "
    "rw,memory\n";

// A unified host, with optional fields before the separator and an escaped space elsewhere.
constexpr std::string_view kUnified =
    "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
    "40 22 0:35 / /mnt/with\\040space rw shared:20 master:3 - tmpfs tmpfs rw\n"
    "41 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 master:1 - cgroup2 cgroup2 rw\n";

TEST(FindCgroup2Mount, HybridHost) {
  EXPECT_EQ(find_cgroup2_mount(kHybrid), "/sys/fs/cgroup/unified");
}

TEST(FindCgroup2Mount, UnifiedHost) {
  EXPECT_EQ(find_cgroup2_mount(kUnified), "/sys/fs/cgroup");
}

TEST(FindCgroup2Mount, EscapedMountPoint) {
  EXPECT_EQ(find_cgroup2_mount("50 1 0:40 / /run/my\\040cgroups rw - cgroup2 none rw\n"), "/run/my cgroups");
}

TEST(FindCgroup2Mount, WholeHierarchyBeforeABindMountOfASubtree) {
  constexpr std::string_view kSubtreeFirst =
      "60 1 0:31 /kubepods.slice/pod1 /host/cgroup rw - cgroup2 cgroup2 rw\n"
      "61 1 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(find_cgroup2_mount(kSubtreeFirst), "/sys/fs/cgroup");
  EXPECT_EQ(find_cgroup2_mount(kSubtreeFirst.substr(0, kSubtreeFirst.find('\n') + 1)), "/host/cgroup");
}

TEST(FindCgroup2Mount, NoneOnAV1OnlyHost) {
  EXPECT_EQ(find_cgroup2_mount("35 33 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"),
            std::nullopt);
  EXPECT_EQ(find_cgroup2_mount(""), std::nullopt);
  EXPECT_EQ(find_cgroup2_mount("garbage without separator\n"), std::nullopt);
  EXPECT_EQ(find_cgroup2_mount("1 2 - cgroup2\n"), std::nullopt);  // too few fields
}

TEST(CgroupCandidates, ProcCgroupFormIsLookedUpUnderTheMount) {
  std::optional<std::string> mount = "/sys/fs/cgroup/unified";
  EXPECT_EQ(cgroup_candidates("/system.slice/nginx.service", mount),
            (std::vector<std::string>{"/system.slice/nginx.service",
                                      "/sys/fs/cgroup/unified/system.slice/nginx.service"}));
  EXPECT_EQ(cgroup_candidates("kubepods.slice/pod1", mount),
            (std::vector<std::string>{"/sys/fs/cgroup/unified/kubepods.slice/pod1"}));
}

TEST(CgroupCandidates, PathUnderTheMountIsTakenAsIs) {
  EXPECT_EQ(cgroup_candidates("/sys/fs/cgroup/kubepods.slice", std::string("/sys/fs/cgroup")),
            (std::vector<std::string>{"/sys/fs/cgroup/kubepods.slice"}));
  EXPECT_EQ(cgroup_candidates("/sys/fs/cgroup/x", std::nullopt),
            (std::vector<std::string>{"/sys/fs/cgroup/x"}));
  EXPECT_TRUE(cgroup_candidates("relative", std::nullopt).empty());
}

TEST(ResolveCgroup, SaysWhyANameIsNoCgroup) {
  auto resolved = resolve_cgroup("/no/such/cgroup/tlstap-test");
  ASSERT_FALSE(resolved);
  EXPECT_NE(resolved.error().message.find("--cgroup /no/such/cgroup/tlstap-test"), std::string::npos)
      << resolved.error().message;
  // A directory that exists but is not a cgroup is refused too.
  EXPECT_FALSE(resolve_cgroup("/tmp"));
}

TEST(CgroupWithin, TheDirectoryItselfAndBelowOnly) {
  EXPECT_TRUE(cgroup_within("/sys/fs/cgroup/kubepods.slice", "/sys/fs/cgroup/kubepods.slice"));
  EXPECT_TRUE(cgroup_within("/sys/fs/cgroup/kubepods.slice/pod1/ctr", "/sys/fs/cgroup/kubepods.slice"));
  EXPECT_TRUE(cgroup_within("/sys/fs/cgroup/x", "/sys/fs/cgroup"));
  // A sibling whose name starts with the same letters is not below it.
  EXPECT_FALSE(cgroup_within("/sys/fs/cgroup/kubepods.slice2", "/sys/fs/cgroup/kubepods.slice"));
  EXPECT_FALSE(cgroup_within("/sys/fs/cgroup", "/sys/fs/cgroup/kubepods.slice"));
  EXPECT_FALSE(cgroup_within("", "/sys/fs/cgroup"));
}

TEST(CgroupNames, NamesThisProcesssCgroupByItsId) {
  auto mount = find_cgroup2_mount(read_text_file("/proc/self/mountinfo"));
  if (!mount) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  if (geteuid() != 0) GTEST_SKIP() << "open_by_handle_at needs CAP_DAC_READ_SEARCH";
  std::string path = cgroup_v2_path(read_text_file("/proc/self/cgroup"));
  std::string directory = path == "/" ? *mount : *mount + path;
  struct stat st {};
  ASSERT_EQ(stat(directory.c_str(), &st), 0) << directory;
  CgroupNames names;
  EXPECT_EQ(names.directory_of(st.st_ino), directory);
  EXPECT_EQ(names.path_of(st.st_ino), path);
  EXPECT_EQ(names.directory_of(0), "");
  EXPECT_EQ(names.path_of(0), "");
}

}  // namespace
}  // namespace tlstap
