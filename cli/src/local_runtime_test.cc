// FollowLocal, the loop of `braid run` that follows the aggregator, against
// a scripted status source and a fake clock: no processes, no sleeps.
#include "braid/cli/local_runtime.h"

#include <atomic>
#include <deque>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "braid/core/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kJob[] = R"(apiVersion: braid.dev/v1alpha1
kind: FederatedJob
metadata: {name: demo, namespace: lab}
spec:
  model: {kind: mlp}
  data: {features: [x0, x1]}
  strategy: {rounds: 3, minClients: 2}
  privacy:
    differentialPrivacy: {clipNorm: 1.0, noiseMultiplier: 1.1, delta: 1.0e-5, maxEpsilon: 8}
  tenants:
  - {name: alpha, data: {path: a.csv}}
  - {name: beta, data: {path: b.csv}}
)";

spec::JobSpec Job() {
  spec::ParseOptions options;
  options.check_files = false;
  absl::StatusOr<spec::JobSpec> job = spec::ParseJobYaml(kJob, "", options);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : spec::JobSpec();
}

// The aggregator's answer after `rounds` rounds, in `phase`.
v1::JobStatus Answer(const std::string& phase, int rounds) {
  v1::JobStatus s;
  s.set_job("demo");
  s.set_phase(phase);
  s.set_total_rounds(3);
  s.set_round(rounds);
  s.set_clients(2);
  if (phase == "Succeeded") s.set_reason("RoundsDone");
  for (int i = 1; i <= rounds; ++i) {
    v1::RoundRecord* r = s.add_rounds();
    r->set_round(i);
    r->set_participants(2);
    r->set_sampled(2);
    r->add_tenants("alpha");
    r->add_tenants("beta");
    r->set_train_loss(1.0 / i);
    r->set_eval_loss(2.0 / i);
    r->set_eval_accuracy(0.5 + 0.1 * i);
    r->set_epsilon(1.5 * i);
  }
  s.mutable_privacy()->set_enabled(true);
  s.mutable_privacy()->set_epsilon(1.5 * rounds);
  s.mutable_privacy()->set_delta(1e-5);
  s.mutable_privacy()->set_max_epsilon(8);
  return s;
}

// Hands out the scripted answers in order, then repeats the last; counts
// the calls and runs `on_call` (if set) before each.
class ScriptedStatus final : public LocalStatusSource {
 public:
  explicit ScriptedStatus(std::deque<absl::StatusOr<v1::JobStatus>> answers)
      : answers_(std::move(answers)) {}
  absl::StatusOr<v1::JobStatus> GetStatus() override {
    ++calls;
    if (on_call) on_call(calls);
    absl::StatusOr<v1::JobStatus> a = answers_.front();
    if (answers_.size() > 1) answers_.pop_front();
    return a;
  }
  int calls = 0;
  std::function<void(int)> on_call;

 private:
  std::deque<absl::StatusOr<v1::JobStatus>> answers_;
};

struct Followed {
  LocalOutcome outcome;
  std::string progress;
  std::vector<json> updates;  // what on_status got
  std::vector<absl::Duration> sleeps;
};

Followed Follow(ScriptedStatus* source, const std::atomic<bool>* interrupted = nullptr) {
  FakeClock clock;
  std::ostringstream progress;
  Followed f;
  LocalRunOptions o;
  o.clock = &clock;
  o.progress = &progress;
  o.interrupted = interrupted;
  o.on_status = [&f](const json& j) { f.updates.push_back(j); };
  LocalRun run;
  run.aggregator_address = "127.0.0.1:7070";
  f.outcome = FollowLocal(Job(), o, source, &run);
  f.progress = progress.str();
  f.sleeps = clock.sleeps();
  return f;
}

TEST(FollowLocal, PrintsEachRoundOnceAndEndsWithTheAggregatorsVerdict) {
  ScriptedStatus source({Answer("Pending", 0), Answer("Running", 1), Answer("Running", 1),
                         Answer("Running", 2), Answer("Succeeded", 3)});
  const Followed f = Follow(&source);
  EXPECT_EQ(f.outcome.status.phase(), "Succeeded");
  EXPECT_EQ(f.outcome.runtime_reason, "");
  EXPECT_EQ(source.calls, 5);
  // One line per completed round, however often it was polled.
  for (const char* line : {"round 1/3  participants 2/2", "round 2/3", "round 3/3"}) {
    EXPECT_THAT(f.progress, HasSubstr(line));
  }
  size_t count = 0;
  for (size_t at = f.progress.find("round 1/3"); at != std::string::npos;
       at = f.progress.find("round 1/3", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << f.progress;
  EXPECT_THAT(f.progress, HasSubstr("epsilon 4.5"));
  // Polled every 200 ms between answers (on the clock, not real time).
  EXPECT_EQ(f.sleeps, std::vector<absl::Duration>(4, absl::Milliseconds(200)));
}

TEST(FollowLocal, ReportsTheOperatorsStatusOnEachNewRoundOrPhase) {
  ScriptedStatus source({Answer("Pending", 0), Answer("Running", 1), Answer("Running", 1),
                         Answer("Running", 2), Answer("Succeeded", 3)});
  const Followed f = Follow(&source);
  std::vector<std::string> phases;
  for (const json& u : f.updates) phases.push_back(u["status"]["phase"]);
  EXPECT_EQ(phases, (std::vector<std::string>{"Pending", "Running", "Running", "Succeeded"}))
      << "a repeated answer is not reported again";
  const json& last = f.updates.back();
  EXPECT_EQ(last["rounds"].size(), 3u);
  EXPECT_EQ(last["status"]["round"], 3);
  EXPECT_EQ(last["status"]["reason"], "RoundsDone");
  // The operator's status function: privacy with the budget, as the
  // cluster's status shows it.
  EXPECT_DOUBLE_EQ(last["status"]["privacy"]["epsilon"].get<double>(), 4.5);
  EXPECT_DOUBLE_EQ(last["status"]["privacy"]["maxEpsilon"].get<double>(), 8.0);
  EXPECT_EQ(f.updates[1]["status"]["reason"], "RoundsRunning");
}

TEST(FollowLocal, AnUnansweredPollKeepsTheLastAnswer) {
  ScriptedStatus source({Answer("Running", 1), absl::UnavailableError("no answer"),
                         Answer("Succeeded", 3)});
  const Followed f = Follow(&source);
  EXPECT_EQ(f.outcome.status.phase(), "Succeeded");
  EXPECT_EQ(source.calls, 3);
  for (const json& u : f.updates) EXPECT_NE(u["status"]["phase"], "Pending");
}

TEST(FollowLocal, CtrlCEndsTheJobAsInterrupted) {
  std::atomic<bool> interrupted{false};
  ScriptedStatus source({Answer("Running", 1)});
  source.on_call = [&](int calls) {
    if (calls == 3) interrupted = true;
  };
  const Followed f = Follow(&source, &interrupted);
  EXPECT_EQ(source.calls, 3);
  EXPECT_EQ(f.outcome.runtime_reason, "Interrupted");
  EXPECT_THAT(f.outcome.runtime_message, HasSubstr("resume from the checkpoint"));
  EXPECT_EQ(f.outcome.status.phase(), "Running") << "the aggregator's last word is kept";
}

}  // namespace
}  // namespace braid::cli
