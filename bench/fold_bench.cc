// How close FoldWeighted (sum += w * update, plus the update's sum of
// squares) comes to plain memory bandwidth on this machine.
//
// For each buffer size it times, on the same buffers in the same run and
// interleaved repetition by repetition (so noise from neighbours hits all
// three alike):
//   fold    FoldWeighted(sum, update, n, w)        reads update, reads+writes sum
//   plain   sum[i] += update[i], explicit SIMD     same memory traffic, no weight, no norm
//   memcpy  memcpy(scratch, update)                reads update, writes scratch
// and reports the median over the repetitions in GB/s of update bytes
// (n * 4 / seconds), plus the ratio fold / plain. Single thread.
//
// Usage: braid_fold_bench [--reps=15] [--sizes_mib=64,8]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "braid/aggregator/fedavg.h"

namespace {

using Clock = std::chrono::steady_clock;

// The reference loop: sum[i] += update[i], 16 floats per iteration with GCC
// vector extensions (memcpy compiles to unaligned vector moves), so it is
// vectorized at any optimization level.
typedef float V4 __attribute__((vector_size(16)));
inline V4 Load(const float* p) {
  V4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, V4 v) { std::memcpy(p, &v, sizeof(v)); }

__attribute__((noinline)) void PlainAdd(float* __restrict sum, const float* __restrict update,
                                        size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const V4 s0 = Load(sum + i) + Load(update + i);
    const V4 s1 = Load(sum + i + 4) + Load(update + i + 4);
    const V4 s2 = Load(sum + i + 8) + Load(update + i + 8);
    const V4 s3 = Load(sum + i + 12) + Load(update + i + 12);
    Store(sum + i, s0);
    Store(sum + i + 4, s1);
    Store(sum + i + 8, s2);
    Store(sum + i + 12, s3);
  }
  for (; i < n; ++i) sum[i] += update[i];
}

float* AllocFloats(size_t n) {
  const size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) {
    std::fprintf(stderr, "out of memory allocating %zu bytes\n", bytes);
    std::exit(1);
  }
  return p;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

struct Row {
  size_t mib;
  double fold, plain, copy;  // GB/s of update bytes, medians
};

Row Measure(size_t mib, int reps) {
  const size_t n = mib * (size_t{1} << 20) / sizeof(float);
  float* sum = AllocFloats(n);
  float* update = AllocFloats(n);
  float* scratch = AllocFloats(n);
  for (size_t i = 0; i < n; ++i) {
    update[i] = 0.001f * static_cast<float>(static_cast<int>(i % 2001) - 1000);
    sum[i] = 0.0f;
    scratch[i] = 0.0f;  // fault every page in before timing
  }
  // Each sample folds at least 64 MiB so small buffers are not timer-bound.
  const int inner = static_cast<int>(std::max<size_t>(1, 64 / mib));
  volatile double sink = 0;
  auto time_one = [&](int kernel) {
    const auto start = Clock::now();
    for (int k = 0; k < inner; ++k) {
      switch (kernel) {
        case 0:
          sink = sink + braid::aggregator::FoldWeighted(sum, update, n, 0.25f);
          break;
        case 1:
          PlainAdd(sum, update, n);
          break;
        default:
          std::memcpy(scratch, update, n * sizeof(float));
      }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return static_cast<double>(n) * sizeof(float) * inner / seconds / 1e9;
  };
  for (int warm = 0; warm < 2; ++warm) {
    for (int kernel = 0; kernel < 3; ++kernel) time_one(kernel);
  }
  std::vector<double> gbps[3];
  for (int r = 0; r < reps; ++r) {
    for (int j = 0; j < 3; ++j) {
      const int kernel = (r + j) % 3;  // rotate the order between repetitions
      gbps[kernel].push_back(time_one(kernel));
    }
  }
  std::free(sum);
  std::free(update);
  std::free(scratch);
  return {mib, Median(gbps[0]), Median(gbps[1]), Median(gbps[2])};
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 15;
  std::vector<size_t> sizes = {64, 8};
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    command += " " + arg;
    if (arg.rfind("--reps=", 0) == 0) {
      reps = std::max(1, std::atoi(arg.c_str() + 7));
    } else if (arg.rfind("--sizes_mib=", 0) == 0) {
      sizes.clear();
      for (const char* p = arg.c_str() + 12; *p != '\0';) {
        char* end = nullptr;
        const unsigned long v = std::strtoul(p, &end, 10);
        if (end == p || v == 0) break;
        sizes.push_back(v);
        p = *end == ',' ? end + 1 : end;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--reps=15] [--sizes_mib=64,8]\n", argv[0]);
      return 2;
    }
  }

  std::vector<Row> rows;
  for (size_t mib : sizes) rows.push_back(Measure(mib, reps));

  std::printf("FoldWeighted vs memory bandwidth: GB/s of update bytes, median of %d "
              "repetitions after 2 warm-up passes, 1 thread\n\n",
              reps);
  std::printf(
      "| buffer (each) | fold GB/s | plain sum+=update GB/s | memcpy GB/s | fold/plain |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    std::printf("| %zu MiB | %.2f | %.2f | %.2f | %.2f |\n", r.mib, r.fold, r.plain, r.copy,
                r.fold / r.plain);
  }
  std::printf("\nfold and plain move 3 bytes of memory per update byte (read update, read "
              "and write sum), memcpy 2.\ncommand: %s\n",
              command.c_str());
  return 0;
}
