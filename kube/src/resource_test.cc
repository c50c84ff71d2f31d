#include "braid/kube/resource.h"

#include "gtest/gtest.h"

namespace braid::kube {
namespace {

TEST(ResourceTest, Paths) {
  EXPECT_EQ(kPod.CollectionPath("a"), "/api/v1/namespaces/a/pods");
  EXPECT_EQ(kPod.CollectionPath(""), "/api/v1/pods");
  EXPECT_EQ(kDeployment.ObjectPath("a", "web", "status"), "/apis/apps/v1/namespaces/a/deployments/web/status");
  EXPECT_EQ(kTenant.ObjectPath("ignored", "t1"), "/apis/braid.dev/v1alpha1/tenants/t1");
  EXPECT_EQ(kLease.group(), "coordination.k8s.io");
  EXPECT_EQ(kEvent.group(), "");
}

TEST(ResourceTest, UrlEscape) {
  EXPECT_EQ(UrlEscape("a-b.c_d~9"), "a-b.c_d~9");
  EXPECT_EQ(UrlEscape("app in (a, b)"), "app%20in%20%28a%2C%20b%29");
  EXPECT_EQ(UrlEscape("k!=v/x"), "k%21%3Dv%2Fx");
}

}  // namespace
}  // namespace braid::kube
