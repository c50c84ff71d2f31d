#include "braid/core/dp/rdp_accountant.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::dp {
namespace {

// Runs `command`, returns its stdout and exit status (stderr passes through
// to the test's log, so a failing reference stack says why).
int Run(const std::string& command, std::string* out) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out->append(buf, n);
  return pclose(pipe);
}

struct Row {
  double q, z;
  int64_t rounds;
  double delta, epsilon;
};

// dp-accounting 0.4.4's epsilons for the settings in rdp_reference.py.
std::vector<Row> ReferenceTable() {
  std::string python;
  const std::string src = BRAID_SOURCE_DIR;
  if (Run("bash '" + src + "/scripts/pyref.sh'", &python) != 0 || python.empty()) {
    ADD_FAILURE() << "the Python reference stack is missing: scripts/pyref.sh failed (see its "
                     "stderr above); run `make pyref`";
    return {};
  }
  while (!python.empty() && (python.back() == '\n' || python.back() == ' ')) python.pop_back();
  std::string table;
  if (Run("'" + python + "' '" + src + "/core/testdata/dp/rdp_reference.py'", &table) != 0) {
    ADD_FAILURE() << "core/testdata/dp/rdp_reference.py failed (see its stderr above)";
    return {};
  }
  std::vector<Row> rows;
  std::istringstream in(table);
  Row r;
  while (in >> r.q >> r.z >> r.rounds >> r.delta >> r.epsilon) rows.push_back(r);
  return rows;
}

TEST(RdpAccountant, MatchesDpAccountingWithinOnePercent) {
  const std::vector<Row> rows = ReferenceTable();
  ASSERT_EQ(rows.size(), 160u) << "the reference script printed an incomplete table";
  double worst = 0;
  for (const Row& r : rows) {
    RdpAccountant accountant;
    ASSERT_TRUE(accountant.AddRounds(r.q, r.z, r.rounds).ok());
    auto eps = accountant.Epsilon(r.delta);
    ASSERT_TRUE(eps.ok()) << eps.status();
    EXPECT_NEAR(*eps, r.epsilon, 0.01 * r.epsilon + 1e-12)
        << "q=" << r.q << " z=" << r.z << " rounds=" << r.rounds << " delta=" << r.delta;
    worst = std::max(worst, std::fabs(*eps - r.epsilon) / r.epsilon);
  }
  std::cout << "worst relative difference from dp-accounting over " << rows.size()
            << " settings: " << worst << "\n";
}

TEST(RdpAccountant, DefaultOrdersAreDpAccountings) {
  const std::vector<double> orders = DefaultRdpOrders();
  ASSERT_EQ(orders.size(), 99u + 53u + 4u);
  EXPECT_DOUBLE_EQ(orders.front(), 1.1);
  EXPECT_DOUBLE_EQ(orders[98], 10.9);
  EXPECT_DOUBLE_EQ(orders[99], 11);
  EXPECT_DOUBLE_EQ(orders.back(), 1024);
}

TEST(RdpAccountant, EpsilonGrowsWithRoundsAndShrinksWithNoise) {
  RdpAccountant a, b;
  ASSERT_TRUE(a.AddRounds(0.1, 1.1, 10).ok());
  ASSERT_TRUE(b.AddRounds(0.1, 1.1, 11).ok());
  EXPECT_LT(*a.Epsilon(1e-5), *b.Epsilon(1e-5));
  RdpAccountant c;
  ASSERT_TRUE(c.AddRounds(0.1, 2.0, 10).ok());
  EXPECT_LT(*c.Epsilon(1e-5), *a.Epsilon(1e-5));
  EXPECT_EQ(*RdpAccountant().Epsilon(1e-5), 0.0);
}

TEST(RdpAccountant, BudgetCheckRefusesTheRoundThatWouldExceedMaxEpsilon) {
  const double q = 0.5, z = 1.1, delta = 1e-6;
  RdpAccountant ten, eleven;
  ASSERT_TRUE(ten.AddRounds(q, z, 10).ok());
  ASSERT_TRUE(eleven.AddRounds(q, z, 11).ok());
  const double max_eps = (*ten.Epsilon(delta) + *eleven.Epsilon(delta)) / 2;
  RdpAccountant acc;
  int ran = 0;
  while (true) {
    auto check = acc.CheckNextRound(q, z, delta, max_eps);
    ASSERT_TRUE(check.ok()) << check.status();
    if (!check->allowed) {
      EXPECT_GT(check->epsilon_after_next, max_eps);
      EXPECT_LE(check->epsilon_spent, max_eps);
      break;
    }
    ASSERT_TRUE(acc.AddRounds(q, z).ok());
    ASSERT_LT(++ran, 100);
  }
  EXPECT_EQ(ran, 10);
  EXPECT_EQ(acc.rounds(), 10);
}

TEST(RdpAccountant, RejectsBadParametersNamingTheField) {
  RdpAccountant acc;
  EXPECT_EQ(acc.AddRounds(1.5, 1.0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(acc.AddRounds(0.1, -1).message(),
              ::testing::HasSubstr("differentialPrivacy.noiseMultiplier"));
  EXPECT_THAT(acc.Epsilon(1.5).status().message(), ::testing::HasSubstr("differentialPrivacy.delta"));
  EXPECT_THAT(acc.CheckNextRound(0.1, 1, 1e-5, 0).status().message(),
              ::testing::HasSubstr("differentialPrivacy.maxEpsilon"));
  EXPECT_EQ(acc.rounds(), 0);
}

}  // namespace
}  // namespace braid::dp
