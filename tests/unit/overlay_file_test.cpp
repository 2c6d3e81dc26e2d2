// mountinfo lines, overlay layers and where a file on an overlay mount really
// is: containerd's and Docker's mounts as the kernel shows them.
#include "discovery/overlay_file.h"

#include <gtest/gtest.h>

#include "discovery/mountinfo.h"

namespace tlstap {
namespace {

using Strings = std::vector<std::string>;

// A container's root as containerd mounts it (lines as in /proc/PID/mountinfo).
constexpr std::string_view kContainerMounts =
    "1201 1100 0:312 / / rw,relatime master:310 - overlay overlay rw,lowerdir=/var/lib/containerd/"
    "io.containerd.snapshotter.v1.overlayfs/snapshots/41/fs:/var/lib/containerd/"
    "io.containerd.snapshotter.v1.overlayfs/snapshots/40/fs,upperdir=/var/lib/containerd/"
    "io.containerd.snapshotter.v1.overlayfs/snapshots/57/fs,workdir=/var/lib/containerd/"
    "io.containerd.snapshotter.v1.overlayfs/snapshots/57/work,xino=off\n"
    "1202 1201 0:315 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "1203 1201 254:0 /var/lib/kubelet/pods/p1/volumes/cfg /etc/app ro,relatime - ext4 /dev/vda rw\n";

TEST(ParseMountinfo, FieldsUnescapedAndBadLinesLeftOut) {
  auto mounts = parse_mountinfo(
      "26 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n"
      "90 26 0:45 /sub\\040dir /mnt/with\\040space rw - tmpfs tmpfs rw,size=1k\n"
      "not a mountinfo line\n"
      "91 26 x:45 / /bad rw - tmpfs tmpfs rw\n");
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[0], (Mount{254, 0, "/", "/", "ext4", "rw,discard"}));
  EXPECT_EQ(mounts[1], (Mount{0, 45, "/sub dir", "/mnt/with space", "tmpfs", "rw,size=1k"}));
}

TEST(OverlayLayers, UpperFirstThenLowersTopDown) {
  EXPECT_EQ(overlay_layers("rw,lowerdir=/l1:/l2,upperdir=/u,workdir=/w,uuid=on"),
            (Strings{"/u", "/l1", "/l2"}));
  EXPECT_EQ(overlay_layers("ro,lowerdir=/only"), (Strings{"/only"})) << "a read-only overlay has no upper";
  EXPECT_EQ(overlay_layers("rw,index=off"), Strings{});
}

TEST(OverlayLayers, EscapesAndTheNewMountApisOneLayerOptions) {
  // seq_show_option escapes ',' '=' ' ' '\' as \ooo; a ':' inside a path is given as "\:".
  EXPECT_EQ(overlay_layers("rw,lowerdir=/a\\134:b:/c\\054d\\040e,upperdir=/u\\075v"),
            (Strings{"/u=v", "/a:b", "/c,d e"}));
  EXPECT_EQ(overlay_layers("rw,lowerdir+=/l1,lowerdir+=/l2,datadir+=/data,upperdir=/u,workdir=/w"),
            (Strings{"/u", "/l1", "/l2"}))
      << "data-only layers hold no paths of their own";
}

TEST(OverlayCandidates, TheSamePathInEveryLayerOfTheMountHoldingIt) {
  auto mounts = parse_mountinfo(kContainerMounts);
  const std::string snapshots = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/";
  EXPECT_EQ(overlay_candidates(mounts, 0, 312, "/usr/lib/x86_64-linux-gnu/libssl.so.3"),
            (Strings{snapshots + "57/fs/usr/lib/x86_64-linux-gnu/libssl.so.3",
                     snapshots + "41/fs/usr/lib/x86_64-linux-gnu/libssl.so.3",
                     snapshots + "40/fs/usr/lib/x86_64-linux-gnu/libssl.so.3"}));
  EXPECT_EQ(overlay_candidates(mounts, 0, 999, "/usr/bin/app"), Strings{}) << "another device";
  EXPECT_EQ(overlay_candidates(mounts, 254, 0, "/etc/app/x"), Strings{}) << "not overlay";
}

TEST(OverlayCandidates, MountPointsAndRootsOtherThanSlash) {
  auto mounts = parse_mountinfo(
      "47 26 0:39 / /tmp/ov/a rw,relatime - overlay overlay rw,lowerdir=/tmp/ov/lower,upperdir=/tmp/ov/up,"
      "workdir=/tmp/ov/wk\n"
      "48 26 0:39 /lib /srv/lib rw,relatime - overlay overlay rw,lowerdir=/tmp/ov/lower,upperdir=/tmp/ov/up,"
      "workdir=/tmp/ov/wk\n");
  EXPECT_EQ(overlay_candidates(mounts, 0, 39, "/tmp/ov/a/lib/libssl.so.3"),
            (Strings{"/tmp/ov/up/lib/libssl.so.3", "/tmp/ov/lower/lib/libssl.so.3"}));
  EXPECT_EQ(overlay_candidates(mounts, 0, 39, "/srv/lib/libssl.so.3"),
            (Strings{"/tmp/ov/up/lib/libssl.so.3", "/tmp/ov/lower/lib/libssl.so.3"}))
      << "a bind mount of the overlay's /lib";
  EXPECT_EQ(overlay_candidates(mounts, 0, 39, "/tmp/ov/ab/x"), Strings{}) << "a sibling, not under the mount";
}

}  // namespace
}  // namespace tlstap
