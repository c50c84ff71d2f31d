// Secure aggregation end to end (spec.privacy.secureAggregation: true): real
// braid-aggregator and braid-worker processes over gRPC.
//   - `braid run` (mTLS) of the example tabular job gives the same model as
//     the plaintext job on the same seed and data, within the quantization
//     bound;
//   - a worker killed after sharing keys does not stop the round: the
//     survivors unmask its pairwise masks and the job goes on;
//   - what the aggregator receives from a client (recorded by the test-only
//     braid-aggregator-testing --record-uploads) is not its update:
//     uncorrelated with it, spread over the whole ring.
#include <csignal>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "braid/core/safetensors.h"
#include "braid/cli/subprocess.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

using nlohmann::json;

constexpr char kSecAgg[] =
    "  privacy:\n"
    "    secureAggregation: true\n"
    "    secureAggregationSettings: {threshold: 0.5, quantizationRange: 1.0, stageTimeout: 30s}\n";
constexpr double kRange = 1.0;
constexpr int kClients = 3;

// Runs `braid run` on a tabular job with `strategy` (plus any privacy
// section) and returns its summary.
json BraidRun(const std::string& dir, const std::string& strategy) {
  const std::string job = WriteTabularJob(dir, strategy);
  const std::string summary = dir + "/summary.json";
  auto proc = cli::Subprocess::Start(
      {Binary("braid"), "run", job, "--workdir", dir + "/work", "--summary", summary},
      dir + "/braid.log", dir + "/stdout.txt");
  EXPECT_TRUE(proc.ok()) << proc.status();
  if (!proc.ok()) return json();
  const int code = proc->Wait(absl::Minutes(5));
  EXPECT_EQ(code, 0) << ReadFile(dir + "/stdout.txt") << ReadFile(dir + "/braid.log");
  return json::parse(ReadFile(summary), nullptr, false);
}

std::vector<float> Flat(const std::string& model_path) {
  absl::StatusOr<safetensors::File> f = safetensors::Read(model_path);
  EXPECT_TRUE(f.ok()) << f.status();
  std::vector<float> out;
  if (!f.ok()) return out;
  for (const Tensor& t : f->tensors) out.insert(out.end(), t.f32(), t.f32() + t.NumElements());
  return out;
}

TEST(SecureAggregation, BraidRunGivesThePlaintextModelWithinTheQuantizationBound) {
  const std::string strategy = "{name: fedavg, rounds: 1, minClients: 3, roundTimeout: 2m}\n";
  const json plain = BraidRun(FreshDir("secagg-plain"), strategy);
  const json secure = BraidRun(FreshDir("secagg-secure"), strategy + kSecAgg);
  ASSERT_FALSE(plain.is_discarded());
  ASSERT_FALSE(secure.is_discarded());
  EXPECT_EQ(secure["phase"], "Succeeded") << secure.dump(2);
  ASSERT_EQ(secure["rounds"].size(), 1u) << secure.dump(2);
  EXPECT_EQ(secure["rounds"][0]["participants"], kClients);

  const std::vector<float> a = Flat(plain["model"].get<std::string>());
  const std::vector<float> b = Flat(secure["model"].get<std::string>());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  // The ring sum of k encodings is off by <= k * step / 2 (core/secagg/quantize.h);
  // the average divides it by the total weight (k: the weights are examples /
  // mean examples). Float rounding of the weighting and the folds adds a few ulps.
  const double levels = std::floor(4294967295.0 / kClients);
  const double step = 2 * kRange / levels;
  const double bound = kClients * step / 2 / kClients;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double slack = bound + 4e-7 * (1 + std::fabs(a[i]));
    const double diff = std::fabs(static_cast<double>(a[i]) - b[i]);
    worst = std::max(worst, diff);
    ASSERT_LE(diff, slack) << "parameter " << i << ": " << a[i] << " vs " << b[i];
  }
  std::cout << "[ info     ] largest difference to the plaintext model: " << worst
            << " (quantization bound " << bound << ")\n";
  // The plaintext round did change the model, so the comparison means something.
  EXPECT_GT(plain["rounds"][0]["train_loss"].get<double>(), 0);
}

// Aggregator + three workers on loopback (no TLS), for what `braid run`
// does not expose: killing one worker, recording what the aggregator got.
// The tenants in `stalling` run braid-stalling-worker (a test-only program
// that joins like braid-worker and stalls in its first FIT, after sharing
// its keys) instead of braid-worker.
class SecAggJob {
 public:
  // `aggregator`: the binary to run (braid-aggregator-testing for its hooks).
  SecAggJob(const std::string& dir, const std::string& strategy,
            std::vector<std::string> aggregator_flags,
            const std::set<std::string>& stalling = {},
            const std::string& aggregator = "braid-aggregator")
      : dir_(dir) {
    const std::string job = WriteTabularJob(dir, strategy);
    const std::string model = dir + "/initial.safetensors";
    auto init = cli::Subprocess::Start(
        {Binary("braid-worker"), "init", "--job=" + job, "--out=" + model}, dir + "/init.log");
    EXPECT_TRUE(init.ok());
    EXPECT_EQ(init->Wait(absl::Minutes(2)), 0) << ReadFile(dir + "/init.log");
    absl::StatusOr<Aggregator> agg =
        StartAggregator(job, dir, model, 0, aggregator_flags, aggregator);
    EXPECT_TRUE(agg.ok()) << agg.status();
    if (!agg.ok()) return;
    aggregator_ = std::make_unique<Aggregator>(*std::move(agg));
    for (const char* t : {"st-mary", "charite", "karolinska"}) {
      const std::vector<std::string> common = {"--job=" + job, "--tenant=" + std::string(t),
                                               "--replica=0",
                                               "--aggregator=" + aggregator_->address(),
                                               "--give-up=20s"};
      std::vector<std::string> argv = {Binary("braid-worker"), "run"};
      if (stalling.count(t)) {
        // 1600 = 2000 rows less the eval split (evalFraction 0.2): the
        // weight braid-worker would announce for this tenant.
        argv = {Binary("braid-stalling-worker"), "--num-examples=1600", "--stall=5m"};
      }
      argv.insert(argv.end(), common.begin(), common.end());
      auto w = cli::Subprocess::Start(argv, Log(t));
      EXPECT_TRUE(w.ok()) << w.status();
      if (w.ok()) workers_.emplace(t, std::make_unique<cli::Subprocess>(*std::move(w)));
    }
  }
  std::string Log(const std::string& tenant) const { return dir_ + "/" + tenant + ".log"; }
  bool ok() const { return aggregator_ != nullptr && workers_.size() == 3; }
  Aggregator& aggregator() { return *aggregator_; }
  cli::Subprocess& worker(const std::string& tenant) { return *workers_.at(tenant); }

 private:
  std::string dir_;
  std::unique_ptr<Aggregator> aggregator_;
  std::map<std::string, std::unique_ptr<cli::Subprocess>> workers_;
};

// Lost after 3 s of silence; a round starts without a missing worker after
// 15 s (long enough for all three to join the first round).
const std::vector<std::string> kFastLoss = {"--heartbeat-interval=500ms",
                                            "--heartbeat-timeout=3s", "--start-grace=15s"};

TEST(SecureAggregation, AWorkerKilledAfterSharingKeysDoesNotStopTheRound) {
  const std::string dir = FreshDir("secagg-dropout");
  SecAggJob job(dir, std::string("{name: fedavg, rounds: 2, minClients: 2, roundTimeout: 2m}\n") + kSecAgg,
                kFastLoss, /*stalling=*/{"karolinska"});
  ASSERT_TRUE(job.ok());
  // Kill karolinska once it has shared its keys (it then stalls).
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (ReadFile(job.Log("karolinska")).find("shared keys") == std::string::npos) {
    ASSERT_LT(absl::Now(), deadline) << ReadFile(job.Log("karolinska"));
    ASSERT_FALSE(job.worker("karolinska").Poll().has_value()) << ReadFile(job.Log("karolinska"));
    absl::SleepFor(absl::Milliseconds(20));
  }
  job.worker("karolinska").Signal(SIGKILL);

  absl::StatusOr<v1::JobStatus> s = WaitForStatus(
      job.aggregator().address(), absl::Minutes(3),
      [](const v1::JobStatus& st) { return st.phase() == "Succeeded" || st.phase() == "Failed"; });
  ASSERT_TRUE(s.ok()) << s.status() << ReadFile(dir + "/aggregator.log");
  EXPECT_EQ(s->phase(), "Succeeded") << s->ShortDebugString() << ReadFile(dir + "/aggregator.log");
  ASSERT_EQ(s->rounds_size(), 2);
  for (const v1::RoundRecord& r : s->rounds()) {
    EXPECT_EQ(r.participants(), 2) << r.ShortDebugString();
    EXPECT_EQ(std::vector<std::string>(r.tenants().begin(), r.tenants().end()),
              (std::vector<std::string>{"charite", "st-mary"}));
  }
  // Round 1: the survivors were asked for karolinska's masking-key shares.
  EXPECT_NE(ReadFile(job.Log("st-mary")).find("round 1: secure aggregation: unmasking answered "
                                              "(2 survivors, 1 dropped)"),
            std::string::npos)
      << ReadFile(job.Log("st-mary"));
  for (const char* t : {"st-mary", "charite"}) EXPECT_EQ(job.worker(t).Wait(absl::Minutes(1)), 0);
  // The model learned something in the two rounds.
  EXPECT_GT(s->rounds(1).eval_accuracy(), 0.3);
}

// Mean of v and Pearson correlation of two equally long vectors.
double Correlation(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= n, my /= n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / std::sqrt(sxx * syy);
}

TEST(SecureAggregation, TheAggregatorReceivesMaskedInputsNotUpdates) {
  const std::string strategy = "{name: fedavg, rounds: 1, minClients: 3, roundTimeout: 2m}\n";
  std::vector<double> plain, masked;
  for (bool secure : {false, true}) {
    const std::string dir = FreshDir(secure ? "secagg-recorded" : "plain-recorded");
    const std::string uploads = dir + "/uploads";
    std::filesystem::create_directories(uploads);
    std::vector<std::string> flags = kFastLoss;
    flags.push_back("--record-uploads=" + uploads);
    SecAggJob job(dir, secure ? strategy + kSecAgg : strategy, flags, {},
                  "braid-aggregator-testing");
    ASSERT_TRUE(job.ok());
    for (const char* t : {"st-mary", "charite", "karolinska"}) {
      EXPECT_EQ(job.worker(t).Wait(absl::Minutes(3)), 0) << ReadFile(job.Log(t));
    }
    const std::string bytes = ReadFile(uploads + "/round1-st-mary-0.bin");
    ASSERT_FALSE(bytes.empty()) << "the aggregator recorded no upload of st-mary";
    const size_t n = bytes.size() / 4;
    for (size_t i = 0; i < n; ++i) {
      if (secure) {
        uint32_t v;
        std::memcpy(&v, bytes.data() + 4 * i, 4);
        masked.push_back(static_cast<double>(v));
      } else {
        float f;
        std::memcpy(&f, bytes.data() + 4 * i, 4);
        plain.push_back(f);
      }
    }
  }
  ASSERT_EQ(plain.size(), masked.size());
  // Unmasked, at least half of st-mary's encoded elements would sit within
  // +-m of the ring's zero level, m = 1.5 (its weight is below that here) x
  // the median |element| / step: a narrow band. The masked values are spread
  // over the whole ring instead, and tell nothing of the update's elements.
  const double levels = std::floor(4294967295.0 / kClients);
  const double step = 2 * kRange / levels;
  std::vector<double> magnitudes;
  for (double x : plain) magnitudes.push_back(std::fabs(x));
  std::nth_element(magnitudes.begin(), magnitudes.begin() + magnitudes.size() / 2, magnitudes.end());
  const double median = magnitudes[magnitudes.size() / 2];
  ASSERT_GT(median, 0);
  const double half_band = 1.5 * median / step;
  const double band_fraction = 2 * half_band / 4294967296.0;
  ASSERT_LT(band_fraction + 0.05, 0.5) << "the band is too wide for the test to tell";
  const double zero = levels / 2;
  size_t in_band = 0;
  double mean = 0;
  for (double v : masked) {
    in_band += std::fabs(v - zero) <= half_band ? 1 : 0;
    mean += v / masked.size();
  }
  EXPECT_LE(static_cast<double>(in_band) / masked.size(), band_fraction + 0.05)
      << "of " << masked.size() << " masked values, " << in_band
      << " lie where most of the unmasked encoding would";
  EXPECT_NEAR(mean / 4294967296.0, 0.5, 0.05);
  const double r = Correlation(plain, masked);
  EXPECT_LT(std::fabs(r), 0.15) << "masked input correlates with the update: r = " << r;
  std::cout << "[ info     ] masked vs update: correlation " << r << ", " << in_band << " of "
            << masked.size() << " in the update's band (" << band_fraction * 100 << "% of the ring)\n";
}

}  // namespace
}  // namespace braid::e2e
