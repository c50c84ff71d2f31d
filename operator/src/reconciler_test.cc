// The reconciler against the in-memory API server (braid_kube_fake). What
// the fake does not do, these tests do not claim: server-side apply is
// create-or-merge (no field ownership, so no apply conflicts), and setting
// metadata.deletionTimestamp does not delete the object once its finalizers
// are gone (the tests check the finalizer is removed, not that the job is).
#include "braid/operator/reconciler.h"


#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "braid/core/testing/fake_clock.h"
#include "braid/kube/testing/fake_api_server.h"
#include "braid/operator/job_objects.h"
#include "braid/operator/job_tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid::op {
namespace {

using control::AggregatorReport;
using nlohmann::json;
using ::testing::HasSubstr;

// Answers Poll() with whatever the test scripted; records the addresses.
class ScriptedStatusSource final : public AggregatorStatusSource {
 public:
  absl::StatusOr<control::AggregatorReport> Poll(const std::string& address, absl::Duration timeout,
                                        const std::optional<TlsTarget>& tls) override {
    absl::MutexLock lock(&mu_);
    addresses_.push_back(address);
    server_names_.push_back(tls.has_value() ? tls->server_name : "");
    return answer_;
  }
  std::vector<std::string> server_names() const {
    absl::MutexLock lock(&mu_);
    return server_names_;
  }
  void Answer(absl::StatusOr<control::AggregatorReport> answer) {
    absl::MutexLock lock(&mu_);
    answer_ = std::move(answer);
  }
  std::vector<std::string> addresses() const {
    absl::MutexLock lock(&mu_);
    return addresses_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::StatusOr<control::AggregatorReport> answer_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("connection refused");
  std::vector<std::string> addresses_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> server_names_ ABSL_GUARDED_BY(mu_);
};

json JobObject(int min_clients = 2, bool suspend = false) {
  return json::parse(R"({
    "apiVersion": "braid.dev/v1alpha1",
    "kind": "FederatedJob",
    "metadata": {"name": "train", "namespace": "lab"},
    "spec": {
      "model": {"kind": "mlp"},
      "data": {"features": ["x0", "x1"]},
      "strategy": {"rounds": 5, "minClients": )" +
                     std::to_string(min_clients) + R"(},
      "suspend": )" + (suspend ? "true" : "false") + R"(,
      "tenants": [
        {"name": "alpha", "replicas": 2,
         "data": {"persistentVolumeClaim": {"claimName": "alpha-data", "subPath": "alpha.csv"}}},
        {"name": "beta",
         "data": {"persistentVolumeClaim": {"claimName": "beta-data", "subPath": "beta.csv"}}}
      ]
    }
  })");
}

json TenantObject(const std::string& name, const std::string& ns, const std::string& claim) {
  return {{"apiVersion", "braid.dev/v1alpha1"},
          {"kind", "Tenant"},
          {"metadata", {{"name", name}}},
          {"spec", {{"namespace", ns}, {"dataSources", {{{"claimName", claim}}}}}}};
}

struct Ref {
  const kube::ResourceRef* ref;
  std::string ns, name;
};

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() { Build(ReconcilerOptions()); }

  void Build(ReconcilerOptions options) {
    options.operator_namespace = "braid-system";
    options.aggregator_address_template = "{name}.{namespace}.test:7070";
    ClusterView view;
    // As the controller's informers would: Tenants and Deployments as the
    // server has them; readiness is the test's to say.
    view.tenants = [this] {
      std::map<std::string, json> out;
      absl::StatusOr<json> list = client_->List(kube::kTenant, "");
      EXPECT_TRUE(list.ok()) << list.status();
      if (list.ok()) {
        for (const json& t : (*list)["items"]) out[t["metadata"]["name"]] = t;
      }
      return out;
    };
    view.approvals = [this] {
      absl::StatusOr<json> list = client_->List(kube::kTenantApproval, "");
      return list.ok() ? (*list)["items"].get<std::vector<json>>() : std::vector<json>{};
    };
    view.deployment = [this](const std::string& ns, const std::string& name) {
      json d = server_.Object(kube::kDeployment, ns, name);
      absl::MutexLock lock(&mu_);
      if (!d.is_null() && ready_.count(ns + "/" + name) > 0) {
        d["status"]["readyReplicas"] = d["spec"]["replicas"];
      }
      return d;
    };
    reconciler_ = std::make_unique<Reconciler>(client_.get(), std::move(view), &source_,
                                               &events_, options);
  }

  void SetUpTenants() {
    server_.Upsert(kube::kTenant, TenantObject("alpha", "tenant-a", "alpha-data"));
    server_.Upsert(kube::kTenant, TenantObject("beta", "lab", "beta-data"));
  }
  void MarkReady(const std::string& ns, const std::string& name) {
    absl::MutexLock lock(&mu_);
    ready_.insert(ns + "/" + name);
  }
  void MarkAllReady() {
    for (const Ref& d : Deployments()) MarkReady(d.ns, d.name);
  }

  json Job() const { return server_.Object(kube::kFederatedJob, "lab", "train"); }
  json Status() const { return Job().value("status", json::object()); }

  // The objects the job should have, by the names a user sees.
  std::vector<Ref> Deployments() const {
    return {{&kube::kDeployment, "lab", "train-aggregator"},
            {&kube::kDeployment, "lab", "train-beta-0"},
            {&kube::kDeployment, "tenant-a", TenantName("alpha-0")},
            {&kube::kDeployment, "tenant-a", TenantName("alpha-1")}};
  }
  std::vector<Ref> AllObjects() const {
    std::vector<Ref> all = Deployments();
    all.push_back({&kube::kService, "lab", "train-aggregator"});
    all.push_back({&kube::kConfigMap, "lab", "train-job"});
    all.push_back({&kube::kNetworkPolicy, "lab", "train-aggregator"});
    all.push_back({&kube::kNetworkPolicy, "lab", "train-workers"});
    all.push_back({&kube::kConfigMap, "tenant-a", TenantName("job")});
    all.push_back({&kube::kNetworkPolicy, "tenant-a", TenantName("workers")});
    all.push_back({&kube::kSecret, "lab", "train-ca"});
    all.push_back({&kube::kSecret, "lab", "train-aggregator-tls"});
    all.push_back({&kube::kSecret, "lab", "train-beta-tls"});
    all.push_back({&kube::kSecret, "tenant-a", TenantName("alpha-tls")});
    return all;
  }
  static std::string TenantName(const std::string& suffix) {
    spec::JobSpec job;
    job.name = "train";
    job.namespace_ = "lab";
    return ObjectName(job, "tenant-a", suffix);
  }

  int Replicas(const std::string& ns, const std::string& name) const {
    return server_.Object(kube::kDeployment, ns, name)["spec"]["replicas"];
  }

  // Events recorded about the job, as "Type Reason".
  std::vector<std::string> Events() {
    absl::StatusOr<json> list = client_->List(kube::kEvent, "lab");
    EXPECT_TRUE(list.ok()) << list.status();
    std::vector<std::string> out;
    if (!list.ok()) return out;
    for (const json& e : (*list)["items"]) {
      if (e["involvedObject"]["name"] == "train" && e["involvedObject"]["kind"] == "FederatedJob") {
        out.push_back(e["type"].get<std::string>() + " " + e["reason"].get<std::string>());
      }
    }
    return out;
  }

  std::vector<std::string> WritesSince() const {
    std::vector<std::string> writes;
    for (const kube::HttpRequest& r : server_.requests()) {
      if (r.method != "GET") writes.push_back(r.method + " " + r.path);
    }
    return writes;
  }

  kube::FakeApiServer server_;
  std::unique_ptr<kube::Client> client_ = kube::NewClient(server_.NewTransport());
  kube::EventRecorder events_{client_.get(), "braid-operator"};
  ScriptedStatusSource source_;
  std::unique_ptr<Reconciler> reconciler_;
  absl::Mutex mu_;
  std::set<std::string> ready_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ReconcilerTest, FirstReconcileAddsFinalizerCreatesObjectsAndWritesPendingStatus) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  absl::StatusOr<absl::Duration> next = reconciler_->Reconcile("lab", "train");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, ReconcilerOptions().status_interval);

  const json job = Job();
  EXPECT_THAT(job["metadata"]["finalizers"], ::testing::ElementsAre(kFinalizer));
  const std::string uid = job["metadata"]["uid"];
  for (const Ref& r : AllObjects()) {
    const json o = server_.Object(*r.ref, r.ns, r.name);
    ASSERT_FALSE(o.is_null()) << r.ref->kind << " " << r.ns << "/" << r.name;
    EXPECT_EQ(o["metadata"]["labels"][kJobUidLabel], uid) << r.name;
  }
  EXPECT_EQ(Replicas("tenant-a", TenantName("alpha-1")), 1);

  const json status = Status();
  EXPECT_EQ(status["phase"], "Pending");
  EXPECT_EQ(status["reason"], "WaitingForAggregator");
  EXPECT_EQ(status["observedGeneration"], job["metadata"]["generation"]);
  EXPECT_EQ(status["rounds"], 5);
  EXPECT_TRUE(source_.addresses().empty()) << "polled an aggregator that is not ready";
  EXPECT_EQ(reconciler_->Phases(), (std::map<std::string, std::string>{{"lab/train", "Pending"}}));
  EXPECT_THAT(Events(), ::testing::ElementsAre("Normal WaitingForAggregator"));
}

// The subject CN of a PEM certificate.
std::string CommonName(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return "";
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf));
  X509_free(cert);
  return buf;
}

TEST_F(ReconcilerTest, EachTenantGetsItsOwnCertificateAndTheCaKeyStaysInTheJobNamespace) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  const json ca = server_.Object(kube::kSecret, "lab", "train-ca");
  const json alpha = server_.Object(kube::kSecret, "tenant-a", TenantName("alpha-tls"));
  const json beta = server_.Object(kube::kSecret, "lab", "train-beta-tls");
  const json server = server_.Object(kube::kSecret, "lab", "train-aggregator-tls");
  EXPECT_EQ(CommonName(*SecretFile(alpha, "tls.crt")), "tenant:alpha");
  EXPECT_EQ(CommonName(*SecretFile(beta, "tls.crt")), "tenant:beta");
  EXPECT_EQ(CommonName(*SecretFile(server, "tls.crt")), "aggregator");
  EXPECT_EQ(*SecretFile(alpha, "ca.crt"), *SecretFile(ca, "ca.crt"));
  for (const json& workload : {alpha, beta, server}) {
    EXPECT_FALSE(SecretFile(workload, "ca.key").ok()) << "the CA key left the CA Secret";
  }

  // The pods mount only their own Secret.
  const json worker = server_.Object(kube::kDeployment, "tenant-a", TenantName("alpha-0"));
  EXPECT_EQ(worker.value("/spec/template/spec/volumes/2/secret/secretName"_json_pointer, ""),
            TenantName("alpha-tls"))
      << worker["spec"]["template"]["spec"]["volumes"].dump();

  // The aggregator is verified by its Service name, whatever address is dialed.
  MarkAllReady();
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  ASSERT_FALSE(source_.server_names().empty());
  EXPECT_EQ(source_.server_names().back(), "train-aggregator.lab.svc");

  // Keys are made once: a later reconcile (even by a new operator) keeps them.
  Build(ReconcilerOptions());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_EQ(server_.Object(kube::kSecret, "tenant-a", TenantName("alpha-tls"))["data"],
            alpha["data"]);
}

TEST_F(ReconcilerTest, SecondReconcileWritesNothing) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  const int64_t version = server_.resource_version();
  server_.clear_requests();
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_THAT(WritesSince(), ::testing::IsEmpty());
  EXPECT_EQ(server_.resource_version(), version);
}

TEST_F(ReconcilerTest, ADeploymentDeletedByHandIsRecreated) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  ASSERT_TRUE(client_->Delete(kube::kDeployment, "tenant-a", TenantName("alpha-1")).ok());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_FALSE(server_.Object(kube::kDeployment, "tenant-a", TenantName("alpha-1")).is_null());
}

// The controller's periodic resync promises to undo changes made by hand:
// a deleted NetworkPolicy (the workers' isolation) must come back.
TEST_F(ReconcilerTest, ANetworkPolicyDeletedByHandIsRestoredByALaterReconcile) {
  FakeClock clock;
  ReconcilerOptions options;
  options.reapply_interval = absl::Minutes(10);
  options.clock = &clock;
  Build(options);
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  ASSERT_TRUE(client_->Delete(kube::kNetworkPolicy, "tenant-a", TenantName("workers")).ok());
  clock.Advance(absl::Minutes(10));
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_FALSE(server_.Object(kube::kNetworkPolicy, "tenant-a", TenantName("workers")).is_null());
}

TEST_F(ReconcilerTest, RoundsFromTheAggregatorOnceItIsReady) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  MarkAllReady();
  AggregatorReport report;
  report.job = "train";
  report.phase = "Running";
  report.round = 3;
  report.total_rounds = 5;
  report.clients = 3;
  report.participants = 3;
  report.train_loss = 0.5;
  report.eval_accuracy = 0.75;
  report.tenant_last_round = {{"alpha", 3}, {"beta", 2}};
  source_.Answer(report);

  absl::StatusOr<absl::Duration> next = reconciler_->Reconcile("lab", "train");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, ReconcilerOptions().status_interval) << "a running job is polled again";
  EXPECT_THAT(source_.addresses(), ::testing::ElementsAre("train.lab.test:7070"));
  const json status = Status();
  EXPECT_EQ(status["phase"], "Running");
  EXPECT_EQ(status["round"], 3);
  EXPECT_EQ(status["metrics"]["trainLoss"], 0.5);
  EXPECT_EQ(status["metrics"]["evalAccuracy"], 0.75);
  EXPECT_EQ(status["aggregator"]["readyReplicas"], 1);
  ASSERT_EQ(status["tenants"].size(), 2u);
  for (const json& t : status["tenants"]) {
    EXPECT_EQ(t["readyReplicas"], t["replicas"]) << t.dump();
    EXPECT_EQ(t["lastRound"], t["name"] == "alpha" ? 3 : 2);
  }
  EXPECT_EQ(reconciler_->Phases().at("lab/train"), "Running");
}

TEST_F(ReconcilerTest, UnreachableAggregatorLeavesTheJobWaiting) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  MarkReady("lab", "train-aggregator");
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());  // answer: Unavailable
  EXPECT_EQ(source_.addresses().size(), 1u);
  EXPECT_EQ(Status()["phase"], "Pending");
  EXPECT_EQ(Status()["reason"], "WaitingForWorkers");
}

// A stale Service or a wrong address template can lead to another job's
// aggregator: its progress is not this job's.
TEST_F(ReconcilerTest, AnotherJobsAggregatorIsIgnored) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  MarkAllReady();
  AggregatorReport report;
  report.job = "other";
  report.phase = "Succeeded";
  report.round = 5;
  source_.Answer(report);
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_EQ(source_.addresses().size(), 1u);
  EXPECT_EQ(Status()["phase"], "Pending");
  EXPECT_EQ(Status()["round"], 0);
  EXPECT_EQ(Replicas("lab", "train-beta-0"), 1);
}

TEST_F(ReconcilerTest, SuccessStopsTheWorkersAndKeepsTheAggregator) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  MarkAllReady();
  AggregatorReport report;
  report.job = "train";
  report.phase = "Succeeded";
  report.reason = "RoundsCompleted";
  report.round = 5;
  report.total_rounds = 5;
  source_.Answer(report);
  absl::StatusOr<absl::Duration> next = reconciler_->Reconcile("lab", "train");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, absl::InfiniteDuration());
  EXPECT_EQ(Status()["phase"], "Succeeded");
  EXPECT_TRUE(Status().contains("completionTime"));

  // The next look (any event) scales the workers down; the aggregator keeps
  // serving the final model. No more polling.
  source_.Answer(absl::UnavailableError("gone"));
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_EQ(source_.addresses().size(), 1u);
  EXPECT_EQ(Replicas("lab", "train-beta-0"), 0);
  EXPECT_EQ(Replicas("tenant-a", TenantName("alpha-0")), 0);
  EXPECT_EQ(Replicas("lab", "train-aggregator"), 1);
  EXPECT_EQ(Status()["phase"], "Succeeded");
  EXPECT_EQ(Status()["round"], 5);
}

TEST_F(ReconcilerTest, SuspendScalesEverythingToZeroAndResumeScalesBack) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject(2, /*suspend=*/true));
  absl::StatusOr<absl::Duration> next = reconciler_->Reconcile("lab", "train");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, absl::InfiniteDuration());
  EXPECT_EQ(Status()["phase"], "Suspended");
  for (const Ref& d : Deployments()) EXPECT_EQ(Replicas(d.ns, d.name), 0) << d.name;

  json job = Job();
  job["spec"]["suspend"] = false;
  server_.Upsert(kube::kFederatedJob, job);
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  for (const Ref& d : Deployments()) EXPECT_EQ(Replicas(d.ns, d.name), 1) << d.name;
  EXPECT_EQ(Status()["phase"], "Pending");
  EXPECT_EQ(Status()["observedGeneration"], 2);
}

TEST_F(ReconcilerTest, DeletionRemovesTheJobsObjectsEverywhereThenTheFinalizer) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  // Someone else's objects in the same namespaces stay.
  server_.Upsert(kube::kConfigMap, {{"apiVersion", "v1"},
                                    {"kind", "ConfigMap"},
                                    {"metadata",
                                     {{"name", "keep-me"},
                                      {"namespace", "tenant-a"},
                                      {"labels", {{"app.kubernetes.io/managed-by",
                                                   "braid-operator"},
                                                  {kJobUidLabel, "another-job"}}}}}});

  json job = Job();
  job["metadata"]["deletionTimestamp"] = "2024-01-01T01:00:00Z";
  server_.Upsert(kube::kFederatedJob, job);
  absl::StatusOr<absl::Duration> next = reconciler_->Reconcile("lab", "train");
  ASSERT_TRUE(next.ok()) << next.status();

  for (const Ref& r : AllObjects()) {
    EXPECT_TRUE(server_.Object(*r.ref, r.ns, r.name).is_null())
        << r.ref->kind << " " << r.ns << "/" << r.name << " survived";
  }
  EXPECT_FALSE(server_.Object(kube::kConfigMap, "tenant-a", "keep-me").is_null());
  EXPECT_FALSE(Job()["metadata"].contains("finalizers") &&
               !Job()["metadata"]["finalizers"].empty())
      << Job()["metadata"].dump();
  EXPECT_EQ(reconciler_->Phases().count("lab/train"), 0u);
}

TEST_F(ReconcilerTest, InvalidSpecFailsWithAWarningEventAndCreatesNothing) {
  SetUpTenants();
  // 5 > 3 replicas in all: the CRD's CEL rule refuses this; an object that
  // got past it (older CRD, validation off) meets core/spec's check.
  server_.Upsert(kube::kFederatedJob, JobObject(/*min_clients=*/5));
  absl::StatusOr<absl::Duration> next = reconciler_->Reconcile("lab", "train");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, absl::InfiniteDuration());
  const json status = Status();
  EXPECT_EQ(status["phase"], "Failed");
  EXPECT_EQ(status["reason"], "InvalidSpec");
  EXPECT_THAT(status["message"].get<std::string>(), HasSubstr("spec.strategy.minClients"));
  for (const Ref& r : AllObjects()) {
    EXPECT_TRUE(server_.Object(*r.ref, r.ns, r.name).is_null()) << r.name;
  }
  EXPECT_THAT(Events(), ::testing::ElementsAre("Warning InvalidSpec"));
  // The same failure again is not a new event.
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_THAT(Events(), ::testing::ElementsAre("Warning InvalidSpec"));
}

TEST_F(ReconcilerTest, MissingTenantWaitsThenProceedsWhenItAppears) {
  server_.Upsert(kube::kTenant, TenantObject("beta", "lab", "beta-data"));
  server_.Upsert(kube::kFederatedJob, JobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_EQ(Status()["phase"], "Pending");
  EXPECT_EQ(Status()["reason"], "TenantNotFound");
  EXPECT_THAT(Status()["message"].get<std::string>(), HasSubstr("spec.tenants[0].name"));
  EXPECT_TRUE(server_.Object(kube::kDeployment, "lab", "train-aggregator").is_null());
  EXPECT_THAT(Events(), ::testing::ElementsAre("Warning TenantNotFound"));

  server_.Upsert(kube::kTenant, TenantObject("alpha", "tenant-a", "alpha-data"));
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_EQ(Status()["reason"], "WaitingForAggregator");
  for (const Ref& r : AllObjects()) {
    EXPECT_FALSE(server_.Object(*r.ref, r.ns, r.name).is_null()) << r.name;
  }
}

// alpha (2 replicas) requires approval; the decision is a TenantApproval in
// its namespace.
json Approval(const std::string& decision) {
  return {{"apiVersion", "braid.dev/v1alpha1"},
          {"kind", "TenantApproval"},
          {"metadata", {{"name", "train"}, {"namespace", "tenant-a"}}},
          {"spec",
           {{"tenant", "alpha"},
            {"job", {{"namespace", "lab"}, {"name", "train"}}},
            {"decision", decision}}}};
}

std::vector<std::string> AggregatorArgs(const json& deployment) {
  return deployment["spec"]["template"]["spec"]["containers"][0]["args"]
      .get<std::vector<std::string>>();
}

bool Has(const std::vector<std::string>& args, const std::string& arg) {
  return std::find(args.begin(), args.end(), arg) != args.end();
}

// A tenant refused before the start: the aggregator expects only beta's one
// worker (as `braid run` tells its aggregator); alpha's are kept at 0.
TEST_F(ReconcilerTest, ARefusedTenantIsNotAmongTheWorkersTheAggregatorExpects) {
  SetUpTenants();
  json alpha = TenantObject("alpha", "tenant-a", "alpha-data");
  alpha["spec"]["policy"] = {{"requireApproval", true}};
  server_.Upsert(kube::kTenant, alpha);
  server_.Upsert(kube::kTenantApproval, Approval("Refused"));
  json job = JobObject(/*min_clients=*/1);
  job["spec"]["strategy"]["minTenants"] = 1;  // the job may run with one tenant
  server_.Upsert(kube::kFederatedJob, job);
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  const json aggregator = server_.Object(kube::kDeployment, "lab", "train-aggregator");
  ASSERT_FALSE(aggregator.is_null()) << Status().dump(2);
  EXPECT_TRUE(Has(AggregatorArgs(aggregator), "--expected-clients=1"));
  EXPECT_EQ(Replicas("tenant-a", TenantName("alpha-0")), 0);
  EXPECT_EQ(Replicas("lab", "train-beta-0"), 1);
}

// A revocation once the aggregator runs stops the tenant's workers but
// leaves the aggregator's Deployment as it is: a change would restart it
// and lose the round in progress (it declares the stopped workers lost).
TEST_F(ReconcilerTest, ARevocationWhileRunningKeepsTheAggregatorsArgs) {
  SetUpTenants();
  json alpha = TenantObject("alpha", "tenant-a", "alpha-data");
  alpha["spec"]["policy"] = {{"requireApproval", true}};
  server_.Upsert(kube::kTenant, alpha);
  server_.Upsert(kube::kTenantApproval, Approval("Approved"));
  server_.Upsert(kube::kFederatedJob, JobObject(/*min_clients=*/1));
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  const std::vector<std::string> before =
      AggregatorArgs(server_.Object(kube::kDeployment, "lab", "train-aggregator"));
  EXPECT_FALSE(Has(before, "--expected-clients=1"));
  server_.Upsert(kube::kTenantApproval, Approval("Refused"));
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_EQ(Replicas("tenant-a", TenantName("alpha-0")), 0);
  EXPECT_EQ(AggregatorArgs(server_.Object(kube::kDeployment, "lab", "train-aggregator")), before);
}

TEST_F(ReconcilerTest, AJobThatIsGoneIsNotAnError) {
  absl::StatusOr<absl::Duration> next = reconciler_->Reconcile("lab", "nothing");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, absl::InfiniteDuration());
  EXPECT_THAT(WritesSince(), ::testing::IsEmpty());
}

TEST_F(ReconcilerTest, ApiErrorsAreReturnedForRetry) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, JobObject());
  server_.FailNext("PATCH", "/deployments/", 503);
  absl::StatusOr<absl::Duration> next = reconciler_->Reconcile("lab", "train");
  ASSERT_FALSE(next.ok());
  EXPECT_TRUE(absl::IsUnavailable(next.status())) << next.status();
  EXPECT_THAT(std::string(next.status().message()), HasSubstr("apply Deployment"));
  // The retry completes the work.
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  for (const Ref& r : AllObjects()) {
    EXPECT_FALSE(server_.Object(*r.ref, r.ns, r.name).is_null()) << r.name;
  }
  EXPECT_EQ(Status()["phase"], "Pending");
}

}  // namespace
}  // namespace braid::op

namespace braid::op {
namespace {

// A Federation in memory: what the reconciler invited, and what the test
// says each site reported.
class FakeFederation final : public Federation {
 public:
  void Invite(const std::string& job_uid,
              const std::map<std::string, v1::Invitation>& by_site) override {
    absl::MutexLock lock(&mu_);
    if (by_site.empty()) {
      invited_.erase(job_uid);
    } else {
      invited_[job_uid] = by_site;
    }
  }
  std::map<std::string, json> Sites() const override {
    absl::MutexLock lock(&mu_);
    return sites_;
  }
  SiteJobView SiteJob(const std::string& site, const std::string& job_uid) const override {
    absl::MutexLock lock(&mu_);
    SiteJobView view;
    auto s = sites_.find(site);
    view.member = s != sites_.end() && !s->second["spec"].value("revoked", false);
    view.connected = true;
    auto it = reports_.find(site);
    if (it != reports_.end()) view.state = it->second;
    return view;
  }
  std::string CaPem() const override { return "FEDERATION CA"; }

  void AddSite(const std::string& name) {
    absl::MutexLock lock(&mu_);
    sites_[name] = {{"metadata", {{"name", name}, {"uid", "uid-of-site-" + name}}},
                    {"spec", json::object()}};
  }
  void RevokeSite(const std::string& name) {
    absl::MutexLock lock(&mu_);
    sites_[name]["spec"]["revoked"] = true;
  }
  void DeleteSite(const std::string& name) {
    absl::MutexLock lock(&mu_);
    sites_.erase(name);
  }
  void Report(const std::string& site, const std::string& state, int ready) {
    absl::MutexLock lock(&mu_);
    v1::InvitationState s;
    s.set_state(state);
    s.set_workers_ready(ready);
    reports_[site] = s;
  }
  std::map<std::string, std::map<std::string, v1::Invitation>> invited() const {
    absl::MutexLock lock(&mu_);
    return invited_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, json> sites_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::InvitationState> reports_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<std::string, v1::Invitation>> invited_ ABSL_GUARDED_BY(mu_);
};

// alpha runs here; st-mary's tenant runs at its site.
json SiteJobObject() {
  json job = JobObject(/*min_clients=*/2);
  job["spec"]["tenants"][1] = {{"name", "st-mary"}, {"site", "st-mary"}, {"dataset", "records"}};
  return job;
}

class CoordinatorReconcilerTest : public ReconcilerTest {
 protected:
  void UseFederation() {
    ReconcilerOptions options;
    options.federation = &federation_;
    options.site_aggregator_address_template = "{name}.{namespace}.fl.example.org:443";
    Build(options);
  }
  json TenantStatus(const std::string& name) const {
    for (const json& t : Status().value("tenants", json::array())) {
      if (t.value("name", "") == name) return t;
    }
    return json::object();
  }
  // A job with tenant st-mary at its site, admitted (the site runs it).
  void AdmitSiteJob() {
    UseFederation();
    SetUpTenants();
    federation_.AddSite("st-mary");
    server_.Upsert(kube::kFederatedJob, SiteJobObject());
    federation_.Report("st-mary", "Running", 1);
    ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
    ASSERT_FALSE(server_.Object(kube::kDeployment, "lab", "train-aggregator").is_null())
        << Status().dump();
  }
  // The sites the job's aggregator admits (sites.json of its ConfigMap).
  json AdmittedSites() const {
    const json cm = server_.Object(kube::kConfigMap, "lab", "train-job");
    return json::parse(cm["data"].value("sites.json", "null"));
  }
  // After its Site was revoked or deleted: the tenant left, the job did not
  // fail, and the aggregator no longer admits the site.
  void ExpectTheSiteLeftTheJobRunning() const {
    EXPECT_NE(Status().value("phase", ""), "Failed") << Status().dump();
    EXPECT_EQ(TenantStatus("st-mary").value("phase", ""), "Revoked") << Status().dump();
    EXPECT_EQ(TenantStatus("st-mary").value("consent", ""), "Refused") << Status().dump();
    EXPECT_EQ(AdmittedSites(), json::parse(R"({"sites": {}})"));
    EXPECT_FALSE(server_.Object(kube::kDeployment, "lab", "train-aggregator").is_null());
  }
  FakeFederation federation_;
};

TEST_F(CoordinatorReconcilerTest, AnOperatorThatIsNoCoordinatorRefusesSiteTenants) {
  SetUpTenants();
  server_.Upsert(kube::kFederatedJob, SiteJobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  const json status = Status();
  EXPECT_EQ(status["phase"], "Failed");
  EXPECT_EQ(status["reason"], "SitesNeedCoordinator");
  bool named = false;
  for (const json& c : status["conditions"]) {
    named |= c["type"] == "TenantsReady" && c["reason"] == "SitesNeedCoordinator";
  }
  EXPECT_TRUE(named) << Status().dump();
  EXPECT_TRUE(server_.Object(kube::kDeployment, "lab", "train-aggregator").is_null());
}

TEST_F(CoordinatorReconcilerTest, SitesAreInvitedAndTheirAnswerDecides) {
  UseFederation();
  SetUpTenants();
  federation_.AddSite("st-mary");
  server_.Upsert(kube::kFederatedJob, SiteJobObject());
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  const std::string uid = Job()["metadata"]["uid"];
  // Invited before any answer: what the site's workers need, and no claim.
  auto invited = federation_.invited();
  ASSERT_EQ(invited.count(uid), 1u);
  const v1::Invitation inv = invited[uid].at("st-mary");
  EXPECT_EQ(inv.aggregator_address(), "train.lab.fl.example.org:443");
  EXPECT_EQ(inv.tenant(), "st-mary");
  EXPECT_EQ(inv.dataset(), "records");
  EXPECT_THAT(inv.aggregator_ca_pem(), HasSubstr("BEGIN CERTIFICATE"));
  EXPECT_FALSE(absl::StrContains(inv.job_yaml(), "claimName: alpha-data") &&
               absl::StrContains(inv.job_yaml(), "st-mary-data"));
  // Not admitted while the site has not said yes: nothing runs.
  EXPECT_EQ(TenantStatus("st-mary").value("phase", ""), "Invited");
  EXPECT_TRUE(server_.Object(kube::kDeployment, "lab", "train-aggregator").is_null());

  federation_.Report("st-mary", "Running", 0);
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  const json aggregator = server_.Object(kube::kDeployment, "lab", "train-aggregator");
  ASSERT_FALSE(aggregator.is_null()) << Status().dump();
  EXPECT_THAT(aggregator.dump(), HasSubstr("--tls-client-ca-extra="));
  EXPECT_FALSE(server_.Object(kube::kSecret, "lab", "train-federation-ca").is_null());
  // No object anywhere for the site's tenant, and no certificate made for it.
  absl::StatusOr<json> all = client_->List(kube::kDeployment, "");
  ASSERT_TRUE(all.ok());
  for (const json& d : (*all)["items"]) {
    EXPECT_FALSE(absl::StrContains(d["metadata"]["name"].get<std::string>(), "st-mary"));
  }
  EXPECT_EQ(TenantStatus("st-mary").value("site", ""), "st-mary");

  // The site refuses later: its tenant shows it; the job runs on.
  federation_.Report("st-mary", "Refused", 0);
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_EQ(TenantStatus("st-mary").value("phase", ""), "Refused");

  // Deleting the job withdraws its invitations.
  json job = Job();
  job["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:00Z";
  server_.Upsert(kube::kFederatedJob, job);
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  EXPECT_EQ(federation_.invited().count(uid), 0u);
}

TEST_F(CoordinatorReconcilerTest, ASiteRevokedAfterAdmissionLeavesTheJobRunning) {
  ASSERT_NO_FATAL_FAILURE(AdmitSiteJob());
  // The aggregator admits the site by its Site's uid.
  EXPECT_THAT(server_.Object(kube::kDeployment, "lab", "train-aggregator").dump(),
              HasSubstr("--site-admission=/etc/braid/sites.json"));
  EXPECT_EQ(AdmittedSites(), json::parse(R"({"sites": {"st-mary": {"uid": "uid-of-site-st-mary"}}})"));

  federation_.RevokeSite("st-mary");
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  ExpectTheSiteLeftTheJobRunning();
}

TEST_F(CoordinatorReconcilerTest, ASiteDeletedAfterAdmissionLeavesTheJobRunning) {
  ASSERT_NO_FATAL_FAILURE(AdmitSiteJob());
  federation_.DeleteSite("st-mary");
  ASSERT_TRUE(reconciler_->Reconcile("lab", "train").ok());
  ExpectTheSiteLeftTheJobRunning();
}

}  // namespace
}  // namespace braid::op
