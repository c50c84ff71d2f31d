#include "braid/aggregator/upload.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "braid/aggregator/fedavg.h"

namespace braid::aggregator {

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}

Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256Stream::Update(const void* data, size_t len) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, len);
}

std::string Sha256Stream::Finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out, &n);
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string Sha256(const void* data, size_t len) {
  Sha256Stream s;
  s.Update(data, len);
  return s.Finish();
}

Upload::Upload(UploadPool* pool, UploadPool::Held slot, std::string client_id, int round,
               int64_t num_examples, bool masked)
    : pool_(pool),
      held_(slot),
      client_id_(std::move(client_id)),
      round_(round),
      num_examples_(num_examples),
      masked_(masked) {}

Upload::~Upload() {
  if (!handed_over_) pool_->HandOver(held_, /*reads=*/false);
  Consumed(total_bytes());
}

void Upload::HandOver() {
  if (handed_over_ || !complete()) return;
  handed_over_ = true;
  pool_->HandOver(held_, /*reads=*/true);
}

void Upload::Consumed(uint64_t bytes) { pool_->Consumed(held_, bytes); }

absl::Status Upload::Write(uint64_t offset, const void* data, uint64_t len) {
  if (offset != received_) {
    return absl::InvalidArgumentError(
        absl::StrCat("update chunk at byte ", offset, " but ", received_, " bytes received so far"));
  }
  if (len > total_bytes() - received_) {
    return absl::InvalidArgumentError(absl::StrCat("update is larger than the model's ",
                                                   total_bytes(), " bytes"));
  }
  // The slot's previous holder may still be folding the bytes ahead.
  if (received_ + len > writable_) writable_ = pool_->AwaitWritable(held_.slot, received_ + len);
  char* bytes = reinterpret_cast<char*>(held_.slot->buffer.data());
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
  float* at = held_.slot->buffer.data() + checked_;
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

absl::Status Upload::CheckDigest() const {
  if (digest_.empty()) return absl::OkStatus();
  const std::string got = Sha256(data(), received_);
  if (got == digest_) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the update's ", received_, " bytes have SHA-256 ", absl::BytesToHexString(got),
      ", not the digest its header announced (", absl::BytesToHexString(digest_),
      "); nothing of it was folded: upload it again from the start"));
}

absl::StatusOr<UploadPool::Held> UploadPool::Acquire(absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return FreeSlot() != nullptr; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&available), wait)) {
    return absl::UnavailableError(absl::StrCat("all ", slots_,
                                               " upload slots are busy; retry the upload"));
  }
  Slot* slot = FreeSlot();
  slot->held = true;
  return Held{slot, ++slot->holders};
}

UploadPool::Slot* UploadPool::FreeSlot() {
  for (const auto& slot : all_) {
    if (!slot->held) return slot.get();
  }
  return nullptr;
}

void UploadPool::Reserve() {
  absl::MutexLock lock(&mu_);
  while (static_cast<int>(all_.size()) < slots_) {
    auto slot = std::make_unique<Slot>();
    slot->buffer.assign(floats_, 0.0f);
    slot->writable = floats_ * sizeof(float);
    all_.push_back(std::move(slot));
  }
}

void UploadPool::HandOver(const Held& held, bool reads) {
  absl::MutexLock lock(&mu_);
  held.slot->held = false;
  if (reads) {
    held.slot->reader = held.holder;
    held.slot->writable = 0;
  }
}

void UploadPool::Consumed(const Held& held, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (held.slot->reader == held.holder) {
    held.slot->writable = std::max(held.slot->writable, bytes);
  }
}

uint64_t UploadPool::AwaitWritable(Slot* slot, uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  auto ready = [slot, bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return slot->writable >= bytes;
  };
  mu_.Await(absl::Condition(&ready));
  return slot->writable;
}

}  // namespace braid::aggregator
