// Client-level DP-FedAvg, step 2: Gaussian noise calibrated to the clip norm.
//
// Central DP: the aggregator adds N(0, sigma^2) once to the sum of clipped
// updates, sigma = noise_multiplier * clip_norm (CentralNoiseStddev).
// Distributed DP (with secure aggregation, where no one sees the sum before
// noise): each of n clients adds N(0, sigma^2 / n) to its clipped update
// before masking (DistributedNoiseStddev); the sum of the n independent
// shares is N(0, sigma^2). If only m < n clients survive, the sum carries
// sigma^2 * m / n: pass n = the fewest clients a round may complete with
// (the secure-aggregation threshold) to keep the guarantee under dropout, at
// the cost of more noise when all survive. Add the noise *before*
// quantization and choose the quantization clip range to cover it.
//
// Caveat: samples are floating-point Box-Muller normals; their low bits are
// not exactly Gaussian (Mironov 2012). The accountant assumes exact ones.
#ifndef BRAID_CORE_DP_GAUSSIAN_NOISE_H_
#define BRAID_CORE_DP_GAUSSIAN_NOISE_H_

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace braid::dp {

double CentralNoiseStddev(double noise_multiplier, double clip_norm);
double DistributedNoiseStddev(double noise_multiplier, double clip_norm, uint32_t num_clients);

// A source of standard normal samples. Not thread-safe; one per thread.
class GaussianSampler final {
 public:
  // Production: uniform bits from libsodium's randombytes (the OS CSPRNG).
  // kInternal if libsodium cannot initialise (no noise is ever drawn then).
  static absl::StatusOr<GaussianSampler> Secure();
  // Tests and reproducible runs only: ChaCha20 keystream of `seed`; the same
  // seed gives the same samples on every machine.
  static absl::StatusOr<GaussianSampler> Seeded(uint64_t seed);

  double Next();  // N(0, 1)
  // update[i] += stddev * N(0, 1), independently per element.
  void AddNoise(absl::Span<float> update, double stddev);

 private:
  explicit GaussianSampler(bool seeded, uint64_t seed);
  uint64_t NextBits();
  void Refill();

  bool seeded_;
  std::array<unsigned char, 32> key_{};
  uint32_t block_ = 0;
  std::array<uint64_t, 512> buf_{};
  size_t pos_ = 512;
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace braid::dp

#endif  // BRAID_CORE_DP_GAUSSIAN_NOISE_H_
