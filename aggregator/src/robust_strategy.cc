// Robust aggregation, as Flower's FedMedian, FedTrimmedAvg, Krum (and
// MultiKrum) and Bulyan (flwr.server.strategy.aggregate): every update of
// the round is kept in an UpdateSpill and combined once the round closes,
// reading the updates back a column block at a time, so memory stays the
// model's new global plus one block of every update (and an n x n distance
// matrix), however many clients there are.
//
// Flower combines the clients' parameters x + d_i; these rules commute with
// adding x, so they are applied to the deltas d_i and x added at the end:
//   median       per coordinate, the median of the d_i (the mean of the two
//                middle values for an even count); examples are ignored
//   trimmedmean  per coordinate, the mean after cutting int(trim * n) of
//                the smallest and of the largest
//   krum         the d_i whose n - f - 2 (at least 1) nearest others are
//                nearest in sum of squared L2 distances
//   multikrum    the keepClients best-scored d_i, averaged by weight
//   bulyan       Krum n - 2f times, each time removing the one chosen; then
//                per coordinate the mean of the n - 4f chosen values closest
//                to their median
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/strategy.h"
#include "strategies.h"
#include "update_spill.h"

namespace braid::aggregator {
namespace {

// Values read per update per block: about 8 MiB of blocks in all.
constexpr uint64_t kBlockBytes = 8 << 20;
constexpr uint64_t kMaxBlockFloats = 1 << 16;

enum class Rule { kMedian, kTrimmedMean, kKrum, kMultiKrum, kBulyan };

// The median of `v` (reordered): its middle value, or the mean of the two
// middle values for an even count, as numpy.median.
double Median(std::vector<double>& v) {
  const size_t n = v.size();
  const auto mid = v.begin() + n / 2;
  std::nth_element(v.begin(), mid, v.end());
  if (n % 2 == 1) return *mid;
  return (*std::max_element(v.begin(), mid) + *mid) / 2;
}

class RobustStrategy final : public AggregationStrategy {
 public:
  RobustStrategy(std::string name, Rule rule, const spec::RobustAggregation& options,
                 std::string spill_dir)
      : name_(std::move(name)), rule_(rule), o_(options), spill_(std::move(spill_dir)) {}
  RobustStrategy(const RobustStrategy&) = delete;
  RobustStrategy& operator=(const RobustStrategy&) = delete;

  absl::string_view name() const override { return name_; }
  bool masked_input() const override { return false; }

  absl::Status BeginRound(const RoundBegin& round) override {
    floats_ = round.model_floats;
    weights_.clear();
    out_.assign(floats_, 0.0f);
    return spill_.Reset(floats_);
  }

  absl::StatusOr<FoldResult> Fold(Upload& update) override {
    if (absl::Status s = spill_.Append(update); !s.ok()) return s;
    weights_.push_back(update.weight());
    FoldResult result;
    result.norm = update.l2_norm();  // summed as the upload arrived
    return result;
  }

  absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& old_global) override {
    const int n = spill_.count();
    if (n == 0) return absl::FailedPreconditionError(name_ + ": no update to aggregate");
    block_ = std::max<uint64_t>(1, std::min(kMaxBlockFloats, kBlockBytes / sizeof(float) / n));
    absl::Status s;
    switch (rule_) {
      case Rule::kMedian:
      case Rule::kTrimmedMean: s = Coordinatewise(AllOf(n), /*bulyan_beta=*/0); break;
      case Rule::kKrum:
      case Rule::kMultiKrum: s = KrumAverage(n); break;
      case Rule::kBulyan: s = Bulyan(n); break;
    }
    if (!s.ok()) return s;
    std::vector<float> old(block_);
    for (uint64_t at = 0; at < floats_; at += block_) {
      const uint64_t len = std::min<uint64_t>(block_, floats_ - at);
      if (absl::Status r = old_global(at * sizeof(float), old.data(), len * sizeof(float));
          !r.ok()) {
        return r;
      }
      for (uint64_t i = 0; i < len; ++i) out_[at + i] += old[i];
    }
    return absl::Span<const float>(out_);
  }

  std::string SaveState() const override { return ""; }
  absl::Status RestoreState(absl::string_view state) override {
    if (!state.empty()) return absl::DataLossError(name_ + " keeps no state, but some was saved");
    return absl::OkStatus();
  }

 private:
  static std::vector<int> AllOf(int n) {
    std::vector<int> all(n);
    std::iota(all.begin(), all.end(), 0);
    return all;
  }

  // Reads the block at `at` (`len` values) of each update in `which` into
  // blocks_[k * block_].
  absl::Status ReadBlock(const std::vector<int>& which, uint64_t at, uint64_t len) {
    blocks_.resize(which.size() * block_);
    for (size_t k = 0; k < which.size(); ++k) {
      if (absl::Status s = spill_.Read(which[k], at, len, blocks_.data() + k * block_); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  // out_ = per coordinate over the updates `which`: the median or trimmed
  // mean; with bulyan_beta > 0, the mean of the bulyan_beta values closest
  // to the median.
  absl::Status Coordinatewise(const std::vector<int>& which, int bulyan_beta) {
    const size_t m = which.size();
    const int cut = static_cast<int>(o_.trim_fraction * static_cast<double>(m));
    std::vector<double> v(m);
    std::vector<double> by_distance(m);
    for (uint64_t at = 0; at < floats_; at += block_) {
      const uint64_t len = std::min<uint64_t>(block_, floats_ - at);
      if (absl::Status s = ReadBlock(which, at, len); !s.ok()) return s;
      for (uint64_t i = 0; i < len; ++i) {
        for (size_t k = 0; k < m; ++k) v[k] = blocks_[k * block_ + i];
        double value;
        if (rule_ == Rule::kTrimmedMean) {
          // The cut smallest to the front, the cut largest to the back.
          if (cut > 0) {
            std::nth_element(v.begin(), v.begin() + cut, v.end());
            std::nth_element(v.begin() + cut, v.end() - cut, v.end());
          }
          value = std::accumulate(v.begin() + cut, v.end() - cut, 0.0) /
                  static_cast<double>(m - 2 * cut);
        } else if (bulyan_beta > 0) {
          const double median = Median(v);
          std::nth_element(v.begin(), v.begin() + (bulyan_beta - 1), v.end(),
                           [median](double a, double b) {
                             return std::abs(a - median) < std::abs(b - median);
                           });
          value = std::accumulate(v.begin(), v.begin() + bulyan_beta, 0.0) / bulyan_beta;
        } else {
          value = Median(v);
        }
        out_[at + i] = static_cast<float>(value);
      }
    }
    return absl::OkStatus();
  }

  // distances_[i * n + j]: squared L2 distance between updates i and j.
  absl::Status Distances(int n) {
    distances_.assign(static_cast<size_t>(n) * n, 0.0);
    const std::vector<int> all = AllOf(n);
    for (uint64_t at = 0; at < floats_; at += block_) {
      const uint64_t len = std::min<uint64_t>(block_, floats_ - at);
      if (absl::Status s = ReadBlock(all, at, len); !s.ok()) return s;
      for (int i = 0; i < n; ++i) {
        const float* a = blocks_.data() + i * block_;
        for (int j = i + 1; j < n; ++j) {
          const float* b = blocks_.data() + j * block_;
          double sum = 0;
          for (uint64_t t = 0; t < len; ++t) {
            const double d = static_cast<double>(a[t]) - b[t];
            sum += d * d;
          }
          distances_[i * n + j] += sum;
          distances_[j * n + i] += sum;
        }
      }
    }
    return absl::OkStatus();
  }

  // Krum scores of the updates `among`, in their order: each one's sum of
  // distances to its max(1, |among| - f - 2) nearest others.
  std::vector<double> Scores(const std::vector<int>& among, int n) const {
    const int m = static_cast<int>(among.size());
    const int closest = std::max(1, m - o_.byzantine_clients - 2);
    std::vector<double> scores(m);
    std::vector<double> row(m);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < m; ++j) row[j] = distances_[among[i] * n + among[j]];
      std::sort(row.begin(), row.end());
      // row[0] is its distance to itself (0), as in Flower's argsort[1:].
      const int last = std::min(m, closest + 1);
      scores[i] = std::accumulate(row.begin() + std::min(1, m), row.begin() + last, 0.0);
    }
    return scores;
  }

  // Krum: out_ = the best-scored update; MultiKrum: the weighted mean of the
  // keepClients best.
  absl::Status KrumAverage(int n) {
    if (absl::Status s = Distances(n); !s.ok()) return s;
    const std::vector<int> all = AllOf(n);
    const std::vector<double> scores = Scores(all, n);
    std::vector<int> order = all;
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return scores[a] < scores[b]; });
    const int keep = rule_ == Rule::kKrum ? 1 : std::min(n, o_.keep_clients);
    order.resize(keep);
    double total = 0;
    for (int k : order) total += rule_ == Rule::kKrum ? 1.0 : weights_[k];
    std::vector<float> piece(block_);
    std::vector<double> sum(block_);
    for (uint64_t at = 0; at < floats_; at += block_) {
      const uint64_t len = std::min<uint64_t>(block_, floats_ - at);
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int k : order) {
        if (absl::Status s = spill_.Read(k, at, len, piece.data()); !s.ok()) return s;
        const double w = rule_ == Rule::kKrum ? 1.0 : weights_[k];
        for (uint64_t i = 0; i < len; ++i) sum[i] += w * piece[i];
      }
      for (uint64_t i = 0; i < len; ++i) out_[at + i] = static_cast<float>(sum[i] / total);
    }
    return absl::OkStatus();
  }

  // Bulyan: Krum n - 2f times, then the coordinate-wise mean of the n - 4f
  // values of the chosen updates closest to their median.
  absl::Status Bulyan(int n) {
    const int f = o_.byzantine_clients;
    if (n < 4 * f + 3) {
      return WithReason(
          absl::FailedPreconditionError(absl::StrCat(
              "bulyan: ", n, " updates, fewer than 4 * byzantineClients + 3 (", 4 * f + 3, ")")),
          "TooFewUpdates");
    }
    if (absl::Status s = Distances(n); !s.ok()) return s;
    std::vector<int> remaining = AllOf(n);
    std::vector<int> chosen;
    for (int round = 0; round < n - 2 * f; ++round) {
      const std::vector<double> scores = Scores(remaining, n);
      const size_t best = std::min_element(scores.begin(), scores.end()) - scores.begin();
      chosen.push_back(remaining[best]);
      remaining.erase(remaining.begin() + best);
    }
    return Coordinatewise(chosen, n - 4 * f);
  }

  const std::string name_;
  const Rule rule_;
  const spec::RobustAggregation o_;
  UpdateSpill spill_;
  uint64_t floats_ = 0;
  uint64_t block_ = 1;
  std::vector<double> weights_;    // of the updates in the spill, in order
  std::vector<float> out_;         // the new global
  std::vector<float> blocks_;      // one block of each update read
  std::vector<double> distances_;  // n x n, Krum and Bulyan
};

}  // namespace

absl::StatusOr<std::unique_ptr<AggregationStrategy>> NewRobustStrategy(
    const std::string& name, const spec::RobustAggregation& options,
    const std::string& spill_dir) {
  Rule rule;
  if (name == "median") {
    rule = Rule::kMedian;
  } else if (name == "trimmedmean") {
    rule = Rule::kTrimmedMean;
  } else if (name == "krum") {
    rule = Rule::kKrum;
  } else if (name == "multikrum") {
    rule = Rule::kMultiKrum;
  } else if (name == "bulyan") {
    rule = Rule::kBulyan;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("no robust aggregation '", name, "'"));
  }
  if (spill_dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " keeps each round's updates on disk and needs a directory for them"));
  }
  return std::make_unique<RobustStrategy>(name, rule, options, spill_dir);
}

}  // namespace braid::aggregator
