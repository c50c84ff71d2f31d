// Privacy accounting for client-level DP-FedAvg: Renyi DP of the
// Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, "Renyi
// Differential Privacy of the Sampled Gaussian Mechanism"), composed over
// rounds and converted to (epsilon, delta) exactly as Google's dp-accounting
// 0.4.4 RdpAccountant does (dp_accounting/rdp/rdp_privacy_accountant.py):
// the same default orders, the same log-space series for integer and
// fractional orders, and the conversion of Balle et al. 2020 (Prop. 12)
// with the KL fallback. A test checks epsilon against dp-accounting within 1%.
//
// In federated terms: q = expected fraction of clients sampled per round
// (Poisson), z = noise_multiplier (noise stddev / clipNorm), one event per
// round; the neighbouring relation is add-or-remove one client.
#ifndef BRAID_CORE_DP_RDP_ACCOUNTANT_H_
#define BRAID_CORE_DP_RDP_ACCOUNTANT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace braid::dp {

// dp-accounting's DEFAULT_RDP_ORDERS: 1.1..10.9 by 0.1, 11..63, 128, 256, 512, 1024.
std::vector<double> DefaultRdpOrders();

// RDP of one sampled Gaussian event at each order (may be +inf).
// kInvalidArgument: q outside [0, 1], z < 0, or an order <= 1.
absl::StatusOr<std::vector<double>> SampledGaussianRdp(double q, double noise_multiplier,
                                                       absl::Span<const double> orders);

// The smallest epsilon over the orders at `delta` (may be +inf).
// kInvalidArgument: delta outside [0, 1), or sizes differ.
absl::StatusOr<double> EpsilonFromRdp(absl::Span<const double> orders,
                                      absl::Span<const double> rdp, double delta);

// Whether the next round may start: epsilon after it would stay <= maxEpsilon.
struct BudgetCheck {
  bool allowed = false;
  double epsilon_spent = 0;       // after the rounds already composed
  double epsilon_after_next = 0;  // if one more round ran
};

// Accumulates rounds. Copyable; not thread-safe (guard it with the round's lock).
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = DefaultRdpOrders());

  // Composes `rounds` rounds at sampling rate q and noise multiplier z.
  // kInvalidArgument as SampledGaussianRdp, or rounds < 0; nothing changes then.
  absl::Status AddRounds(double q, double noise_multiplier, int64_t rounds = 1);
  int64_t rounds() const { return rounds_; }

  absl::StatusOr<double> Epsilon(double delta) const;

  // Answers "would running one more round (q, z) exceed max_epsilon at delta?".
  // allowed == epsilon_after_next <= max_epsilon. kInvalidArgument for bad
  // q/z/delta or max_epsilon not > 0.
  absl::StatusOr<BudgetCheck> CheckNextRound(double q, double noise_multiplier, double delta,
                                             double max_epsilon) const;

 private:
  std::vector<double> orders_;
  std::vector<double> rdp_;
  int64_t rounds_ = 0;
};

}  // namespace braid::dp

#endif  // BRAID_CORE_DP_RDP_ACCOUNTANT_H_
