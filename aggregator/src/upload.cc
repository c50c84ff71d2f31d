#include "braid/aggregator/upload.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "braid/aggregator/fedavg.h"

namespace braid::aggregator {

Upload::Upload(UploadPool* pool, std::unique_ptr<std::vector<float>> buffer,
               std::string client_id, int round, int64_t num_examples, bool masked)
    : pool_(pool),
      buffer_(std::move(buffer)),
      client_id_(std::move(client_id)),
      round_(round),
      num_examples_(num_examples),
      masked_(masked) {}

Upload::~Upload() { pool_->Release(std::move(buffer_)); }

absl::Status Upload::Write(uint64_t offset, const void* data, uint64_t len) {
  if (offset != received_) {
    return absl::InvalidArgumentError(
        absl::StrCat("update chunk at byte ", offset, " but ", received_, " bytes received so far"));
  }
  if (len > total_bytes() - received_) {
    return absl::InvalidArgumentError(absl::StrCat("update is larger than the model's ",
                                                   total_bytes(), " bytes"));
  }
  std::memcpy(reinterpret_cast<char*>(buffer_->data()) + received_, data, len);
  received_ += len;
  if (masked_) return absl::OkStatus();
  // Check the values this write completed (a value may span two writes).
  const uint64_t complete = received_ / sizeof(float);
  bool finite = true;
  const double sum_squares = SumSquares(buffer_->data() + checked_, complete - checked_, &finite);
  if (!finite) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update holds a value that is not finite near byte ", checked_ * sizeof(float)));
  }
  checked_ = complete;
  sum_squares_ += sum_squares;
  return absl::OkStatus();
}

double Upload::l2_norm() const { return std::sqrt(sum_squares_); }

absl::StatusOr<std::unique_ptr<std::vector<float>>> UploadPool::Acquire(absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return handed_out_ < slots_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&available), wait)) {
    return absl::UnavailableError(absl::StrCat("all ", slots_,
                                               " upload slots are busy; retry the upload"));
  }
  ++handed_out_;
  if (!free_.empty()) {
    auto buffer = std::move(free_.back());
    free_.pop_back();
    return buffer;
  }
  mu_.Unlock();  // allocate (and fault in) outside the lock
  auto buffer = std::make_unique<std::vector<float>>(floats_);
  mu_.Lock();
  return buffer;
}

void UploadPool::Release(std::unique_ptr<std::vector<float>> buffer) {
  if (!buffer) return;
  absl::MutexLock lock(&mu_);
  --handed_out_;
  free_.push_back(std::move(buffer));
}

}  // namespace braid::aggregator
