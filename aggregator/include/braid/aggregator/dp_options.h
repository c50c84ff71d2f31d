// Client-level differential privacy options, shared by the round engine
// (the privacy budget) and the DP strategies (clipping, noise).
#ifndef BRAID_AGGREGATOR_DP_OPTIONS_H_
#define BRAID_AGGREGATOR_DP_OPTIONS_H_

#include <cstdint>

namespace braid::aggregator {

// Client-level DP-FedAvg with central noise (McMahan et al. 2018), from
// spec.privacy.differentialPrivacy. With `enabled`, each FIT update is
// clipped to clip_norm by the aggregator (workers clip too), folded with
// weight 1 (uniform, not by examples), N(0, (noise_multiplier *
// clip_norm)^2) is added to each coordinate of the round's sum, and the sum
// is divided by the fixed number of clients sampled for the round (not by
// how many reported: dropouts add zeros, so one client's influence on the
// average stays <= clip_norm / sampled). Before each round the RDP
// accountant (sampling rate q = sampled / live clients, one sampled
// Gaussian event per round) decides whether the round may run; if it would
// take epsilon at delta above max_epsilon, the job ends with reason
// PrivacyBudgetExhausted: Succeeded when at least one round was aggregated,
// Failed when none could run.
struct DpOptions {
  bool enabled = false;
  double clip_norm = 1;
  double noise_multiplier = 1;
  double delta = 1e-5;
  double max_epsilon = 1;
  // false: the clients add the noise (distributed DP under secure
  // aggregation); the aggregator then neither clips nor adds noise.
  bool central_noise = true;
  // Tests only: a seeded noise source; 0 = the OS CSPRNG (production).
  uint64_t noise_seed = 0;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_DP_OPTIONS_H_
