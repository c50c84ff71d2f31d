// One malicious tenant against a real braid-aggregator under mTLS, with its
// own valid certificate (charite's), speaking the public contract: Sybil
// replicas, a tenant alone, a stalled upload holding the only slot, and a
// flood of idle streams and parked calls. Each test asserts what the
// attacker gets and that the honest tenants' rounds complete.
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "braid/core/grpc_tls.h"
#include "braid/core/pki.h"
#include "braid/v1/federation.grpc.pb.h"
#include "braid/worker/federation_client.h"
#include "tests/e2e/harness.h"

namespace braid::e2e {
namespace {

using ::testing::HasSubstr;

class HostileSessionsTest : public ::testing::Test {
 protected:
  // The tabular job (st-mary, charite, karolinska; one replica each) with
  // `strategy`, the aggregator under mTLS with `flags`.
  void Start(const std::string& strategy, const std::vector<std::string>& flags) {
    dir_ = FreshDir("hostile-sessions");
    job_ = WriteTabularJob(dir_, strategy);
    absl::StatusOr<pki::KeyPair> ca = pki::MakeCa("tabular-demo", absl::Hours(1));
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *ca;
    pki::CertRequest server;
    server.common_name = pki::kAggregatorCommonName;
    server.ip_addresses = {"127.0.0.1"};
    server.server = true;
    const pki::TlsFiles agg_tls = Files("aggregator", server);
    for (const char* t : {"st-mary", "charite", "karolinska"}) {
      pki::CertRequest r;
      r.common_name = pki::TenantCommonName(t);
      r.client = true;
      tls_[t] = Files(t, r);
    }
    const std::string model = dir_ + "/initial.safetensors";
    cli::Subprocess init = *cli::Subprocess::Start(
        {Binary("braid-worker"), "init", "--job=" + job_, "--out=" + model}, dir_ + "/init.log");
    ASSERT_EQ(init.Wait(absl::Minutes(2)), 0);
    std::vector<std::string> all = {"--tls-ca=" + agg_tls.ca, "--tls-cert=" + agg_tls.cert,
                                    "--tls-key=" + agg_tls.key};
    all.insert(all.end(), flags.begin(), flags.end());
    absl::StatusOr<Aggregator> agg = StartAggregator(job_, dir_, model, 0, all);
    ASSERT_TRUE(agg.ok()) << agg.status();
    aggregator_ = std::make_unique<Aggregator>(*std::move(agg));
  }

  pki::TlsFiles Files(const std::string& name, const pki::CertRequest& request) {
    absl::StatusOr<pki::KeyPair> id = pki::Issue(ca_, request);
    EXPECT_TRUE(id.ok()) << id.status();
    absl::StatusOr<pki::TlsFiles> files = pki::WriteTlsFiles(dir_ + "/tls", name, ca_, *id);
    EXPECT_TRUE(files.ok()) << files.status();
    return *files;
  }

  pki::TlsMaterial Material(const std::string& tenant) {
    absl::StatusOr<pki::TlsMaterial> m = pki::ReadTlsFiles(tls_[tenant]);
    EXPECT_TRUE(m.ok()) << m.status();
    return *m;
  }

  // A raw stub on its own connection (`n` makes the channel distinct).
  std::unique_ptr<v1::Federation::Stub> RawStub(const std::string& tenant, int n = 0) {
    grpc::ChannelArguments args;
    args.SetInt("braid.test.connection", n);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(8 << 20);
    const pki::TlsMaterial tls = Material(tenant);
    if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
    return v1::Federation::NewStub(
        grpc::CreateCustomChannel(aggregator_->address(), ChannelCredentials(tls), args));
  }

  // An honest worker of `tenant`, replica 0.
  cli::Subprocess Worker(const std::string& tenant) {
    const pki::TlsFiles& t = tls_[tenant];
    return *cli::Subprocess::Start(
        {Binary("braid-worker"), "run", "--job=" + job_, "--tenant=" + tenant, "--replica=0",
         "--aggregator=" + aggregator_->address(), "--tls-ca=" + t.ca, "--tls-cert=" + t.cert,
         "--tls-key=" + t.key, "--give-up=30s"},
        dir_ + "/" + tenant + ".log");
  }

  absl::StatusOr<v1::JobStatus> WaitEnded(absl::Duration timeout) {
    return WaitForStatus(aggregator_->address(), timeout, [](const v1::JobStatus& s) {
      return s.phase() == "Succeeded" || s.phase() == "Failed";
    });
  }

  // The status, read with an honest tenant's certificate.
  v1::JobStatus Status() {
    worker::FederationClient c(aggregator_->address(), Material("st-mary"));
    absl::StatusOr<v1::JobStatus> s = c.GetStatus();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : v1::JobStatus();
  }

  std::string dir_, job_;
  pki::KeyPair ca_;
  std::map<std::string, pki::TlsFiles> tls_;
  std::unique_ptr<Aggregator> aggregator_;
};

// WaitForStatus reads without a certificate; under mTLS it cannot. Poll
// with one.
absl::StatusOr<v1::JobStatus> PollStatus(const std::string& address, const pki::TlsMaterial& tls,
                                         absl::Duration timeout) {
  worker::FederationClient c(address, tls);
  const absl::Time deadline = absl::Now() + timeout;
  v1::JobStatus last;
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::JobStatus> s = c.GetStatus(absl::Seconds(2));
    if (s.ok()) {
      last = *s;
      if (s->phase() == "Succeeded" || s->phase() == "Failed") return s;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("job did not end; last: ", last.ShortDebugString()));
}

TEST_F(HostileSessionsTest, OneTenantAsSeveralReplicasIsRefusedAndCannotRunTheJobAlone) {
  // minTenants defaults to min(2, 3 tenants) = 2.
  Start("{rounds: 2, minClients: 2, roundTimeout: 6s}", {"--start-grace=1s"});
  worker::FederationClient charite(aggregator_->address(), Material("charite"));
  ASSERT_TRUE(charite.Join("tabular-demo", "charite", 0, 100).ok());
  for (int replica : {1, 2, 1000}) {
    const absl::StatusOr<worker::JoinResult> sybil =
        charite.Join("tabular-demo", "charite", replica, 100);
    EXPECT_EQ(sybil.status().code(), absl::StatusCode::kInvalidArgument) << replica;
    EXPECT_THAT(std::string(sybil.status().message()), HasSubstr("declares 1 replica(s)"));
  }
  // Alone, charite's one worker starts no round; the job fails, it does
  // not "succeed".
  absl::StatusOr<v1::JobStatus> s =
      PollStatus(aggregator_->address(), Material("st-mary"), absl::Seconds(40));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->phase(), "Failed");
  EXPECT_EQ(s->reason(), "NotEnoughClients");
  EXPECT_THAT(s->message(), HasSubstr("strategy.minTenants"));
  EXPECT_EQ(s->round(), 0);
}

TEST_F(HostileSessionsTest, AFloodOfFakeReplicasIsRefusedQuicklyAndHonestTenantsFinish) {
  // charite runs no worker: a round starts with the two honest ones.
  Start("{rounds: 3, minClients: 2, roundTimeout: 60s}", {"--start-grace=2s"});
  std::vector<cli::Subprocess> honest;
  for (const char* t : {"st-mary", "karolinska"}) honest.push_back(Worker(t));
  // 8 connections x 250 joins as replicas 1..250 of a one-replica tenant.
  std::atomic<int> accepted{0}, refused{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> flood;
  for (int c = 0; c < 8; ++c) {
    flood.emplace_back([&, c] {
      std::unique_ptr<v1::Federation::Stub> stub = RawStub("charite", c);
      for (int r = 1; r <= 250; ++r) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::JoinRequest req;
        req.set_job("tabular-demo");
        req.set_tenant("charite");
        req.set_replica(r);
        req.set_num_examples(100);
        v1::JoinResponse resp;
        const grpc::Status st = stub->Join(&ctx, req, &resp);
        (st.ok() ? accepted : refused)++;
      }
    });
  }
  for (std::thread& t : flood) t.join();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(accepted.load(), 0);
  EXPECT_EQ(refused.load(), 2000);
  EXPECT_LT(took, absl::Seconds(30)) << "2000 refusals took " << took;
  for (cli::Subprocess& w : honest) EXPECT_EQ(w.Wait(absl::Seconds(90)), 0);
  const v1::JobStatus s = Status();
  EXPECT_EQ(s.phase(), "Succeeded") << s.ShortDebugString();
  EXPECT_EQ(s.round(), 3);
  for (const v1::RoundRecord& r : s.rounds()) {
    EXPECT_THAT(r.tenants(), ::testing::ElementsAre("karolinska", "st-mary"));
  }
}

// charite takes the only upload slot each round and sends nothing.
TEST_F(HostileSessionsTest, AStalledUploadIsCutOffAndBlamedNotTheHonestTenantsBehindIt) {
  Start("{rounds: 2, minClients: 2, roundTimeout: 60s}",
        {"--start-grace=30s", "--upload-slots=1", "--upload-progress-timeout=2s"});
  worker::FederationClient charite(aggregator_->address(), Material("charite"));
  absl::StatusOr<worker::JoinResult> joined = charite.Join("tabular-demo", "charite", 0, 100);
  ASSERT_TRUE(joined.ok()) << joined.status();
  const std::string id = joined->client_id;
  absl::Notification stop;
  std::thread heartbeats([&] {
    while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(500))) {
      (void)charite.Heartbeat(id);
    }
  });
  std::vector<cli::Subprocess> honest;
  for (const char* t : {"st-mary", "karolinska"}) honest.push_back(Worker(t));

  std::unique_ptr<v1::Federation::Stub> stub = RawStub("charite");
  int stalls = 0;
  std::vector<grpc::StatusCode> stall_codes;
  const absl::Time give_up = absl::Now() + absl::Seconds(80);
  while (absl::Now() < give_up) {
    absl::StatusOr<worker::ReceivedTask> task = charite.GetTask(id, absl::Seconds(5));
    ASSERT_TRUE(task.ok()) << task.status();
    const v1::TaskHeader& h = task->header;
    if (h.kind() == v1::TASK_KIND_DONE) break;
    if (h.kind() == v1::TASK_KIND_EVALUATE) {
      (void)charite.PutEval(id, h.round(), {0.7, 0.5, 10});
      continue;
    }
    if (h.kind() != v1::TASK_KIND_FIT) continue;
    // Take the slot (the header), then send nothing.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(100));
    v1::UpdateAck ack;
    std::unique_ptr<grpc::ClientWriter<v1::UpdateMessage>> w = stub->PutUpdate(&ctx, &ack);
    v1::UpdateMessage m;
    v1::UpdateHeader* header = m.mutable_header();
    header->set_client_id(id);
    header->set_round(h.round());
    header->set_kind(v1::TASK_KIND_FIT);
    header->set_encoding(v1::ENCODING_FP32);
    header->set_total_bytes(h.total_bytes());
    header->set_num_examples(100);
    ASSERT_TRUE(w->Write(m));
    w->WaitForInitialMetadata();  // admitted: it holds the slot
    stall_codes.push_back(w->Finish().error_code());  // returns when the server cuts it off
    ++stalls;
  }
  stop.Notify();
  heartbeats.join();
  for (cli::Subprocess& w : honest) EXPECT_EQ(w.Wait(absl::Seconds(60)), 0);
  const v1::JobStatus s = Status();
  EXPECT_EQ(s.phase(), "Succeeded") << s.ShortDebugString();
  EXPECT_EQ(s.round(), 2);
  EXPECT_EQ(stalls, 2) << "charite was handed a fit task more often than once per round; "
                          "the aggregator's log:\n"
                       << ReadFile(dir_ + "/aggregator.log");
  for (grpc::StatusCode c : stall_codes) EXPECT_NE(c, grpc::StatusCode::OK);
  for (const v1::RoundRecord& r : s.rounds()) {
    EXPECT_EQ(r.participants(), 2);
    EXPECT_THAT(r.tenants(), ::testing::ElementsAre("karolinska", "st-mary"));
    EXPECT_LT(r.seconds(), 30) << "a round waited for the staller";
  }
  EXPECT_THAT(ReadFile(dir_ + "/aggregator.log"),
              HasSubstr(id + " is out of the round: upload stalled"));
}

// The aggregator's threads (Linux /proc), or -1.
int Threads(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string key;
  while (in >> key) {
    if (key == "Threads:") {
      int n = -1;
      in >> n;
      return n;
    }
  }
  return -1;
}

TEST_F(HostileSessionsTest, IdleStreamsAndParkedCallsFromOneTenantHoldFewThreads) {
  Start("{rounds: 3, minClients: 2, roundTimeout: 60s}",
        {"--start-grace=30s", "--upload-progress-timeout=20s"});
  worker::FederationClient charite(aggregator_->address(), Material("charite"));
  absl::StatusOr<worker::JoinResult> joined = charite.Join("tabular-demo", "charite", 0, 100);
  ASSERT_TRUE(joined.ok()) << joined.status();
  // 300 idle PutUpdate streams (no header) and 60 parked GetTask calls, on
  // 10 connections, all opened asynchronously; they end by themselves
  // (deadlines), or when the test cancels them.
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<v1::Federation::Stub>> stubs;
  for (int c = 0; c < 10; ++c) stubs.push_back(RawStub("charite", 100 + c));
  struct Idle {
    grpc::ClientContext ctx;
    v1::UpdateAck ack;
    std::unique_ptr<grpc::ClientAsyncWriter<v1::UpdateMessage>> writer;
  };
  struct Parked {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientAsyncReader<v1::TaskMessage>> reader;
  };
  std::vector<std::unique_ptr<Idle>> idle;
  std::vector<std::unique_ptr<Parked>> parked;
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(60);
  for (int i = 0; i < 300; ++i) {
    auto s = std::make_unique<Idle>();
    s->ctx.set_deadline(deadline);
    s->writer = stubs[i % stubs.size()]->AsyncPutUpdate(&s->ctx, &s->ack, &cq, s.get());
    idle.push_back(std::move(s));
  }
  for (int i = 0; i < 60; ++i) {
    auto p = std::make_unique<Parked>();
    p->ctx.set_deadline(deadline);
    v1::TaskRequest req;
    req.set_client_id(joined->client_id);
    req.set_wait_seconds(30);
    p->reader = stubs[i % stubs.size()]->AsyncGetTask(&p->ctx, req, &cq, p.get());
    parked.push_back(std::move(p));
  }
  std::thread drain([&] {
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
    }
  });

  std::vector<cli::Subprocess> honest;
  for (const char* t : {"st-mary", "karolinska"}) honest.push_back(Worker(t));
  int most = 0;
  std::optional<int> code[2];
  const absl::Time give_up = absl::Now() + absl::Seconds(90);
  while (absl::Now() < give_up && !(code[0] && code[1])) {
    most = std::max(most, Threads(aggregator_->proc.pid()));
    for (int i = 0; i < 2; ++i) {
      if (!code[i]) code[i] = honest[i].Poll();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (auto& s : idle) s->ctx.TryCancel();
  for (auto& p : parked) p->ctx.TryCancel();
  const v1::JobStatus s = Status();
  cq.Shutdown();
  drain.join();
  EXPECT_EQ(code[0], 0);
  EXPECT_EQ(code[1], 0);
  EXPECT_EQ(s.phase(), "Succeeded") << s.ShortDebugString();
  EXPECT_EQ(s.round(), 3);
  // Under a pod's 150-process limit: bounded by the thread budget (6 calls
  // per one-replica tenant, 32 more), not by the attacker's 360 calls.
  EXPECT_GT(most, 0);
  std::cerr << "aggregator threads at most: " << most << "\n";
  EXPECT_LT(most, 120) << "the aggregator ran " << most << " threads";
}

}  // namespace
}  // namespace braid::e2e
