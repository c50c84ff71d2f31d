// Braid's server strategies against Flower's own (flwr 1.42, run by
// strategy_reference.py in scripts/flower-ref.sh's interpreter): the same
// rounds of updates with the same example counts must give the same global
// weights after every round, within 1e-6 of the weights' scale. Flower
// computes in float64 here; Braid keeps float32 weights and moments. One
// client of each round sends an update ten times larger, as a poisoner
// would, so that the robust rules have something to leave out.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/strategy_factory.h"
#include "braid/aggregator/testing/test_upload.h"

namespace braid::aggregator {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kFloats = 300;  // more than one piece of nothing; odd on purpose
constexpr int kRounds = 6;
constexpr int kClients = 8;  // Bulyan with f = 1 needs 4f + 3 = 7

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `command` through the shell, stdout and stderr to files in `dir`;
// stdout's last line, or a test failure with both.
std::string RunShell(const std::string& command, const fs::path& dir) {
  const fs::path out = dir / "stdout", err = dir / "stderr";
  const int rc = std::system(absl::StrCat(command, " >", out.string(), " 2>", err.string()).c_str());
  std::string text = Slurp(out);
  if (rc != 0) {
    ADD_FAILURE() << command << " failed (" << rc << "):\n" << Slurp(err) << text;
    return "";
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

struct Client {
  std::vector<float> delta;
  int64_t examples;
};

// Deterministic rounds: kClients clients of 10..100 examples, deltas
// ~ N(0, 0.1), the first one's times 10.
std::vector<std::vector<Client>> MakeRounds(std::mt19937* rng) {
  std::normal_distribution<float> noise(0, 0.1f);
  std::uniform_int_distribution<int64_t> examples(10, 100);
  std::vector<std::vector<Client>> rounds(kRounds);
  for (auto& round : rounds) {
    for (int c = 0; c < kClients; ++c) {
      Client client{std::vector<float>(kFloats), examples(*rng)};
      for (float& v : client.delta) v = noise(*rng) * (c == 0 ? 10 : 1);
      round.push_back(std::move(client));
    }
  }
  return rounds;
}

struct Case {
  std::string name;
  spec::ServerOptimizer o;  // learning_rate, momentum, beta1, beta2, tau
  spec::RobustAggregation robust = {};  // byzantine_clients, keep_clients, trim_fraction
};

class FlowerReferenceTest : public ::testing::TestWithParam<Case> {};

TEST_P(FlowerReferenceTest, EveryRoundGivesFlowersGlobalWeights) {
  const Case& c = GetParam();
  const fs::path dir = fs::path(::testing::TempDir()) /
                       absl::StrCat("braid-flower-", c.name, "-", ::testing::UnitTest::GetInstance()
                                                                      ->current_test_info()
                                                                      ->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::mt19937 rng(20261206);
  std::normal_distribution<float> unit(0, 1);
  std::vector<float> global(kFloats);
  for (float& v : global) v = unit(rng);
  const std::vector<std::vector<Client>> rounds = MakeRounds(&rng);

  json input = {{"strategy", c.name},     {"learning_rate", c.o.learning_rate},
                {"momentum", c.o.momentum}, {"beta1", c.o.beta1},
                {"beta2", c.o.beta2},     {"tau", c.o.tau},
                {"byzantine", c.robust.byzantine_clients}, {"keep", c.robust.keep_clients},
                {"trim", c.robust.trim_fraction},
                {"initial", global},      {"rounds", json::array()}};
  for (const auto& round : rounds) {
    json clients = json::array();
    for (const Client& client : round) {
      clients.push_back({{"delta", client.delta}, {"examples", client.examples}});
    }
    input["rounds"].push_back(clients);
  }
  std::ofstream(dir / "input.json") << input.dump();
  const std::string python = RunShell(absl::StrCat("bash ", BRAID_SOURCE_DIR, "/scripts/flower-ref.sh"), dir);
  ASSERT_FALSE(python.empty());
  RunShell(absl::StrCat(python, " ", BRAID_SOURCE_DIR, "/tests/reference/strategy_reference.py ",
                   (dir / "input.json").string(), " ", (dir / "output.json").string()),
      dir);
  const json flower = json::parse(Slurp(dir / "output.json"), nullptr, false);
  ASSERT_TRUE(flower.is_object() && flower["globals"].size() == rounds.size())
      << Slurp(dir / "output.json");

  StrategyOptions options;
  options.name = c.name;
  options.server = c.o;
  options.robust = c.robust;
  options.spill_dir = (dir / "spill").string();
  absl::StatusOr<std::unique_ptr<AggregationStrategy>> made = CreateStrategy(options);
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<AggregationStrategy> braid = *std::move(made);
  double worst = 0;
  for (int r = 0; r < kRounds; ++r) {
    ASSERT_TRUE(braid->BeginRound({r + 1, kClients, kFloats, nullptr}).ok());
    for (const Client& client : rounds[r]) {
      TestUpload u(client.delta, client.examples);
      ASSERT_TRUE(braid->Fold(*u.upload).ok());
    }
    absl::StatusOr<absl::Span<const float>> next = braid->Finish(ReaderOf(global));
    ASSERT_TRUE(next.ok()) << next.status();
    const std::vector<double> want = flower["globals"][r].get<std::vector<double>>();
    double scale = 1;
    for (double w : want) scale = std::max(scale, std::abs(w));
    for (size_t i = 0; i < kFloats; ++i) {
      const double error = std::abs((*next)[i] - want[i]) / scale;
      worst = std::max(worst, error);
      ASSERT_LE(error, 1e-6) << "round " << r + 1 << ", weight " << i << ": braid "
                             << (*next)[i] << ", flower " << want[i];
    }
    global.assign(next->begin(), next->end());
    // Saved and restored every round, as a restarted aggregator would.
    std::unique_ptr<AggregationStrategy> restored = *CreateStrategy(options);
    ASSERT_TRUE(restored->RestoreState(braid->SaveState()).ok());
    braid = std::move(restored);
  }
  std::cout << c.name << ": largest difference from Flower over " << kRounds
            << " rounds: " << worst << " of the weights' scale\n";
}

// Flower's defaults, then other values for every parameter.
INSTANTIATE_TEST_SUITE_P(
    Strategies, FlowerReferenceTest,
    ::testing::Values(Case{"fedavgm", {1.0, 0, 0, 0, 0}}, Case{"fedavgm", {0.7, 0.9, 0, 0, 0}},
                      Case{"fedadam", {0.1, 0, 0.9, 0.99, 1e-9}},
                      Case{"fedadam", {0.05, 0, 0.8, 0.95, 1e-3}},
                      Case{"fedyogi", {0.01, 0, 0.9, 0.99, 1e-3}},
                      Case{"fedyogi", {0.03, 0, 0.5, 0.9, 1e-2}},
                      Case{"fedadagrad", {0.1, 0, 0, 0, 1e-9}},
                      Case{"fedadagrad", {0.2, 0, 0, 0, 1e-4}},
                      Case{"median", {}}, Case{"trimmedmean", {}, {0, 0, 0.2}},
                      Case{"trimmedmean", {}, {0, 0, 0.3}}, Case{"krum", {}, {0, 0, 0}},
                      Case{"krum", {}, {2, 0, 0}}, Case{"multikrum", {}, {1, 3, 0}},
                      Case{"bulyan", {}, {1, 0, 0}}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return absl::StrCat(info.param.name, info.index);
    });

}  // namespace
}  // namespace braid::aggregator
