// SecAggRound drives real core/secagg clients through its stages: the sum
// it unmasks is the clients' weighted sum, a client that dies after sharing
// keys is stripped out, a late client is out, and too few survivors fail the
// attempt with a reason naming the stage.
#include "braid/aggregator/secagg_round.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "braid/core/secagg/client.h"
#include "braid/core/secagg/messages.h"

namespace braid::aggregator {
namespace {

constexpr uint64_t kLength = 1000;

class SecAggRoundTest : public ::testing::Test {
 protected:
  void Start(int n, const SecAggOptions& options) {
    std::vector<SecAggRound::Member> members;
    for (int i = 0; i < n; ++i) {
      names_.push_back("c" + std::to_string(i));
      members.push_back({names_.back(), 0.5 + i});
      std::vector<float> u(kLength);
      for (uint64_t j = 0; j < kLength; ++j) u[j] = 0.001f * static_cast<float>((i + 1) * (j % 7));
      updates_.push_back(u);
    }
    absl::StatusOr<std::unique_ptr<SecAggRound>> r = SecAggRound::Create(
        options, 42, 7, kLength, members, 0, now_, absl::Minutes(1), 2);
    ASSERT_TRUE(r.ok()) << r.status();
    round_ = *std::move(r);
    for (const std::string& name : names_) {
      std::optional<SecAggTask> task = round_->TaskFor(name);
      ASSERT_TRUE(task.has_value());
      auto c = secagg::Client::Create(task->config, task->self);
      ASSERT_TRUE(c.ok()) << c.status();
      clients_[name] = *std::move(c);
    }
  }

  void Tick() { ASSERT_TRUE(round_->Advance(now_, gone_).ok()); }
  std::string AnswerOf(const std::string& name, SecAggStage stage) {
    auto a = round_->Answer(name, stage);
    EXPECT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(a.ok() && a->has_value());
    return a.ok() && a->has_value() ? **a : "";
  }

  // Runs every stage; `dead_after_share` never sends its input.
  void RunAll(const std::set<std::string>& dead_after_share) {
    for (const auto& [name, c] : clients_) {
      ASSERT_TRUE(round_->Submit(name, SecAggStage::kAdvertise, secagg::Encode(*c->AdvertiseKeys())).ok());
    }
    Tick();
    ASSERT_EQ(round_->stage(), SecAggStage::kShare);
    for (const auto& [name, c] : clients_) {
      auto dir = secagg::DecodeKeyDirectory(AnswerOf(name, SecAggStage::kAdvertise));
      ASSERT_TRUE(dir.ok());
      ASSERT_TRUE(round_->Submit(name, SecAggStage::kShare, secagg::Encode(*c->ShareKeys(*dir))).ok());
    }
    Tick();
    ASSERT_EQ(round_->stage(), SecAggStage::kMaskedInput);
    for (size_t i = 0; i < names_.size(); ++i) {
      const std::string& name = names_[i];
      if (dead_after_share.count(name)) continue;
      auto fwd = secagg::DecodeForwardedShares(AnswerOf(name, SecAggStage::kShare));
      ASSERT_TRUE(fwd.ok());
      std::vector<float> scaled = updates_[i];
      for (float& x : scaled) x *= static_cast<float>(round_->TaskFor(name)->weight);
      auto masked = clients_[name]->MaskInput(*fwd, scaled);
      ASSERT_TRUE(masked.ok()) << masked.status();
      ASSERT_TRUE(round_->SubmitMaskedInput(name, masked->values.data(), masked->values.size() * 4).ok());
    }
    gone_ = [dead_after_share](const std::string& id) { return dead_after_share.count(id) > 0; };
    Tick();
    ASSERT_EQ(round_->stage(), SecAggStage::kUnmask);
    for (const std::string& name : dead_after_share) {
      EXPECT_EQ(round_->Answer(name, SecAggStage::kMaskedInput).status().code(),
                absl::StatusCode::kAborted);
    }
    for (const auto& [name, c] : clients_) {
      if (dead_after_share.count(name)) continue;
      auto req = secagg::DecodeUnmaskRequest(AnswerOf(name, SecAggStage::kMaskedInput));
      ASSERT_TRUE(req.ok());
      ASSERT_TRUE(round_->Submit(name, SecAggStage::kUnmask, secagg::Encode(*c->Unmask(*req))).ok());
    }
    Tick();
    ASSERT_EQ(round_->stage(), SecAggStage::kDone);
  }

  // The weighted sum of the updates of everyone but `dead`.
  std::vector<double> Expected(const std::set<std::string>& dead) {
    std::vector<double> sum(kLength, 0);
    for (size_t i = 0; i < names_.size(); ++i) {
      if (dead.count(names_[i])) continue;
      const double w = round_->TaskFor(names_[i])->weight;
      for (uint64_t j = 0; j < kLength; ++j) sum[j] += w * updates_[i][j];
    }
    return sum;
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  std::function<bool(const std::string&)> gone_ = [](const std::string&) { return false; };
  std::vector<std::string> names_;
  std::vector<std::vector<float>> updates_;
  std::map<std::string, std::unique_ptr<secagg::Client>> clients_;
  std::unique_ptr<SecAggRound> round_;
};

TEST_F(SecAggRoundTest, UnmasksTheWeightedSumOfEveryone) {
  Start(4, SecAggOptions{true});
  RunAll({});
  const std::vector<double> expected = Expected({});
  ASSERT_EQ(round_->sum().size(), kLength);
  for (uint64_t j = 0; j < kLength; ++j) EXPECT_NEAR(round_->sum()[j], expected[j], 1e-5) << j;
  EXPECT_EQ(round_->contributors().size(), 4u);
  EXPECT_DOUBLE_EQ(round_->contributor_weight(), 0.5 + 1.5 + 2.5 + 3.5);
}

TEST_F(SecAggRoundTest, AClientLostAfterSharingKeysIsStrippedFromTheSum) {
  SecAggOptions options{true};
  options.threshold = 0.5;  // 2 of 4
  Start(4, options);
  RunAll({"c2"});
  const std::vector<double> expected = Expected({"c2"});
  for (uint64_t j = 0; j < kLength; ++j) EXPECT_NEAR(round_->sum()[j], expected[j], 1e-5) << j;
  EXPECT_EQ(round_->contributors(), (std::vector<std::string>{"c0", "c1", "c3"}));
  EXPECT_DOUBLE_EQ(round_->contributor_weight(), 0.5 + 1.5 + 3.5);
}

TEST_F(SecAggRoundTest, ALateClientIsOutAndTooFewFailTheAttemptNamingTheStage) {
  SecAggOptions options{true};
  options.stage_timeout = absl::Seconds(5);
  Start(3, options);  // threshold: a majority of 3 = 2
  ASSERT_TRUE(round_->Submit("c0", SecAggStage::kAdvertise,
                             secagg::Encode(*clients_["c0"]->AdvertiseKeys())).ok());
  Tick();
  EXPECT_EQ(round_->stage(), SecAggStage::kAdvertise);  // others may still come
  EXPECT_FALSE(round_->Answer("c0", SecAggStage::kAdvertise)->has_value());
  now_ += absl::Seconds(6);
  const absl::Status s = round_->Advance(now_, gone_);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_NE(s.message().find("AdvertiseKeys"), std::string::npos) << s;
  EXPECT_NE(s.message().find("threshold is 2"), std::string::npos) << s;
}

TEST_F(SecAggRoundTest, RefusesMessagesInAnotherClientsName) {
  Start(3, SecAggOptions{true});
  const std::string keys_of_c1 = secagg::Encode(*clients_["c1"]->AdvertiseKeys());
  const absl::Status s = round_->Submit("c0", SecAggStage::kAdvertise, keys_of_c1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(round_->Submit("c0", SecAggStage::kShare, "x").code(), absl::StatusCode::kAborted);
}

TEST(SecAggShapeTest, CompleteGraphForSmallCohortsSecAggPlusForLarge) {
  SecAggOptions auto_shape{true};
  EXPECT_EQ(ShapeFor(auto_shape, 3).neighbours, 0u);
  EXPECT_EQ(ShapeFor(auto_shape, 3).threshold, 2u);
  EXPECT_EQ(ShapeFor(auto_shape, 100).neighbours, 14u);  // 2 * ceil(log2 100)
  EXPECT_EQ(ShapeFor(auto_shape, 100).threshold, 8u);    // majority of 15 holders
  SecAggOptions fixed{true};
  fixed.neighbours = 4;
  fixed.threshold = 0.6;
  EXPECT_EQ(ShapeFor(fixed, 100).neighbours, 4u);
  EXPECT_EQ(ShapeFor(fixed, 100).threshold, 3u);  // ceil(0.6 * 5)
  EXPECT_EQ(ShapeFor(fixed, 5).neighbours, 0u);   // 4 + 1 >= 5: complete
}

}  // namespace
}  // namespace braid::aggregator
