// The aggregator's Gaussian noise for central DP, shared by the strategies
// that add it. Internal to the aggregator.
#ifndef BRAID_AGGREGATOR_SRC_CENTRAL_NOISE_H_
#define BRAID_AGGREGATOR_SRC_CENTRAL_NOISE_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "braid/aggregator/dp_options.h"
#include "braid/core/dp/gaussian_noise.h"

namespace braid::aggregator {

// Thread-compatible.
class CentralNoise {
 public:
  explicit CentralNoise(const DpOptions& dp) : dp_(dp) {}
  // Adds N(0, (noise_multiplier * clip_norm)^2) to each element of `sum`.
  // The source: with dp.noise_seed, a fresh seeded stream per round
  // (reproducible rounds, tests only); else the OS CSPRNG, opened at the
  // first call and kept. An error (reason PrivacyNoiseFailed) if no source
  // can be had; `sum` is then unchanged.
  absl::Status Add(int round, absl::Span<float> sum);

 private:
  const DpOptions dp_;
  std::optional<dp::GaussianSampler> sampler_;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_SRC_CENTRAL_NOISE_H_
