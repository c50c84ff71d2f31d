// Hostile numbers against a real braid-aggregator (issue 17, findings 1 and
// 3): a tenant that lies about how many examples it trained on, sends huge
// finite values, or reports a NaN loss, with honest clients alongside
// speaking the same public contract. Each test asserts the job's outcome and
// that the honest tenants' rounds complete.
#include <signal.h>

#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "braid/core/audit_log.h"
#include "braid/core/safetensors.h"
#include "braid/worker/federation_client.h"
#include "braid/worker/secagg_fit.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

using worker::FederationClient;
using worker::JoinResult;
using worker::ReceivedTask;

constexpr int64_t k2To62 = int64_t{1} << 62;
constexpr int64_t kMaxClaim = int64_t{1} << 40;  // the largest claim the aggregator takes
constexpr int kFloats = 64;  // > 16: the aggregator's vector lanes see the values

// A job of `tenants` tenants t0.. (none declares maxExamples), all needed
// each round, whose data the aggregator never reads; `extra`: more YAML under
// spec (e.g. a privacy section).
std::string WriteJob(const std::string& dir, int tenants, int rounds,
                     const std::string& extra = "") {
  std::string yaml = absl::StrCat(
      "apiVersion: braid.dev/v1alpha1\nkind: FederatedJob\nmetadata: {name: hostile}\n"
      "spec:\n  model: {kind: mlp, mlp: {hidden: [4], numClasses: 2}}\n"
      "  data: {features: [a], label: cls}\n"
      "  strategy: {rounds: ",
      rounds, ", minClients: ", tenants, ", roundTimeout: 2m}\n", extra, "  tenants:\n");
  for (int i = 0; i < tenants; ++i) {
    absl::StrAppend(&yaml, "  - {name: t", i, ", data: {path: t", i, ".csv}}\n");
    WriteFile(absl::StrCat(dir, "/t", i, ".csv"), "a,cls\n1,0\n");
  }
  WriteFile(dir + "/job.yaml", yaml);
  return dir + "/job.yaml";
}

TensorList Model(float value = 0) {
  return {Tensor::F32("w", {kFloats}, std::vector<float>(kFloats, value))};
}

TensorList Filled(float value) { return Model(value); }

// One client of the job: joined, and its task fetched.
struct Client {
  std::unique_ptr<FederationClient> rpc;
  std::string id;
};

Client Joined(const std::string& address, const std::string& tenant, int64_t examples) {
  Client c{std::make_unique<FederationClient>(address), ""};
  absl::StatusOr<JoinResult> j = c.rpc->Join("hostile", tenant, 0, examples);
  EXPECT_TRUE(j.ok()) << tenant << ": " << j.status();
  if (j.ok()) c.id = j->client_id;
  return c;
}

ReceivedTask TaskOf(Client& c, v1::TaskKind want) {
  absl::StatusOr<ReceivedTask> t = c.rpc->GetTask(c.id, absl::Seconds(20));
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return {};
  EXPECT_EQ(t->header.kind(), want) << t->header.reason();
  return *std::move(t);
}

// The audit entries of `kind` in the job's checkpoint directory.
std::vector<audit::Entry> AuditOf(const std::string& dir, const std::string& kind) {
  absl::StatusOr<audit::AuditFile> f = audit::ReadAuditLog(dir + "/checkpoint/audit.jsonl");
  EXPECT_TRUE(f.ok()) << f.status();
  std::vector<audit::Entry> out;
  if (!f.ok()) return out;
  EXPECT_TRUE(f->verification.ok) << f->verification.problem;
  for (const audit::Entry& e : f->entries) {
    if (e.kind == kind) out.push_back(e);
  }
  return out;
}

// Every client evaluates and the job must succeed with one round that all
// the tenants took part in.
void EvaluateAndSucceed(const Aggregator& agg, std::vector<Client>& clients) {
  for (Client& c : clients) {
    ASSERT_TRUE(c.rpc->PutEval(c.id, 1, {0.5, 0.5, 10}).ok());
  }
  auto done = WaitForStatus(agg.address(), absl::Seconds(30), [](const v1::JobStatus& s) {
    return s.phase() == "Succeeded" || s.phase() == "Failed";
  });
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->phase(), "Succeeded") << done->reason() << ": " << done->message();
  ASSERT_EQ(done->rounds_size(), 1);
  EXPECT_EQ(done->rounds(0).participants(), static_cast<int>(clients.size()));
  EXPECT_TRUE(std::isfinite(done->rounds(0).train_loss()));
}

// Finding 1: a worker claiming 2^62 examples made its update the new global
// model. The honest t0 and t1 (100 examples each) move the model by +1; the
// liar t2 by -1. Trusted, the liar's claim would make the global about -1.
TEST(HostileWeights, AClaimOf2To62ExamplesDoesNotMakeItsUpdateTheGlobalModel) {
  const std::string dir = FreshDir("hostile-claim");
  const std::string job = WriteJob(dir, 3, 1);
  ASSERT_TRUE(safetensors::Write(dir + "/init.safetensors", Model()).ok());
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0);
  ASSERT_TRUE(agg.ok()) << agg.status();

  FederationClient probe(agg->address());
  const absl::Status join_refused = probe.Join("hostile", "t2", 0, k2To62).status();
  EXPECT_TRUE(absl::IsInvalidArgument(join_refused)) << join_refused;
  std::vector<Client> clients;
  clients.push_back(Joined(agg->address(), "t0", 100));
  clients.push_back(Joined(agg->address(), "t1", 100));
  clients.push_back(Joined(agg->address(), "t2", kMaxClaim));  // the most it may say
  for (Client& c : clients) TaskOf(c, v1::TASK_KIND_FIT);

  Client& liar = clients[2];
  const absl::Status refused = liar.rpc->PutFit(liar.id, 1, Filled(-1), k2To62, {0.5, 0, 1});
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_NE(refused.message().find("num_examples"), std::string::npos) << refused;
  ASSERT_TRUE(liar.rpc->PutFit(liar.id, 1, Filled(-1), kMaxClaim, {0.5, 0, 1}).ok());
  ASSERT_TRUE(clients[0].rpc->PutFit(clients[0].id, 1, Filled(1), 100, {0.5, 0, 100}).ok());
  ASSERT_TRUE(clients[1].rpc->PutFit(clients[1].id, 1, Filled(1), 100, {0.5, 0, 100}).ok());

  // t2 counts as much as the heaviest other tenant: (1 + 1 - 1) / 3.
  const ReceivedTask eval = TaskOf(clients[0], v1::TASK_KIND_EVALUATE);
  ASSERT_EQ(eval.weights.size(), 1u);
  for (int i = 0; i < kFloats; ++i) ASSERT_NEAR(eval.weights[0].f32()[i], 1.0 / 3, 1e-6) << i;
  for (size_t i = 1; i < clients.size(); ++i) TaskOf(clients[i], v1::TASK_KIND_EVALUATE);
  EvaluateAndSucceed(*agg, clients);

  // Counted and audited: the refused claims and the capped one.
  const std::vector<audit::Entry> refusals = AuditOf(dir, audit::kClaimRefused);
  ASSERT_EQ(refusals.size(), 2u);  // the join (by tenant) and the update (by client)
  for (const audit::Entry& e : refusals) {
    EXPECT_EQ(e.details["tenant"], "t2");
    EXPECT_EQ(e.details["reason"], "num_examples");
  }
  const std::vector<audit::Entry> capped = AuditOf(dir, audit::kClaimCapped);
  ASSERT_EQ(capped.size(), 1u);
  EXPECT_EQ(capped[0].details["tenant"], "t2");
  EXPECT_EQ(capped[0].details["reason"], "other_tenants");
  EXPECT_EQ(capped[0].details["counted"], 100.0);
}

// Finding 1: finite values of 1e30 with a claim of 1e12 examples made every
// weight +Inf (1e12 * 1e30 overflows float), and the job failed.
TEST(HostileWeights, HugeFiniteValuesWithAHugeClaimLeaveTheModelFinite) {
  const std::string dir = FreshDir("hostile-overflow");
  const std::string job = WriteJob(dir, 3, 1);
  ASSERT_TRUE(safetensors::Write(dir + "/init.safetensors", Model()).ok());
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0);
  ASSERT_TRUE(agg.ok()) << agg.status();
  std::vector<Client> clients;
  clients.push_back(Joined(agg->address(), "t0", 100));
  clients.push_back(Joined(agg->address(), "t1", 100));
  clients.push_back(Joined(agg->address(), "t2", 1000000000000));
  for (Client& c : clients) TaskOf(c, v1::TASK_KIND_FIT);
  ASSERT_TRUE(clients[0].rpc->PutFit(clients[0].id, 1, Filled(1), 100, {0.5, 0, 100}).ok());
  ASSERT_TRUE(clients[1].rpc->PutFit(clients[1].id, 1, Filled(1), 100, {0.5, 0, 100}).ok());
  ASSERT_TRUE(clients[2]
                  .rpc->PutFit(clients[2].id, 1, Filled(1e30f), 1000000000000, {0.5, 0, 1})
                  .ok());
  for (Client& c : clients) {
    const ReceivedTask eval = TaskOf(c, v1::TASK_KIND_EVALUATE);
    ASSERT_EQ(eval.weights.size(), 1u);
    for (int i = 0; i < kFloats; ++i) {
      ASSERT_TRUE(std::isfinite(eval.weights[0].f32()[i])) << i << ": " << eval.weights[0].f32()[i];
    }
  }
  EvaluateAndSucceed(*agg, clients);
  // The checkpoint holds finite numbers only, and loads.
  const auto state =
      nlohmann::json::parse(ReadFile(dir + "/checkpoint/state.json"), nullptr, false);
  ASSERT_FALSE(state.is_discarded());
  EXPECT_TRUE(state["history"][0]["update_norm_mean"].is_number())
      << state["history"][0].dump();
}

// Finding 3: a NaN training loss was written to state.json as null and every
// restart then failed with "corrupt checkpoint state".
TEST(HostileWeights, ANanLossIsRefusedAndTheAggregatorRestartsOnItsCheckpoint) {
  const std::string dir = FreshDir("hostile-nan");
  const std::string job = WriteJob(dir, 2, 2);
  ASSERT_TRUE(safetensors::Write(dir + "/init.safetensors", Model()).ok());
  const int port = FreePort();
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", port);
  ASSERT_TRUE(agg.ok()) << agg.status();
  std::vector<Client> clients;
  clients.push_back(Joined(agg->address(), "t0", 10));
  clients.push_back(Joined(agg->address(), "t1", 10));
  for (Client& c : clients) TaskOf(c, v1::TASK_KIND_FIT);
  Client& liar = clients[1];
  const absl::Status refused = liar.rpc->PutFit(liar.id, 1, Filled(1), 10, {NAN, 0, 10});
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_NE(refused.message().find("train.loss"), std::string::npos) << refused;
  // Nothing was lost: the same client's honest update goes in.
  ASSERT_TRUE(liar.rpc->PutFit(liar.id, 1, Filled(1), 10, {0.5, 0, 10}).ok());
  ASSERT_TRUE(clients[0].rpc->PutFit(clients[0].id, 1, Filled(1), 10, {0.25, 0, 10}).ok());
  for (Client& c : clients) TaskOf(c, v1::TASK_KIND_EVALUATE);
  const absl::Status eval_refused = liar.rpc->PutEval(liar.id, 1, {INFINITY, 0.5, 10});
  EXPECT_TRUE(absl::IsInvalidArgument(eval_refused)) << eval_refused;
  for (Client& c : clients) ASSERT_TRUE(c.rpc->PutEval(c.id, 1, {0.5, 0.5, 10}).ok());
  auto one = WaitForStatus(agg->address(), absl::Seconds(30),
                           [](const v1::JobStatus& s) { return s.round() >= 1; });
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_NEAR(one->rounds(0).train_loss(), 0.375, 1e-12);

  // A killed aggregator starts again on the checkpoint and the job goes on.
  agg->proc.Signal(SIGKILL);
  agg->proc.Wait(absl::Seconds(10));
  auto again = StartAggregator(job, dir, "", port);
  ASSERT_TRUE(again.ok()) << again.status() << ReadFile(dir + "/aggregator.log");
  clients.clear();
  clients.push_back(Joined(again->address(), "t0", 10));
  clients.push_back(Joined(again->address(), "t1", 10));
  for (Client& c : clients) {
    TaskOf(c, v1::TASK_KIND_FIT);
    ASSERT_TRUE(c.rpc->PutFit(c.id, 2, Filled(1), 10, {0.5, 0, 10}).ok());
  }
  for (Client& c : clients) {
    TaskOf(c, v1::TASK_KIND_EVALUATE);
    ASSERT_TRUE(c.rpc->PutEval(c.id, 2, {0.5, 0.5, 10}).ok());
  }
  auto done = WaitForStatus(again->address(), absl::Seconds(30), [](const v1::JobStatus& s) {
    return s.phase() == "Succeeded" || s.phase() == "Failed";
  });
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->phase(), "Succeeded") << done->message();
  EXPECT_EQ(done->rounds_size(), 2);
}

// Finding 1 under secure aggregation: clients scale their masked input by a
// public weight the aggregator derives from their join claims. A liar
// claiming 2^40 examples made the honest clients' weights about 1e-10 and
// its own about 3, so its (clipped) input was the average. The honest t0
// and t1 move the model by +0.9; the liar sends -1e30, clipped by the
// quantization range to -1.
TEST(HostileWeights, UnderSecureAggregationALyingClaimGetsNoMorePublicWeight) {
  const std::string dir = FreshDir("hostile-secagg");
  const std::string job = WriteJob(
      dir, 3, 1,
      "  privacy:\n    secureAggregation: true\n"
      "    secureAggregationSettings: {quantizationRange: 1.0, stageTimeout: 30s}\n");
  ASSERT_TRUE(safetensors::Write(dir + "/init.safetensors", Model()).ok());
  auto agg = StartAggregator(job, dir, dir + "/init.safetensors", 0);
  ASSERT_TRUE(agg.ok()) << agg.status();

  const std::vector<int64_t> joined = {100, 100, kMaxClaim};
  const std::vector<float> deltas = {0.9f, 0.9f, -1e30f};
  std::vector<double> weights(3, -1);
  std::vector<absl::Status> results(3);
  std::vector<float> global;
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      Client c = Joined(agg->address(), absl::StrCat("t", i), joined[i]);
      absl::StatusOr<ReceivedTask> task = c.rpc->GetTask(c.id, absl::Seconds(20));
      if (!task.ok() || !task->header.has_secagg()) {
        results[i] = task.ok() ? absl::InternalError("no secure-aggregation task") : task.status();
        return;
      }
      weights[i] = task->header.secagg().weight();
      results[i] = worker::RunSecAggFit(
          *c.rpc, c.id, task->header,
          [&]() -> absl::StatusOr<worker::LocalUpdate> {
            return worker::LocalUpdate{Filled(deltas[i]), joined[i], {0.5, 0, 10}};
          },
          {absl::StrCat("t", i)});
      if (!results[i].ok()) return;
      absl::StatusOr<ReceivedTask> eval = c.rpc->GetTask(c.id, absl::Seconds(20));
      if (!eval.ok() || eval->header.kind() != v1::TASK_KIND_EVALUATE) {
        results[i] = eval.ok() ? absl::InternalError("no evaluation task") : eval.status();
        return;
      }
      if (i == 0) global.assign(eval->weights[0].f32(), eval->weights[0].f32() + kFloats);
      results[i] = c.rpc->PutEval(c.id, 1, {0.5, 0.5, 10});
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(results[i].ok()) << "t" << i << ": " << results[i];
  // Every client weighs 1: the liar is capped at the heaviest other tenant.
  for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(weights[i], 1.0) << "t" << i;
  // (0.9 + 0.9 - 1) / 3, within the quantization error (3 steps of 2/(2^32/3)).
  ASSERT_EQ(global.size(), static_cast<size_t>(kFloats));
  for (float w : global) ASSERT_NEAR(w, 0.8 / 3, 1e-6);
  auto done = WaitForStatus(agg->address(), absl::Seconds(30), [](const v1::JobStatus& s) {
    return s.phase() == "Succeeded" || s.phase() == "Failed";
  });
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->phase(), "Succeeded") << done->message();
}

}  // namespace
}  // namespace braid::e2e
