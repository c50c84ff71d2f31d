#include "braid/operator/desired_set.h"

#include <gtest/gtest.h>

namespace braid::op {
namespace {

TEST(DesiredWorkloads, OneAggregatorAndAWorkerPerReplica) {
  spec::JobSpec job;
  job.tenants = {spec::Tenant{"a", "", 2, {}}, spec::Tenant{"b", "", 1, {}}};
  const std::vector<Workload> w = DesiredWorkloads(job);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].role, Workload::Role::kAggregator);
  EXPECT_EQ(w[1].name, "worker-a-0");
  EXPECT_EQ(w[2].name, "worker-a-1");
  EXPECT_EQ(w[2].replica, 1);
  EXPECT_EQ(w[3].tenant, "b");
}

}  // namespace
}  // namespace braid::op
