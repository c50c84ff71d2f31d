// The wire protocol against a real braid-aggregator process: large models
// through the chunked streams, dropouts, and restarts.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "braid/core/audit_log.h"
#include "braid/core/safetensors.h"
#include "braid/worker/federation_client.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

namespace fs = std::filesystem;
using worker::FederationClient;
using worker::ReceivedTask;

// A job whose tenants' data the aggregator never reads.
std::string WriteProtocolJob(const std::string& dir, int tenants, int min_clients,
                             const std::string& round_timeout = "2m") {
  std::string yaml = absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: proto}\n"
      "spec:\n  model: {kind: mlp, mlp: {hidden: [4], numClasses: 2}}\n"
      "  data: {features: [a], label: cls}\n"
      "  strategy: {rounds: 1, minClients: ", min_clients, ", roundTimeout: ", round_timeout,
      "}\n  tenants:\n");
  for (int i = 0; i < tenants; ++i) {
    // Declared: the example counts the clients claim are trusted up to it.
    absl::StrAppend(&yaml, "  - {name: t", i, ", maxExamples: 1000, data: {path: t", i,
                    ".csv}}\n");
    WriteFile(absl::StrCat(dir, "/t", i, ".csv"), "a,cls\n1,0\n");
  }
  WriteFile(dir + "/job.yaml", yaml);
  return dir + "/job.yaml";
}

TensorList Filled(const TensorList& like, float value) {
  TensorList out = like;
  for (Tensor& t : out) {
    for (int64_t i = 0; i < t.NumElements(); ++i) t.f32()[i] = value;
  }
  return out;
}

TEST(Federation, ModelLargerThan64MiBStreamsBothWaysAndAverages) {
  const std::string dir = FreshDir("large");
  const std::string job = WriteProtocolJob(dir, 2, 2);
  // 17M floats = 68 MB in one tensor, plus a small one after it.
  const int64_t big = 17 * 1000 * 1000;
  std::vector<float> init(big);
  for (int64_t i = 0; i < big; ++i) init[i] = static_cast<float>(i % 1000) * 0.001f;
  TensorList model = {Tensor::F32("big", {big}, init), Tensor::F32("small", {3}, {1, 2, 3})};
  ASSERT_GT(TotalBytes(model), 64u << 20);
  ASSERT_TRUE(safetensors::Write(dir + "/init.safetensors", model).ok());
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0);
  ASSERT_TRUE(agg.ok()) << agg.status();

  FederationClient a(agg->address()), b(agg->address());
  auto ja = a.Join("proto", "t0", 0, 100);
  auto jb = b.Join("proto", "t1", 0, 300);
  ASSERT_TRUE(ja.ok() && jb.ok()) << ja.status() << jb.status();

  auto ta = a.GetTask(ja->client_id, absl::Seconds(20));
  auto tb = b.GetTask(jb->client_id, absl::Seconds(20));
  ASSERT_TRUE(ta.ok() && tb.ok()) << ta.status() << tb.status();
  ASSERT_EQ(ta->header.kind(), v1::TASK_KIND_FIT);
  ASSERT_EQ(ta->weights.size(), 2u);
  EXPECT_EQ(ta->weights[0].data, model[0].data) << "weights changed in transit";
  EXPECT_EQ(ta->weights[1].data, model[1].data);
  EXPECT_EQ(ta->bytes, static_cast<int64_t>(TotalBytes(model)));

  // Deltas +1 (100 examples) and +3 (300 examples): FedAvg adds 2.5.
  ASSERT_TRUE(a.PutFit(ja->client_id, 1, Filled(model, 1.0f), 100, {0.5, 0, 100}).ok());
  ASSERT_TRUE(b.PutFit(jb->client_id, 1, Filled(model, 3.0f), 300, {0.7, 0, 300}).ok());

  auto ea = a.GetTask(ja->client_id, absl::Seconds(20));
  ASSERT_TRUE(ea.ok()) << ea.status();
  ASSERT_EQ(ea->header.kind(), v1::TASK_KIND_EVALUATE);
  const float* got = ea->weights[0].f32();
  for (int64_t i = 0; i < big; i += 9973) {
    ASSERT_NEAR(got[i], init[i] + 2.5f, 1e-5) << "at " << i;
  }
  EXPECT_NEAR(ea->weights[1].f32()[2], 3.0f + 2.5f, 1e-6);

  ASSERT_TRUE(a.PutEval(ja->client_id, 1, {0.4, 0.9, 10}).ok());
  auto eb = b.GetTask(jb->client_id, absl::Seconds(20));
  ASSERT_TRUE(eb.ok());
  ASSERT_TRUE(b.PutEval(jb->client_id, 1, {0.6, 0.5, 30}).ok());

  auto done = WaitForStatus(agg->address(), absl::Seconds(30),
                            [](const v1::JobStatus& s) { return s.phase() == "Succeeded"; });
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->rounds_size(), 1);
  const v1::RoundRecord& r = done->rounds(0);
  EXPECT_EQ(r.participants(), 2);
  EXPECT_NEAR(r.train_loss(), (0.5 * 100 + 0.7 * 300) / 400, 1e-9);
  EXPECT_NEAR(r.eval_accuracy(), (0.9 * 10 + 0.5 * 30) / 40, 1e-9);
  EXPECT_EQ(r.bytes_up(), 2 * static_cast<int64_t>(TotalBytes(model)));
}

TEST(Federation, RefusesMalformedUpdatesAndKeepsTheRound) {
  const std::string dir = FreshDir("hostile");
  const std::string job = WriteProtocolJob(dir, 1, 1);
  TensorList model = {Tensor::F32("w", {4}, {0, 0, 0, 0})};
  ASSERT_TRUE(safetensors::Write(dir + "/init.safetensors", model).ok());
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0);
  ASSERT_TRUE(agg.ok()) << agg.status();
  FederationClient c(agg->address());
  auto j = c.Join("proto", "t0", 0, 10);
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE(c.GetTask(j->client_id, absl::Seconds(20)).ok());

  // Wrong size, non-finite values, wrong round, unknown client.
  absl::Status s = c.PutFit(j->client_id, 1, {Tensor::F32("w", {3}, {1, 1, 1})}, 10, {});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  s = c.PutFit(j->client_id, 1, {Tensor::F32("w", {4}, {1, NAN, 1, 1})}, 10, {});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  s = c.PutFit(j->client_id, 7, Filled(model, 1), 10, {});
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  s = c.PutFit("nobody", 1, Filled(model, 1), 10, {});
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  // The round still takes the good update.
  s = c.PutFit(j->client_id, 1, Filled(model, 1), 10, {});
  EXPECT_TRUE(s.ok()) << s;
  auto e = c.GetTask(j->client_id, absl::Seconds(20));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->header.kind(), v1::TASK_KIND_EVALUATE);
  EXPECT_FLOAT_EQ(e->weights[0].f32()[0], 1.0f);
}

TEST(Federation, RoundFailsClearlyWhenASampledClientIsLostBelowMinimum) {
  const std::string dir = FreshDir("lost");
  const std::string job = WriteProtocolJob(dir, 3, 3);
  TensorList model = {Tensor::F32("w", {4}, {0, 0, 0, 0})};
  ASSERT_TRUE(safetensors::Write(dir + "/init.safetensors", model).ok());
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0,
                             {"--heartbeat-timeout=1s"});
  ASSERT_TRUE(agg.ok()) << agg.status();
  std::vector<std::unique_ptr<FederationClient>> clients;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<FederationClient>(agg->address()));
    auto j = clients.back()->Join("proto", absl::StrCat("t", i), 0, 10);
    ASSERT_TRUE(j.ok());
    ids.push_back(j->client_id);
  }
  for (int i = 0; i < 3; ++i) {
    auto t = clients[i]->GetTask(ids[i], absl::Seconds(20));
    ASSERT_TRUE(t.ok());
    ASSERT_EQ(t->header.kind(), v1::TASK_KIND_FIT);
  }
  // t2 goes silent (a killed worker); the others deliver and keep beating.
  ASSERT_TRUE(clients[0]->PutFit(ids[0], 1, Filled(model, 1), 10, {}).ok());
  ASSERT_TRUE(clients[1]->PutFit(ids[1], 1, Filled(model, 1), 10, {}).ok());
  auto failed = WaitForStatus(agg->address(), absl::Seconds(20), [&](const v1::JobStatus& s) {
    (void)clients[0]->Heartbeat(ids[0]);
    (void)clients[1]->Heartbeat(ids[1]);
    return s.phase() == "Failed";
  });
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->reason(), "RoundFailed");
  EXPECT_NE(failed->message().find("2 of 3"), std::string::npos) << failed->message();
  EXPECT_NE(failed->message().find(ids[2]), std::string::npos) << failed->message();
  EXPECT_NE(failed->message().find("lost"), std::string::npos) << failed->message();
  EXPECT_EQ(agg->proc.Wait(absl::Seconds(30)), 3) << "exit status 3 means the job failed";
}

// Real workers: one is SIGKILLed mid-job; minClients 2 lets the rounds go on.
TEST(Federation, KilledWorkerRoundCompletesWithTheOthers) {
  const std::string dir = FreshDir("kill-worker");
  const std::string job = WriteTabularJob(dir, "{rounds: 6, minClients: 2, roundTimeout: 2m}");
  auto init = cli::RunForOutput({Binary("braid-worker"), "init", "--job", job, "--out",
                                dir + "/init.safetensors"},
                               dir + "/init.log", absl::Seconds(60));
  ASSERT_TRUE(init.ok()) << init.status();
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0,
                             {"--heartbeat-timeout=2s", "--heartbeat-interval=500ms"});
  ASSERT_TRUE(agg.ok()) << agg.status();
  std::map<std::string, cli::Subprocess> workers;
  for (const char* t : {"st-mary", "charite", "karolinska"}) {
    auto w = cli::Subprocess::Start({Binary("braid-worker"), "run", "--job", job, "--tenant", t,
                                    "--aggregator", agg->address()},
                                   dir + "/" + t + ".log");
    ASSERT_TRUE(w.ok());
    workers.emplace(t, *std::move(w));
  }
  auto two = WaitForStatus(agg->address(), absl::Seconds(120),
                           [](const v1::JobStatus& s) { return s.round() >= 2; });
  ASSERT_TRUE(two.ok()) << two.status();
  workers.at("karolinska").Signal(SIGKILL);
  const int killed_after = two->round();

  auto done = WaitForStatus(agg->address(), absl::Seconds(180), [](const v1::JobStatus& s) {
    return s.phase() == "Succeeded" || s.phase() == "Failed";
  });
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->phase(), "Succeeded") << done->message();
  ASSERT_EQ(done->rounds_size(), 6);
  // Every round after the kill went on without karolinska.
  for (const v1::RoundRecord& r : done->rounds()) {
    if (r.round() <= killed_after + 1) continue;
    EXPECT_EQ(r.participants(), 2) << "round " << r.round();
    for (const std::string& t : r.tenants()) EXPECT_NE(t, "karolinska");
  }
}

// The aggregator is SIGKILLed after round 3 (its workers paused, so the job
// cannot race to its end first) and started again on the same checkpoint and
// port: the job finishes with every round exactly once.
TEST(Federation, RestartedAggregatorResumesWithNoRoundLost) {
  const std::string dir = FreshDir("restart");
  const std::string job = WriteTabularJob(dir, "{rounds: 6, minClients: 3, roundTimeout: 2m}");
  auto init = cli::RunForOutput({Binary("braid-worker"), "init", "--job", job, "--out",
                                dir + "/init.safetensors"},
                               dir + "/init.log", absl::Seconds(60));
  ASSERT_TRUE(init.ok()) << init.status();
  const int port = FreePort();
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", port);
  ASSERT_TRUE(agg.ok()) << agg.status();
  std::vector<cli::Subprocess> workers;
  for (const char* t : {"st-mary", "charite", "karolinska"}) {
    auto w = cli::Subprocess::Start({Binary("braid-worker"), "run", "--job", job, "--tenant", t,
                                    "--aggregator", agg->address()},
                                   dir + "/" + t + ".log");
    ASSERT_TRUE(w.ok());
    workers.push_back(*std::move(w));
  }
  auto three = WaitForStatus(agg->address(), absl::Seconds(120),
                             [](const v1::JobStatus& s) { return s.round() >= 3; });
  ASSERT_TRUE(three.ok()) << three.status();
  // The workers are paused first, so the job cannot finish (at most the
  // round in flight completes) before the kill lands.
  for (cli::Subprocess& w : workers) w.Signal(SIGSTOP);
  agg->proc.Signal(SIGKILL);
  agg->proc.Wait(absl::Seconds(10));
  const auto before = nlohmann::json::parse(ReadFile(dir + "/checkpoint/state.json"));
  const size_t saved = before["history"].size();
  ASSERT_GE(saved, 3u);

  ASSERT_LT(saved, 6u) << "the job finished before the kill; nothing was resumed";

  auto again = StartAggregator(job, dir, "", port);  // no initial model: must resume
  ASSERT_TRUE(again.ok()) << again.status();
  for (cli::Subprocess& w : workers) w.Signal(SIGCONT);
  auto done = WaitForStatus(again->address(), absl::Seconds(180), [](const v1::JobStatus& s) {
    return s.phase() == "Succeeded" || s.phase() == "Failed";
  });
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->phase(), "Succeeded") << done->message();
  ASSERT_EQ(done->rounds_size(), 6);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(done->rounds(i).round(), i + 1);
  // Rounds checkpointed before the kill are kept as they were.
  for (size_t i = 0; i < saved && before["history"][i]["evaluated"].get<bool>(); ++i) {
    EXPECT_DOUBLE_EQ(done->rounds(i).train_loss(), before["history"][i]["train_loss"].get<double>());
  }
  EXPECT_NE(ReadFile(dir + "/aggregator.log").find("resuming job tabular-demo after round"),
            std::string::npos);

  // The restarted aggregator continued the audit chain: it verifies, says
  // where it resumed, and records every round (a round killed between its
  // entry and its checkpoint is redone, so it may appear twice) and the end.
  absl::StatusOr<audit::AuditFile> log = audit::ReadAuditLog(dir + "/checkpoint/audit.jsonl");
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE(log->verification.ok) << log->verification.ToString("audit.jsonl");
  std::vector<int> starts_after, rounds;
  for (const audit::Entry& e : log->entries) {
    if (e.kind == audit::kJobStarted) starts_after.push_back(e.details["resumed_after_round"]);
    if (e.kind == audit::kRoundCompleted) rounds.push_back(e.details["round"]);
  }
  ASSERT_EQ(starts_after.size(), 2u);
  EXPECT_EQ(starts_after[0], 0);
  EXPECT_GE(starts_after[1], 3);
  ASSERT_FALSE(rounds.empty());
  EXPECT_TRUE(std::is_sorted(rounds.begin(), rounds.end()));
  rounds.erase(std::unique(rounds.begin(), rounds.end()), rounds.end());
  EXPECT_EQ(rounds, (std::vector<int>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(log->entries.back().kind, audit::kJobFinished);
  EXPECT_EQ(log->entries.back().details["phase"], "Succeeded");
}

}  // namespace
}  // namespace braid::e2e
