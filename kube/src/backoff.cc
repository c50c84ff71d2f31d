#include "braid/kube/backoff.h"

#include <algorithm>
#include <chrono>

namespace braid::kube {
namespace {

// splitmix64: small, good enough for jitter, deterministic under a seed.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

Backoff::Backoff(BackoffOptions options, uint64_t seed)
    : options_(options),
      current_(options.initial),
      state_(seed != 0 ? seed
                       : static_cast<uint64_t>(
                             std::chrono::steady_clock::now().time_since_epoch().count()) ^
                             reinterpret_cast<uintptr_t>(this)) {}

absl::Duration Backoff::Next() {
  const absl::Duration d = std::min(current_, options_.max);
  current_ = std::min(current_ * options_.multiplier, options_.max);
  const double jitter = std::clamp(options_.jitter, 0.0, 1.0);
  const double u = static_cast<double>(NextRandom(state_) >> 11) / 9007199254740992.0;  // [0,1)
  return d * (1.0 - jitter * u);
}

void Backoff::Reset() { current_ = options_.initial; }

}  // namespace braid::kube
