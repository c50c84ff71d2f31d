// A round's updates kept whole on disk, for the strategies that need every
// one of them at once (robust aggregation): each folded update is written to
// a file as it is read, so the aggregator's memory stays O(model) whatever
// the number of clients, and read back later in column blocks. Internal to
// the aggregator. Thread-compatible.
#ifndef BRAID_AGGREGATOR_SRC_UPDATE_SPILL_H_
#define BRAID_AGGREGATOR_SRC_UPDATE_SPILL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "braid/aggregator/upload.h"

namespace braid::aggregator {

class UpdateSpill {
 public:
  // `dir` holds the file (made if missing); it is created on first use.
  explicit UpdateSpill(std::string dir) : dir_(std::move(dir)) {}
  ~UpdateSpill();
  UpdateSpill(const UpdateSpill&) = delete;
  UpdateSpill& operator=(const UpdateSpill&) = delete;

  // Empties the file for a round of `floats`-value updates.
  absl::Status Reset(uint64_t floats);
  // Writes `update` (Reset's floats) as the next one, a piece at a time,
  // marking each piece consumed once written. On error nothing of it counts.
  absl::Status Append(Upload& update);
  int count() const { return count_; }
  // Reads `n` values of update `k` from value `at` into `out`.
  absl::Status Read(int k, uint64_t at, uint64_t n, float* out) const;

 private:
  const std::string dir_;
  std::string path_;
  int fd_ = -1;
  uint64_t floats_ = 0;
  int count_ = 0;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_SRC_UPDATE_SPILL_H_
