// Kubernetes names from OCI bundles' config.json as containerd's CRI plugin and CRI-O write them.
#include "discovery/workload_names.h"

#include <gtest/gtest.h>

namespace tlstap {
namespace {

TEST(WorkloadNamesFromOciConfig, ContainerdCri) {
  EXPECT_EQ(workload_names_from_oci_config(R"({"ociVersion":"1.1.0","process":{"args":["nginx"]},
      "annotations":{"io.kubernetes.cri.container-type":"container",
                     "io.kubernetes.cri.container-name":"web",
                     "io.kubernetes.cri.sandbox-id":"0123",
                     "io.kubernetes.cri.sandbox-name":"web-7d9f8c6b5-x2x9q",
                     "io.kubernetes.cri.sandbox-namespace":"shop",
                     "io.kubernetes.cri.sandbox-uid":"8c6b2f1e-5a4d-4c3b-9a8f-7e6d5c4b3a21"}})"),
            (WorkloadNames{"shop", "web-7d9f8c6b5-x2x9q", "web"}));
  // The pod's sandbox (pause) container: no container name.
  EXPECT_EQ(workload_names_from_oci_config(R"({"annotations":{"io.kubernetes.cri.container-type":"sandbox",
      "io.kubernetes.cri.sandbox-name":"web-7d9f8c6b5-x2x9q","io.kubernetes.cri.sandbox-namespace":"shop"}})"),
            (WorkloadNames{"shop", "web-7d9f8c6b5-x2x9q", ""}));
}

TEST(WorkloadNamesFromOciConfig, CriO) {
  EXPECT_EQ(workload_names_from_oci_config(R"({"annotations":{"io.kubernetes.pod.namespace":"kube-system",
      "io.kubernetes.pod.name":"coredns-5d78c9869d-abcde","io.kubernetes.container.name":"coredns"}})"),
            (WorkloadNames{"kube-system", "coredns-5d78c9869d-abcde", "coredns"}));
}

TEST(WorkloadNamesFromOciConfig, NothingFromOtherBundlesOrBadText) {
  for (std::string_view text :
       {R"({"ociVersion":"1.0.2"})", R"({"annotations":{"org.opencontainers.x":"y"}})",
        R"({"annotations":"not an object"})", R"({"annotations":{"io.kubernetes.pod.name":7}})", "not json",
        "", "[1,2]"}) {
    EXPECT_EQ(workload_names_from_oci_config(text), WorkloadNames{}) << text;
  }
}

}  // namespace
}  // namespace tlstap
