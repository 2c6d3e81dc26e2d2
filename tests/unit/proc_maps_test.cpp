// Executable file mappings from /proc/PID/maps text.
#include "discovery/proc_maps.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>

#include "test_support.h"

namespace tlstap {
namespace {

// Columns as the kernel pads them; the path starts at column 74 when present.
constexpr std::string_view kSampleMaps =
    "55d0c8a00000-55d0c8a22000 r--p 00000000 08:01 1048601                    /usr/bin/my server\n"
    "55d0c8a22000-55d0c8a90000 r-xp 00022000 08:01 1048601                    /usr/bin/my server\n"
    "55d0c8c00000-55d0c8c21000 rw-p 00000000 00:00 0                          [heap]\n"
    "7f0a1c000000-7f0a1c021000 rw-p 00000000 00:00 0 \n"
    "7f0a1c100000-7f0a1c200000 rwxp 00000000 00:00 0 \n"
    "7f0a1d000000-7f0a1d100000 r-xp 00030000 fd:02 393219                     /usr/lib/libssl.so.3 "
    "(deleted)\n"
    "7f0a1d200000-7f0a1d300000 r--p 00000000 08:01 655361                     /usr/lib/libc.so.6\n"
    "7f0a1d400000-7f0a1d500000 r-xp 00028000 08:01 1048601                    /usr/bin/my server\n"
    "7f0a1d600000-7f0a1d700000 r-xp 00000000 00:2a 1048601                    /proc/1/root/usr/bin/my "
    "server\n"
    "7f0a1d800000-7f0a1d900000 r-xp 00000000 00:05 7734                       /memfd:jit (deleted)\n"
    "7ffd5e7f1000-7ffd5e7f3000 r-xp 00000000 00:00 0                          [vdso]\n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
    "7f0a1da00000-7f0a1db00000 r-xp 00000000 103:05 12                        /opt/app/lib with  two  "
    "spaces.so";

TEST(ParseExecutableMappings, Sample) {
  EXPECT_EQ(parse_executable_mappings(kSampleMaps),
            (std::vector<MappedFile>{
                {"/usr/bin/my server", 0x08, 0x01, 1048601, false},
                {"/usr/lib/libssl.so.3", 0xfd, 0x02, 393219, true},
                // Same inode on another device is another file (a container's copy).
                {"/proc/1/root/usr/bin/my server", 0x00, 0x2a, 1048601, false},
                {"/memfd:jit", 0x00, 0x05, 7734, true},
                {"/opt/app/lib with  two  spaces.so", 0x103, 0x05, 12, false},
            }));
}

TEST(ParseExecutableMappings, NothingExecutable) {
  EXPECT_TRUE(parse_executable_mappings("").empty());
  EXPECT_TRUE(parse_executable_mappings("\n\n").empty());
  EXPECT_TRUE(
      parse_executable_mappings("7f0a1d200000-7f0a1d300000 r--p 00000000 08:01 655361   /usr/lib/libc.so.6\n")
          .empty());
  EXPECT_TRUE(parse_executable_mappings("not a maps line\n7f0a-7f0b r-xp 0 zz:01 5 /bin/x\n").empty());
}

TEST(ParseExecutableMappings, SelfMapsContainTheTestBinary) {
  const std::string exe = std::filesystem::canonical("/proc/self/exe").string();
  struct stat st {};
  ASSERT_EQ(stat(exe.c_str(), &st), 0);
  auto files = parse_executable_mappings(test::read_text_file("/proc/self/maps"));
  auto self = std::find_if(files.begin(), files.end(), [&](const MappedFile& f) { return f.path == exe; });
  ASSERT_NE(self, files.end()) << exe << " not among " << files.size() << " executable mappings";
  EXPECT_EQ(self->inode, st.st_ino);
  EXPECT_EQ(makedev(self->dev_major, self->dev_minor), st.st_dev);
  EXPECT_FALSE(self->deleted);
  for (const auto& f : files) {
    EXPECT_EQ(f.path.front(), '/');
    EXPECT_EQ(std::count_if(files.begin(), files.end(), [&](const MappedFile& g) { return g == f; }), 1);
  }
}

}  // namespace
}  // namespace tlstap
