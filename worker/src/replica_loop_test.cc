// The replica loop against a real aggregator in this process: the
// aggregator library's RoundEngine and FederationService on a loopback
// port, constructed as braid-aggregator's main does, and a fake trainer
// behind the loop's ReplicaTrainer seam (no LibTorch).
#include "braid/worker/replica_loop.h"

#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "braid/aggregator/checkpoint.h"
#include "braid/aggregator/federation_service.h"
#include "braid/aggregator/round_engine.h"
#include "braid/core/cancel.h"
#include "braid/core/log.h"
#include "braid/core/safetensors.h"
#include "braid/core/testing/fake_clock.h"
#include "braid/core/wire_limits.h"
#include "braid/worker/federation_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::worker {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Each;
using ::testing::HasSubstr;

constexpr char kJob[] = "loop-job";

// The model the jobs start from: two float32 tensors.
TensorList InitialModel() {
  return {Tensor::F32("w", {4}, {1, 2, 3, 4}), Tensor::F32("b", {2}, {-1, 0})};
}

std::vector<float> Flat(const TensorList& tensors) {
  std::vector<float> out;
  for (const Tensor& t : tensors) out.insert(out.end(), t.f32(), t.f32() + t.NumElements());
  return out;
}

// A fresh directory name under the test's temp dir.
std::string FreshDir(const std::string& name) {
  static std::atomic<int> counter{0};
  return absl::StrCat(::testing::TempDir(), "/replica_loop_", name, "_", ::getpid(), "_",
                      counter++);
}

// Polls `pred` until it holds or `timeout` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// Engine options for job kJob; the test adjusts what it needs.
aggregator::EngineOptions Options(int rounds, int expected_clients) {
  aggregator::EngineOptions options;
  options.job = kJob;
  options.rounds = rounds;
  options.min_clients = 1;
  options.expected_clients = expected_clients;
  options.round_timeout = absl::Minutes(1);
  options.heartbeat_timeout = absl::Seconds(10);
  options.start_grace = absl::Hours(1);  // rounds start when every expected worker is live
  options.upload_slots = 1;
  return options;
}

// braid-aggregator in this process: checkpoint, engine, gRPC service on
// 127.0.0.1:`port` (0 = any), and the ticking thread main() runs.
class InProcessAggregator {
 public:
  static std::unique_ptr<InProcessAggregator> Start(const std::string& dir,
                                                    aggregator::EngineOptions options,
                                                    int port = 0) {
    const std::string initial = dir + ".initial.safetensors";
    if (absl::Status s = safetensors::Write(initial, InitialModel()); !s.ok()) {
      ADD_FAILURE() << s;
      return nullptr;
    }
    absl::StatusOr<aggregator::Checkpoint> cp = aggregator::Checkpoint::Open(dir, kJob, initial);
    if (!cp.ok()) {
      ADD_FAILURE() << cp.status();
      return nullptr;
    }
    auto agg = std::unique_ptr<InProcessAggregator>(new InProcessAggregator());
    agg->checkpoint_ = std::make_unique<aggregator::Checkpoint>(*std::move(cp));
    agg->engine_ =
        std::make_unique<aggregator::RoundEngine>(options, agg->checkpoint_.get(), nullptr);
    agg->service_ = std::make_unique<aggregator::FederationService>(
        kJob, agg->engine_.get(), nullptr, /*heartbeat_interval=*/absl::Milliseconds(200));
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                             &agg->port_);
    builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
    builder.SetMaxSendMessageSize(kMaxMessageBytes);
    builder.RegisterService(agg->service_.get());
    agg->server_ = builder.BuildAndStart();
    if (agg->server_ == nullptr || agg->port_ == 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1:" << port;
      return nullptr;
    }
    agg->ticker_ = std::thread([a = agg.get()] {
      while (!a->stop_.cancelled()) {
        a->engine_->Tick();
        a->engine_->AwaitCloseDue(absl::Milliseconds(50));
      }
    });
    return agg;
  }

  ~InProcessAggregator() { Stop(); }

  // Stops serving (calls in flight may finish within 5 s, as the task waits
  // of these tests do) and ticking. The engine stays readable.
  void Stop() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
    server_.reset();
    stop_.Cancel();
    ticker_.join();
  }

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  aggregator::RoundEngine& engine() { return *engine_; }
  // The global weights as checkpointed.
  std::vector<float> Weights() const {
    std::vector<float> out(checkpoint_->model_bytes() / sizeof(float));
    EXPECT_TRUE(checkpoint_->ReadWeights(0, out.data(), checkpoint_->model_bytes()).ok());
    return out;
  }

 private:
  InProcessAggregator() = default;

  std::unique_ptr<aggregator::Checkpoint> checkpoint_;
  std::unique_ptr<aggregator::RoundEngine> engine_;
  std::unique_ptr<aggregator::FederationService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  CancelToken stop_;
  std::thread ticker_;
};

// Adds `step` to every weight and reports fixed metrics; records what it
// was given. `before_fit` (optional) runs first, on the loop's thread.
class FakeTrainer final : public ReplicaTrainer {
 public:
  struct Call {
    int round = 0;
    std::vector<float> global;
  };

  float step = 0.5f;
  int64_t examples = 10;
  double train_loss = 1.5;
  UpdateMetrics eval{0.25, 0.75, 5};
  std::function<void(int round)> before_fit;
  // When set, Fit returns a delta of this many floats instead.
  std::optional<int> wrong_size;

  int64_t num_train_examples() const override { return examples; }

  absl::StatusOr<LocalUpdate> Fit(int round, const TensorList& global) override {
    if (before_fit) before_fit(round);
    {
      absl::MutexLock lock(&mu_);
      fits_.push_back({round, Flat(global)});
    }
    LocalUpdate update;
    update.delta = global;
    for (Tensor& t : update.delta) {
      for (int64_t i = 0; i < t.NumElements(); ++i) t.f32()[i] = step;
    }
    if (wrong_size) {
      update.delta = {Tensor::F32("w", {*wrong_size}, std::vector<float>(*wrong_size))};
    }
    update.num_examples = examples;
    update.train = {train_loss, 0, examples};
    return update;
  }

  absl::StatusOr<UpdateMetrics> Evaluate(int round, const TensorList& global) override {
    absl::MutexLock lock(&mu_);
    evals_.push_back({round, Flat(global)});
    return eval;
  }

  std::vector<Call> fits() const {
    absl::MutexLock lock(&mu_);
    return fits_;
  }
  std::vector<Call> evals() const {
    absl::MutexLock lock(&mu_);
    return evals_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Call> fits_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> evals_ ABSL_GUARDED_BY(mu_);
};

// Collects the log lines of the loops (braid::Log) while in scope.
class CapturedLog {
 public:
  CapturedLog() {
    previous_ = SetLogSink([this](LogSeverity, std::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    });
  }
  ~CapturedLog() { SetLogSink(std::move(previous_)); }
  std::vector<std::string> lines() const {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  int Count(const std::string& part) const {
    int n = 0;
    for (const std::string& line : lines()) n += line.find(part) != std::string::npos ? 1 : 0;
    return n;
  }

 private:
  LogSink previous_;
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

ReplicaLoopOptions LoopOptions(const std::string& tenant) {
  ReplicaLoopOptions options;
  options.job = kJob;
  options.tenant = tenant;
  options.replica = 0;
  options.task_wait = absl::Milliseconds(500);  // < InProcessAggregator::Stop's grace
  options.give_up = absl::Seconds(30);
  return options;
}

// A replica loop on a thread of its own.
class LoopThread {
 public:
  LoopThread(const std::string& address, ReplicaTrainer& trainer, ReplicaLoopOptions options)
      : client_(address), thread_([this, &trainer, options] {
          absl::Status s = RunReplicaLoop(client_, trainer, options, &cancel_);
          absl::MutexLock lock(&mu_);
          status_ = std::move(s);
        }) {}
  // Stops a loop that is still running (a failed test) and joins it.
  ~LoopThread() {
    cancel_.Cancel();
    thread_.join();
  }
  // The loop's result once it returned within `timeout`; nullopt if not.
  std::optional<absl::Status> Wait(absl::Duration timeout = absl::Seconds(60)) {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return status_.has_value(); };
    mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
    return status_;
  }

 private:
  FederationClient client_;
  CancelToken cancel_;
  absl::Mutex mu_;
  std::optional<absl::Status> status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts once the members above exist
};

TEST(ReplicaLoopTest, ATwoRoundJobRunsToDoneWithTheTrainersUpdates) {
  CapturedLog log;
  auto agg = InProcessAggregator::Start(FreshDir("two_rounds"), Options(2, 1));
  ASSERT_NE(agg, nullptr);
  FakeTrainer trainer;
  LoopThread loop(agg->address(), trainer, LoopOptions("st-mary"));

  std::optional<absl::Status> result = loop.Wait();
  ASSERT_TRUE(result.has_value()) << "the loop did not finish";
  EXPECT_TRUE(result->ok()) << *result;

  const aggregator::EngineStatus status = agg->engine().Status();
  EXPECT_EQ(status.phase, "Succeeded") << status.message;
  ASSERT_EQ(status.history.size(), 2u);
  for (const aggregator::RoundRecord& r : status.history) {
    EXPECT_EQ(r.participants, 1);
    EXPECT_EQ(r.tenants, std::vector<std::string>{"st-mary"});
    EXPECT_DOUBLE_EQ(r.train_loss, trainer.train_loss);
    EXPECT_DOUBLE_EQ(r.eval_loss, trainer.eval.loss);
    EXPECT_DOUBLE_EQ(r.eval_accuracy, trainer.eval.accuracy);
    EXPECT_EQ(r.eval_examples, trainer.eval.num_examples);
  }
  // Each round's update (+0.5 everywhere) reached the global model, and the
  // next task carried the new global back to the worker.
  const std::vector<float> initial = Flat(InitialModel());
  auto plus = [&](float d) {
    std::vector<float> v = initial;
    for (float& x : v) x += d;
    return v;
  };
  const std::vector<FakeTrainer::Call> fits = trainer.fits();
  ASSERT_EQ(fits.size(), 2u);
  EXPECT_EQ(fits[0].round, 1);
  EXPECT_EQ(fits[0].global, initial);
  EXPECT_EQ(fits[1].round, 2);
  EXPECT_EQ(fits[1].global, plus(0.5f));
  const std::vector<FakeTrainer::Call> evals = trainer.evals();
  ASSERT_EQ(evals.size(), 2u);
  EXPECT_EQ(evals[1].global, plus(1.0f));
  EXPECT_EQ(agg->Weights(), plus(1.0f));
  EXPECT_EQ(log.Count("worker st-mary/0: joined as"), 1);
  EXPECT_EQ(log.Count("worker st-mary/0: round 2 fit: loss 1.5 on 10 examples"), 1);
}

TEST(ReplicaLoopTest, AJobThatHasEndedIsNotRetried) {
  auto agg = InProcessAggregator::Start(FreshDir("ended"), Options(1, 1));
  ASSERT_NE(agg, nullptr);
  FakeTrainer first;
  LoopThread done(agg->address(), first, LoopOptions("st-mary"));
  ASSERT_TRUE(done.Wait().has_value());
  ASSERT_TRUE(agg->engine().Finished());

  // Join refuses a finished job with FAILED_PRECONDITION: no retry.
  FakeTrainer late;
  LoopThread loop(agg->address(), late, LoopOptions("charite"));
  std::optional<absl::Status> result = loop.Wait(absl::Seconds(10));
  ASSERT_TRUE(result.has_value()) << "a FAILED_PRECONDITION join was retried";
  EXPECT_EQ(result->code(), absl::StatusCode::kFailedPrecondition) << *result;
  EXPECT_THAT(std::string(result->message()), HasSubstr("has ended"));
}

TEST(ReplicaLoopTest, ARefusedUpdateEndsTheLoopWithoutRetry) {
  auto agg = InProcessAggregator::Start(FreshDir("refused"), Options(1, 1));
  ASSERT_NE(agg, nullptr);
  FakeTrainer trainer;
  trainer.wrong_size = 3;  // the model has 6 floats
  LoopThread loop(agg->address(), trainer, LoopOptions("st-mary"));
  std::optional<absl::Status> result = loop.Wait();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->code(), absl::StatusCode::kInvalidArgument) << *result;
  EXPECT_THAT(std::string(result->message()), HasSubstr("bytes, but the model has"));
  EXPECT_EQ(trainer.fits().size(), 1u);
}

TEST(ReplicaLoopTest, AfterAnAggregatorRestartTheWorkerJoinsAgainAndFinishesTheJob) {
  CapturedLog log;
  const std::string dir = FreshDir("restart");
  // The first aggregator waits for two workers, so the job stays in
  // round 1 with our worker joined and asking for tasks.
  auto first = InProcessAggregator::Start(dir, Options(1, 2));
  ASSERT_NE(first, nullptr);
  const int port = first->port();
  FakeTrainer trainer;
  LoopThread loop(first->address(), trainer, LoopOptions("st-mary"));
  ASSERT_TRUE(WaitFor([&] { return first->engine().Status().live_clients == 1; }));
  first->Stop();
  first.reset();

  // The restarted aggregator (same port and checkpoint) does not know the
  // worker's client id: NOT_FOUND, the worker joins again.
  auto second = InProcessAggregator::Start(dir, Options(1, 1), port);
  ASSERT_NE(second, nullptr);
  std::optional<absl::Status> result = loop.Wait();
  ASSERT_TRUE(result.has_value()) << "the loop did not finish";
  EXPECT_TRUE(result->ok()) << *result;
  const aggregator::EngineStatus status = second->engine().Status();
  EXPECT_EQ(status.phase, "Succeeded") << status.message;
  ASSERT_EQ(status.history.size(), 1u);
  EXPECT_EQ(status.history[0].participants, 1);
  EXPECT_EQ(log.Count("worker st-mary/0: joined as"), 2);
  EXPECT_EQ(log.Count("join again"), 1);
}

TEST(ReplicaLoopTest, AnAggregatorThatStaysDownIsRetriedUntilTheGiveUpTime) {
  // Joined, then the aggregator goes away for good.
  auto agg = InProcessAggregator::Start(FreshDir("down"), Options(1, 2));
  ASSERT_NE(agg, nullptr);
  FakeTrainer trainer;
  ReplicaLoopOptions options = LoopOptions("st-mary");
  options.give_up = absl::Seconds(2);
  LoopThread loop(agg->address(), trainer, options);
  ASSERT_TRUE(WaitFor([&] { return agg->engine().Status().live_clients == 1; }));
  const absl::Time down = absl::Now();
  agg->Stop();

  std::optional<absl::Status> result = loop.Wait();
  ASSERT_TRUE(result.has_value()) << "the loop did not give up";
  EXPECT_GE(absl::Now() - down, options.give_up);
  EXPECT_EQ(result->code(), absl::StatusCode::kUnavailable) << *result;
  EXPECT_THAT(std::string(result->message()), HasSubstr("aggregator unreachable for 2s"));
}

TEST(ReplicaLoopTest, JoinBacksOffWhileTheAggregatorIsUnreachableThenGivesUp) {
  // Nothing listens at the port of an aggregator that was stopped; the
  // loop's time is a fake clock, so two minutes pass at once.
  auto agg = InProcessAggregator::Start(FreshDir("never"), Options(1, 1));
  ASSERT_NE(agg, nullptr);
  const std::string address = agg->address();
  agg->Stop();
  FakeClock clock;
  FakeTrainer trainer;
  ReplicaLoopOptions options = LoopOptions("st-mary");
  options.give_up = absl::Minutes(2);
  options.clock = &clock;
  FederationClient client(address);

  const absl::Status s = RunReplicaLoop(client, trainer, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("aggregator unreachable for 2m"));
  const std::vector<absl::Duration> sleeps = clock.sleeps();
  ASSERT_GE(sleeps.size(), 6u);
  EXPECT_THAT(std::vector<absl::Duration>(sleeps.begin(), sleeps.begin() + 5),
              ElementsAre(absl::Milliseconds(200), absl::Milliseconds(400),
                          absl::Milliseconds(800), absl::Milliseconds(1600), absl::Seconds(2)));
  EXPECT_THAT(std::vector<absl::Duration>(sleeps.begin() + 4, sleeps.end()),
              Each(absl::Seconds(2)));
  absl::Duration waited;
  for (absl::Duration d : sleeps) waited += d;
  EXPECT_GE(waited, options.give_up);
  EXPECT_LE(waited, options.give_up + absl::Seconds(2));
  EXPECT_TRUE(trainer.fits().empty());
}

TEST(ReplicaLoopTest, AnUploadTheRoundNoLongerTakesIsDroppedAndTheWorkerGoesOn) {
  CapturedLog log;
  // Two workers; round 1 closes at its deadline without the slow one,
  // whose upload then arrives in the EVALUATE phase and is ABORTED.
  aggregator::EngineOptions options = Options(2, 2);
  options.round_timeout = absl::Seconds(2);
  auto agg = InProcessAggregator::Start(FreshDir("aborted"), options);
  ASSERT_NE(agg, nullptr);
  FakeTrainer fast, slow;
  bool round_closed_in_time = true;
  slow.before_fit = [&](int round) {
    if (round != 1) return;
    round_closed_in_time =
        WaitFor([&] { return !agg->engine().Status().history.empty(); });
  };
  LoopThread fast_loop(agg->address(), fast, LoopOptions("st-mary"));
  LoopThread slow_loop(agg->address(), slow, LoopOptions("charite"));

  std::optional<absl::Status> slow_result = slow_loop.Wait();
  std::optional<absl::Status> fast_result = fast_loop.Wait();
  ASSERT_TRUE(slow_result.has_value() && fast_result.has_value()) << "a loop did not finish";
  EXPECT_TRUE(round_closed_in_time);
  EXPECT_TRUE(slow_result->ok()) << *slow_result;
  EXPECT_TRUE(fast_result->ok()) << *fast_result;
  EXPECT_THAT(log.lines(), Contains(AllOf(HasSubstr("worker charite/0: round 1: ABORTED"),
                                          HasSubstr("does not accept an update"))));
  // The slow worker stayed in the job: it evaluated round 1 and trained in
  // round 2.
  const aggregator::EngineStatus status = agg->engine().Status();
  EXPECT_EQ(status.phase, "Succeeded") << status.message;
  ASSERT_EQ(status.history.size(), 2u);
  EXPECT_EQ(status.history[0].participants, 1);
  EXPECT_EQ(status.history[0].tenants, std::vector<std::string>{"st-mary"});
  EXPECT_EQ(status.history[1].participants, 2);
  ASSERT_EQ(slow.evals().size(), 2u);
  EXPECT_EQ(slow.evals()[0].round, 1);
}

}  // namespace
}  // namespace braid::worker
