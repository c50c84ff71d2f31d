#include "braid/core/dp/rdp_accountant.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "braid/core/status_macros.h"

namespace braid::dp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log(exp(x) + exp(y)).
double LogAdd(double x, double y) {
  const double a = std::min(x, y), b = std::max(x, y);
  if (a == -kInf) return b;
  return std::log1p(std::exp(a - b)) + b;
}

double LogComb(double n, double k) {
  return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1);
}

// log of the standard normal CDF, ported from scipy's (cephes) log_ndtr.
double LogNdtr(double a) {
  const double ndtr_neg = 0.5 * std::erfc(a / M_SQRT2);  // Phi(-a)
  if (a > 6) return -ndtr_neg;                          // log(1 - x) ~ -x
  if (a > -20) return std::log(0.5 * std::erfc(-a / M_SQRT2));
  const double log_lhs = -0.5 * a * a - std::log(-a) - 0.5 * std::log(2 * M_PI);
  double last_total = 0, rhs = 1, numerator = 1, denom_factor = 1;
  const double denom_cons = 1.0 / (a * a);
  int sign = 1;
  for (int i = 1; std::fabs(last_total - rhs) > DBL_EPSILON && i < 1000; ++i) {
    last_total = rhs;
    sign = -sign;
    denom_factor *= denom_cons;
    numerator *= 2 * i - 1;
    rhs += sign * numerator * denom_factor;
  }
  return log_lhs + std::log(rhs);
}

double LogErfc(double x) { return std::log(2.0) + LogNdtr(-x * M_SQRT2); }

double LogAInt(double q, double sigma, int alpha) {
  double log_a = -kInf;
  const double log1mq = std::log1p(-q);
  for (int i = 0; i <= alpha; ++i) {
    const double log_coef = LogComb(alpha, i) + i * std::log(q) + (alpha - i) * log1mq;
    const double s = log_coef + (static_cast<double>(i) * i - i) / (2 * sigma * sigma);
    log_a = LogAdd(log_a, s);
  }
  return log_a;
}

double LogAFrac(double q, double sigma, double alpha) {
  double log_a0 = -kInf, log_a1 = -kInf;
  const double z0 = sigma * sigma * std::log(1 / q - 1) + .5;
  const double log1mq = std::log1p(-q);
  for (int i = 0;; ++i) {
    const double log_coef = LogComb(alpha, i);
    const double j = alpha - i;
    const double log_t0 = log_coef + i * std::log(q) + j * log1mq;
    const double log_t1 = log_coef + j * std::log(q) + i * log1mq;
    const double log_e0 = std::log(.5) + LogErfc((i - z0) / (M_SQRT2 * sigma));
    const double log_e1 = std::log(.5) + LogErfc((z0 - j) / (M_SQRT2 * sigma));
    const double log_s0 = log_t0 + (static_cast<double>(i) * i - i) / (2 * sigma * sigma) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    log_a0 = LogAdd(log_a0, log_s0);
    log_a1 = LogAdd(log_a1, log_s1);
    if (std::max(log_s0, log_s1) < -30) break;
  }
  return LogAdd(log_a0, log_a1);
}

absl::Status CheckMechanism(double q, double z) {
  if (!(q >= 0 && q <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("dp accountant: sampling rate must be in [0, 1], got %g", q));
  }
  if (!(z >= 0) || !std::isfinite(z)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("differentialPrivacy.noiseMultiplier: must be >= 0, got %g", z));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<double> DefaultRdpOrders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.);
  for (int a = 11; a < 64; ++a) orders.push_back(a);
  for (double a : {128, 256, 512, 1024}) orders.push_back(a);
  return orders;
}

absl::StatusOr<std::vector<double>> SampledGaussianRdp(double q, double noise_multiplier,
                                                       absl::Span<const double> orders) {
  BRAID_RETURN_IF_ERROR(CheckMechanism(q, noise_multiplier));
  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (double alpha : orders) {
    if (!(alpha > 1)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("dp accountant: RDP orders must be > 1, got %g", alpha));
    }
    if (q == 0) {
      rdp.push_back(0);
    } else if (std::isinf(alpha) || noise_multiplier == 0) {
      rdp.push_back(kInf);
    } else if (q == 1) {
      rdp.push_back(alpha / (2 * noise_multiplier * noise_multiplier));
    } else if (alpha == std::floor(alpha)) {
      rdp.push_back(LogAInt(q, noise_multiplier, static_cast<int>(alpha)) / (alpha - 1));
    } else {
      rdp.push_back(LogAFrac(q, noise_multiplier, alpha) / (alpha - 1));
    }
  }
  return rdp;
}

absl::StatusOr<double> EpsilonFromRdp(absl::Span<const double> orders,
                                      absl::Span<const double> rdp, double delta) {
  if (!(delta >= 0 && delta < 1)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("differentialPrivacy.delta: must be in [0, 1), got %g", delta));
  }
  if (orders.size() != rdp.size() || orders.empty()) {
    return absl::InvalidArgumentError("dp accountant: orders and RDP values differ in length");
  }
  if (delta == 0) {
    return std::all_of(rdp.begin(), rdp.end(), [](double r) { return r == 0; }) ? 0.0 : kInf;
  }
  double best = kInf;
  for (size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i], r = rdp[i];
    double eps;
    if (r < 0) {
      eps = 0;
    } else if (delta * delta + std::expm1(-r) > 0) {
      eps = 0;  // KL bound: delta <= sqrt(1 - exp(-KL))
    } else if (a > 1.01) {
      eps = r + std::log1p(-1 / a) - std::log(delta * a) / (a - 1);
    } else {
      eps = kInf;
    }
    best = std::min(best, eps);
  }
  return std::max(0.0, best);
}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {}

absl::Status RdpAccountant::AddRounds(double q, double noise_multiplier, int64_t rounds) {
  if (rounds < 0) return absl::InvalidArgumentError("dp accountant: rounds must be >= 0");
  BRAID_ASSIGN_OR_RETURN(std::vector<double> one, SampledGaussianRdp(q, noise_multiplier, orders_));
  for (size_t i = 0; i < rdp_.size(); ++i) {
    if (rounds > 0) rdp_[i] += static_cast<double>(rounds) * one[i];
  }
  rounds_ += rounds;
  return absl::OkStatus();
}

absl::StatusOr<double> RdpAccountant::Epsilon(double delta) const {
  return EpsilonFromRdp(orders_, rdp_, delta);
}

absl::StatusOr<BudgetCheck> RdpAccountant::CheckNextRound(double q, double noise_multiplier,
                                                          double delta, double max_epsilon) const {
  if (!(max_epsilon > 0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "differentialPrivacy.maxEpsilon: must be > 0, got %g", max_epsilon));
  }
  BudgetCheck check;
  BRAID_ASSIGN_OR_RETURN(check.epsilon_spent, Epsilon(delta));
  RdpAccountant next = *this;
  BRAID_RETURN_IF_ERROR(next.AddRounds(q, noise_multiplier, 1));
  BRAID_ASSIGN_OR_RETURN(check.epsilon_after_next, next.Epsilon(delta));
  check.allowed = check.epsilon_after_next <= max_epsilon;
  return check;
}

}  // namespace braid::dp
