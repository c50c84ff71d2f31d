// The checks of what clients report, and the weights a round gives their
// updates: a lying claim of examples cannot take a round over.
#include "braid/aggregator/claims.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

TEST(ClaimsTest, ExampleCountsOutsideTheLimitAreRefusedNamingTheField) {
  EXPECT_TRUE(CheckExamples(0, 0, "num_examples").ok());
  EXPECT_TRUE(CheckExamples(kMaxExamplesClaim, 1, "num_examples").ok());
  const absl::Status zero = CheckExamples(0, 1, "num_examples");
  EXPECT_EQ(zero.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(zero.message()), HasSubstr("num_examples: must be in [1, "));
  EXPECT_FALSE(CheckExamples(kMaxExamplesClaim + 1, 1, "num_examples").ok());
  EXPECT_FALSE(CheckExamples(int64_t{1} << 62, 1, "num_examples").ok());
  EXPECT_FALSE(CheckExamples(-1, 0, "num_examples").ok());
}

TEST(ClaimsTest, MetricsMustBeFiniteAndInRange) {
  EXPECT_TRUE(CheckMetrics({0.5, 0.9, 100}, "train").ok());
  EXPECT_TRUE(CheckMetrics({-3, 0, 0}, "eval").ok());  // a loss may be negative (NLL)
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    ClientMetrics m;
    const char* field;
  };
  for (const Case& c : std::vector<Case>{{{nan, 0, 1}, "train.loss"},
                                         {{inf, 0, 1}, "train.loss"},
                                         {{-inf, 0, 1}, "train.loss"},
                                         {{1e31, 0, 1}, "train.loss"},
                                         {{0, nan, 1}, "train.accuracy"},
                                         {{0, 1.5, 1}, "train.accuracy"},
                                         {{0, -0.1, 1}, "train.accuracy"},
                                         {{0, 0, -1}, "train.num_examples"},
                                         {{0, 0, int64_t{1} << 62}, "train.num_examples"}}) {
    const absl::Status s = CheckMetrics(c.m, "train");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.field));
  }
}

WeightingOptions Tenants(std::map<std::string, int64_t> max_examples,
                         Weighting weighting = Weighting::kExamples) {
  WeightingOptions o;
  o.weighting = weighting;
  o.max_examples = std::move(max_examples);
  return o;
}

double WeightOf(const RoundWeights& w, const std::string& id, int64_t claim,
                CapReason* capped = nullptr) {
  absl::StatusOr<UpdateWeight> u = w.For(id, claim);
  EXPECT_TRUE(u.ok()) << u.status();
  if (capped != nullptr) *capped = u.ok() ? u->capped : CapReason::kNone;
  return u.ok() ? u->weight : -1;
}

TEST(RoundWeightsTest, HonestClaimsWeighAsFedAvgByExamples) {
  // Every tenant declared a maxExamples above its data: FedAvg as always.
  const RoundWeights w(Tenants({{"a", 1000}, {"b", 1000}, {"c", 1000}}),
                       {{"a0", "a", 100}, {"b0", "b", 300}, {"c0", "c", 600}});
  CapReason capped;
  EXPECT_DOUBLE_EQ(WeightOf(w, "a0", 100, &capped), 0.1);
  EXPECT_EQ(capped, CapReason::kNone);
  EXPECT_DOUBLE_EQ(WeightOf(w, "b0", 300), 0.3);
  EXPECT_DOUBLE_EQ(WeightOf(w, "c0", 600), 0.6);
  // A claim below the join claim (a worker that trained on less) counts as is.
  EXPECT_DOUBLE_EQ(WeightOf(w, "c0", 60), 0.06);
}

TEST(RoundWeightsTest, ALyingUndeclaredTenantWeighsNoMoreThanTheHeaviestOther) {
  const RoundWeights w(Tenants({{"a", 0}, {"b", 0}, {"liar", 0}}),
                       {{"a0", "a", 100}, {"b0", "b", 200}, {"x0", "liar", kMaxExamplesClaim}});
  CapReason capped;
  const double liar = WeightOf(w, "x0", kMaxExamplesClaim, &capped);
  EXPECT_EQ(capped, CapReason::kOtherTenants);
  EXPECT_DOUBLE_EQ(liar, 200.0 / 500);
  EXPECT_DOUBLE_EQ(WeightOf(w, "a0", 100, &capped), 100.0 / 500);
  EXPECT_EQ(capped, CapReason::kNone);
  EXPECT_DOUBLE_EQ(WeightOf(w, "b0", 200), 200.0 / 500);
  // Claiming more with the update than it joined with gains nothing.
  const RoundWeights honest(Tenants({{"a", 0}, {"b", 0}}), {{"a0", "a", 100}, {"b0", "b", 100}});
  EXPECT_DOUBLE_EQ(WeightOf(honest, "a0", int64_t{1} << 40, &capped), 0.5);
  EXPECT_EQ(capped, CapReason::kJoinClaim);
}

TEST(RoundWeightsTest, ATenantsReplicasShareItsCapInProportion) {
  // Tenant a: 3 replicas of 300 = 900; b: 1 of 1000. a is within b's
  // weight; b (undeclared) is capped at a's 900.
  const RoundWeights w(Tenants({{"a", 0}, {"b", 0}}), {{"a0", "a", 300},
                                                        {"a1", "a", 300},
                                                        {"a2", "a", 300},
                                                        {"b0", "b", 1000}});
  EXPECT_DOUBLE_EQ(WeightOf(w, "a0", 300), 300.0 / 1800);
  EXPECT_DOUBLE_EQ(WeightOf(w, "b0", 1000), 900.0 / 1800);
  // A liar's replicas, all claiming the most, still total no more than b.
  const RoundWeights l(Tenants({{"liar", 0}, {"b", 0}}),
                       {{"x0", "liar", kMaxExamplesClaim},
                        {"x1", "liar", kMaxExamplesClaim},
                        {"b0", "b", 1000}});
  EXPECT_DOUBLE_EQ(WeightOf(l, "x0", kMaxExamplesClaim) + WeightOf(l, "x1", kMaxExamplesClaim),
                   0.5);
}

TEST(RoundWeightsTest, ADeclarationCapsItsTenantAndLiftsTheRelativeCap) {
  const RoundWeights w(Tenants({{"big", 5000}, {"small", 0}}),
                       {{"g0", "big", 1 << 20}, {"s0", "small", 100}});
  CapReason capped;
  // big declared 5000: it counts for 5000, more than small, as declared.
  EXPECT_DOUBLE_EQ(WeightOf(w, "g0", 1 << 20, &capped), 5000.0 / 5100);
  EXPECT_EQ(capped, CapReason::kMaxExamples);
  EXPECT_DOUBLE_EQ(WeightOf(w, "s0", 100), 100.0 / 5100);
}

TEST(RoundWeightsTest, OneTenantAloneIsNotCapped) {
  const RoundWeights w(Tenants({{"a", 0}}), {{"a0", "a", 10}, {"a1", "a", 30}});
  EXPECT_DOUBLE_EQ(WeightOf(w, "a0", 10), 0.25);
  EXPECT_DOUBLE_EQ(WeightOf(w, "a1", 30), 0.75);
}

TEST(RoundWeightsTest, UniformWeighsEveryUpdateTheSame) {
  const RoundWeights w(Tenants({{"a", 0}, {"b", 0}}, Weighting::kUniform),
                       {{"a0", "a", 1}, {"b0", "b", kMaxExamplesClaim}});
  EXPECT_DOUBLE_EQ(WeightOf(w, "a0", 1), 0.5);
  EXPECT_DOUBLE_EQ(WeightOf(w, "b0", kMaxExamplesClaim), 0.5);
  EXPECT_DOUBLE_EQ(w.PublicWeight("a0"), 1);
  EXPECT_DOUBLE_EQ(w.PublicWeight("b0"), 1);
}

TEST(RoundWeightsTest, PublicWeightsSumToTheCohortSizeAndStrangersWeighNothing) {
  const RoundWeights w(Tenants({{"a", 0}, {"b", 0}, {"c", 0}}),
                       {{"a0", "a", 0}, {"b0", "b", 30}, {"c0", "c", 1 << 30}});
  // a0 joined with 0 examples: it counts for 1; c0 is capped at b0's 30.
  EXPECT_DOUBLE_EQ(w.PublicWeight("a0") + w.PublicWeight("b0") + w.PublicWeight("c0"), 3);
  EXPECT_DOUBLE_EQ(w.PublicWeight("b0"), w.PublicWeight("c0"));
  EXPECT_EQ(w.PublicWeight("nobody"), 0);
  EXPECT_EQ(w.For("nobody", 1).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace braid::aggregator
