#include "braid/control/desired_set.h"

#include <gtest/gtest.h>

namespace braid::control {
namespace {

spec::JobSpec TwoTenants() {
  spec::JobSpec job;
  job.tenants.resize(2);
  job.tenants[0].name = "a";
  job.tenants[0].replicas = 2;
  job.tenants[1].name = "b";
  return job;
}

TEST(DesiredSet, OneAggregatorAndAWorkerPerReplica) {
  const std::vector<Workload> w = ComputeDesiredSet(TwoTenants()).workloads;
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].role, Workload::Role::kAggregator);
  EXPECT_EQ(w[1].name, "worker-a-0");
  EXPECT_EQ(w[2].name, "worker-a-1");
  EXPECT_EQ(w[2].replica, 1);
  EXPECT_EQ(w[3].tenant, "b");
  for (const Workload& x : w) EXPECT_TRUE(x.run) << x.name;
}

TEST(DesiredSet, EveryTenantRunningMeansTheAggregatorsDefaultCount) {
  const DesiredSet d = ComputeDesiredSet(TwoTenants());
  EXPECT_EQ(d.expected_clients, 3);
  EXPECT_TRUE(d.aggregator_args.empty()) << "the aggregator waits for all replicas by default";
  EXPECT_TRUE(d.stopped_tenants.empty());
}

TEST(DesiredSet, ARefusedTenantsWorkersDoNotRunNorAreWaitedFor) {
  DesiredSetInput in;
  in.consent = {TenantConsent{"a", Consent::kRefused, "", ""},
                TenantConsent{"b", Consent::kApproved, "", ""}};
  const DesiredSet d = ComputeDesiredSet(TwoTenants(), in);
  EXPECT_EQ(d.stopped_tenants, (std::set<std::string>{"a"}));
  EXPECT_FALSE(d.workloads[1].run);
  EXPECT_FALSE(d.workloads[2].run);
  EXPECT_TRUE(d.workloads[3].run);
  EXPECT_TRUE(d.workloads[0].run);
  EXPECT_EQ(d.expected_clients, 1);
  EXPECT_EQ(d.aggregator_args, (std::vector<std::string>{"--expected-clients=1"}));
}

TEST(DesiredSet, ARevocationAfterTheStartKeepsTheAggregatorsArguments) {
  DesiredSetInput in;
  in.consent = {TenantConsent{"a", Consent::kApproved, "", ""},
                TenantConsent{"b", Consent::kRefused, "", ""}};
  in.running_expected_clients = 3;  // started with every tenant
  const DesiredSet d = ComputeDesiredSet(TwoTenants(), in);
  EXPECT_FALSE(d.workloads[3].run) << "b's worker stops";
  EXPECT_EQ(d.expected_clients, 3);
  EXPECT_TRUE(d.aggregator_args.empty());
}

TEST(DesiredSet, SuspendedRunsNothingAndEndedStopsOnlyWorkers) {
  DesiredSetInput suspended;
  suspended.suspended = true;
  for (const Workload& w : ComputeDesiredSet(TwoTenants(), suspended).workloads) {
    EXPECT_FALSE(w.run) << w.name;
  }
  DesiredSetInput ended;
  ended.ended = true;
  const DesiredSet d = ComputeDesiredSet(TwoTenants(), ended);
  EXPECT_TRUE(d.run_aggregator);
  EXPECT_FALSE(d.run_workers);
  EXPECT_TRUE(d.workloads[0].run);
  EXPECT_FALSE(d.workloads[1].run);
}

TEST(DesiredSet, ASiteTenantsWorkersCarryTheSiteAndAreWaitedFor) {
  spec::JobSpec job = TwoTenants();
  job.tenants[1].site = "st-mary-london";
  job.tenants[1].dataset = "notes";
  const DesiredSet d = ComputeDesiredSet(job);
  ASSERT_EQ(d.workloads.size(), 4u);
  EXPECT_EQ(d.workloads[0].site, "") << "the aggregator runs at the coordinator";
  EXPECT_EQ(d.workloads[1].site, "");
  EXPECT_EQ(d.workloads[3].name, "worker-b-0");
  EXPECT_EQ(d.workloads[3].site, "st-mary-london");
  EXPECT_EQ(d.expected_clients, 3) << "the site's workers dial in like the others";
}

}  // namespace
}  // namespace braid::control
