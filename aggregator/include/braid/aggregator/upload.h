// One FIT update being received, and the pool of buffers that bounds how
// many are received at once (so memory stays O(model), not O(clients)).
#ifndef BRAID_AGGREGATOR_UPLOAD_H_
#define BRAID_AGGREGATOR_UPLOAD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace braid::aggregator {

class UploadPool;

// Bytes of one client's update, written in order. Returns its buffer to the
// pool when destroyed.
class Upload {
 public:
  // `masked`: the bytes are secure-aggregation ring elements, not floats
  // (no finiteness check, no norm).
  Upload(UploadPool* pool, std::unique_ptr<std::vector<float>> buffer, std::string client_id,
         int round, int64_t num_examples, bool masked = false);
  ~Upload();
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  // Appends `len` bytes (any number; a value may span two writes) that
  // must start at `offset` (== bytes received so far). InvalidArgument for a
  // gap, an overflow past the model's size, or a value that is not finite
  // (the update is refused before it can poison the sum). After an error
  // the upload is unusable.
  absl::Status Write(uint64_t offset, const void* data, uint64_t len);

  // L2 norm of the values received so far (checked against the job's bound
  // before the update is folded in).
  double l2_norm() const;

  bool complete() const { return received_ == total_bytes(); }
  uint64_t received() const { return received_; }
  uint64_t total_bytes() const { return buffer_->size() * sizeof(float); }
  const float* data() const { return buffer_->data(); }
  const std::string& client_id() const { return client_id_; }
  int round() const { return round_; }
  int64_t num_examples() const { return num_examples_; }
  bool masked() const { return masked_; }

 private:
  // Checks the next `values` floats after the checked ones, first copying
  // them from `copy_from` unless it is null (then they are in the buffer).
  absl::Status Check(uint64_t values, const char* copy_from);

  UploadPool* pool_;
  std::unique_ptr<std::vector<float>> buffer_;
  std::string client_id_;
  int round_;
  int64_t num_examples_;
  bool masked_;
  uint64_t received_ = 0;
  uint64_t checked_ = 0;  // values checked to be finite and counted in the norm
  double sum_squares_ = 0;
};

// At most `slots` model-sized buffers, allocated on first use and reused.
class UploadPool {
 public:
  UploadPool(int slots, size_t floats) : slots_(slots), floats_(floats) {}
  // A buffer, waiting up to `wait` for one; Unavailable after.
  absl::StatusOr<std::unique_ptr<std::vector<float>>> Acquire(absl::Duration wait);
  void Release(std::unique_ptr<std::vector<float>> buffer);
  // Allocates (and faults in) every slot's buffer not yet allocated, so
  // that Acquire does not.
  void Reserve();

 private:
  const int slots_;
  const size_t floats_;
  absl::Mutex mu_;
  int handed_out_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<std::vector<float>>> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_UPLOAD_H_
