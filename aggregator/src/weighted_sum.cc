#include "weighted_sum.h"

#include <algorithm>
#include <cmath>

#include "braid/aggregator/fedavg.h"

namespace braid::aggregator {
namespace {

// Floats folded between two reports of progress to the slot's next holder
// (1 MiB): small enough that the next upload's writes follow the fold
// closely, large enough that the reports cost nothing.
constexpr size_t kFoldPieceFloats = (1 << 20) / sizeof(float);
// Bytes of the old global read at a time when applying the average.
constexpr uint64_t kApplyChunkBytes = 1 << 20;

}  // namespace

void WeightedSum::Reset(uint64_t floats) {
  if (sum_.size() != floats) {
    sum_.assign(floats, 0.0f);
  } else {
    std::fill(sum_.begin(), sum_.end(), 0.0f);
  }
}

double WeightedSum::Fold(Upload& update, float weight) {
  double sq = 0;
  for (size_t at = 0; at < sum_.size(); at += kFoldPieceFloats) {
    const size_t n = std::min(kFoldPieceFloats, sum_.size() - at);
    sq += FoldWeighted(sum_.data() + at, update.data() + at, n, weight);
    update.Consumed((at + n) * sizeof(float));
  }
  return std::sqrt(sq);
}

absl::Status ApplyToGlobal(std::vector<float>& sum, const GlobalReader& old_global,
                           double scale) {
  std::vector<float> base(kApplyChunkBytes / sizeof(float));
  const uint64_t bytes = sum.size() * sizeof(float);
  for (uint64_t off = 0; off < bytes; off += kApplyChunkBytes) {
    const uint64_t len = std::min(kApplyChunkBytes, bytes - off);
    if (absl::Status s = old_global(off, base.data(), len); !s.ok()) return s;
    float* dst = sum.data() + off / sizeof(float);
    ApplyAverage(dst, base.data(), dst, len / sizeof(float), scale);
  }
  return absl::OkStatus();
}

}  // namespace braid::aggregator
