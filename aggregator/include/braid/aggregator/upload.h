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

// SHA-256 of `len` bytes at `data`: the 32 raw bytes (the form of
// UpdateHeader.digest and TaskHeader.weights_digest).
std::string Sha256(const void* data, size_t len);

// SHA-256 over bytes fed a piece at a time. Not thread-safe.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(const void* data, size_t len);
  // The 32 raw bytes; the stream is spent after.
  std::string Finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// At most `slots` model-sized buffers, allocated by Reserve (which must
// come before Acquire: the round engine calls it when a round starts) and
// reused. A slot passes to the next upload as soon as its holder
// hands it over (Upload::HandOver: its bytes are all in and checked), while
// the holder still reads the buffer to fold it; the next holder overwrites
// only the bytes the previous one has marked consumed. Thread-safe.
class UploadPool {
 public:
  struct Slot {
    std::vector<float> buffer;
    bool held = false;     // by an upload that has not handed it over
    uint64_t holders = 0;  // uploads that have taken it: the last one's number
    uint64_t reader = 0;   // the upload whose bytes it holds, still read (0: none)
    uint64_t writable = 0;  // bytes the reader no longer reads
  };
  // A slot and the number of its holder.
  struct Held {
    Slot* slot;
    uint64_t holder;
  };

  UploadPool(int slots, size_t floats) : slots_(slots), floats_(floats) {}
  // A slot, waiting up to `wait` for one; Unavailable after (and always
  // before Reserve).
  absl::StatusOr<Held> Acquire(absl::Duration wait);
  // Allocates (and faults in) every slot's buffer not yet allocated.
  void Reserve();

  // For Upload: lets the next upload take the slot. `reads`: the holder's
  // bytes (all of them: it may say so only once it has written the whole
  // buffer) stay readable until it marks them Consumed; otherwise what the
  // slot's current reader has not consumed stays readable.
  void HandOver(const Held& held, bool reads);
  // For Upload: the reader `held` no longer reads the first `bytes`; a
  // no-op for a holder that is not the slot's reader.
  void Consumed(const Held& held, uint64_t bytes);
  // For Upload: waits until the first `bytes` of the slot's buffer may be
  // overwritten; returns how many may be (>= bytes).
  uint64_t AwaitWritable(Slot* slot, uint64_t bytes);

 private:
  // A reserved slot no upload holds, or null.
  Slot* FreeSlot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int slots_;
  const size_t floats_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Slot>> all_ ABSL_GUARDED_BY(mu_);
};

// Bytes of one client's update, written in order into a pool slot's
// buffer. Hands the slot over (if it has not) and marks all of it consumed
// when destroyed.
class Upload {
 public:
  // `masked`: the bytes are secure-aggregation ring elements, not floats
  // (no finiteness check, no norm).
  Upload(UploadPool* pool, UploadPool::Held slot, std::string client_id, int round,
         int64_t num_examples, bool masked = false);
  ~Upload();
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  // Appends `len` bytes (any number; a value may span two writes) that
  // must start at `offset` (== bytes received so far). InvalidArgument for a
  // gap, an overflow past the model's size, or a value that is not finite
  // (the update is refused before it can poison the sum). After an error
  // the upload is unusable. May wait for the slot's previous holder to
  // consume the bytes it overwrites.
  absl::Status Write(uint64_t offset, const void* data, uint64_t len);

  // L2 norm of the values received so far (checked against the job's bound
  // before the update is folded in).
  double l2_norm() const;

  // Resumable uploads (UpdateHeader.digest): the SHA-256 the client
  // announced for the whole update (32 bytes; empty: not resumable).
  void set_digest(std::string digest) { digest_ = std::move(digest); }
  const std::string& digest() const { return digest_; }
  // Marks the bytes received so far as having come in an earlier stream
  // (the round engine does, when a stream resumes this upload).
  void MarkResumed() { resumed_at_ = received_; }
  // Bytes that came in earlier streams (0: the upload was never resumed).
  uint64_t resumed_at() const { return resumed_at_; }
  // When the round engine first kept it as a partial upload (its stream
  // broke off); InfiniteFuture until then.
  absl::Time kept_since() const { return kept_since_; }
  void set_kept_since(absl::Time t) { kept_since_ = t; }
  // Once complete: OK when the bytes match digest() (always OK without a
  // digest); InvalidArgument naming both digests otherwise. Reads the
  // whole buffer once.
  absl::Status CheckDigest() const;

  // Once complete: lets the next upload take this one's slot while data()
  // stays readable; Consumed then tells the next one how far it may
  // overwrite (the destructor: all of it).
  void HandOver();
  void Consumed(uint64_t bytes);

  bool complete() const { return received_ == total_bytes(); }
  uint64_t received() const { return received_; }
  uint64_t total_bytes() const { return held_.slot->buffer.size() * sizeof(float); }
  const float* data() const { return held_.slot->buffer.data(); }
  const std::string& client_id() const { return client_id_; }
  int round() const { return round_; }
  int64_t num_examples() const { return num_examples_; }
  bool masked() const { return masked_; }
  // What the update weighs in its round, as the job decided it (the round
  // engine sets it from RoundWeights, claims.h, before the fold; a claim of
  // the client's never is). In (0, 1]; 1 until set.
  double weight() const { return weight_; }
  void set_weight(double weight) { weight_ = weight; }

 private:
  // Checks the next `values` floats after the checked ones, first copying
  // them from `copy_from` unless it is null (then they are in the buffer).
  absl::Status Check(uint64_t values, const char* copy_from);
  UploadPool* pool_;
  UploadPool::Held held_;
  std::string client_id_;
  int round_;
  int64_t num_examples_;
  bool masked_;
  std::string digest_;
  uint64_t resumed_at_ = 0;
  absl::Time kept_since_ = absl::InfiniteFuture();
  double weight_ = 1;
  bool handed_over_ = false;
  uint64_t writable_ = 0;  // bytes known to be writable
  uint64_t received_ = 0;
  uint64_t checked_ = 0;  // values checked to be finite and counted in the norm
  double sum_squares_ = 0;
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_UPLOAD_H_
