// The worker's one source of seeded randomness: SplitMix64 (Steele, Lea,
// Flood 2014), a tiny, fully specified generator, so initial weights, eval
// splits and shuffles are bit-identical across machines and LibTorch builds.
// Internal to worker/.
#ifndef BRAID_WORKER_SEEDED_RANDOM_H_
#define BRAID_WORKER_SEEDED_RANDOM_H_

#include <cstdint>

namespace braid::worker {

// Advances `state` and returns the next 64 random bits.
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, range), range >= 1, without modulo bias (Lemire 2019).
inline uint64_t UniformBelow(uint64_t& state, uint64_t range) {
  unsigned __int128 m = static_cast<unsigned __int128>(SplitMix64(state)) * range;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < range) {
    const uint64_t threshold = (0 - range) % range;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(SplitMix64(state)) * range;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

}  // namespace braid::worker

#endif  // BRAID_WORKER_SEEDED_RANDOM_H_
