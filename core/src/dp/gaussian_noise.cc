#include "braid/core/dp/gaussian_noise.h"

#include <sodium.h>

#include <cmath>
#include <cstring>

namespace braid::dp {

double CentralNoiseStddev(double noise_multiplier, double clip_norm) {
  return noise_multiplier * clip_norm;
}

double DistributedNoiseStddev(double noise_multiplier, double clip_norm, uint32_t num_clients) {
  return noise_multiplier * clip_norm / std::sqrt(static_cast<double>(num_clients));
}

GaussianSampler::GaussianSampler(bool seeded, uint64_t seed) : seeded_(seeded) {
  for (int i = 0; i < 8; ++i) key_[i] = static_cast<unsigned char>(seed >> (8 * i));
}

absl::StatusOr<GaussianSampler> GaussianSampler::Secure() {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  return GaussianSampler(false, 0);
}

absl::StatusOr<GaussianSampler> GaussianSampler::Seeded(uint64_t seed) {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  return GaussianSampler(true, seed);
}

void GaussianSampler::Refill() {
  auto* bytes = reinterpret_cast<unsigned char*>(buf_.data());
  const size_t n = buf_.size() * sizeof(uint64_t);
  if (seeded_) {
    static const unsigned char kNonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    std::memset(bytes, 0, n);
    crypto_stream_chacha20_ietf_xor_ic(bytes, bytes, n, kNonce, block_, key_.data());
    block_ += static_cast<uint32_t>(n / 64);
  } else {
    randombytes_buf(bytes, n);
  }
  pos_ = 0;
}

uint64_t GaussianSampler::NextBits() {
  if (pos_ == buf_.size()) Refill();
  return buf_[pos_++];
}

double GaussianSampler::Next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // Box-Muller with u1 in (0, 1] and u2 in [0, 1), 53-bit uniforms.
  const double u1 = ((NextBits() >> 11) + 1) * 0x1.0p-53;
  const double u2 = (NextBits() >> 11) * 0x1.0p-53;
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * M_PI * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

void GaussianSampler::AddNoise(absl::Span<float> update, double stddev) {
  for (float& x : update) x = static_cast<float>(x + stddev * Next());
}

}  // namespace braid::dp
