// Containers and pods named by cgroup paths as the runtimes and the kubelet write them.
#include "discovery/container_identity.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace tlstap {
namespace {

constexpr std::string_view kId = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f";
constexpr std::string_view kUid = "8c6b2f1e-5a4d-4c3b-9a8f-7e6d5c4b3a21";

std::string with_id(std::string_view format) {
  std::string path(format);
  for (size_t at; (at = path.find("{id}")) != std::string::npos;) path.replace(at, 4, kId);
  for (size_t at; (at = path.find("{uid}")) != std::string::npos;) path.replace(at, 5, kUid);
  for (size_t at; (at = path.find("{uid_}")) != std::string::npos;) {
    std::string underscored(kUid);
    std::replace(underscored.begin(), underscored.end(), '-', '_');
    path.replace(at, 6, underscored);
  }
  return path;
}

TEST(CgroupV2Path, TheUnifiedLine) {
  EXPECT_EQ(cgroup_v2_path("0::/user.slice/user-0.slice/session-3.scope\n"),
            "/user.slice/user-0.slice/session-3.scope");
  // A hybrid host lists the v1 hierarchies too.
  EXPECT_EQ(
      cgroup_v2_path("12:memory:/system.slice/nginx.service\n1:name=systemd:/system.slice/nginx.service\n"
                     "0::/system.slice/nginx.service\n"),
      "/system.slice/nginx.service");
  EXPECT_EQ(cgroup_v2_path("0::/"), "/");
}

TEST(CgroupV2Path, NoneOnV1OnlyHosts) {
  EXPECT_EQ(cgroup_v2_path("4:memory:/docker/abc\n1:name=systemd:/docker/abc\n"), "");
  EXPECT_EQ(cgroup_v2_path(""), "");
}

TEST(ContainerFromProcCgroup, TheV2PathFirstThenV1Hierarchies) {
  // Docker with the cgroupfs driver on a hybrid host: the v2 path stays the parent's.
  EXPECT_EQ(
      container_from_proc_cgroup(with_id("12:memory:/docker/{id}\n1:name=systemd:/docker/{id}\n0::/\n")),
      (ContainerIdentity{std::string(kId), ""}));
  EXPECT_EQ(container_from_proc_cgroup(with_id("4:pids:/kubepods/besteffort/pod{uid}/{id}\n0::/\n")),
            (ContainerIdentity{std::string(kId), std::string(kUid)}));
  // The v2 path wins when it names one.
  std::string other(64, 'a');
  EXPECT_EQ(container_from_proc_cgroup(
                with_id("4:memory:/docker/" + other + "\n0::/system.slice/docker-{id}.scope\n")),
            (ContainerIdentity{std::string(kId), ""}));
  EXPECT_EQ(container_from_proc_cgroup("4:memory:/process_api/89c2afed8e3653afa62325e90ff43c73\n0::/\n"),
            ContainerIdentity{});
  EXPECT_EQ(container_from_proc_cgroup("garbage\n::\n"), ContainerIdentity{});
}

TEST(ContainerFromCgroup, RuntimesWithTheSystemdDriver) {
  for (std::string_view path :
       {"/system.slice/docker-{id}.scope", "/system.slice/containerd.service/cri-containerd-{id}.scope",
        "/machine.slice/libpod-{id}.scope", "/machine.slice/libpod-{id}.scope/container"}) {
    EXPECT_EQ(container_from_cgroup(with_id(path)), (ContainerIdentity{std::string(kId), ""})) << path;
  }
}

TEST(ContainerFromCgroup, RuntimesWithTheCgroupfsDriver) {
  EXPECT_EQ(container_from_cgroup(with_id("/docker/{id}")), (ContainerIdentity{std::string(kId), ""}));
  EXPECT_EQ(container_from_cgroup(with_id("/lxc.payload.x/docker/{id}")),
            (ContainerIdentity{std::string(kId), ""}));
}

TEST(ContainerFromCgroup, KubernetesPods) {
  ContainerIdentity both{std::string(kId), std::string(kUid)};
  EXPECT_EQ(container_from_cgroup(with_id("/kubepods.slice/kubepods-burstable.slice/"
                                          "kubepods-burstable-pod{uid_}.slice/cri-containerd-{id}.scope")),
            both);
  EXPECT_EQ(container_from_cgroup(with_id("/kubepods.slice/kubepods-pod{uid_}.slice/crio-{id}.scope")), both);
  EXPECT_EQ(container_from_cgroup(with_id("/kubepods/besteffort/pod{uid}/{id}")), both);
  // Seen from inside another cgroup namespace.
  EXPECT_EQ(
      container_from_cgroup(with_id("/../../kubepods-besteffort-pod{uid_}.slice/cri-containerd-{id}.scope")),
      both);
  // The pod's own cgroup: its pause process, or a process between containers.
  EXPECT_EQ(container_from_cgroup(with_id("/kubepods/pod{uid}")), (ContainerIdentity{"", std::string(kUid)}));
  // A static pod's UID is its manifest's hash.
  EXPECT_EQ(container_from_cgroup("/kubepods/burstable/pod0123456789abcdef0123456789abcdef").pod_uid,
            "0123456789abcdef0123456789abcdef");
}

TEST(ContainerFromCgroup, TheInnermostContainer) {
  std::string inner(64, 'a');
  EXPECT_EQ(container_from_cgroup(with_id("/docker/{id}/docker/") + inner).container_id, inner);
}

TEST(ContainerFromCgroup, NothingOutsideContainers) {
  for (std::string_view path :
       {"", "/", "/user.slice/user-0.slice/session-3.scope", "/system.slice/nginx.service", "/init.scope",
        "/system.slice/docker-0123.scope",          // too short for an ID
        "/system.slice/crio-conmon-{id}.scope",     // CRI-O's monitor, outside the container
        "/machine.slice/libpod-conmon-{id}.scope",  // podman's
        "/pod{uid}", "/system.slice/pod{uid}",      // "pod" outside kubepods
        "/kubepods/besteffort/podnot-a-uid",
        "/system.slice/docker-3F4E5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C2D3E4F.scope"}) {
    EXPECT_EQ(container_from_cgroup(with_id(path)), ContainerIdentity{}) << path;
  }
}

// A node's hierarchy, as walked from the root: two pods, one container each
// (a podman-style inner cgroup under the second), and a docker container.
std::vector<std::string> node_cgroups() {
  std::string other_id = "3f4e" + std::string(60, '1');
  return {"/init.scope",
          "/kubepods.slice",
          "/kubepods.slice/kubepods-besteffort.slice",
          with_id("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice"),
          with_id("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/"
                  "cri-containerd-{id}.scope"),
          "/kubepods.slice/kubepods-pod0123456789abcdef0123456789abcdef.slice",
          "/kubepods.slice/kubepods-pod0123456789abcdef0123456789abcdef.slice/crio-" + other_id + ".scope",
          "/kubepods.slice/kubepods-pod0123456789abcdef0123456789abcdef.slice/crio-" + other_id +
              ".scope/container",
          "/system.slice",
          "/system.slice/docker-" + std::string(64, 'b') + ".scope"};
}

TEST(FindWorkloadCgroups, APodIsItsOutermostCgroup) {
  auto cgroups = node_cgroups();
  std::vector<WorkloadCgroup> expected{
      {std::string(kUid),
       with_id("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice")}};
  EXPECT_EQ(find_workload_cgroups(cgroups, Workload::pod, kUid), expected);
  EXPECT_EQ(find_workload_cgroups(cgroups, Workload::pod, with_id("{uid_}")), expected);
  EXPECT_TRUE(find_workload_cgroups(cgroups, Workload::pod, kUid.substr(0, 8)).empty());  // UIDs are whole
}

TEST(FindWorkloadCgroups, AContainerByItsIdOrAPrefix) {
  auto cgroups = node_cgroups();
  std::string docker_id(64, 'b');
  std::vector<WorkloadCgroup> docker{{docker_id, "/system.slice/docker-" + docker_id + ".scope"}};
  EXPECT_EQ(find_workload_cgroups(cgroups, Workload::container, docker_id), docker);
  EXPECT_EQ(find_workload_cgroups(cgroups, Workload::container, "bbbbbbbbbbbb"), docker);
  EXPECT_EQ(find_workload_cgroups(cgroups, Workload::container, "BBBBBBBBBBBB"), docker);
  // The inner "container" cgroup belongs to the same container: its outer one is kept.
  std::string other_id = "3f4e" + std::string(60, '1');
  auto other = find_workload_cgroups(cgroups, Workload::container, "3f4e1");
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].cgroup,
            "/kubepods.slice/kubepods-pod0123456789abcdef0123456789abcdef.slice/crio-" + other_id + ".scope");
  // A prefix two containers share names both.
  EXPECT_EQ(find_workload_cgroups(cgroups, Workload::container, "3f4e").size(), 2u);
  EXPECT_TRUE(find_workload_cgroups(cgroups, Workload::container, "").empty());
  EXPECT_TRUE(find_workload_cgroups(cgroups, Workload::container, "c0ffee").empty());
}

}  // namespace
}  // namespace tlstap
