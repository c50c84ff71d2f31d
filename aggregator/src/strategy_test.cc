// The strategies through the factory and the AggregationStrategy interface,
// without an engine: which one a job gets, FedAvg's and DP-FedAvg's
// arithmetic, and the streaming hand-over (a fold frees the upload's slot
// for the next upload as it goes).
#include "braid/aggregator/strategy_factory.h"

#include <cmath>
#include <filesystem>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "braid/aggregator/testing/test_upload.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::aggregator {
namespace {

using ::testing::HasSubstr;

TEST(StrategyFactoryTest, TheJobSpecChoosesTheStrategy) {
  StrategyOptions options;
  EXPECT_EQ((*CreateStrategy(options))->name(), "fedavg");
  options.dp.enabled = true;
  EXPECT_EQ((*CreateStrategy(options))->name(), "dp-fedavg");
  EXPECT_FALSE((*CreateStrategy(options))->masked_input());
  options.secure_aggregation = true;
  EXPECT_EQ((*CreateStrategy(options))->name(), "secagg-sum");
  EXPECT_TRUE((*CreateStrategy(options))->masked_input());
  for (const char* name : {"fedavgm", "fedadam", "fedyogi", "fedadagrad"}) {
    options.name = name;
    absl::StatusOr<std::unique_ptr<AggregationStrategy>> s = CreateStrategy(options);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->name(), name);
    EXPECT_TRUE((*s)->masked_input()) << "over the secure-aggregation sum";
  }
  // FedProx's server averages; its difference is in the workers.
  options.name = "fedprox";
  EXPECT_EQ((*CreateStrategy(options))->name(), "secagg-sum");
  options.name = "scaffold";
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> unknown = CreateStrategy(options);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("spec.strategy.name"));
}

TEST(StrategyTest, FedAvgAveragesTheDeltasByExamples) {
  std::unique_ptr<AggregationStrategy> s = *CreateStrategy(StrategyOptions{});
  ASSERT_TRUE(s->BeginRound({1, 2, 3, nullptr}).ok());
  TestUpload a({1, 2, 3}, 10);
  TestUpload b({4, 0, -3}, 30);
  absl::StatusOr<FoldResult> fa = s->Fold(*a.upload);
  ASSERT_TRUE(fa.ok()) << fa.status();
  EXPECT_NEAR(fa->norm, std::sqrt(14.0), 1e-6);
  ASSERT_TRUE(s->Fold(*b.upload).ok());
  absl::StatusOr<absl::Span<const float>> global = s->Finish(ReaderOf({10, 10, 10}));
  ASSERT_TRUE(global.ok()) << global.status();
  ASSERT_EQ(global->size(), 3u);
  EXPECT_FLOAT_EQ((*global)[0], 10 + (1 * 10 + 4 * 30) / 40.0f);
  EXPECT_FLOAT_EQ((*global)[1], 10 + (2 * 10) / 40.0f);
  EXPECT_FLOAT_EQ((*global)[2], 10 + (3 * 10 - 3 * 30) / 40.0f);
  EXPECT_EQ(s->SaveState(), "");
  EXPECT_TRUE(s->RestoreState("").ok());
  EXPECT_FALSE(s->RestoreState("moments").ok());
  // A new round starts from zero.
  ASSERT_TRUE(s->BeginRound({2, 1, 3, nullptr}).ok());
  TestUpload c({1, 1, 1}, 5);
  ASSERT_TRUE(s->Fold(*c.upload).ok());
  global = s->Finish(ReaderOf({0, 0, 0}));
  ASSERT_TRUE(global.ok());
  EXPECT_FLOAT_EQ((*global)[0], 1.0f);
}

TEST(StrategyTest, FedAvgWeighsWhatTheEngineDecidedNotWhatTheClientClaims) {
  std::unique_ptr<AggregationStrategy> s = *CreateStrategy(StrategyOptions{});
  ASSERT_TRUE(s->BeginRound({1, 2, 1, nullptr}).ok());
  TestUpload liar({100}, int64_t{1} << 62);
  TestUpload honest({0}, 10);
  liar.upload->set_weight(0.5);
  honest.upload->set_weight(0.5);
  ASSERT_TRUE(s->Fold(*liar.upload).ok());
  ASSERT_TRUE(s->Fold(*honest.upload).ok());
  absl::StatusOr<absl::Span<const float>> global = s->Finish(ReaderOf({0}));
  ASSERT_TRUE(global.ok()) << global.status();
  EXPECT_FLOAT_EQ((*global)[0], 50);
}

TEST(StrategyTest, FedAvgOfFiniteValuesNearFloatsLimitStaysFinite) {
  // Weights that sum to <= 1 (as the engine gives them) keep every partial
  // sum within the values' range: 1e30 values weighed by 1e12 examples
  // overflowed float before.
  std::unique_ptr<AggregationStrategy> s = *CreateStrategy(StrategyOptions{});
  ASSERT_TRUE(s->BeginRound({1, 3, 2, nullptr}).ok());
  TestUpload a({3e38f, -3e38f}, 1);
  TestUpload b({3e38f, 1e30f}, 1);
  TestUpload c({1, 1}, 1);
  a.upload->set_weight(0.4);
  b.upload->set_weight(0.4);
  c.upload->set_weight(0.2);
  for (TestUpload* u : {&a, &b, &c}) ASSERT_TRUE(s->Fold(*u->upload).ok());
  absl::StatusOr<absl::Span<const float>> global = s->Finish(ReaderOf({0, 0}));
  ASSERT_TRUE(global.ok()) << global.status();
  EXPECT_TRUE(std::isfinite((*global)[0])) << (*global)[0];
  EXPECT_NEAR((*global)[0], 0.8 * 3e38, 1e33);
  EXPECT_TRUE(std::isfinite((*global)[1]));
}

TEST(StrategyTest, AFoldFreesTheSlotForTheNextUpload) {
  std::unique_ptr<AggregationStrategy> s = *CreateStrategy(StrategyOptions{});
  ASSERT_TRUE(s->BeginRound({1, 2, 4, nullptr}).ok());
  TestUpload a({1, 1, 1, 1}, 1);
  // The next holder of a's slot may not write until a is folded.
  absl::StatusOr<UploadPool::Held> next = a.pool.Acquire(absl::ZeroDuration());
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(s->Fold(*a.upload).ok());
  Upload b(&a.pool, *next, "t/1#2", 1, 1);
  const std::vector<float> values = {2, 2, 2, 2};
  ASSERT_TRUE(b.Write(0, values.data(), 16).ok());  // would wait forever if not consumed
  EXPECT_TRUE(b.complete());
}

TEST(StrategyTest, DpFedAvgClipsWeighsUniformlyAndDividesBySampled) {
  StrategyOptions options;
  options.dp.enabled = true;
  options.dp.clip_norm = 1;
  options.dp.central_noise = false;  // no noise: the arithmetic alone
  std::unique_ptr<AggregationStrategy> s = *CreateStrategy(options);
  ASSERT_TRUE(s->BeginRound({1, 4, 2, nullptr}).ok());
  TestUpload a({3, 4}, 10);
  TestUpload b({0.5f, 0}, 1000);
  ASSERT_TRUE(s->Fold(*a.upload).ok());
  ASSERT_TRUE(s->Fold(*b.upload).ok());
  absl::StatusOr<absl::Span<const float>> global = s->Finish(ReaderOf({0, 0}));
  ASSERT_TRUE(global.ok()) << global.status();
  // Without central noise the aggregator does not clip (the clients do);
  // weights 1 each, over the 4 sampled.
  EXPECT_FLOAT_EQ((*global)[0], 3.5f / 4);
  EXPECT_FLOAT_EQ((*global)[1], 4.0f / 4);

  options.dp.central_noise = true;
  options.dp.noise_multiplier = 1e-9;  // negligible noise
  options.dp.noise_seed = 1;
  s = *CreateStrategy(options);
  ASSERT_TRUE(s->BeginRound({1, 2, 2, nullptr}).ok());
  TestUpload c({3, 4}, 10);  // norm 5, clipped to 1
  ASSERT_TRUE(s->Fold(*c.upload).ok());
  global = s->Finish(ReaderOf({1, 1}));
  ASSERT_TRUE(global.ok()) << global.status();
  EXPECT_NEAR((*global)[0], 1 + 0.6 / 2, 1e-6);
  EXPECT_NEAR((*global)[1], 1 + 0.8 / 2, 1e-6);
}

TEST(StrategyTest, AFailedReadOfTheOldGlobalKeepsTheReadersReason) {
  std::unique_ptr<AggregationStrategy> s = *CreateStrategy(StrategyOptions{});
  ASSERT_TRUE(s->BeginRound({1, 1, 2, nullptr}).ok());
  TestUpload a({1, 1}, 1);
  ASSERT_TRUE(s->Fold(*a.upload).ok());
  absl::StatusOr<absl::Span<const float>> global =
      s->Finish([](uint64_t, void*, uint64_t) {
        return WithReason(absl::DataLossError("disk"), "CheckpointFailed");
      });
  EXPECT_EQ(global.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReasonOf(global.status(), "x"), "CheckpointFailed");
  EXPECT_EQ(ReasonOf(absl::InternalError("y"), "Fallback"), "Fallback");
}

// One round of `s` from `global`: the updates (deltas) with their examples.
std::vector<float> RunRound(AggregationStrategy& s, int round, const std::vector<float>& global,
                            const std::vector<std::pair<std::vector<float>, int64_t>>& updates) {
  EXPECT_TRUE(s.BeginRound({round, static_cast<int>(updates.size()), global.size(), nullptr}).ok());
  for (const auto& [delta, examples] : updates) {
    TestUpload u(delta, examples);
    EXPECT_TRUE(s.Fold(*u.upload).ok());
  }
  absl::StatusOr<absl::Span<const float>> next = s.Finish(ReaderOf(global));
  EXPECT_TRUE(next.ok()) << next.status();
  return next.ok() ? std::vector<float>(next->begin(), next->end()) : std::vector<float>();
}

std::unique_ptr<AggregationStrategy> Make(const std::string& name, spec::ServerOptimizer server) {
  StrategyOptions options;
  options.name = name;
  options.server = server;
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> s = CreateStrategy(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

TEST(ServerOptimizerTest, FedAvgMAddsMomentumToTheAverageStep) {
  std::unique_ptr<AggregationStrategy> s = Make("fedavgm", {0.5, 0.9, 0, 0, 0});
  // Round 1: the average delta is (1*10 + 3*30) / 40 = 2.5; m = 2.5.
  std::vector<float> g = RunRound(*s, 1, {1}, {{{1}, 10}, {{3}, 30}});
  ASSERT_EQ(g.size(), 1u);
  EXPECT_FLOAT_EQ(g[0], 1 + 0.5f * 2.5f);
  // Round 2: delta 1; m = 0.9 * 2.5 + 1.
  g = RunRound(*s, 2, g, {{{1}, 5}});
  EXPECT_FLOAT_EQ(g[0], 2.25f + 0.5f * (0.9f * 2.5f + 1));
}

TEST(ServerOptimizerTest, FedAdamTakesABiasCorrectedAdaptiveStep) {
  const spec::ServerOptimizer o{0.1, 0, 0.9, 0.99, 1e-9};
  std::unique_ptr<AggregationStrategy> s = Make("fedadam", o);
  const std::vector<float> g = RunRound(*s, 1, {0, 0}, {{{2, -4}, 1}});
  // m = 0.1 d, v = 0.01 d^2: the step is the sign of d times the
  // bias-corrected rate (Flower uses t = round + 1).
  const double lr = 0.1 * std::sqrt(1 - std::pow(0.99, 2)) / (1 - std::pow(0.9, 2));
  const double step = lr * 0.1 / std::sqrt(0.01);
  EXPECT_NEAR(g[0], step, 1e-6);
  EXPECT_NEAR(g[1], -step, 1e-6);
}

TEST(ServerOptimizerTest, ARestartResumesWithTheSameMoments) {
  for (const char* name : {"fedavgm", "fedadam", "fedyogi", "fedadagrad"}) {
    SCOPED_TRACE(name);
    const spec::ServerOptimizer o{0.1, 0.9, 0.9, 0.99, 1e-3};
    std::unique_ptr<AggregationStrategy> a = Make(name, o);
    std::vector<float> g = RunRound(*a, 1, {1, 2, 3}, {{{0.5f, -1, 2}, 3}});
    const std::string state = a->SaveState();
    ASSERT_FALSE(state.empty());
    // The same round 2 on the strategy that ran round 1 and on a new one
    // restored from its saved state.
    std::unique_ptr<AggregationStrategy> b = Make(name, o);
    ASSERT_TRUE(b->RestoreState(state).ok());
    const std::vector<std::pair<std::vector<float>, int64_t>> round2 = {{{1, 1, -1}, 2}};
    EXPECT_EQ(RunRound(*a, 2, g, round2), RunRound(*b, 2, g, round2));
    // Another strategy's state, or a damaged one, is refused.
    EXPECT_EQ(Make(name == std::string("fedadam") ? "fedyogi" : "fedadam", o)
                  ->RestoreState(state)
                  .code(),
              absl::StatusCode::kDataLoss);
    EXPECT_EQ(Make(name, o)->RestoreState(state.substr(0, state.size() - 3)).code(),
              absl::StatusCode::kDataLoss);
    // A model of another size does not take the saved moments.
    std::unique_ptr<AggregationStrategy> c = Make(name, o);
    ASSERT_TRUE(c->RestoreState(state).ok());
    ASSERT_TRUE(c->BeginRound({2, 1, 2, nullptr}).ok());
    TestUpload u({1, 1}, 1);
    ASSERT_TRUE(c->Fold(*u.upload).ok());
    EXPECT_EQ(c->Finish(ReaderOf({0, 0})).status().code(), absl::StatusCode::kDataLoss);
  }
}

std::unique_ptr<AggregationStrategy> Robust(const std::string& name,
                                            spec::RobustAggregation robust,
                                            const std::string& dir) {
  StrategyOptions options;
  options.name = name;
  options.robust = robust;
  options.spill_dir = dir;
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> s = CreateStrategy(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

TEST(RobustAggregationTest, OnePoisonedUpdateDoesNotMoveTheModel) {
  const std::string dir = ::testing::TempDir() + "/robust_poison";
  // Six honest updates near 1 and one poisoned at -100, which drags FedAvg
  // below -13.
  const std::vector<std::pair<std::vector<float>, int64_t>> updates = {
      {{1.0f}, 10}, {{1.1f}, 10}, {{0.9f}, 10}, {{1.05f}, 10},
      {{0.95f}, 10}, {{1.02f}, 10}, {{-100}, 10}};
  EXPECT_LT(RunRound(*Make("fedavg", {}), 1, {0}, updates)[0], -13);
  for (const auto& [name, robust] : std::vector<std::pair<std::string, spec::RobustAggregation>>{
           {"median", {}},
           {"trimmedmean", {0, 0, 0.2}},
           {"krum", {1, 0, 0}},
           {"multikrum", {1, 3, 0}},
           {"bulyan", {1, 0, 0}}}) {
    SCOPED_TRACE(name);
    std::unique_ptr<AggregationStrategy> s = Robust(name, robust, dir);
    const std::vector<float> g = RunRound(*s, 1, {0}, updates);
    ASSERT_EQ(g.size(), 1u);
    EXPECT_GT(g[0], 0.85f);
    EXPECT_LT(g[0], 1.15f);
  }
}

TEST(RobustAggregationTest, RoundsKeepNoStateAndTheSpillGoesWithTheStrategy) {
  const std::string dir = ::testing::TempDir() + "/robust_spill";
  {
    std::unique_ptr<AggregationStrategy> s = Robust("median", {}, dir);
    EXPECT_EQ(RunRound(*s, 1, {10, 10}, {{{1, 2}, 1}, {{3, 4}, 1}, {{5, -6}, 1}}),
              (std::vector<float>{13, 12}));
    // A new round starts empty: the median of its one update is that update.
    EXPECT_EQ(RunRound(*s, 2, {0, 0}, {{{7, 8}, 1}}), (std::vector<float>{7, 8}));
    EXPECT_EQ(s->SaveState(), "");
    EXPECT_TRUE(std::filesystem::exists(dir + "/round-updates.spill"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/round-updates.spill"));
}

TEST(RobustAggregationTest, BulyanWithTooFewUpdatesFailsTheRoundSayingWhy) {
  std::unique_ptr<AggregationStrategy> s =
      Robust("bulyan", {1, 0, 0}, ::testing::TempDir() + "/robust_bulyan");
  ASSERT_TRUE(s->BeginRound({1, 3, 1, nullptr}).ok());
  for (float v : {1.0f, 2.0f, 3.0f}) {
    TestUpload u({v}, 1);
    ASSERT_TRUE(s->Fold(*u.upload).ok());
  }
  absl::StatusOr<absl::Span<const float>> g = s->Finish(ReaderOf({0}));
  EXPECT_EQ(ReasonOf(g.status(), ""), "TooFewUpdates");
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("4 * byzantineClients + 3 (7)"));
}

TEST(RobustAggregationTest, NeitherSecureAggregationNorDpNorNoDirectory) {
  StrategyOptions options;
  options.name = "krum";
  EXPECT_EQ(CreateStrategy(options).status().code(), absl::StatusCode::kInvalidArgument)
      << "no spill directory";
  options.spill_dir = ::testing::TempDir();
  EXPECT_TRUE(CreateStrategy(options).ok());
  options.secure_aggregation = true;
  EXPECT_EQ(CreateStrategy(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.secure_aggregation = false;
  options.dp.enabled = true;
  EXPECT_EQ(CreateStrategy(options).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace braid::aggregator
