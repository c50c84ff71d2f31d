// Server-side optimizers over the round's average, as Flower applies them
// (flwr.server.strategy FedAvgM, FedAdam, FedYogi, FedAdagrad; Reddi et al.
// 2021, "Adaptive Federated Optimization"; Hsu et al. 2019 for FedAvgM).
// The inner strategy (FedAvg, DP-FedAvg or the secure-aggregation sum)
// makes the round's average update d = x_avg - x, with x the old global
// (the "pseudo-gradient" with an update's sign). Each of those makes its new
// global as the old one plus that average, so given a reader of zeros for
// the old global its Finish returns d itself, without the float32 rounding
// of x_avg - x. Then:
//   fedavgm     m = d in the first round, else momentum * m + d;
//               x' = x + lr * m
//   fedadam     m = b1 m + (1 - b1) d;  v = b2 v + (1 - b2) d^2;
//               x' = x + lr * sqrt(1 - b2^(t+1)) / (1 - b1^(t+1)) * m / (sqrt(v) + tau)
//   fedyogi     m as fedadam;  v = v - (1 - b2) d^2 sign(v - d^2);
//               x' = x + lr * m / (sqrt(v) + tau)
//   fedadagrad  m as fedadam;  v = v + d^2;  x' = x + lr * m / (sqrt(v) + tau)
// with m and v starting at 0 and t the round (1-based, Flower's
// server_round, so FedAdam's bias correction uses t + 1 as Flower does).
// Each element is computed in double from float32 state; m and v are kept
// (and checkpointed) as float32, two model-sized buffers.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/strategy.h"
#include "strategies.h"

namespace braid::aggregator {
namespace {

// Old global weights are read this many floats at a time.
constexpr size_t kPieceFloats = 1 << 16;
constexpr char kStateMagic[] = "braid-server-optimizer-v1";

enum class Rule { kMomentum, kAdam, kYogi, kAdagrad };

class ServerOptimizerStrategy final : public AggregationStrategy {
 public:
  ServerOptimizerStrategy(std::string name, Rule rule, const spec::ServerOptimizer& options,
                          std::unique_ptr<AggregationStrategy> inner)
      : name_(std::move(name)), rule_(rule), o_(options), inner_(std::move(inner)) {}
  ServerOptimizerStrategy(const ServerOptimizerStrategy&) = delete;
  ServerOptimizerStrategy& operator=(const ServerOptimizerStrategy&) = delete;

  absl::string_view name() const override { return name_; }
  bool masked_input() const override { return inner_->masked_input(); }

  absl::Status BeginRound(const RoundBegin& round) override {
    round_ = round.round;
    floats_ = round.model_floats;
    return inner_->BeginRound(round);
  }

  absl::StatusOr<FoldResult> Fold(Upload& update) override { return inner_->Fold(update); }

  absl::StatusOr<absl::Span<const float>> Finish(const GlobalReader& old_global) override {
    const GlobalReader zeros = [](uint64_t, void* out, uint64_t len) {
      std::memset(out, 0, len);
      return absl::OkStatus();
    };
    absl::StatusOr<absl::Span<const float>> average = inner_->Finish(zeros);
    if (!average.ok()) return average.status();
    if (average->size() != floats_) {
      return absl::InternalError(absl::StrCat(name_, ": the average update holds ",
                                              average->size(), " values, the model ", floats_));
    }
    if (m_.empty()) {  // the first round: moments start at 0
      m_.assign(floats_, 0.0f);
      v_.assign(rule_ == Rule::kMomentum ? 0 : floats_, 0.0f);
    } else if (m_.size() != floats_) {
      return absl::DataLossError(absl::StrCat(name_, ": the restored optimizer state holds ",
                                              m_.size(), " values, the model ", floats_));
    }
    out_.resize(floats_);
    std::vector<float> old(std::min<uint64_t>(kPieceFloats, floats_));
    for (uint64_t at = 0; at < floats_; at += kPieceFloats) {
      const uint64_t n = std::min<uint64_t>(kPieceFloats, floats_ - at);
      if (absl::Status s = old_global(at * sizeof(float), old.data(), n * sizeof(float)); !s.ok()) {
        return s;
      }
      Step(old.data(), average->data() + at, at, n);
    }
    return absl::Span<const float>(out_);
  }

  std::string SaveState() const override {
    std::string state = kStateMagic;
    state.push_back('\0');
    state += name_;
    state.push_back('\0');
    AppendU64(&state, m_.size());
    AppendU64(&state, v_.size());
    for (const std::vector<float>* moments : {&m_, &v_}) {
      if (moments->empty()) continue;  // before the first round; fedavgm's v
      state.append(reinterpret_cast<const char*>(moments->data()),
                   moments->size() * sizeof(float));
    }
    const std::string inner = inner_->SaveState();
    AppendU64(&state, inner.size());
    return state + inner;
  }

  absl::Status RestoreState(absl::string_view state) override {
    if (state.empty()) return inner_->RestoreState("");
    const std::string header = absl::StrCat(kStateMagic, absl::string_view("\0", 1), name_,
                                            absl::string_view("\0", 1));
    if (state.substr(0, header.size()) != header) {
      return absl::DataLossError(absl::StrCat("the saved strategy state is not ", name_, "'s"));
    }
    state.remove_prefix(header.size());
    uint64_t m = 0, v = 0, inner = 0;
    if (!ReadU64(&state, &m) || !ReadU64(&state, &v) ||
        state.size() < (m + v) * sizeof(float) + sizeof(uint64_t)) {
      return absl::DataLossError(absl::StrCat("the saved ", name_, " state is truncated"));
    }
    if (v != (rule_ == Rule::kMomentum ? 0 : m)) {
      return absl::DataLossError(absl::StrCat("the saved ", name_, " state holds ", m,
                                              " first and ", v, " second moments"));
    }
    // Copied, not cast: the bytes need not be aligned for floats. fedavgm
    // keeps no v, and an empty vector's data() may be null, which memcpy
    // may not be given even for 0 bytes.
    m_.resize(m);
    v_.resize(v);
    if (m > 0) std::memcpy(m_.data(), state.data(), m * sizeof(float));
    if (v > 0) std::memcpy(v_.data(), state.data() + m * sizeof(float), v * sizeof(float));
    state.remove_prefix((m + v) * sizeof(float));
    if (!ReadU64(&state, &inner) || state.size() != inner) {
      return absl::DataLossError(absl::StrCat("the saved ", name_, " state is truncated"));
    }
    return inner_->RestoreState(state);
  }

 private:
  static void AppendU64(std::string* out, uint64_t value) {
    out->append(reinterpret_cast<const char*>(&value), sizeof(value));
  }
  static bool ReadU64(absl::string_view* in, uint64_t* value) {
    if (in->size() < sizeof(*value)) return false;
    std::memcpy(value, in->data(), sizeof(*value));
    in->remove_prefix(sizeof(*value));
    return true;
  }

  // One piece: old global `x`, the average update `avg`, `n` values from
  // `at`.
  void Step(const float* x, const float* avg, uint64_t at, uint64_t n) {
    float* m = m_.data() + at;
    float* out = out_.data() + at;
    if (rule_ == Rule::kMomentum) {
      for (uint64_t i = 0; i < n; ++i) {
        const double d = avg[i];
        const double mi = o_.momentum * m[i] + d;  // m = d in the first round (m = 0)
        m[i] = static_cast<float>(mi);
        out[i] = static_cast<float>(x[i] + o_.learning_rate * mi);
      }
      return;
    }
    float* v = v_.data() + at;
    double lr = o_.learning_rate;
    if (rule_ == Rule::kAdam) {
      const double t = round_ + 1.0;
      lr *= std::sqrt(1 - std::pow(o_.beta2, t)) / (1 - std::pow(o_.beta1, t));
    }
    for (uint64_t i = 0; i < n; ++i) {
      const double d = avg[i];
      const double d2 = d * d;
      const double mi = o_.beta1 * m[i] + (1 - o_.beta1) * d;
      double vi = v[i];
      switch (rule_) {
        case Rule::kAdam: vi = o_.beta2 * vi + (1 - o_.beta2) * d2; break;
        case Rule::kYogi: vi = vi - (1 - o_.beta2) * d2 * ((vi > d2) - (vi < d2)); break;
        case Rule::kAdagrad: vi = vi + d2; break;
        case Rule::kMomentum: break;
      }
      m[i] = static_cast<float>(mi);
      v[i] = static_cast<float>(vi);
      out[i] = static_cast<float>(x[i] + lr * mi / (std::sqrt(vi) + o_.tau));
    }
  }

  const std::string name_;
  const Rule rule_;
  const spec::ServerOptimizer o_;
  const std::unique_ptr<AggregationStrategy> inner_;
  int round_ = 0;
  uint64_t floats_ = 0;
  std::vector<float> m_, v_, out_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AggregationStrategy>> NewServerOptimizerStrategy(
    const std::string& name, const spec::ServerOptimizer& options,
    std::unique_ptr<AggregationStrategy> inner) {
  Rule rule;
  if (name == "fedavgm") {
    rule = Rule::kMomentum;
  } else if (name == "fedadam") {
    rule = Rule::kAdam;
  } else if (name == "fedyogi") {
    rule = Rule::kYogi;
  } else if (name == "fedadagrad") {
    rule = Rule::kAdagrad;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("no server optimizer '", name, "'"));
  }
  return std::make_unique<ServerOptimizerStrategy>(name, rule, options, std::move(inner));
}

}  // namespace braid::aggregator
