#include "braid/aggregator/upload.h"

#include <algorithm>
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
  char* bytes = reinterpret_cast<char*>(buffer_->data());
  const char* in = static_cast<const char*>(data);
  if (masked_) {
    std::memcpy(bytes + received_, in, len);
    received_ += len;
    return absl::OkStatus();
  }
  // The bytes that finish a value the previous write began.
  const uint64_t head = std::min<uint64_t>(len, (sizeof(float) - received_ % sizeof(float)) %
                                                    sizeof(float));
  std::memcpy(bytes + received_, in, head);
  received_ += head;
  if (absl::Status s = Check(received_ / sizeof(float) - checked_, nullptr); !s.ok()) return s;
  // Whole values: copied and checked in one pass.
  const uint64_t whole = (len - head) / sizeof(float);
  if (absl::Status s = Check(whole, in + head); !s.ok()) return s;
  received_ += whole * sizeof(float);
  // The first bytes of a value the next write finishes.
  const uint64_t tail = len - head - whole * sizeof(float);
  std::memcpy(bytes + received_, in + head + whole * sizeof(float), tail);
  received_ += tail;
  return absl::OkStatus();
}

absl::Status Upload::Check(uint64_t values, const char* copy_from) {
  float* at = buffer_->data() + checked_;
  bool finite = true;
  const double sum_squares = copy_from == nullptr ? SumSquares(at, values, &finite)
                                                  : CopySumSquares(at, copy_from, values, &finite);
  if (!finite) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update holds a value that is not finite near byte ", checked_ * sizeof(float)));
  }
  checked_ += values;
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

void UploadPool::Reserve() {
  absl::MutexLock lock(&mu_);
  while (handed_out_ + static_cast<int>(free_.size()) < slots_) {
    free_.push_back(std::make_unique<std::vector<float>>(floats_));
  }
}

void UploadPool::Release(std::unique_ptr<std::vector<float>> buffer) {
  if (!buffer) return;
  absl::MutexLock lock(&mu_);
  --handed_out_;
  free_.push_back(std::move(buffer));
}

}  // namespace braid::aggregator
