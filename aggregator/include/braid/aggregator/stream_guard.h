// What one remote party may hold of the server: a progress deadline on each
// client stream (StreamWatchdog) and a cap on the calls each tenant has in
// flight (CallLimiter). The gRPC service uses both so that a tenant that
// opens streams and sends nothing, or parks many calls, holds a bounded
// number of server threads for a bounded time.
#ifndef BRAID_AGGREGATOR_STREAM_GUARD_H_
#define BRAID_AGGREGATOR_STREAM_GUARD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "braid/core/clock.h"

namespace braid::aggregator {

// Cancels streams that stop making progress. A watched stream has a
// deadline, `timeout` after it started; every Progress(bytes) moves the
// deadline later by timeout x bytes / bytes_per_timeout, but never past
// now + timeout. So a stream must deliver at least bytes_per_timeout per
// timeout on average (a trickle of small chunks does not keep it alive)
// and may be silent for at most `timeout`. While paused (e.g. queued for
// an upload slot, which is the server's doing) no deadline runs; Resume
// restarts it at now + timeout. When a deadline passes, the watchdog's
// thread (or Sweep) calls the stream's `cancel` once and marks it expired.
// Thread-safe.
class StreamWatchdog {
 public:
  class Watch;

  // `clock` (not owned; null = RealClock()) gives the deadlines. With
  // `run_thread`, a thread sweeps every `period` until destruction;
  // without, the caller calls Sweep (unit tests).
  StreamWatchdog(absl::Duration timeout, uint64_t bytes_per_timeout, Clock* clock = nullptr,
                 bool run_thread = true, absl::Duration period = absl::Milliseconds(100));
  ~StreamWatchdog();
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  // Starts watching a stream; `cancel` must be safe to call from another
  // thread while the Watch lives (e.g. grpc::ServerContext::TryCancel). The
  // Watch must not outlive the watchdog.
  std::unique_ptr<Watch> Start(std::function<void()> cancel);
  // Cancels every watched stream whose deadline is before `now`.
  void Sweep(absl::Time now);
  absl::Duration timeout() const { return timeout_; }

  class Watch {
   public:
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    void Progress(uint64_t bytes);
    void Pause();
    void Resume();
    // Whether the watchdog cancelled the stream.
    bool expired() const;

   private:
    friend class StreamWatchdog;
    Watch(StreamWatchdog* dog, uint64_t id) : dog_(dog), id_(id) {}
    StreamWatchdog* const dog_;
    const uint64_t id_;
  };

 private:
  struct Entry {
    std::function<void()> cancel;
    absl::Time deadline;
    bool paused = false;
    bool expired = false;
  };
  void Loop();

  const absl::Duration timeout_;
  const uint64_t bytes_per_timeout_;
  Clock* const clock_;
  const absl::Duration period_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// At most `per_key` calls in flight per key (a tenant). Thread-safe.
class CallLimiter {
 public:
  // Held while a call runs; releases its place when destroyed.
  class Permit {
   public:
    Permit(Permit&& other) noexcept : limiter_(other.limiter_), key_(std::move(other.key_)) {
      other.limiter_ = nullptr;
    }
    Permit& operator=(Permit&&) = delete;
    ~Permit();

   private:
    friend class CallLimiter;
    Permit(CallLimiter* limiter, std::string key) : limiter_(limiter), key_(std::move(key)) {}
    CallLimiter* limiter_;
    std::string key_;
  };

  // `limit(key)`: how many calls `key` may have in flight.
  explicit CallLimiter(std::function<int(const std::string& key)> limit)
      : limit_(std::move(limit)) {}
  // A place for one more call of `key`, or ResourceExhausted (the caller
  // holds its limit already) naming the key and the limit.
  absl::StatusOr<Permit> Acquire(const std::string& key);
  int InFlight(const std::string& key) const;

 private:
  void Release(const std::string& key);
  const std::function<int(const std::string&)> limit_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace braid::aggregator

#endif  // BRAID_AGGREGATOR_STREAM_GUARD_H_
